// How copy bandwidth scales from one libtorch thread to two, by buffer size: near the two 1 MB L2 caches, inside the
// shared 32 MB L3, and out to memory. A training step's activations for batch 64 are far larger than the L3, so
// its memory-bound work scales like the last rows. See docs/benchmarks.md, "Where the gap to GEMM goes".
// Build first (dotnet build src/Cli -c Release), then, from the repository root:
//   LD_LIBRARY_PATH=src/Cli/bin/Release/net10.0/runtimes/linux-x64/native dotnet fsi bench/scripts/bench-memory-bandwidth.fsx
#load "bench-torch.fsx"
open TorchSharp

for megabytes in [ 4L; 16L; 64L; 512L ] do
    use source = torch.randn(megabytes * 1024L * 1024L / 4L)
    use target = torch.empty_like source
    let copies = int (2048L / megabytes)
    let copyAll () = for _ in 1 .. copies do target.copy_ source |> ignore
    for threads in [ 1; 2 ] do
        torch.set_num_threads threads
        copyAll () // warm-up: pages touched, threads started
        let ms = List.min [ for _ in 1 .. 3 -> timed copyAll / float copies ]
        printfn "%4d MB copy, %d thread(s): %.1f GB/s read + write" megabytes threads (2.0 * float megabytes / 1024.0 / (ms / 1000.0))
