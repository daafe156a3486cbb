/// Every registered weighting through the real Trainer: a few steps each, finite losses.
module DiffusionFunctional.Api.Tests.TrainerWeightingTests

open System
open Expecto
open DiffusionFunctional.Core
open DiffusionFunctional.Diffusion
open DiffusionFunctional.Training
open DiffusionFunctional.Weighting
open DiffusionFunctional.Api.Tests.TestSupport
open DiffusionFunctional.Api.Tests.TrainingTests

[<Tests>]
let tests =
    testList "Trainer with every weighting" [
        test "each registered method trains 3 steps with k = 3 clusters; importance draws with its own sampler" {
            oneThread ()
            let plan = ClusterPlan.Create(1000, [| 0; 300; 600; 1000 |], "test k=3")
            use data = syntheticBars ()
            for name in WeightingRegistry.Names do
                let opts = TrainerOptions(Steps = 3, BatchSize = 6, LearningRate = 1e-3, Seed = 2L, Threads = Nullable 1,
                                          CheckpointEvery = 0, SampleCount = 0, Plan = plan, Weighting = name)
                use trainer = Trainer.Create(tinyConfig, GaussianDiffusion.Create(), data, opts)
                for _ in 1 .. 3 do
                    let m = trainer.TrainStep()
                    Expect.isTrue (Double.IsFinite m.Loss) (sprintf "%s: finite loss" name)
                    Expect.equal m.ClusterLosses.Length 3 (sprintf "%s: k cluster losses" name)
                match trainer.Weighting with
                | :? IWeightingWithTimesteps as owner ->
                    Expect.isTrue (obj.ReferenceEquals(trainer.TimestepDistribution, owner.Timesteps)) (sprintf "%s: the trainer uses the method's sampler" name)
                | _ -> Expect.equal trainer.TimestepDistribution.Name "stratified" (sprintf "%s: stratified sampling" name)
        }
    ]
