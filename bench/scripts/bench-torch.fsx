// What the libtorch benchmark scripts in bench/scripts/ load first (#load "bench-torch.fsx"): the Release build's assemblies
// and OpenMP's wait settings as dfn sets them, which must happen before libtorch loads, then the timing helpers the
// scripts share. Build first (dotnet build src/Cli -c Release); run the scripts from the repository root with the
// library path given in each.
[<AutoOpen>]
module BenchTorch
#I "../../src/Cli/bin/Release/net10.0"
#r "Google.Protobuf.dll"
#r "TorchSharp.dll"
#r "DiffusionFunctional.Core.dll"
#r "DiffusionFunctional.dll"

DiffusionFunctional.Backend.NativeThreading.Configure() |> ignore

/// Wall-clock milliseconds of one call (on the CPU every libtorch operation has finished when its call returns).
let timed (f: unit -> unit) =
    let clock = System.Diagnostics.Stopwatch.StartNew()
    f ()
    clock.Elapsed.TotalMilliseconds

let median (xs: float list) = let sorted = List.sort xs in List.item (sorted.Length / 2) sorted

/// GFLOP/s of an n x n by n x n matrix product that took `ms`.
let gemmGflops (n: int64) ms = 2.0 * float n ** 3.0 / ms / 1e6

/// GFLOP/s of a training step (forward + backward: 3x the analytic forward FLOPs) over `batch` images that took `ms`.
let trainingGflops config (batch: int64) ms = 3.0 * DiffusionFunctional.Models.UNetFlops.ForwardPerImage config * float batch / ms / 1e6
