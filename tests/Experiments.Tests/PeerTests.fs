/// The PyTorch peer of `dfn bench throughput --peer` (bench/peer/train_peer.py, Debian's python3-torch) against our
/// library, through the files the benchmark writes: its forward check passes on our output and fails when one weight
/// of the network is off; one step on the same batch from the same weights gives our weights and EMA (AdamW with weight decay
/// and learning-rate warm-up, clipping, EMA warm-up, eps-MSE loss); and a Python without torch is refused as bad
/// input naming bench/peer/install.sh. The first two are skipped, with the reason, where /usr/bin/python3 lacks torch.
module DiffusionFunctional.Experiments.Tests.PeerTests

open System
open System.Diagnostics
open System.IO
open System.Text.Json
open Expecto
open TorchSharp
open DiffusionFunctional
open DiffusionFunctional.Data
open DiffusionFunctional.Diffusion
open DiffusionFunctional.Interop
open DiffusionFunctional.Models
open DiffusionFunctional.Training
open DiffusionFunctional.Experiments.Bench
open DiffusionFunctional.Api.Tests.TestSupport

let private torchAvailable = lazy (not (isNull (PeerProcess.TorchVersion PeerBenchmark.DefaultPython)))

let private requireTorch () =
    if not torchAvailable.Value then
        skiptest (sprintf "no PyTorch: %s cannot import torch and numpy (bench/peer/install.sh)" PeerBenchmark.DefaultPython)

/// Runs train_peer.py (written into `dir` from the embedded copy) with arguments; returns exit code, stdout, stderr.
let private runPeer (dir: string) (args: string list) =
    runProcess 300 PeerBenchmark.DefaultPython (Path.Combine(dir, "train_peer.py") :: args)

let private json (text: string) = JsonDocument.Parse(text.Trim()).RootElement

/// Our weights under diffusers' names (the names the peer's module uses).
let private diffusersState (model: Denoiser) =
    use ours = StateDict.Of model
    DiffusersKeyMap.ToDiffusers ours

