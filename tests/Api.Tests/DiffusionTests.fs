module DiffusionFunctional.Api.Tests.DiffusionTests

open System
open Expecto
open DiffusionFunctional
open TorchSharp
open DiffusionFunctional.Diffusion
open DiffusionFunctional.Models
open DiffusionFunctional.Training
open DiffusionFunctional.Api.Tests.TestSupport

let private linear = GaussianDiffusion.Create("linear", 1000)

/// A tiny UNet from `seed` with every weight perturbed (a fresh one outputs zero: its last convolution starts at 0).
let private perturbedTinyNet (seed: int64) =
    torch.manual_seed seed |> ignore
    let net = new UNet(tinyConfig)
    use _ = torch.no_grad()
    for p in net.parameters() do p.add_(torch.randn_like(p) * 0.05f) |> ignore
    net

/// Every sampler and eta the sampler tests cover: deterministic DDIM, stochastic DDIM and DDPM.
let private samplerKinds = [ SamplerKind.Ddim, 0.0; SamplerKind.Ddim, 1.0; SamplerKind.Ddpm, 0.0; SamplerKind.DpmSolver2M, 0.0 ]

[<Tests>]
let tests =
    testList "Diffusion" [
        test "AddNoise equals sqrt(abar) x0 + sqrt(1 - abar) eps per sample" {
            oneThread ()
            torch.manual_seed 4L |> ignore
            use x0 = torch.randn([| 4L; 1L; 3L; 3L |])
            use eps = torch.randn([| 4L; 1L; 3L; 3L |])
            let ts = [| 0L; 17L; 500L; 999L |]
            use xt = linear.AddNoise(x0, eps, torch.tensor(ts))
            let abar = linear.Schedule.AlphasCumprod
            let x0f, ef, xf = floats x0, floats eps, floats xt
            for i in 0 .. 3 do
                let a = abar.[int ts.[i]]
                for j in 0 .. 8 do
                    let k = i * 9 + j
                    let expected = sqrt a * float x0f.[k] + sqrt (1.0 - a) * float ef.[k]
                    Expect.floatClose Accuracy.medium (float xf.[k]) expected (sprintf "sample %d pixel %d" i j)
        }

        test "the closed form matches running the Markov chain q(x_t | x_{t-1}) step by step" {
            oneThread ()
            let d = GaussianDiffusion.Create("linear", 200)
            use gen = new torch.Generator(7UL)
            let n = 200000L
            let x0 = 0.8
            let mutable x = torch.ones([| n |], dtype = torch.float64) * x0
            for t in [ 0 .. 199 ] do
                let beta = d.Schedule.Betas.[t]
                let next = x * sqrt (1.0 - beta) + torch.randn([| n |], dtype = torch.float64, generator = gen) * sqrt beta
                x.Dispose()
                x <- next
                if t = 49 || t = 199 then
                    let a = d.AlphaBar t
                    let mean = x.mean().item<float>()
                    let var = x.var().item<float>()
                    Expect.floatClose { absolute = 0.01; relative = 0.0 } mean (sqrt a * x0) (sprintf "mean at t=%d" t)
                    Expect.floatClose { absolute = 0.01; relative = 0.02 } var (1.0 - a) (sprintf "variance at t=%d" t)
            x.Dispose()
        }

        testList "prediction types" [
            for prediction in [ PredictionType.Epsilon; PredictionType.V ] ->
                test (sprintf "%A: Interpret(target) recovers x0 and eps" prediction) {
                    let d = GaussianDiffusion.Create("squaredcos_cap_v2", 1000, prediction)
                    torch.manual_seed 5L |> ignore
                    for t in [ 0; 250; 999 ] do
                        use x0 = torch.randn([| 2L; 1L; 4L; 4L |])
                        use eps = torch.randn([| 2L; 1L; 4L; 4L |])
                        use tv = torch.tensor(Array.create 2 (int64 t))
                        use xt = d.AddNoise(x0, eps, tv)
                        use target = d.Target(x0, eps, tv)
                        let struct (x0hat, epshat) = d.Interpret(target, xt, t)
                        // Near t = T-1 abar is tiny, so eps -> x0 amplifies float32 rounding; the other direction is exact.
                        Expect.isLessThan (maxAbsDiff epshat eps) 1e-3 (sprintf "eps at t=%d" t)
                        Expect.isLessThan (maxAbsDiff x0hat x0) (if t = 999 && prediction = PredictionType.Epsilon then 0.5 else 1e-3) (sprintf "x0 at t=%d" t)
                }
        ]

        test "v target equals sqrt(abar) eps - sqrt(1 - abar) x0" {
            let d = GaussianDiffusion.Create("linear", 1000, PredictionType.V)
            use x0 = torch.ones([| 1L; 1L; 1L; 1L |])
            use eps = torch.ones([| 1L; 1L; 1L; 1L |]) * 2.0f
            use v = d.Target(x0, eps, torch.tensor([| 300L |]))
            let a = d.AlphaBar 300
            Expect.floatClose Accuracy.medium (float (floats v).[0]) (sqrt a * 2.0 - sqrt (1.0 - a)) "v"
        }

        test "DDIM timesteps are descending, distinct, from T-1 to 0" {
            let ts = Samplers.DdimTimesteps(1000, 50)
            Expect.equal ts.Length 50 "count"
            Expect.equal ts.[0] 999 "first"
            Expect.equal ts.[ts.Length - 1] 0 "last"
            Expect.isTrue (ts |> Array.pairwise |> Array.forall (fun (a, b) -> a > b)) "strictly descending"
        }

        testList "samplers" [
            for kind, prediction in [ SamplerKind.Ddim, PredictionType.Epsilon; SamplerKind.Ddim, PredictionType.V; SamplerKind.Ddpm, PredictionType.Epsilon
                                      SamplerKind.DpmSolver2M, PredictionType.Epsilon; SamplerKind.DpmSolver2M, PredictionType.V ] ->
                test (sprintf "%A/%A: with the exact denoiser of a one-image data set, sampling returns that image" kind prediction) {
                    oneThread ()
                    let d = GaussianDiffusion.Create("linear", 100, prediction)
                    use target = torch.linspace(-0.9, 0.9, 16L).reshape(1L, 1L, 4L, 4L)
                    use oracle = new OracleModel(d, target)
                    let options = SamplerOptions(Kind = kind, Steps = 20, Eta = 0.0, Seed = 3L)
                    use images = Samplers.Sample(d, oracle, [| 2L; 1L; 4L; 4L |], options)
                    Expect.sequenceEqual images.shape [| 2L; 1L; 4L; 4L |] "shape"
                    use expected = target.expand(2L, 1L, 4L, 4L)
                    Expect.isLessThan (maxAbsDiff images expected) 1e-3 "reaches the data point"
                }
        ]

        test "DPM-Solver++(2M) is second order on the probability-flow ODE of Gaussian data, and beats DDIM at equal steps" {
            oneThread ()
            let d = GaussianDiffusion.Create("linear", 1000)
            let mean, std = 0.2, 0.3
            use oracle = new GaussianOracle(d, mean, std)
            let shape = [| 64L; 1L; 2L; 2L |]
            // The exact solution: the flow keeps z = (x_t - sqrt(abar) mean) / sqrt(abar std^2 + 1 - abar); the samplers
            // end on the denoiser's x0 at t = 0.
            let exact =
                use g = new torch.Generator(5UL)
                use noise = torch.randn(shape, generator = g).to_type(torch.float64)
                let aT, a0 = d.AlphaBar(999), d.AlphaBar(0)
                use z = (noise - sqrt aT * mean) / sqrt (aT * std * std + 1.0 - aT)
                z * (sqrt a0 * std * std / sqrt (a0 * std * std + 1.0 - a0)) + mean
            use _ = exact
            let error kind steps =
                use x = Samplers.Sample(d, oracle, shape, SamplerOptions(Kind = kind, Steps = steps, Seed = 5L, ClipDenoised = false))
                use e = (x.to_type(torch.float64) - exact).square().mean().sqrt()
                e.item<float>()
            let dpm = [ for n in [ 10; 20; 40 ] -> n, error SamplerKind.DpmSolver2M n ] |> Map.ofList
            for n in [ 10; 20; 40 ] do
                let ddim = error SamplerKind.Ddim n
                eprintfn "Gaussian ODE, %d steps: RMS error to the exact solution DDIM %.3g, DPM-Solver++(2M) %.3g" n ddim dpm.[n]
                Expect.isLessThan dpm.[n] (ddim / 4.0) (sprintf "%d steps: DPM-Solver++(2M) %g vs DDIM %g" n dpm.[n] ddim)
            Expect.isLessThan dpm.[40] (dpm.[10] / 4.0) "4x the steps, at least 4x less error (second order: 16x in the limit)"
        }

        test "samplers give [N,C,H,W] and are deterministic under a seed" {
            oneThread ()
            use net = perturbedTinyNet 6L
            let d = GaussianDiffusion.Create("linear", 50)
            for kind, eta in samplerKinds do
                let options = SamplerOptions(Kind = kind, Steps = 10, Eta = eta, Seed = 11L)
                use a = Samplers.Sample(d, net, [| 3L; 1L; 8L; 8L |], options)
                use b = Samplers.Sample(d, net, [| 3L; 1L; 8L; 8L |], options)
                use c = Samplers.Sample(d, net, [| 3L; 1L; 8L; 8L |], SamplerOptions(Kind = kind, Steps = 10, Eta = eta, Seed = 12L))
                Expect.sequenceEqual a.shape [| 3L; 1L; 8L; 8L |] "shape"
                Expect.equal (maxAbsDiff a b) 0.0 (sprintf "%A eta=%g same seed, same images" kind eta)
                Expect.isGreaterThan (maxAbsDiff a c) 1e-3 (sprintf "%A eta=%g another seed, other images" kind eta)
        }

        test "a batch denoised in slices gives the images of one call, stochastic samplers included" {
            oneThread ()
            use net = perturbedTinyNet 7L
            let d = GaussianDiffusion.Create("linear", 50)
            for kind, eta in samplerKinds do
                let options perCall = SamplerOptions(Kind = kind, Steps = 10, Eta = eta, Seed = 5L, ImagesPerCall = Nullable perCall)
                use whole = Samplers.Sample(d, net, [| 7L; 1L; 8L; 8L |], options 7)
                use sliced = Samplers.Sample(d, net, [| 7L; 1L; 8L; 8L |], options 3)
                Expect.isLessThan (maxAbsDiff whole sliced) 1e-6 (sprintf "%A eta=%g: slices of 3, 3 and 1" kind eta)
            Expect.equal (Samplers.ImagesPerCall([| 500L; 1L; 16L; 16L |], SamplerOptions(), torch.CPU)) 128L "CPU default: 2^15 pixels per call"
            Expect.equal (Samplers.ImagesPerCall([| 500L; 1L; 16L; 16L |], SamplerOptions(ImagesPerCall = Nullable 9), torch.CPU)) 9L "set"
            Expect.throwsT<BadInputException> (fun () -> Samplers.ImagesPerCall([| 5L; 1L; 8L; 8L |], SamplerOptions(ImagesPerCall = Nullable 0), torch.CPU) |> ignore) "0 refused"
        }

        test "EMA follows ema <- d ema + (1 - d) w" {
            oneThread ()
            torch.manual_seed 8L |> ignore
            use net = new UNet(tinyConfig)
            use ema = new ExponentialMovingAverage(net, 0.9)
            let key = "conv_in.weight"
            let start = floats (ema.Model.state_dict().[key])
            use _ = torch.no_grad()
            net.state_dict().[key].fill_(2.0f) |> ignore
            for _ in 1 .. 5 do ema.Update()
            let after = floats (ema.Model.state_dict().[key])
            for i in 0 .. start.Length - 1 do
                let expected = 2.0 + Math.Pow(0.9, 5.0) * (float start.[i] - 2.0)
                Expect.floatClose Accuracy.medium (float after.[i]) expected "closed form of five updates"
        }
    ]
