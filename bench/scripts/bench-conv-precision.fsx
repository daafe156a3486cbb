// A ResNet-18-shaped stack of convolutions (random weights, batch 8 at 224x224, one thread) through libtorch in float32
// and in bfloat16: could a libtorch feature path halve the ResNet-18 cost that OnnxRuntime runs at 37-38 CPU-ms per image?
// Build first; from the repository root:
//   LD_LIBRARY_PATH=src/Cli/bin/Release/net10.0/runtimes/linux-x64/native dotnet fsi bench/scripts/bench-conv-precision.fsx
// The PyTorch peer (channels-last, bf16 autocast): /usr/bin/python3 bench/peer/conv_precision.py
#load "bench-torch.fsx"
open BenchTorch
open TorchSharp
open type TorchSharp.torch
DiffusionFunctional.Backend.ConvolutionKernels.Ensure()
torch.set_num_threads 1
let rnd (s: int64[]) = torch.randn(s) * 0.05f
let convs =
  [ yield (3L, 64L, 7L, 2L)
    for (cin, cout, stride) in [ (64L,64L,1L);(64L,64L,1L);(64L,128L,2L);(128L,128L,1L);(128L,256L,2L);(256L,256L,1L);(256L,512L,2L);(512L,512L,1L) ] do
      yield (cin, cout, 3L, stride); yield (cout, cout, 3L, 1L) ]
let weights (dt: torch.ScalarType) = convs |> List.map (fun (ci, co, k, s) -> (rnd [| co; ci; k; k |]).``to``(dt), (rnd [| co |]).``to``(dt), k, s)
let forward (ws: (Tensor * Tensor * int64 * int64) list) (x: Tensor) =
  use scope = torch.NewDisposeScope()
  let mutable y = x
  for (w, b, k, s) in ws do
    y <- torch.nn.functional.relu(torch.nn.functional.conv2d(y, w, b, [| s; s |], [| k / 2L; k / 2L |], [| 1L; 1L |], 1L))
  y.mean([| 2L; 3L |]).``to``(torch.float32).MoveToOuterDisposeScope()
let x = torch.randn([| 8L; 3L; 224L; 224L |])
let w32 = weights torch.float32
let w16 = weights torch.bfloat16
let xb = x.``to``(torch.bfloat16)
let _noGrad = torch.no_grad()
for r in 1 .. 3 do
  forward w32 x |> ignore; forward w16 xb |> ignore
  let a = BenchTorch.median [ for _ in 1 .. 3 -> timed (fun () -> (forward w32 x).Dispose()) ] / 8.0
  let b = BenchTorch.median [ for _ in 1 .. 3 -> timed (fun () -> (forward w16 xb).Dispose()) ] / 8.0
  printfn "fp32 %.1f ms/img  bf16 %.1f ms/img  ratio %.2f" a b (a / b)