[<Tests>]
let tests =
    testSequenced <| testList "PyTorch peer" [
        test "the peer's forward check passes on our output (1e-5 x max(1, max|y|)) and fails when one weight is off" {
            requireTorch ()
            oneThread ()
            let dir, clean = tempDir "peer-check"
            use _ = clean
            PeerBenchmark.WriteScripts dir
            let export, file = Path.Combine(dir, "net"), Path.Combine(dir, "check.pt")
            PeerBenchmark.WriteCheck(UNetConfig.Named "small", GaussianDiffusion.Create(), export, file)
            let code, out, err = runPeer dir [ "--weights"; export; "--check"; file ]
            Expect.equal code 0 (sprintf "the check passes (stdout %s, stderr %s)" out err)
            let report = json out
            let diff, largest = report.GetProperty("max_abs_diff").GetDouble(), report.GetProperty("max_abs_output").GetDouble()
            Expect.isGreaterThan largest 0.1 "our output is not trivially zero"
            Expect.isLessThanOrEqual diff (1e-5 * max 1.0 largest) (sprintf "max |peer - ours| = %g" diff)
            // The same input and output, but one output bias of the exported network moved by 20 times the bound.
            let weights = Path.Combine(export, WeightsExport.SafetensorsName)
            use stored = SafetensorsFile.Read weights
            use bias = stored.["conv_out.bias"].view(-1L).narrow(0L, 0L, 1L)
            bias.add_((20e-5 * max 1.0 largest).ToScalar()) |> ignore
            SafetensorsFile.Write(weights, stored)
            let code2, out2, _ = runPeer dir [ "--weights"; export; "--check"; file ]
            Expect.equal code2 1 (sprintf "the check fails (%s)" out2)
            Expect.isFalse ((json out2).GetProperty("passed").GetBoolean()) "passed is false"
        }

        test "one step on the same batch from the same weights gives our weights and EMA (AdamW, decay, lr warm-up, clip, EMA warm-up)" {
            requireTorch ()
            oneThread ()
            let dir, clean = tempDir "peer-step"
            use _ = clean
            PeerBenchmark.WriteScripts dir
            let config = UNetConfig.Named "small"
            torch.manual_seed 3L |> ignore
            use images = torch.rand(12L, int64 config.ImageChannels, int64 config.ImageSize, int64 config.ImageSize) * 2.0f - 1.0f
            use data = new ImageDataset(images.alias(), "synthetic")
            let options = TrainerOptions(BatchSize = 4, Steps = 10, Seed = 5L, LearningRate = 1e-2, WeightDecay = 0.01, WarmupSteps = 2,
                                         GradientClipNorm = Nullable 1.0, CheckpointEvery = 0, SampleCount = 0)
            use trainer = Trainer.Create(config, GaussianDiffusion.Create(), data, options)
            let export = Path.Combine(dir, "export")
            WeightsExport.WriteDiffusers(trainer.Model, trainer.Diffusion, export) |> ignore
            // The batch the trainer draws next (Trainer.Loop.cs): images in the data stream's order, then the timesteps
            // and the noise from the run's generator, seeded with the run's seed.
            let order = DataStream(data, 5L).NextIndices 4
            use index = torch.tensor order
            use x0 = images.index_select(0L, index)
            use generator = new torch.Generator(5UL)
            use t = torch.randint(0L, 1000L, [| 4L |], dtype = torch.int64, generator = generator)
            use noise = torch.randn(x0.shape, dtype = torch.float32, generator = generator)
            let batch = Path.Combine(dir, "batch.pt")
            PeerBenchmark.WriteTensors(batch, [ struct ("x0", x0); struct ("t", t); struct ("noise", noise) ])
            let ours = trainer.TrainStep()
            let after = Path.Combine(dir, "after.pt")
            let code, out, err =
                runPeer dir [ "--weights"; export; "--replay"; batch; "--out"; after; "--batch"; "4"; "--lr"; "0.01"; "--weight-decay"; "0.01"
                              "--lr-warmup"; "2"; "--clip"; "1"; "--ema-decay"; string options.EmaDecay; "--threads"; "1" ]
            Expect.equal code 0 (sprintf "the replay runs (stderr %s)" err)
            let loss = (json out).GetProperty("loss").GetDouble()
            Expect.floatClose { absolute = 0.0; relative = 1e-5 } loss ours.MeanLoss "the same loss on the same batch"
            use theirs = TorchFile.Read after
            use live = diffusersState trainer.Model
            use ema = diffusersState trainer.Ema.Model
            let mutable worst, moved = 0.0, 0.0
            for KeyValue(key, value) in live do
                let diffLive, diffEma = maxAbsDiff value theirs.[$"live.{key}"], maxAbsDiff ema.[key] theirs.[$"ema.{key}"]
                Expect.isLessThanOrEqual diffLive 1e-6 (sprintf "live %s" key)
                Expect.isLessThanOrEqual diffEma 1e-6 (sprintf "EMA %s" key)
                worst <- max worst (max diffLive diffEma)
                moved <- max moved (maxAbsDiff value ema.[key])
            eprintfn "one step, ours against the peer: max |diff| %.3g over weights and EMA; max |live - EMA| %.3g" worst moved
            Expect.isGreaterThan moved 1e-4 "the weights moved, and the EMA (decay 0.1 at the first step) differs from them"
        }

        test "a Python that cannot import torch is bad input naming bench/peer/install.sh" {
            let options = ThroughputOptions(Model = "tiny", BatchSize = 2, TrainSteps = 1, WarmupSteps = 0, SampleBatch = 1, SampleSteps = 1)
            for python in [ "/nonexistent/python3"; "/bin/false" ] do
                try
                    PeerBenchmark.Run(options, [ SpeedVariant("fp32", false, 1) ], 1, null, python) |> ignore
                    failtestf "%s was accepted" python
                with :? BadInputException as e ->
                    Expect.stringContains e.Message "bench/peer/install.sh" "names the install script"
                    Expect.stringContains e.Message python "names the interpreter"
        }
    ]
