// The `small` UNet's forward + backward for batch 64 (28x28) taken whole or as micro-batches whose gradients
// accumulate (the same gradient up to rounding: GroupNorm is per image), interleaved round by round with libtorch's
// 1024^2 GEMM; medians. Smaller micro-batches keep less of the step's activations alive at once.
// See docs/benchmarks-history.md, "What was tried, kept or not". Build first (dotnet build src/Cli -c Release), then,
// from the repository root:
//   LD_LIBRARY_PATH=src/Cli/bin/Release/net10.0/runtimes/linux-x64/native dotnet fsi bench/scripts/bench-micro-batches.fsx ROUNDS THREADS
#load "bench-torch.fsx"
open TorchSharp
open DiffusionFunctional.Models

let rounds, threads = int fsi.CommandLineArgs.[1], int fsi.CommandLineArgs.[2]
torch.set_num_threads threads
torch.random.manual_seed 0L |> ignore
let config = UNetConfig.Named "small"
let model = new UNet(config)
let batch = 64L
let x = torch.randn([| batch; 1L; 28L; 28L |])
let t = torch.randint(0L, 1000L, [| batch |], dtype = torch.int64)

let accumulatedStep (micro: int64) () =
    model.zero_grad()
    for first in 0L .. micro .. batch - 1L do
        use scope = torch.NewDisposeScope()
        let loss = model.forward(x.narrow(0, first, micro), t.narrow(0, first, micro)).square().mean()
        (loss * (float micro / float batch)).backward()

let a = torch.randn(1024L, 1024L)
let gemm () = for _ in 1 .. 3 do use y = a.matmul a in ()
let microBatches = [ 64L; 32L; 16L; 8L ]
let measured = [ for _ in 0 .. rounds -> timed gemm / 3.0 :: [ for m in microBatches -> timed (accumulatedStep m) ] ] |> List.tail
let median i = BenchTorch.median [ for row in measured -> List.item i row ]
let gemmRate = gemmGflops 1024L (median 0)
for i, micro in List.indexed microBatches do
    let ms = median (i + 1)
    printfn "%d thread(s), micro-batch %d: %.0f ms, %.2f of GEMM (%.1f GFLOP/s)" threads micro ms (trainingGflops config batch ms / gemmRate) gemmRate
