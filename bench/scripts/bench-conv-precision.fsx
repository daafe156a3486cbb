// A ResNet-18-shaped stack of convolutions (random weights, batch 8 at 224x224, one thread) through libtorch in float32
// and in bfloat16 (NCHW and channels-last): could a libtorch feature path halve the ResNet-18 cost that OnnxRuntime runs at 37-38 CPU-ms per image?
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
// Channels-last by strides (TorchSharp 0.107 has no memory-format argument): a contiguous NHWC (OHWI) tensor permuted
// to NCHW (OIHW); libtorch's convolutions keep that layout in their outputs, as PyTorch's channels_last does.
let channelsLast (t: Tensor) = t.permute([| 0L; 2L; 3L; 1L |]).contiguous().permute([| 0L; 3L; 1L; 2L |])
let x = torch.randn([| 8L; 3L; 224L; 224L |])
let w32 = weights torch.float32
let w16 = weights torch.bfloat16
let xb = x.``to``(torch.bfloat16)
let w16cl = w16 |> List.map (fun (w, b, k, s) -> channelsLast w, b, k, s)
let xbcl = channelsLast xb
let _noGrad = torch.no_grad()
// CPU time of this process (one libtorch thread), so that a figure taken beside other work still means something.
let cpuMs (f: unit -> unit) =
  let self = System.Diagnostics.Process.GetCurrentProcess()
  let before = self.TotalProcessorTime
  f ()
  self.Refresh()
  (self.TotalProcessorTime - before).TotalMilliseconds
for r in 1 .. 3 do
  let perImage ws input = BenchTorch.median [ for _ in 1 .. 3 -> cpuMs (fun () -> (forward ws input).Dispose()) ] / 8.0
  let a, b, c = perImage w32 x, perImage w16 xb, perImage w16cl xbcl
  printfn "CPU ms/img: fp32 %.1f  bf16 %.1f  bf16 channels-last %.1f  (fp32 / bf16 channels-last %.2f)" a b c (a / c)
