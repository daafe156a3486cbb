/// The demo's loop creates and disposes a trainer, an EMA and samplers at every evaluation point: nothing may pile up.
module DiffusionFunctional.Experiments.Tests.MemoryTests

open System
open System.IO
open Expecto
open TorchSharp
open DiffusionFunctional
open DiffusionFunctional.Models
open DiffusionFunctional.Experiments.Demo
open DiffusionFunctional.Api.Tests.TestSupport

/// An IDX image file (the MNIST format) of n random 16x16 grey images.
let private writeIdx (path: string) (n: int) =
    let random = Random(3)
    use w = new BinaryWriter(File.Create path)
    let bigEndian (v: int) = w.Write(BitConverter.GetBytes(Net.IPAddress.HostToNetworkOrder v))
    bigEndian 0x00000803
    bigEndian n
    bigEndian 16
    bigEndian 16
    for _ in 1 .. n * 256 do w.Write(byte (random.Next 256))

[<Tests>]
let tests =
    testList "Memory" [
        test "the live tensor count stays flat over 20 evaluation points of a demo-shaped run" {
            oneThread ()
            let dir, clean = tempDir "demo-memory"
            use _ = clean
            let idx = Path.Combine(dir, "images-idx3-ubyte")
            writeIdx idx 96
            let profile =
                DemoProfile(Name = "memory", Model = (DemoProfile.Named "smoke").Model, Steps = 20, EvaluationSteps = [| 1 .. 20 |],
                            EvaluationSamples = 4, RealSamples = 8, HeldOutImages = 8, TrainImages = Nullable 64, BatchSize = 8,
                            WarmupSteps = 2, CheckpointEvery = 0, SamplerSteps = 2, GridSamples = 4)
            let options = DemoOptions(Profile = profile, Methods = DemoMethod.ParseList "vanilla", OutputDirectory = Path.Combine(dir, "out"),
                                      Data = "idx:" + idx, Threads = 1, EvaluationWorkers = 1, Timesteps = 100)
            let counts = Collections.Generic.List<int64>()
            let progress = InlineProgress<WorkProgress>(fun p -> if p.Stage = "sample" then counts.Add DisposeScopeManager.Statistics.ThreadTotalLiveCount)
            let outcome, _ = DemoRunner(options).Run(progress = progress).ToTuple()
            Expect.equal outcome DemoOutcome.Completed "completed"
            Expect.equal counts.Count 20 "20 evaluation points"
            // The first points warm caches up (the real set, the feature network); from the third on nothing may grow.
            let steady = counts |> Seq.skip 2 |> Seq.toList
            Expect.equal (List.max steady) (List.min steady) (sprintf "live tensors at each evaluation point: %A" (List.ofSeq counts))
        }
    ]
