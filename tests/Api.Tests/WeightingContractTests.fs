/// The IWeighting contract for every registered method on a tiny UNet: names, no optimiser step inside Backward,
/// EMA updated by the loop for every method, checkpoint round trips; and the divergence guard.
module DiffusionFunctional.Api.Tests.WeightingContractTests

open Expecto
open TorchSharp
open DiffusionFunctional.Timesteps
open DiffusionFunctional
open DiffusionFunctional.Core
open DiffusionFunctional.Data
open DiffusionFunctional.Training
open DiffusionFunctional.Weighting
open DiffusionFunctional.Api.Tests.TestSupport
open DiffusionFunctional.Api.Tests.WeightingSupport

let private diffusion60 = Diffusion.GaussianDiffusion.Create("linear", 60)
let private equalThirds = ClusterPlan.Create(60, [| 0; 20; 40; 60 |], "equal k=3")

/// The trainer on a tiny UNet: blob images, T = 60, three equal clusters, batch 6, EMA 0.5 (so one step moves it).
let private trainerFor name (seed: int64) lr =
    let data = SyntheticImages.Blobs(16, 8, seed + 100L)
    torch.manual_seed seed |> ignore
    new Trainer(new Models.UNet(tinyConfig), diffusion60, data,
                TrainerOptions(Weighting = name, Plan = equalThirds, BatchSize = 6, LearningRate = lr, Seed = seed, EmaDecay = 0.5,
                               SampleCount = 0, Threads = System.Nullable 1))

let private snapshot (m: torch.nn.Module) = [| for p in m.parameters() -> p.detach().clone() |]

let private maxChange (before: torch.Tensor[]) (m: torch.nn.Module) =
    Seq.zip before (m.parameters()) |> Seq.map (fun (a, b) -> maxAbsDiff a b) |> Seq.max

/// A fixed batch for the trainer's model (seeded), drawn with the method's own sampler when it has one.
let private nextBatch (h: Trainer) (w: IWeighting) =
    use gen = new torch.Generator(7UL)
    let sampler : ITimestepDistribution = match w with :? IWeightingWithTimesteps as s -> s.Timesteps | _ -> StratifiedTimesteps()
    let draw = sampler.Sample(6, h.Plan, gen, torch.CPU)
    let x0 = SyntheticImages.Blobs(6, 8, gen)
    let noise = torch.randn(x0.shape, generator = gen)
    let snr = torch.tensor(diffusion60.Schedule.Snr, dtype = torch.float64).index_select(0L, draw.Timesteps)
    WeightingBatch(diffusion60.PerSampleLoss(h.Model, x0, draw.Timesteps, noise), draw.Timesteps, draw.Clusters, h.Plan, 3L, snr)

