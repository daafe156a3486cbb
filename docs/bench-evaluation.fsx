#r "/work/wt/eval/src/Cli/bin/Release/net10.0/DiffusionFunctional.dll"
#r "/work/wt/eval/src/Cli/bin/Release/net10.0/DiffusionFunctional.Core.dll"
#r "/work/wt/eval/src/Cli/bin/Release/net10.0/MathNet.Numerics.dll"
#r "/work/wt/eval/src/Cli/bin/Release/net10.0/Microsoft.ML.OnnxRuntime.dll"
#r "/work/wt/eval/src/Cli/bin/Release/net10.0/TorchSharp.dll"
#r "/work/wt/eval/src/Cli/bin/Release/net10.0/SkiaSharp.dll"
open System
open System.Diagnostics
open DiffusionFunctional.Evaluation
open DiffusionFunctional.Core
let proc = Process.GetCurrentProcess()
let measure name n (f: unit -> unit) =
    proc.Refresh()
    let cpu0 = proc.TotalProcessorTime
    let sw = Stopwatch.StartNew()
    f ()
    proc.Refresh()
    let cpu = (proc.TotalProcessorTime - cpu0).TotalMilliseconds
    printfn "%s: wall %.1f ms/image, CPU %.1f ms/image (n = %d)" name (sw.Elapsed.TotalMilliseconds / float n) (cpu / float n) n
let images = ImageFolderLoader.Load("/tmp/evaldata/real", Nullable 64)
let args = fsi.CommandLineArgs
for workers, threads in (if args.Length > 1 then [] else [ 1, 1; 2, 1; 1, 2 ]) do
    use ex = new ResNet18Extractor(ResNet18Options(ModelDirectory = "/work/wt/eval/src/Cli/bin/Release/net10.0/DnnImageModels", Workers = workers, ThreadsPerWorker = threads))
    ex.Extract(images.Take 2) |> ignore
    measure (sprintf "ResNet-18 workers %d threads %d" workers threads) 64 (fun () -> ex.Extract images |> ignore)
let rnd = Random(0)
for n in [ 500; 2000 ] do
    let a = Array2D.init n 512 (fun _ _ -> rnd.NextDouble())
    let b = Array2D.init n 512 (fun _ _ -> rnd.NextDouble())
    let timed name f =
        proc.Refresh()
        let cpu0 = proc.TotalProcessorTime
        let sw = Stopwatch.StartNew()
        f ()
        proc.Refresh()
        printfn "%s: wall %.2f s, CPU %.2f s" name sw.Elapsed.TotalSeconds (proc.TotalProcessorTime - cpu0).TotalSeconds
    timed (sprintf "FD on two %d x 512 feature sets (fit both + trace term)" n) (fun () -> FrechetDistance.ofFeatures a b |> ignore)
    timed (sprintf "precision/recall k = 3 on %d vs %d x 512" n n) (fun () -> PrecisionRecall.compute 3 a b |> ignore)
