/// The weighting registry (issue 27): one place holds each method's facts, a method defined outside the library
/// registers itself and trains through the trainer like a built-in one, and a checkpoint's identity holds only the
/// chosen method's settings.
module DiffusionFunctional.Api.Tests.WeightingRegistryTests

open System
open System.IO
open Expecto
open TorchSharp
open TorchSharp.Modules
open DiffusionFunctional
open DiffusionFunctional.Diffusion
open DiffusionFunctional.Training
open DiffusionFunctional.Weighting
open DiffusionFunctional.Api.Tests.TestSupport

/// A method the library does not know: the mean loss scaled by a setting of its own.
type ScaledWeighting(scale: float) =
    member _.Scale = scale
    interface IWeighting with
        member _.Name = "scaled"
        member _.ExtraParameterGroups = [||] :> _
        member _.Backward(batch, _) =
            use loss = batch.PerSampleLoss.mean() * scale
            loss.backward()
            float (loss.item<float32>())
        member _.Save _ = ()
        member _.Load _ = ()
        member _.Dispose() = ()

let private scaled =
    WeightingDescriptor("scaled", WeightingKind.Loss, false, "the mean loss times a factor (a test's own method)",
        [| WeightingSetting("factor", null, 0.5, "the factor", Func<float, string>(WeightingSetting.Positive)) |],
        Func<WeightingContext, IWeighting>(fun c -> new ScaledWeighting(c.Setting "factor") :> IWeighting))

let private syntheticData () = DiffusionFunctional.Data.SyntheticImages.Blobs(32, 8, 3L)

[<Tests>]
let tests =
    testList "weighting registry" [
        test "every built-in method is registered with its kind, clusters and settings, and builds under its name" {
            for d in WeightingRegistry.All |> Seq.filter (fun d -> d.Name <> "scaled") do
                use w = WeightingRegistry.Create(d.Name, 3)
                Expect.equal w.Name d.Name "name"
                Expect.isNotEmpty d.Description "a description for the help"
            let needs = WeightingRegistry.All |> Seq.filter (fun d -> d.NeedsClusters) |> Seq.map (fun d -> d.Name) |> Set.ofSeq
            Expect.equal needs (set [ "uw"; "uw-bounded"; "famo"; "pcgrad"; "nash"; "imtl"; "cagrad"; "mgda" ]) "the methods that balance clusters"
            Expect.equal (WeightingRegistry.Get "nash").Kind WeightingKind.AmortisedGradient "Nash re-solves every N steps"
            Expect.equal [ for s in (WeightingRegistry.Get "min-snr").Settings -> s.Key, s.Option, s.Default ] [ "gamma", "--snr-gamma", 5.0 ] "Min-SNR's gamma"
        }
        test "a setting the method's check refuses is bad input naming its option; a built-in name cannot be taken again" {
            Expect.throwsT<BadInputException> (fun () -> WeightingRegistry.Create("nash", 3, WeightingSettings.Defaults.With("nash", "every", 0.0)) |> ignore) "every 0"
            let message = try WeightingRegistry.Create("cagrad", 3, WeightingSettings.Defaults.With("cagrad", "c", 1.5)) |> ignore; "" with :? BadInputException as e -> e.Message
            Expect.stringContains message "--cagrad-c" "names the option"
            Expect.throwsT<ArgumentException> (fun () -> WeightingRegistry.Register(WeightingDescriptor("uw", WeightingKind.Loss, false, "x", [||], Func<_, _>(fun _ -> new VanillaWeighting() :> IWeighting)))) "uw is built in"
        }
        test "a method defined here registers itself and trains through the trainer; its checkpoint identity holds its own setting" {
            WeightingRegistry.Register scaled
            Expect.contains WeightingRegistry.Names "scaled" "registered"
            oneThread ()
            use data = syntheticData ()
            let dir, clean = tempDir "registry"
            use _ = clean
            let options factor =
                TrainerOptions(Steps = 3, BatchSize = 8, Seed = 1L, Threads = Nullable 1, CheckpointEvery = 0, SampleCount = 0, OutputDirectory = dir,
                               Weighting = "scaled", WeightingSettings = WeightingSettings.Defaults.With("scaled", "factor", factor))
            do
                use trainer = Trainer.Create(tinyConfig, GaussianDiffusion.Create(), data, options 0.25)
                Expect.equal (trainer.Weighting :?> ScaledWeighting).Scale 0.25 "the factor reached the method"
                Expect.equal (trainer.TrainUntil 3L) TrainingOutcome.Completed "trained"
                Expect.equal ((TrainingIdentity.Of trainer).["weighting_settings"].GetValue<string>()) "factor=0.25" "only its own setting"
            use other = Trainer.Create(tinyConfig, GaussianDiffusion.Create(), data, options 0.5)
            let message = try other.TryResume() |> ignore; "" with :? BadInputException as e -> e.Message
            Expect.stringContains message "factor=0.25" "another factor is another run"
        }
        test "another method's settings are not part of a run's identity" {
            oneThread ()
            use data = syntheticData ()
            let identity settings =
                use t = Trainer.Create(tinyConfig, GaussianDiffusion.Create(), data, TrainerOptions(Steps = 1, BatchSize = 8, Weighting = "uw", WeightingSettings = settings))
                (TrainingIdentity.Of t).["weighting_settings"].GetValue<string>()
            Expect.equal (identity (WeightingSettings.Defaults.With("min-snr", "gamma", 3.0))) (identity WeightingSettings.Defaults) "Min-SNR's gamma does not touch UW"
            Expect.equal (identity WeightingSettings.Defaults) "lr=0.025" "UW's own"
        }
    ]
