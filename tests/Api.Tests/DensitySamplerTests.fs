module DiffusionFunctional.Api.Tests.DensitySamplerTests

open System.IO
open Expecto
open TorchSharp
open DiffusionFunctional.Timesteps
open DiffusionFunctional
open DiffusionFunctional.Core
open DiffusionFunctional.Training

type private ChiSquared = MathNet.Numerics.Distributions.ChiSquared

let linear100 = Schedule.create Linear 100
let threeClusters = ClusterPlan.Create(100, [| 0; 23; 61; 100 |], "test")

let longs (t: torch.Tensor) = t.cpu().data<int64>().ToArray()

/// Pearson's chi-square against probabilities, pooling adjacent bins until each expects at least 5.
let chiSquare (probabilities: float[]) (counts: int[]) =
    let total = float (Array.sum counts)
    let bins = ResizeArray<float * float>()
    let mutable e, o = 0.0, 0.0
    for i in 0 .. probabilities.Length - 1 do
        e <- e + total * probabilities.[i]
        o <- o + float counts.[i]
        if e >= 5.0 then
            bins.Add((e, o))
            e <- 0.0
            o <- 0.0
    if e > 0.0 || o > 0.0 then
        let le, lo = bins.[bins.Count - 1]
        bins.[bins.Count - 1] <- (le + e, lo + o)
    (bins |> Seq.sumBy (fun (e, o) -> (o - e) * (o - e) / e)), bins.Count - 1

/// Per-cluster histograms of `batches` draws of batch `b`; also checks the chunk layout of every draw.
let clusterHistograms (sampler: DensityTimesteps) (plan: ClusterPlan) (b: int) (batches: int) (seed: int64) =
    use generator = new torch.Generator(uint64 seed)
    let counts = Array.init plan.Count (fun c -> Array.zeroCreate (plan.Size c))
    let expectedClusters = [| for c in 0 .. plan.Count - 1 do for _ in 1 .. plan.ChunkSize(c, b) -> int64 c |]
    for _ in 1 .. batches do
        use draw = sampler.Sample(b, plan, generator, torch.CPU)
        let ts, cs = longs draw.Timesteps, longs draw.Clusters
        Expect.equal cs expectedClusters "chunk c of the batch is cluster c, sized by ChunkSize"
        Array.iter2 (fun t c ->
            let c = int c
            Expect.isTrue (int t >= plan.Start c && int t < plan.End c) (sprintf "t = %d lies in cluster %d" t c)
            counts.[c].[int t - plan.Start c] <- counts.[c].[int t - plan.Start c] + 1) ts cs
    counts