let private methodTests (name: string) =
    testList name [
        test "Backward leaves finite gradients and changes neither model nor EMA; the loop's step then moves both (EMA updated for every method)" {
            oneThread ()
            use h = trainerFor name 1L 1e-3
            h.TrainStep() |> ignore
            let model0 = snapshot h.Model
            let ema0 = snapshot h.Ema.Model
            // Backward alone: finite, non-zero gradients; no optimiser step, no EMA update.
            let ps = h.Model.parameters() |> Seq.toArray
            zeroGrads ps
            h.Weighting.Backward(nextBatch h h.Weighting, ps) |> ignore
            let grad = flatGrad ps
            Expect.isTrue (grad.isfinite().all().item<bool>()) "finite gradients"
            Expect.isGreaterThan (grad.norm().item<float>()) 0.0 "non-zero gradients"
            Expect.equal (maxChange model0 h.Model) 0.0 "Backward did not change the model"
            Expect.equal (maxChange ema0 h.Ema.Model) 0.0 "Backward did not touch the EMA"
            let m = h.TrainStep()
            Expect.isTrue (System.Double.IsFinite m.Loss) "finite loss"
            Expect.isGreaterThan (maxChange model0 h.Model) 0.0 "the optimiser step moved the model"
            Expect.isGreaterThan (maxChange ema0 h.Ema.Model) 0.0 "the EMA moved"
        }

        test "state survives a checkpoint round trip: a restored copy computes the same next update and state" {
            oneThread ()
            use h = trainerFor name 2L 1e-3
            for _ in 1 .. 3 do h.TrainStep() |> ignore
            let bytes = saveBytes h.Weighting
            use restored = WeightingRegistry.Create(name, 3, seed = 99L)
            load restored bytes
            Expect.sequenceEqual (saveBytes restored) bytes "saved state is identical after load"
            let ps = h.Model.parameters() |> Seq.toArray
            let batchFor (w: IWeighting) = nextBatch h w
            let run (w: IWeighting) =
                zeroGrads ps
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
            for name in WeightingRegistry.Names do
                use w = WeightingRegistry.Create(name, 3)
                Expect.equal w.Name name "name round-trips"
            Expect.throwsT<BadInputException> (fun () -> WeightingRegistry.Create("nashmtl-typo", 3) |> ignore) "unknown name"
            Expect.containsAll WeightingRegistry.Names [ "vanilla"; "min-snr"; "p2"; "edm2-uncertainty"; "importance"; "uw"; "famo"; "pcgrad"; "nash"; "imtl"; "cagrad"; "mgda" ] "issue 5's methods"
        }

        test "state of one method does not load into another" {
            use uw = WeightingRegistry.Create("uw", 3)
            use famo = WeightingRegistry.Create("famo", 3)
            Expect.throwsT<BadInputException> (fun () -> load famo (saveBytes uw)) "mismatched state"
        }

        testList "every method" [ for name in WeightingRegistry.Names -> methodTests name ]

        test "divergence guard: flags NaN/inf and a jump over the running median, not ordinary noise" {
            let g = DivergenceGuard(jumpFactor = 10.0, window = 20, minimumHistory = 5)
            for i in 0 .. 29 do
                Expect.isNull (g.Observe(int64 i, 1.0 + 0.3 * sin (float i))) "noise is fine"
            Expect.isNotNull (g.Observe(30L, 11.0)) "11x the median trips it"
            Expect.isNotNull (DivergenceGuard().Observe(0L, nan)) "NaN"
            Expect.isNotNull (DivergenceGuard().Observe(0L, infinity)) "inf"
            Expect.equal g.Diverged.Step 30L "first divergence kept"
        }

        test "divergence guard: its window survives Save/Load (so a resumed run judges jumps as the original would)" {
            let g = DivergenceGuard(jumpFactor = 10.0, window = 20, minimumHistory = 10)
            for i in 0 .. 11 do g.Observe(int64 i, 1.0) |> ignore
            use buffer = new System.IO.MemoryStream()
            use writer = new System.IO.BinaryWriter(buffer)
            g.Save writer
            writer.Flush()
            buffer.Position <- 0L
            let restored = DivergenceGuard(jumpFactor = 10.0, window = 20, minimumHistory = 10)
            restored.Load(new System.IO.BinaryReader(buffer))
            Expect.equal restored.RunningMedian 1.0 "same median"
            Expect.isNotNull (restored.Observe(12L, 11.0)) "a jump trips the restored guard at once"
            Expect.isNull (DivergenceGuard(jumpFactor = 10.0, window = 20, minimumHistory = 10).Observe(12L, 11.0)) "a fresh guard would not have judged it"
        }

        test "the trainer's guard stops a tiny model at an absurd learning rate before the bad update, and not at a sane one" {
            oneThread ()
            use data = SyntheticImages.Blobs(16, 8, 3L)
            let run lr =
                torch.manual_seed 3L |> ignore
                use t = new Trainer(new Models.UNet(tinyConfig), Diffusion.GaussianDiffusion.Create("linear", 100), data,
                                    TrainerOptions(Steps = 40, BatchSize = 8, LearningRate = lr, GradientClipNorm = System.Nullable(), Seed = 3L,
                                                   SampleCount = 0, Threads = System.Nullable 1))
                let outcome = t.Train()
                outcome, t.Step, t.Divergence
            let outcome, steps, divergence = run 5.0
            Expect.equal outcome TrainingOutcome.Diverged "lr 5 diverges"
            Expect.isNotNull divergence "the divergence is reported"
            Expect.equal divergence.Step (steps + 1L) "it names the step that was refused, one after the last completed"
            Expect.isLessThan steps 40L "the run stopped at the divergence"
            let outcome, steps, divergence = run 1e-3
            Expect.equal outcome TrainingOutcome.Completed "lr 1e-3 does not"
            Expect.isNull divergence "no divergence"
            Expect.equal steps 40L "and runs to the end"
        }

        test "the guard watches the plain loss, not the method's objective (UW's may be negative or change scale)" {
            oneThread ()
            // The objective jumps a thousandfold and turns negative from step 15 on; the data and the model do not.
            let inner = new VanillaWeighting() :> IWeighting
            let jumping =
                { new IWeighting with
                    member _.Name = "vanilla"
                    member _.ExtraParameterGroups = inner.ExtraParameterGroups
                    member _.Backward(batch, ps) = let l = inner.Backward(batch, ps) in if batch.Step >= 14L then -1000.0 * l else l
                    member _.Save w = ()
                    member _.Load r = ()
                    member _.Dispose() = () }
            use data = SyntheticImages.Blobs(16, 8, 104L)
            torch.manual_seed 4L |> ignore
            use t = new Trainer(new Models.UNet(tinyConfig), diffusion60, data,
                                TrainerOptions(Plan = equalThirds, BatchSize = 6, LearningRate = 1e-3, Seed = 4L, SampleCount = 0,
                                               DivergenceFactor = System.Nullable 5.0, Threads = System.Nullable 1), jumping)
            let metrics = [ for _ in 1 .. 30 -> t.TrainStep() ]
            Expect.isLessThan (metrics |> List.last).Loss -10.0 "the objective jumped and went negative"
            for m in metrics do
                Expect.isGreaterThan m.MeanLoss 0.0 "the plain loss is the positive batch mean"
                Expect.floatClose Accuracy.medium m.MeanLoss (Array.average m.ClusterLosses) "and equals the mean of the (equal-size) cluster losses"
            Expect.isNull t.Divergence "no divergence reported"
        }
    ]
