// Where a training step's time goes beyond the GEMM-like work: the `small` UNet's forward + backward against the same
// network's 43 convolutions alone and its 27 GroupNorm + SiLU pairs alone, at their real shapes (batch 64), interleaved
// round by round with libtorch's 1024^2 GEMM; medians. See docs/benchmarks.md, "Where the gap to GEMM goes".
// Build first (dotnet build src/Cli -c Release), then, from the repository root (the library path is needed on Debian 12,
// whose libstdc++ needs the build's patched libLibTorchSharp.so, see build/TorchSharpNativeFix.targets):
//   LD_LIBRARY_PATH=src/Cli/bin/Release/net10.0/runtimes/linux-x64/native dotnet fsi bench/scripts/bench-training-gap.fsx THREADS fp32|bf16 ROUNDS
#load "bench-torch.fsx"
open TorchSharp
open DiffusionFunctional.Models

let args = fsi.CommandLineArgs |> Array.skip 1
let threads, dtype, rounds = int args.[0], (if args.[1] = "bf16" then torch.bfloat16 else torch.float32), int args.[2]
torch.set_num_threads threads
torch.random.manual_seed 0L |> ignore
let config = UNetConfig.Named "small"
let model = new UNet(config)
if dtype = torch.bfloat16 then model.bfloat16() |> ignore
let batch = 64L
let sizes = [| 28L; 14L; 7L |]
let levels = sizes.Length

/// The feature-map side a layer named like "up_blocks.1.resnets.0.conv1" works at, and its stride.
let placement (name: string) =
    let parts = name.Split '.'
    match parts.[0] with
    | "conv_in" | "conv_out" | "conv_norm_out" -> sizes.[0], 1L
    | "mid_block" -> sizes.[levels - 1], 1L
    | "down_blocks" -> sizes.[int parts.[1]], (if parts.[2] = "downsampler" then 2L else 1L)
    | "up_blocks" ->
        let level = levels - 1 - int parts.[1]
        (if parts.[2] = "upsampler" then sizes.[level - 1] else sizes.[level]), 1L
    | other -> failwithf "unplaced layer %s" other

let backward (y: torch.Tensor) = y.backward([| torch.ones_like y |])
let layers = [ for struct (name, m) in model.named_modules() -> name, m ]

let convolutions =
    [ for name, m in layers do
        match m with
        | :? TorchSharp.Modules.Conv2d as conv ->
            let size, stride = placement name
            let w = conv.weight.shape
            let x = torch.randn([| batch; w.[1]; size; size |], dtype = dtype)
            let weight = torch.randn(w, dtype = dtype)
            let pad = w.[2] / 2L
            yield fun () ->
                use input = x.detach().requires_grad_(name <> "conv_in")
                use wr = weight.detach().requires_grad_(true)
                backward (torch.nn.functional.conv2d(input, wr, null, strides = [| stride; stride |], padding = [| pad; pad |], dilation = [| 1L; 1L |]))
        | _ -> () ]

let norms =
    [ for name, m in layers do
        match m with
        | :? TorchSharp.Modules.GroupNorm as norm ->
            let size, _ = placement name
            let channels = norm.weight.shape.[0]
            let x = torch.randn([| batch; channels; size; size |], dtype = dtype)
            yield fun () ->
                use input = x.detach().requires_grad_(true)
                backward (torch.nn.functional.silu(torch.nn.functional.group_norm(input, min 32L channels, norm.weight.detach(), norm.bias.detach(), 1e-5)))
        | _ -> () ]

let x = torch.randn([| batch; 1L; 28L; 28L |], dtype = dtype)
let t = torch.randint(0L, 1000L, [| batch |], dtype = torch.int64)
let wholeModel () =
    use scope = torch.NewDisposeScope()
    backward (model.forward(x, t))
let a = torch.randn(1024L, 1024L, dtype = dtype)
let gemm () = use y = a.matmul a in ()
let all fs () = for f in fs do f ()

let measured =
    [ for _ in 0 .. rounds -> timed wholeModel, timed (all convolutions), timed (all norms), List.min [ for _ in 1 .. 3 -> timed gemm ] ]
    |> List.tail // the first round warms up
let m = median [ for w, _, _, _ in measured -> w ]
let c = median [ for _, c, _, _ in measured -> c ]
let n = median [ for _, _, n, _ in measured -> n ]
let g = median [ for _, _, _, g in measured -> g ]
let gemmRate = gemmGflops 1024L g
let modelRate, convolutionRate = trainingGflops config batch m, trainingGflops config batch c
printfn "threads %d %A, %d rounds (medians): whole model forward+backward %.0f ms; its %d convolutions alone %.0f ms (%.0f%%); its %d GroupNorm+SiLU alone %.0f ms (%.0f%%); the rest %.0f ms (%.0f%%)"
    threads dtype rounds m convolutions.Length c (100.0 * c / m) norms.Length n (100.0 * n / m) (m - c - n) (100.0 * (m - c - n) / m)
printfn "GEMM %.1f GFLOP/s; the model %.1f GFLOP/s (%.2f of GEMM); its convolutions alone %.1f GFLOP/s (%.2f of GEMM)"
    gemmRate modelRate (modelRate / gemmRate) convolutionRate (convolutionRate / gemmRate)
