// Would two single-threaded workers, each taking half the batch, beat libtorch's two intra-op threads on one batch?
// The `small` UNet's forward + backward at batch 64 (28x28), three ways, interleaved round by round with libtorch's
// 1024^2 GEMM at 1 and 2 threads; medians. The halves run on two threads of our own, each with one libtorch thread,
// and take their gradients with autograd.grad (so the shared parameters' .grad is never written by both); the two
// gradient sets are then summed, as a data-parallel trainer would. See docs/benchmarks-history.md, "What was tried,
// kept or not".
// Build first (dotnet build src/Cli -c Release), then, from the repository root:
//   LD_LIBRARY_PATH=src/Cli/bin/Release/net10.0/runtimes/linux-x64/native dotnet fsi bench/scripts/bench-data-parallel.fsx ROUNDS
#load "bench-torch.fsx"
open System.Threading
open TorchSharp
open DiffusionFunctional.Models

let rounds = int fsi.CommandLineArgs.[1]
torch.random.manual_seed 0L |> ignore
let config = UNetConfig.Named "small"
let model = new UNet(config)
let parameters = [| for p in model.parameters() -> p :> torch.Tensor |]
let batch = 64L
let x = torch.randn([| batch; 1L; 28L; 28L |])
let t = torch.randint(0L, 1000L, [| batch |], dtype = torch.int64)

let wholeBatch threads () =
    torch.set_num_threads threads
    use scope = torch.NewDisposeScope()
    model.forward(x, t).square().mean().backward()

/// One worker's half: its own thread, one libtorch thread (OpenMP's thread count is per calling thread).
let halfGradients (half: int) (into: torch.Tensor[][]) () =
    torch.set_num_threads 1
    use scope = torch.NewDisposeScope()
    let rows = batch / 2L
    let loss = model.forward(x.narrow(0, int64 half * rows, rows), t.narrow(0, int64 half * rows, rows)).square().mean() * 0.5
    into.[half] <- [| for g in torch.autograd.grad([| loss |], parameters) -> g.MoveToOuterDisposeScope() |]

let twoHalves () =
    let gradients: torch.Tensor[][] = Array.zeroCreate 2
    let workers = [| for half in 0 .. 1 -> Thread(ThreadStart(halfGradients half gradients), 256 * 1024 * 1024) |]
    for w in workers do w.Start()
    for w in workers do w.Join()
    for i in 0 .. parameters.Length - 1 do
        use sum = gradients.[0].[i].add gradients.[1].[i]
        ()
    for set in gradients do for g in set do g.Dispose()

let a = torch.randn(1024L, 1024L)
let gemm threads () = torch.set_num_threads threads; (for _ in 1 .. 3 do use y = a.matmul a in ())
let measured =
    [ for _ in 0 .. rounds -> [| timed (gemm 1) / 3.0; timed (gemm 2) / 3.0; timed (wholeBatch 1); timed (wholeBatch 2); timed twoHalves |] ]
    |> List.tail // the first round warms up
let median i = BenchTorch.median [ for row in measured -> row.[i] ]
let gemm1, gemm2, one, two, halves = median 0, median 1, median 2, median 3, median 4
let gemmRate = gemmGflops 1024L
let modelRate = trainingGflops config batch
printfn "%d rounds (medians): GEMM %.1f GFLOP/s at 1 thread, %.1f at 2" rounds (gemmRate gemm1) (gemmRate gemm2)
printfn "forward+backward, batch 64: 1 thread %.0f ms (%.2f of GEMM); 2 threads %.0f ms (%.2f of GEMM); two 1-thread halves %.0f ms (%.2f of GEMM)"
    one (modelRate one / gemmRate gemm1) two (modelRate two / gemmRate gemm2) halves (modelRate halves / gemmRate gemm2)
printfn "halves against 2 threads: %.2fx the speed" (two / halves)