[<Tests>]
let tests =
    testList "density timestep sampler" [
        test "each cluster's histogram passes a chi-square test against the restricted pmf (significance 0.001)" {
            torch.set_num_threads 1
            for spec in [ "uniform"; "logit-normal"; "logit-normal:0.8,0.7"; "beta:0.8,2.5"; "speed" ] do
                let sampler = DensityTimesteps.Parse(spec, linear100)
                let p = sampler.Probabilities
                let counts = clusterHistograms sampler threeClusters 96 1000 7L
                for c in 0 .. 2 do
                    let restricted = TimestepDensity.restrict p (threeClusters.Start c) (threeClusters.End c)
                    let statistic, dof = chiSquare restricted counts.[c]
                    Expect.isLessThan statistic (ChiSquared.InvCDF(float dof, 0.999)) (sprintf "%s, cluster %d: chi2 %.1f, dof %d" spec c statistic dof)
        }

        test "the chi-square check detects draws from another density" {
            let drawn = DensityTimesteps.Parse("uniform", linear100)
            let counts = clusterHistograms drawn (ClusterPlan.Single 100) 100 500 3L
            let statistic, dof = chiSquare (TimestepDensity.pmf TimestepDensity.defaultLogitNormal linear100) counts.[0]
            Expect.isGreaterThan statistic (ChiSquared.InvCDF(float dof, 0.999)) "uniform draws are not logit-normal"
        }

        test "draws are a function of the generator's state: same seed same draws, restored state same continuation" {
            let sampler = DensityTimesteps.Parse("speed", linear100)
            let run (generator: torch.Generator) n = [ for _ in 1 .. n -> use d = sampler.Sample(32, threeClusters, generator, torch.CPU) in longs d.Timesteps ]
            use a = new torch.Generator(42UL)
            use b = new torch.Generator(42UL)
            use other = new torch.Generator(43UL)
            Expect.equal (run a 5) (run b 5) "same seed"
            Expect.notEqual (run other 1) (run (new torch.Generator(42UL)) 1) "another seed"
            use state = a.get_state()
            let continued = run a 3
            use resumed = new torch.Generator(1UL)
            resumed.set_state(state) |> ignore
            Expect.equal (run resumed 3) continued "resumed from the saved state"
        }

        test "importance weights are 1 / (T_c p(t|c)): each cluster's weighted mean of f is its uniform mean" {
            let sampler = DensityTimesteps.Parse("logit-normal:0.5,1.5", linear100, importanceWeighted = true)
            let p = sampler.Probabilities
            let w = sampler.ImportanceWeightTable threeClusters
            let f t = 1.0 + sin (float t / 7.0)
            for c in 0 .. 2 do
                let start, stop = threeClusters.Start c, threeClusters.End c
                let r = TimestepDensity.restrict p start stop
                let weighted = Array.init (stop - start) (fun i -> r.[i] * w.[start + i] * f (start + i)) |> Array.sum
                let uniform = Array.init (stop - start) (fun i -> f (start + i)) |> Array.average
                Expect.floatClose Accuracy.high weighted uniform (sprintf "cluster %d" c)
            Array.iter2 (fun a b -> Expect.floatClose Accuracy.veryHigh a b "one cluster: Core's weights")
                (sampler.ImportanceWeightTable(ClusterPlan.Single 100)) (TimestepDensity.importanceWeights p)
            use ts = torch.tensor([| 0L; 50L; 99L |])
            use tensorWeights = sampler.ImportanceWeights(ts, threeClusters)
            Expect.equal (tensorWeights.data<float>().ToArray()) [| w.[0]; w.[50]; w.[99] |] "per drawn timestep, float64"
            let uniform = DensityTimesteps.Parse("uniform", linear100)
            Expect.isTrue (uniform.ImportanceWeightTable threeClusters |> Array.forall (fun x -> abs (x - 1.0) < 1e-12)) "uniform needs none"
        }

        test "names, checkpoints and bad input" {
            let sampler = DensityTimesteps.Parse("beta:1.5,1", linear100, importanceWeighted = true)
            Expect.equal sampler.Name "density:beta:1.5,1+unbiased" "name carries the spec"
            use stream = new MemoryStream()
            using (new BinaryWriter(stream, System.Text.Encoding.UTF8, true)) (fun w -> sampler.Save w)
            stream.Position <- 0L
            using (new BinaryReader(stream, System.Text.Encoding.UTF8, true)) (fun r -> sampler.Load r)
            stream.Position <- 0L
            let other = DensityTimesteps.Parse("beta:1.5,1", linear100)
            Expect.throwsT<BadInputException> (fun () -> using (new BinaryReader(stream)) (fun r -> other.Load r)) "another sampler's checkpoint"
            let bad f what = Expect.throwsT<BadInputException> (fun () -> f () |> ignore) what
            bad (fun () -> DensityTimesteps.Parse("gamma", linear100)) "unknown density"
            bad (fun () -> DensityTimesteps.Parse("beta:0,1", linear100)) "a = 0"
            let narrow = Schedule.create Linear 1000
            bad (fun () -> DensityTimesteps.Parse("logit-normal:0,0.05", narrow, importanceWeighted = true)) "zero-mass timesteps cannot be reweighted"
            let unweighted = DensityTimesteps.Parse("logit-normal:0,0.05", narrow)
            use g = new torch.Generator(1UL)
            bad (fun () -> unweighted.Sample(8, ClusterPlan.Create(1000, [| 0; 10; 1000 |], "t"), g, torch.CPU)) "a cluster without mass"
            bad (fun () -> sampler.Sample(8, ClusterPlan.Single 50, g, torch.CPU)) "plan of another T"
        }
    ]
