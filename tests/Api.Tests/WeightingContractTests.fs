/// The IWeighting contract for every registered method on a tiny UNet: names, no optimiser step inside Backward,
/// EMA updated by the loop for every method, checkpoint round trips; and the divergence guard.
module DiffusionFunctional.Api.Tests.WeightingContractTests

open Expecto
open TorchSharp
open DiffusionFunctional
open DiffusionFunctional.Training
open DiffusionFunctional.Weighting
open DiffusionFunctional.Api.Tests.TestSupport
open DiffusionFunctional.Api.Tests.WeightingSupport

let private harness name seed lr =
    new WeightingHarness(HarnessOptions(Weighting = name, Clusters = 3, Timesteps = 60, BatchSize = 6, Steps = 4,
                                        LearningRate = lr, Seed = seed, DataCount = 16, EmaDecay = 0.5))

let private snapshot (m: torch.nn.Module) = [| for p in m.parameters() -> p.detach().clone() |]

let private maxChange (before: torch.Tensor[]) (m: torch.nn.Module) =
    Seq.zip before (m.parameters()) |> Seq.map (fun (a, b) -> maxAbsDiff a b) |> Seq.max

let private methodTests (name: string) =
    testList name [
        test "a training step with it moves the model and the EMA (the loop updates the EMA for every method)" {
            oneThread ()
            use h = harness name 1L 1e-3
            h.Step() |> ignore
            let model0 = snapshot h.Model
            let ema0 = snapshot h.Ema.Model
            let struct (loss, _) = h.Step()
            Expect.isTrue (System.Double.IsFinite loss) "finite loss"
            Expect.isGreaterThan (maxChange model0 h.Model) 0.0 "the optimiser step moved the model"
            Expect.isGreaterThan (maxChange ema0 h.Ema.Model) 0.0 "the EMA moved"
        }

        test "state survives a checkpoint round trip: a restored copy computes the same next update and state" {
            oneThread ()
            use h = harness name 2L 1e-3
            for _ in 1 .. 3 do h.Step() |> ignore
            let bytes = saveBytes h.Weighting
            use restored = Weightings.Create(name, 3, WeightingOptions(Seed = 99L))
            load restored bytes
            Expect.sequenceEqual (saveBytes restored) bytes "saved state is identical after load"
            // Same next batch for both: the harness's own weighting, then the restored one.
            let ps = h.Model.parameters() |> Seq.toArray
            let batchFor (w: IWeighting) =
                use gen = new torch.Generator(7UL)
                let sampler : ITimestepSampler = match w with :? IWeightingWithSampler as s -> s.Sampler | _ -> StratifiedTimestepSampler()
                let draw = sampler.Sample(6, h.Plan, gen, torch.CPU)
                let x0 = WeightingHarness.SyntheticBlobs(6, 8, gen)
                let noise = torch.randn(x0.shape, generator = gen)
                let diffusion = Diffusion.GaussianDiffusion.Create("linear", 60)
                let snr = torch.tensor(diffusion.Schedule.Snr, dtype = torch.float64).index_select(0L, draw.Timesteps)
                WeightingBatch(diffusion.PerSampleLoss(h.Model, x0, draw.Timesteps, noise), draw.Timesteps, draw.Clusters, h.Plan, 3L, snr)
            let run (w: IWeighting) =
                for p in ps do (if not (isNull p.grad) then p.grad.zero_() |> ignore)
                let loss = w.Backward(batchFor w, ps)
                loss, flatGrad ps
            let lossA, gradA = run h.Weighting
            let lossB, gradB = run restored
            Expect.equal lossB lossA "same logged loss"
            Expect.isLessThan (relativeError gradB gradA) 1e-6 "same update"
            Expect.sequenceEqual (saveBytes restored) (saveBytes h.Weighting) "same state after the step"
        }
    ]

[<Tests>]
let tests =
    testList "Weighting contract" [
        test "every registered name builds a method of that name; unknown names are bad input" {
            for name in Weightings.Names do
                use w = Weightings.Create(name, 3)
                Expect.equal w.Name name "name round-trips"
            Expect.throwsT<BadInputException> (fun () -> Weightings.Create("nashmtl-typo", 3) |> ignore) "unknown name"
            Expect.containsAll Weightings.Names [ "vanilla"; "min-snr"; "p2"; "edm2-uncertainty"; "importance"; "uw"; "famo"; "pcgrad"; "nash"; "imtl"; "cagrad"; "mgda" ] "issue 5's methods"
        }

        test "state of one method does not load into another" {
            use uw = Weightings.Create("uw", 3)
            use famo = Weightings.Create("famo", 3)
            Expect.throwsT<BadInputException> (fun () -> load famo (saveBytes uw)) "mismatched state"
        }

        testList "every method" [ for name in Weightings.Names -> methodTests name ]

        test "divergence guard: flags NaN/inf and a jump over the running median, not ordinary noise" {
            let g = DivergenceGuard(jumpFactor = 10.0, window = 20, minimumHistory = 5)
            for i in 0 .. 29 do
                Expect.isNull (g.Observe(int64 i, 1.0 + 0.3 * sin (float i))) "noise is fine"
            Expect.isNotNull (g.Observe(30L, 11.0)) "11x the median trips it"
            Expect.isNotNull (DivergenceGuard().Observe(0L, nan)) "NaN"
            Expect.isNotNull (DivergenceGuard().Observe(0L, infinity)) "inf"
            Expect.equal g.Diverged.Step 30L "first divergence kept"
        }

        test "divergence guard triggers on a tiny model trained at an absurd learning rate, and not at a sane one" {
            oneThread ()
            let run lr =
                use h = new WeightingHarness(HarnessOptions(Weighting = "vanilla", Clusters = 1, Timesteps = 100, BatchSize = 8, Steps = 40,
                                                            LearningRate = lr, GradientClipNorm = System.Nullable(), Seed = 3L, DataCount = 16))
                h.Run()
            let bad = run 5.0
            Expect.isNotNull bad.Divergence "lr 5 diverges"
            Expect.isLessThan bad.StepsRun 40 "the run stopped at the divergence"
            let good = run 1e-3
            Expect.isNull good.Divergence "lr 1e-3 does not"
            Expect.equal good.StepsRun 40 "and runs to the end"
        }
    ]
