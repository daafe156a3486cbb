/// Routing, timestep densities and weightings combine in the one trainer; mismatches are refused before any change.
module DiffusionFunctional.Api.Tests.TrainerCombinationTests

open System
open System.IO
open Expecto
open TorchSharp
open DiffusionFunctional
open DiffusionFunctional.Core
open DiffusionFunctional.Diffusion
open DiffusionFunctional.Models
open DiffusionFunctional.Training
open DiffusionFunctional.Api.Tests.TestSupport
open DiffusionFunctional.Api.Tests.TrainingTests

let private routedTiny timesteps = (UNetConfig.Named "tiny").WithRouting("dtr", timesteps = timesteps)

[<Tests>]
let tests =
    testList "Trainer combinations" [
        test "uw on log-SNR clusters with DTR routing and a beta density trains, and its draws follow the density" {
            oneThread ()
            use data = syntheticBars ()
            let plan = ClusterPlan.Create(100, [| 0; 30; 100 |], "test")
            let options = TrainerOptions(Steps = 6, BatchSize = 8, LearningRate = 1e-3, Seed = 3L, Threads = Nullable 1, SampleCount = 0,
                                         Plan = plan, Weighting = "uw", TimestepDensity = "beta:5,1")
            use trainer = Trainer.Create(routedTiny 100, GaussianDiffusion.Create("linear", 100), data, options)
            Expect.equal trainer.TimestepDistribution.Name "density:beta:5,1" "the density samples"
            let losses = ResizeArray<float>()
            Expect.equal (trainer.Train(progress = InlineProgress<StepMetrics>(fun m -> losses.Add m.MeanLoss))) TrainingOutcome.Completed "completed"
            Expect.isTrue (losses |> Seq.forall Double.IsFinite) "finite losses"
            use draw = trainer.TimestepDistribution.Sample(4000, plan, new torch.Generator(1UL), torch.CPU)
            let ts = draw.Timesteps.data<int64>().ToArray()
            let late = ts |> Array.filter (fun t -> t >= 30L)
            // Beta(5, 1) puts its mass near t = T: inside [30, 100) the upper half must hold most draws.
            Expect.isGreaterThan (float (late |> Array.filter (fun t -> t >= 65L) |> Array.length) / float late.Length) 0.8 "mass near T"
        }

        test "routing for another T, a density with the importance weighting, and an unknown density are refused" {
            oneThread ()
            use data = syntheticBars ()
            let base' = TrainerOptions(Steps = 2, BatchSize = 8, Threads = Nullable 1, SampleCount = 0)
            Expect.throwsT<BadInputException> (fun () -> Trainer.Create(routedTiny 1000, GaussianDiffusion.Create("linear", 100), data, base') |> ignore) "T mismatch"
            let both = TrainerOptions(Steps = 2, BatchSize = 8, Threads = Nullable 1, SampleCount = 0, Weighting = "importance", TimestepDensity = "speed")
            Expect.throwsT<BadInputException> (fun () -> Trainer.Create(UNetConfig.Named "tiny", GaussianDiffusion.Create(), data, both) |> ignore) "two samplers"
            let unknown = TrainerOptions(Steps = 2, BatchSize = 8, Threads = Nullable 1, SampleCount = 0, TimestepDensity = "gamma")
            Expect.throwsT<BadInputException> (fun () -> Trainer.Create(UNetConfig.Named "tiny", GaussianDiffusion.Create(), data, unknown) |> ignore) "unknown density"
        }

        test "resuming with another density or routing is refused and leaves the trainer as it was" {
            oneThread ()
            use data = syntheticBars ()
            let dir, clean = tempDir "combination"
            use _ = clean
            let options density = TrainerOptions(Steps = 4, BatchSize = 8, Seed = 2L, Threads = Nullable 1, SampleCount = 0, OutputDirectory = dir, TimestepDensity = density)
            do
                use first = Trainer.Create(UNetConfig.Named "tiny", GaussianDiffusion.Create(), data, options "speed")
                first.TrainUntil 2L |> ignore
            for config, density, mention in [ UNetConfig.Named "tiny" :> DenoiserConfig, "logit-normal", "timestep sampler"; routedTiny 1000, "speed", "Routing" ] do
                use other = Trainer.Create(config, GaussianDiffusion.Create(), data, options density)
                let e = Expect.throwsC (fun () -> other.TryResume() |> ignore) id
                Expect.stringContains e.Message mention "names the setting"
                Expect.equal other.Step 0L "nothing loaded"
        }
    ]
