// Times ResNet-18 feature extraction and the evaluation maths. Build first (dotnet build src/Cli -c Release), then:
//   dotnet fsi bench/scripts/bench-evaluation.fsx FOLDER_OF_PNGS [--maths-only]   (with --maths-only the folder is not read)
// Prints wall and process CPU time; see docs/benchmarks.md, "Evaluation".
#I "../../src/Cli/bin/Release/net10.0"
#r "DiffusionFunctional.dll"
#r "DiffusionFunctional.Core.dll"
#r "MathNet.Numerics.dll"
#r "Microsoft.ML.OnnxRuntime.dll"
#r "TorchSharp.dll"
#r "SkiaSharp.dll"
open System
open System.Diagnostics
open System.IO
open DiffusionFunctional.Evaluation
open DiffusionFunctional.Core

let binDirectory = Path.Combine(__SOURCE_DIRECTORY__, "../../src/Cli/bin/Release/net10.0")

let proc = Process.GetCurrentProcess()
let timed (name: string) (count: int) (f: unit -> unit) =
    proc.Refresh()
    let cpu0 = proc.TotalProcessorTime
    let sw = Stopwatch.StartNew()
    f ()
    proc.Refresh()
    let cpu = (proc.TotalProcessorTime - cpu0).TotalMilliseconds
    if count > 1 then printfn "%s: wall %.1f ms/image, CPU %.1f ms/image (n = %d)" name (sw.Elapsed.TotalMilliseconds / float count) (cpu / float count) count
    else printfn "%s: wall %.2f s, CPU %.2f s" name sw.Elapsed.TotalSeconds (cpu / 1000.0)

let args = fsi.CommandLineArgs |> Array.skip 1
let modelDirectory = Path.Combine(binDirectory, "DnnImageModels")
if not (Array.contains "--maths-only" args) then
    let images, _ = ImageFolderLoader.Load(args.[0], Nullable 64).ToTuple()
    for workers, threads in [ 1, 1; 2, 1; 1, 2 ] do
        use extractor = new ResNet18Extractor(ResNet18Options(modelDirectory, workers, threads))
        extractor.Extract(images.Take 2) |> ignore
        timed (sprintf "ResNet-18 workers %d threads %d" workers threads) images.Count (fun () -> extractor.Extract images |> ignore)

let random = Random(0)
for n in [ 500; 2000 ] do
    let a = Array2D.init n 512 (fun _ _ -> random.NextDouble())
    let b = Array2D.init n 512 (fun _ _ -> random.NextDouble())
    timed (sprintf "FD on two %d x 512 feature sets (fit both + trace term)" n) 1 (fun () -> FrechetDistance.ofFeatures a b |> ignore)
    timed (sprintf "precision/recall k = 3 on %d vs %d x 512" n n) 1 (fun () -> PrecisionRecall.compute 3 a b |> ignore)

// The demo's shape: 1,000 real against 200 generated features, scored again at every evaluation point. The real side
// prepared once (FrechetDistance.reference, PrecisionRecall.reference) against everything redone per point.
let real = Array2D.init 1000 512 (fun _ _ -> random.NextDouble())
let generated = Array2D.init 200 512 (fun _ _ -> random.NextDouble())
for round in 1 .. 3 do
    timed "FD 1000 vs 200, two fitted Gaussians (d x d roots and SVD)" 1 (fun () ->
        FrechetDistance.distance (FeatureStatistics.fit real) (FeatureStatistics.fit generated) |> ignore)
    let frechet = FrechetDistance.reference real
    timed "FD 1000 vs 200 against the prepared real side" 1 (fun () -> FrechetDistance.ofFeaturesAgainst frechet generated |> ignore)
    let manifold = PrecisionRecall.reference 3 real
    timed "precision/recall 1000 vs 200, both radii" 1 (fun () -> PrecisionRecall.compute 3 real generated |> ignore)
    timed "precision/recall 1000 vs 200 against the prepared real side" 1 (fun () -> PrecisionRecall.computeAgainst manifold generated |> ignore)
