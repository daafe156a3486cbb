/// Checkpoints written before settings were keyed by method (release 1.1) still resume: their identity recorded every
/// method's settings as one JSON object, which the reader maps to the stored method's own settings.
module DiffusionFunctional.Cli.Tests.CheckpointCompatibilityTests

open System.IO
open System.Text.Json.Nodes
open DiffusionFunctional.Cli.Tests.Dfn
open DiffusionFunctional.Cli.Tests.BadInputSupport
open Expecto

/// The weighting settings exactly as release 1.1 wrote them into a checkpoint's identity (its WeightingOptions record
/// serialised with System.Text.Json, seed and prediction cleared), with Min-SNR's gamma given.
let private legacySettings (gamma: float) =
    sprintf """{"Seed":0,"MinSnrGamma":%g,"VPrediction":false,"P2K":1,"P2Gamma":1,"UncertaintyLearningRate":0.025,"NashSolveEvery":25,"CagradC":0.5}""" gamma

[<Tests>]
let tests =
    testList "checkpoint compatibility" [
        test "a 1.1 checkpoint of a Min-SNR run resumes; with another gamma it is refused naming the setting" {
            let dir = tempFolder "legacy"
            let idxPath = Path.Combine(dir, "d-idx3-ubyte")
            writeIdx idxPath 40 8
            let out = Path.Combine(dir, "run")
            let train steps extra = run (trainArgs ("idx:" + idxPath) out [ "--weighting", "min-snr"; "--steps", steps ] extra)
            Expect.equal (train "3" []).ExitCode 0 "a run"
            let checkpoint = Path.Combine(out, "checkpoint.dfn")
            let asLegacy gamma = rebuildCheckpoint checkpoint checkpoint (fun h -> h.["identity"].["weighting_settings"] <- JsonValue.Create(legacySettings gamma)) id
            asLegacy 5.0
            let resumed = train "5" [ "--resume" ]
            Expect.equal resumed.ExitCode 0 (sprintf "the 1.1 identity resumes: %s" resumed.Stderr)
            Expect.stringContains resumed.Stderr "at step 3" "from its step"
            asLegacy 3.0
            expectOneLine 2 [ "weighting settings"; "gamma=3"; "gamma=5" ] "a 1.1 checkpoint trained with gamma 3" (train "7" [ "--resume" ])
            Directory.Delete(dir, true)
        }

        test "a checkpoint written before backbones had kinds resumes and samples as a UNet; a DiT does not take it over" {
            let dir = tempFolder "no-kind"
            let idxPath = Path.Combine(dir, "d-idx3-ubyte")
            writeIdx idxPath 40 8
            let out = Path.Combine(dir, "run")
            let train steps extra = run (trainArgs ("idx:" + idxPath) out [ "--steps", steps ] extra)
            Expect.equal (train "3" []).ExitCode 0 "a run"
            let checkpoint = Path.Combine(out, "checkpoint.dfn")
            rebuildCheckpoint checkpoint checkpoint (fun h ->
                h.["model"].AsObject().Remove("Kind") |> ignore
                h.["identity"].AsObject().Remove("model Kind") |> ignore) id
            let resumed = train "5" [ "--resume" ]
            Expect.equal resumed.ExitCode 0 (sprintf "the header without a kind resumes: %s" resumed.Stderr)
            let sampled = run [ "sample"; "--checkpoint"; out; "--count"; "2"; "--sampler-steps"; "2"; "--out"; Path.Combine(dir, "grid.png") ]
            Expect.equal sampled.ExitCode 0 (sprintf "and samples: %s" sampled.Stderr)
            let dit = run (trainArgs ("idx:" + idxPath) out [ "--steps", "7"; "--model", "dit-mini" ] [ "--resume" ])
            Expect.equal dit.ExitCode 2 (sprintf "a DiT is refused: %s" dit.Stderr)
            Expect.stringContains dit.Stderr "Kind" "naming the backbone"
            Directory.Delete(dir, true)
        }
    ]
