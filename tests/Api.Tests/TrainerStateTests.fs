/// What a trainer's state does when something goes wrong: a rejected step advances nothing, a refused checkpoint
/// changes nothing, and analyses that load many checkpoints free every one of them.
module DiffusionFunctional.Api.Tests.TrainerStateTests

open System
open System.IO
open Expecto
open TorchSharp
open DiffusionFunctional
open DiffusionFunctional.Analysis
open DiffusionFunctional.Core
open DiffusionFunctional.Diffusion
open DiffusionFunctional.Models
open DiffusionFunctional.Training
open DiffusionFunctional.Weighting
open DiffusionFunctional.Api.Tests.TestSupport
open DiffusionFunctional.Api.Tests.TrainingTests

/// FAMO (whose logits and Adam moments move inside Backward) that reports a NaN loss from a given step on, after
/// having advanced its state: the trainer must undo that advance.
type private FamoThenNaN(clusters: int, from: int64) =
    let inner = new FamoWeighting(clusters)
    interface IWeighting with
        member _.Name = "famo"
        member _.ExtraParameterGroups = (inner :> IWeighting).ExtraParameterGroups
        member _.Backward(batch, ps) =
            let loss = (inner :> IWeighting).Backward(batch, ps)
            if batch.Step + 1L >= from then nan else loss
        member _.Save w = (inner :> IWeighting).Save w
        member _.Load r = (inner :> IWeighting).Load r
        member _.Dispose() = (inner :> IWeighting).Dispose()

let private sha (path: string) = Convert.ToHexString(Security.Cryptography.SHA256.HashData(File.ReadAllBytes path))

[<Tests>]
let tests =
    testList "Trainer state" [
        test "a rejected step leaves data position, generators, weighting, sampler and guard exactly at the last good step" {
            oneThread ()
            use data = syntheticBars ()
            let dir, clean = tempDir "rollback"
            use _ = clean
            let plan = ClusterPlan.Create(1000, [| 0; 400; 1000 |], "test")
            let options = Opts.Make(steps = 20, plan = plan, checkpointEvery = 0)
            use trainer = new Trainer(new UNet(tinyConfig), GaussianDiffusion.Create(), data, options, new FamoThenNaN(2, 6L))
            for _ in 1 .. 5 do trainer.TrainStep() |> ignore
            let before = Path.Combine(dir, "before.dfn")
            trainer.SaveCheckpoint before
            let e = Expect.throwsC (fun () -> trainer.TrainStep() |> ignore) id
            Expect.isTrue (e :? TrainingDivergedException) "the step is rejected"
            let after = Path.Combine(dir, "after.dfn")
            trainer.SaveCheckpoint after
            Expect.equal trainer.Step 5L "still at step 5"
            Expect.equal (sha after) (sha before) "every byte of the state (weights, optimiser, FAMO, sampler, RNGs, data position, guard) is as before the step"
        }

        test "a checkpoint of another run is refused before anything changes, whatever setting differs" {
            oneThread ()
            use data = syntheticBars ()
            let dir, clean = tempDir "refuse"
            use _ = clean
            // Min-SNR, so that its own setting is part of the identity (another method's settings are not).
            let options (settings: WeightingSettings) lr =
                TrainerOptions(Steps = 4, BatchSize = 8, LearningRate = lr, Seed = 5L, Threads = Nullable 1, CheckpointEvery = 0, SampleCount = 0,
                               OutputDirectory = dir, Weighting = "min-snr", WeightingSettings = settings)
            let baseOptions = options WeightingSettings.Defaults 1e-3
            do
                use first = Trainer.Create(tinyConfig, GaussianDiffusion.Create(), data, baseOptions)
                first.TrainUntil 3L |> ignore
            let variants =
                [ "prediction", (fun () -> Trainer.Create(tinyConfig, GaussianDiffusion.Create("linear", 1000, PredictionType.V), data, baseOptions))
                  "schedule", (fun () -> Trainer.Create(tinyConfig, GaussianDiffusion.Create("squaredcos_cap_v2", 1000), data, baseOptions))
                  "weighting settings", (fun () -> Trainer.Create(tinyConfig, GaussianDiffusion.Create(), data, options (WeightingSettings.Defaults.With("min-snr", "gamma", 3.0)) 1e-3))
                  "learning rate", (fun () -> Trainer.Create(tinyConfig, GaussianDiffusion.Create(), data, options WeightingSettings.Defaults 5e-3)) ]
            for name, build in variants do
                use other = build ()
                let weights = [ for p in other.Model.parameters() -> floats p ]
                let e = Expect.throwsC (fun () -> other.TryResume() |> ignore) id
                Expect.isTrue (e :? BadInputException) (sprintf "%s: bad input" name)
                Expect.stringContains e.Message name (sprintf "the message names %s" name)
                Expect.equal other.Step 0L (sprintf "%s: step unchanged" name)
                Expect.equal [ for p in other.Model.parameters() -> floats p ] weights (sprintf "%s: weights unchanged" name)
        }

        test "task affinity over 10 checkpoints frees every model it loads" {
            oneThread ()
            use data = syntheticBars ()
            let dir, clean = tempDir "affinity-memory"
            use _ = clean
            let paths =
                use trainer = Trainer.Create(tinyConfig, GaussianDiffusion.Create("linear", 40), data, TrainerOptions(Steps = 10, BatchSize = 8, Threads = Nullable 1, SampleCount = 0))
                [ for i in 1 .. 10 ->
                    trainer.TrainStep() |> ignore
                    let path = Path.Combine(dir, sprintf "checkpoint-%02d.dfn" i)
                    trainer.SaveCheckpoint path
                    path ]
            use images = data.Images.narrow(0L, 0L, 8L)
            let diffusion = GaussianDiffusion.Create("linear", 40)
            let loaders () = [ for p in paths -> Func<torch.nn.Module<torch.Tensor, torch.Tensor, torch.Tensor>>(fun () -> (CheckpointModel.Load p).Model :> _) ]
            TaskAffinityAnalysis.MeasureAveraged(loaders (), diffusion, images, TaskAffinityOptions(Groups = 4)) |> ignore // warm-up allocations
            let before = DisposeScopeManager.Statistics.ThreadTotalLiveCount
            let counts = Collections.Generic.List<int64>()
            TaskAffinityAnalysis.MeasureAveraged(loaders (), diffusion, images, TaskAffinityOptions(Groups = 4),
                Action<int>(fun _ -> counts.Add DisposeScopeManager.Statistics.ThreadTotalLiveCount)) |> ignore
            Expect.equal counts.Count 10 "ten checkpoints measured"
            Expect.equal (Seq.max counts) (Seq.min counts) (sprintf "live tensors flat across checkpoints: %A" counts)
            Expect.equal DisposeScopeManager.Statistics.ThreadTotalLiveCount before "nothing left behind"
        }
    ]
