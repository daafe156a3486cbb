// How the sampler's network call scales with the number of images per call on the CPU: a 200-image forward of the
// `small` UNet at a given image size, run whole and in slices, timed (mean of 5 per round) and compared with the whole
// call's output. What `Samplers.CpuPixelsPerCall` rests on; see docs/benchmarks.md, "Sampling speed".
// Build first (dotnet build src/Cli -c Release), then, from the repository root:
//   LD_LIBRARY_PATH=src/Cli/bin/Release/net10.0/runtimes/linux-x64/native dotnet fsi bench/scripts/bench-sampling-slices.fsx SIZE THREADS ROUNDS
#load "bench-torch.fsx"
open System.Diagnostics
open TorchSharp
open DiffusionFunctional.Models

let args = fsi.CommandLineArgs |> Array.skip 1
let size, threads, rounds = int64 args.[0], int args.[1], int args.[2]
torch.set_num_threads threads
torch.random.manual_seed 0L |> ignore
let model = new UNet(UNetConfig.Named("small", imageSize = int size))
model.eval() |> ignore
let images = 200L
let x = torch.randn(images, 1L, size, size)
let t = torch.full(images, 500L, dtype = torch.int64)

let forwardInSlices (perCall: int64) =
    use _ = torch.no_grad()
    let slices = [ for start in 0L .. perCall .. images - 1L -> model.forward(x.narrow(0, start, min perCall (images - start)), t.narrow(0, start, min perCall (images - start))) ]
    torch.cat(ResizeArray slices, 0L)

let whole = forwardInSlices images
for round in 1 .. rounds do
    for perCall in [ 200L; 128L; 100L; 64L; 50L; 40L; 25L ] do
        let clock = Stopwatch.StartNew()
        let mutable y = null
        for _ in 1 .. 5 do y <- forwardInSlices perCall
        let ms = clock.Elapsed.TotalMilliseconds / 5.0
        let difference = (y - whole).abs().max().item<float32>()
        printfn "round %d, %3d images per call: %6.1f ms per 200-image forward, max |difference to one call| %g" round perCall ms difference
