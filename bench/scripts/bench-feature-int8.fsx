// PROBE, not a supported path: writes an int8 (QDQ) copy of the ResNet-18 feature network (its float side, the folded
// graph and the helpers: bench-feature-int8-graph.fsx), to see whether
// OnnxRuntime's u8 x s8 kernels (QLinearConv/QLinearAdd, AVX512-VNNI where the CPU has it) could make FD-ResNet18
// features cheaper without moving FD, KID, precision or recall. Nothing in the library uses the result unless told to
// with DFN_MODELS_DIR, and features from it are not the reference ResNet-18 features.
//
// What it writes, into OUT_DIR (default /tmp/int8-models; keep it outside the repository):
//   OUT_DIR/ResNetPrepOnnx/ResNetPreprocess.onnx   the package's preprocessing, copied as it is
//   OUT_DIR/ResNet18Onnx/ResNet18.onnx             the network: each BatchNormalization folded into the Conv before it
//       (a bias added), opset 13, weights int8 symmetric per output channel (DequantizeLinear axis 0), biases int32 at
//       scale x_scale * w_scale, and a uint8 per-tensor QuantizeLinear/DequantizeLinear pair on the graph input, every
//       Relu and MaxPool output and every Conv or Add output not followed by a Relu (OnnxRuntime's level-2 optimiser
//       drops a Relu followed by a zero-point-0 Q and fuses the rest into QLinearConv/QLinearAdd); the final
//       AveragePool stays float. MaxPool's Q/DQ reuse its input's scale, so OnnxRuntime runs it on uint8 as it is.
//   OUT_DIR/float-folded.onnx                      the BN-folded float network (what calibration runs)
//   OUT_DIR/optimized-int8.onnx                    OnnxRuntime's optimised int8 graph, to count the fused nodes
// Activation ranges are calibrated (min/max, 0 included) on CALIBRATION (default 256) MNIST digits at 16x16, resized
// to 224x224 bilinear (the script's own resize; TorchSharp does not load in dotnet fsi), replicated to 3 channels, scaled to 0..255, BGR minus the mean image, as the extractor does.
// The digits are taken from the seed-0 permutation of MNIST after its first 5,000, so they are not among the real
// images `dfn evaluate --real mnist --count 1000 --seed 0` draws (the first 1,000 of that permutation).
//
// Run (after building the solution in Release):
//   dotnet fsi bench/scripts/bench-feature-int8.fsx [OUT_DIR] [CALIBRATION] [KEEP_FLOAT, e.g. 1,5] [PERCENTILE, e.g. 99.99, or entropy] [CORRECT: affine]
// then compare, one command at a time:
//   dfn evaluate --real mnist --fake CHECKPOINT --count 1000 --seed 0 --no-cache --json
//   DFN_MODELS_DIR=OUT_DIR dfn evaluate --real mnist --fake CHECKPOINT --count 1000 --seed 0 --no-cache --json
//   dfn bench evaluation --images 256 --repeats 2 --json   (and again with DFN_MODELS_DIR=OUT_DIR)
#I "../../src/Cli/bin/Release/net10.0"
#r "nuget: OnnxSharp, 0.3.2"
#r "DiffusionFunctional.dll"
#r "DiffusionFunctional.Core.dll"
#r "Microsoft.ML.OnnxRuntime.dll"
#load "bench-feature-int8-graph.fsx"
open System
open System.Collections.Generic
open System.IO
open System.Diagnostics
open Google.Protobuf
open Onnx
open Microsoft.ML.OnnxRuntime

let args = fsi.CommandLineArgs |> Array.skip 1
let outDir = if args.Length > 0 then args.[0] else "/tmp/int8-models"
let calibrationCount = if args.Length > 1 then int args.[1] else 256

// Convolutions left in float32 (KEEP_FLOAT = "F,L": the first F and the last L in graph order; "1,5" keeps the 7x7 stem
// and the five of the last stage): their weights stay float and OnnxRuntime runs them as float Conv on dequantized input.
let keepFloat =
    let f, l = match (if args.Length > 2 then args.[2] else "0,0").Split(',') with
               | [| f; l |] -> int f, int l
               | _ -> failwith "KEEP_FLOAT is F,L: how many of the first and of the last convolutions stay float"
    HashSet<string>(Seq.append (Seq.truncate f convNames) (Seq.skip (max 0 (convNames.Length - l)) convNames))
printfn "convolutions kept in float32: %d of %d" keepFloat.Count convNames.Length

// ---------------------------------------------------------------- tensors to quantize
let cf = consumers folded
let producer = Dictionary<string, NodeProto>()
for n in folded do for o in n.Output do producer.[o] <- n
let quantized = ResizeArray<string>([ inputName ])
for n in folded do
    match n.OpType with
    | "Relu" | "MaxPool" -> quantized.Add n.Output.[0]
    | "Conv" | "Add" ->
        match consumersOf cf n.Output.[0] with
        | [ r ] when r.OpType = "Relu" -> ()
        | _ -> quantized.Add n.Output.[0]
    | "AveragePool" -> ()
    | op -> failwithf "unexpected operator %s" op
printfn "%d tensors to quantize" quantized.Count
// Every Conv/Add/MaxPool/AveragePool input must be one of them.
for n in folded do
    for i in n.Input do
        if not (quantized.Contains i) && not (initializers.ContainsKey i) && n.OpType <> "Relu" then failwithf "%s input %s is not quantized" n.Name i

Directory.CreateDirectory(Path.Combine(outDir, "ResNet18Onnx")) |> ignore
Directory.CreateDirectory(Path.Combine(outDir, "ResNetPrepOnnx")) |> ignore
File.Copy(Path.Combine(sourceModels, "ResNetPrepOnnx/ResNetPreprocess.onnx"), Path.Combine(outDir, "ResNetPrepOnnx/ResNetPreprocess.onnx"), true)
let floatFile = Path.Combine(outDir, "float-folded.onnx")
File.WriteAllBytes(floatFile, (newModel floatNodes floatInits []).ToByteArray())

// ---------------------------------------------------------------- calibration images
// MNIST read from its JSON files (TorchSharp's native library does not load in dotnet fsi), resized 28 -> 16 -> 224 with
// an antialiased bilinear (triangle) filter at half-pixel centres, as the library's resize does.
let digits =
    [| for d in 0 .. 9 do
        use doc = System.Text.Json.JsonDocument.Parse(File.ReadAllBytes(Path.Combine(DiffusionFunctional.Data.Mnist.PackageDirectory, "src", "digits", sprintf "%d.json" d)))
        let values = [| for v in doc.RootElement.GetProperty("data").EnumerateArray() -> v.GetSingle() |]
        for k in 0 .. values.Length / 784 - 1 -> values.[k * 784 .. k * 784 + 783] |]
let order = DiffusionFunctional.Data.DataStream.Permutation(digits.Length, 0UL, 0UL)
let chosen = order.[5000 .. 5000 + calibrationCount - 1]
let filterWeights (n: int) (m: int) =
    let scale = float n / float m
    let support = max scale 1.0
    Array.init m (fun i ->
        let centre = (float i + 0.5) * scale
        let w = Array.init n (fun j -> max 0.0 (1.0 - abs ((float j + 0.5 - centre) / support)))
        let total = Array.sum w
        w |> Array.map (fun v -> v / total))
let resize (image: float[]) n m =
    let w = filterWeights n m
    let rows = Array.init (m * n) (fun k -> let i, x = k / n, k % n in Seq.sum (seq { for y in 0 .. n - 1 -> w.[i].[y] * image.[y * n + x] }))
    Array.init (m * m) (fun k -> let i, j = k / m, k % m in Seq.sum (seq { for x in 0 .. n - 1 -> w.[j].[x] * rows.[i * n + x] }))
let negatedMean =
    use s = new InferenceSession(Path.Combine(sourceModels, "ResNetPrepOnnx/ResNetPreprocess.onnx"))
    let inName = s.InputMetadata.Keys |> Seq.head
    use input = OrtValue.CreateTensorValueFromMemory(Array.zeroCreate<float32> (3 * side * side), [| 1L; 3L; int64 side; int64 side |])
    use runOptions = new RunOptions()
    use results = s.Run(runOptions, [| inName |], [| input |], [| s.OutputMetadata.Keys |> Seq.head |])
    results.[0].GetTensorDataAsSpan<float32>().ToArray()
let prepared (indices: int[]) =
    let plane = side * side
    indices |> Array.map (fun index ->
        // To the generated images' 16 x 16, stored as float32 in [-1, 1] and back, then to 224 x 224.
        let small = resize (digits.[index] |> Array.map float) 28 16 |> Array.map (fun v -> float (float32 (v * 2.0 - 1.0)))
        let large = resize (small |> Array.map (fun v -> (v + 1.0) / 2.0)) 16 side
        Array.init (3 * plane) (fun i -> float32 large.[i % plane] * 255f + negatedMean.[i]))
let calibration = prepared chosen
// Check images: further along the same permutation, for a quick float-vs-int8 feature comparison.
let checkImages = prepared order.[8000 .. 8063]

// ---------------------------------------------------------------- calibrate
let ranges = Dictionary<string, float32 * float32>()
// PERCENTILE (fourth argument, e.g. 99.99; default 100 = min/max): each range ends at that percentile of the values
// (every 61st value of every calibration image, 0 always inside), clipping rare outliers for a finer step; `entropy`
// instead: the KL threshold of those values (entropyThreshold, bench-feature-int8-graph.fsx).
let entropy = args.Length > 3 && args.[3] = "entropy"
let percentile = if entropy then 0.0 elif args.Length > 3 then float args.[3] else 100.0
let samples = Dictionary<string, ResizeArray<float32>>()
let calibrationFeatures = ResizeArray<float32[]>() // the float network's pooled output, kept for the affine correction
let sw = Stopwatch.StartNew()
do
    let calibrationModel = newModel floatNodes floatInits (quantized |> Seq.filter (fun q -> q <> inputName))
    use o = sessionOptions ()
    use s = new InferenceSession(calibrationModel.ToByteArray(), o)
    let names = Array.append [| outputName |] (quantized |> Seq.filter (fun q -> q <> inputName) |> Seq.toArray)
    for q in quantized do
        ranges.[q] <- (0f, 0f)
        samples.[q] <- ResizeArray<float32>()
    for image in calibration do
        let update name (values: float32[]) =
            let lo, hi = ranges.[name]
            ranges.[name] <- (min lo (Array.min values), max hi (Array.max values))
            if percentile < 100.0 then for i in 0 .. 61 .. values.Length - 1 do samples.[name].Add values.[i]
        update inputName image
        let outputs = runAll s names image
        calibrationFeatures.Add outputs.[0]
        outputs |> Array.iteri (fun i v -> if i > 0 then update names.[i] v)
    if entropy then
        for q in quantized do
            let lo, hi = ranges.[q]
            let t = entropyThreshold (samples.[q].ToArray()) (if lo >= 0f then 256 else 128)
            ranges.[q] <- (max lo -t, min hi t)
    elif percentile < 100.0 then
        for q in quantized do
            let sorted = samples.[q].ToArray() |> Array.sort
            let at (p: float) = sorted.[int (Math.Round(p / 100.0 * float (sorted.Length - 1)))]
            ranges.[q] <- (min 0f (at (100.0 - percentile)), max 0f (at percentile))
printfn "calibrated %d tensors on %d images in %.1f s" ranges.Count calibration.Length sw.Elapsed.TotalSeconds

// MaxPool: the same parameters as its input, so OnnxRuntime drops the pair and pools uint8 values as they are.
for n in folded do
    if n.OpType = "MaxPool" then ranges.[n.Output.[0]] <- ranges.[n.Input.[0]]
let qparams name =
    let lo, hi = ranges.[name]
    let scale = max ((hi - lo) / 255f) 1e-8f
    let zp = Math.Clamp(int (Math.Round(float (-lo / scale))), 0, 255)
    scale, byte zp

// ---------------------------------------------------------------- QDQ model
let qNodes = ResizeArray<NodeProto>()
let qInits = ResizeArray<TensorProto>()
let dq name = name + "_dq"
let addQdq (name: string) (sourceName: string) =
    let scale, zp = qparams name
    qInits.Add(floatTensor (name + "_scale") [] [| scale |])
    qInits.Add(tensor (name + "_zp") uint8Type [] [| zp |])
    qNodes.Add(node "QuantizeLinear" (name + "_Q") [ sourceName; name + "_scale"; name + "_zp" ] [ name + "_q" ])
    qNodes.Add(node "DequantizeLinear" (name + "_DQ") [ name + "_q"; name + "_scale"; name + "_zp" ] [ dq name ])
addQdq inputName inputName
for n in folded do
    let c = NodeProto(n)
    // Inputs come from the dequantized copies (a Relu reads its producer's float output directly).
    // A float convolution reads the float tensor before its Q/DQ pair: OnnxRuntime fuses DQ -> Conv -> Q into QLinearConv
    // even when the weights are float (it quantizes them itself, per tensor).
    let floatSource name = if name = inputName then name else name + "_f"
    if n.OpType <> "Relu" then
        for i in 0 .. c.Input.Count - 1 do
            if quantized.Contains c.Input.[i] then
                c.Input.[i] <- if keepFloat.Contains n.Name then floatSource c.Input.[i] else dq c.Input.[i]
    let produced = n.Output.[0]
    let isQuantized = quantized.Contains produced
    if isQuantized then c.Output.[0] <- produced + "_f"
    if n.OpType = "Conv" && keepFloat.Contains n.Name then
        let w, dims, b = convWeights.[n.Name]
        qInits.Add(floatTensor (n.Name + "_W") dims w)
        qInits.Add(floatTensor (n.Name + "_B") [ int64 b.Length ] b)
        c.Input.Add(n.Name + "_W")
        c.Input.Add(n.Name + "_B")
    elif n.OpType = "Conv" then
        let w, dims, b = convWeights.[n.Name]
        let outChannels = int dims.[0]
        let perChannel = w.Length / outChannels
        let xScale, _ = qparams n.Input.[0]
        let wScale = Array.init outChannels (fun ch ->
            let m = seq { for j in 0 .. perChannel - 1 -> abs w.[ch * perChannel + j] } |> Seq.max
            max (m / 127f) 1e-12f)
        let wq = Array.init w.Length (fun i -> sbyte (Math.Clamp(Math.Round(float w.[i] / float wScale.[i / perChannel]), -127.0, 127.0)))
        let bScale = wScale |> Array.map (fun s -> xScale * s)
        let bq = Array.init outChannels (fun ch -> int (Math.Round(float b.[ch] / float bScale.[ch])))
        let p = n.Name
        qInits.Add(tensor (p + "_Wq") int8Type dims (Array.map byte wq))
        qInits.Add(floatTensor (p + "_Wscale") [ int64 outChannels ] wScale)
        qInits.Add(tensor (p + "_Wzp") int8Type [ int64 outChannels ] (Array.zeroCreate outChannels))
        qInits.Add(int32Tensor (p + "_Bq") [ int64 outChannels ] bq)
        qInits.Add(floatTensor (p + "_Bscale") [ int64 outChannels ] bScale)
        qInits.Add(int32Tensor (p + "_Bzp") [ int64 outChannels ] (Array.zeroCreate outChannels))
        let axis = intAttribute "axis" 0L
        let wdq = node "DequantizeLinear" (p + "_W_DQ") [ p + "_Wq"; p + "_Wscale"; p + "_Wzp" ] [ p + "_W" ]
        wdq.Attribute.Add axis
        let bdq = node "DequantizeLinear" (p + "_B_DQ") [ p + "_Bq"; p + "_Bscale"; p + "_Bzp" ] [ p + "_B" ]
        bdq.Attribute.Add(intAttribute "axis" 0L)
        qNodes.Add wdq
        qNodes.Add bdq
        c.Input.Add(p + "_W")
        c.Input.Add(p + "_B")
    qNodes.Add c
    if isQuantized then addQdq produced (produced + "_f")
// The graph's input is the input name; the float output is the AveragePool output (not quantized).
let int8File = Path.Combine(outDir, "ResNet18Onnx/ResNet18.onnx")
// CORRECT (fifth argument, "affine"; default "none"): an affine map per feature channel, fitted by least squares from
// the int8 network's pooled features to the float network's on the calibration digits, appended to the graph as Mul
// and Add (bias correction: it removes the systematic part of the change, not the noise).
if args.Length > 4 && args.[4] = "affine" then
    let pooled (model: ModelProto) =
        use o = sessionOptions ()
        use s = new InferenceSession(model.ToByteArray(), o)
        calibration |> Array.map (fun image -> (runAll s [| outputName |] image).[0])
    let target, source = calibrationFeatures.ToArray(), pooled (newModel qNodes qInits [])
    let channels = target.[0].Length
    let fit j =
        let xs, ys = source |> Array.map (fun f -> float f.[j]), target |> Array.map (fun f -> float f.[j])
        let mx, my = Array.average xs, Array.average ys
        let sxx = Array.sumBy (fun x -> (x - mx) ** 2.0) xs
        let slope = if sxx > 1e-12 then (Array.fold2 (fun acc x y -> acc + (x - mx) * (y - my)) 0.0 xs ys) / sxx else 1.0
        float32 slope, float32 (my - slope * mx)
    let fits = Array.init channels fit
    let last = qNodes |> Seq.find (fun n -> n.Output.[0] = outputName)
    last.Output.[0] <- outputName + "_raw"
    qInits.Add(floatTensor "correction_scale" [ 1L; int64 channels; 1L; 1L ] (Array.map fst fits))
    qInits.Add(floatTensor "correction_shift" [ 1L; int64 channels; 1L; 1L ] (Array.map snd fits))
    qNodes.Add(node "Mul" "correction_Mul" [ outputName + "_raw"; "correction_scale" ] [ outputName + "_scaled" ])
    qNodes.Add(node "Add" "correction_Add" [ outputName + "_scaled"; "correction_shift" ] [ outputName ])
    printfn "affine correction fitted on %d digits: scales %.3f-%.3f" calibration.Length (fits |> Array.map fst |> Array.min) (fits |> Array.map fst |> Array.max)
let int8Model = newModel qNodes qInits []
File.WriteAllBytes(int8File, int8Model.ToByteArray())
printfn "wrote %s (%d bytes, %d nodes)" int8File (FileInfo(int8File).Length) qNodes.Count

// ---------------------------------------------------------------- fused? and a quick comparison
let optimizedFile = Path.Combine(outDir, "optimized-int8.onnx")
do
    use o = sessionOptions ()
    o.OptimizedModelFilePath <- optimizedFile
    use s = new InferenceSession(int8File, o)
    ()
let optimized = ModelProto.Parser.ParseFrom(File.ReadAllBytes optimizedFile)
printfn "optimised int8 graph: %s"
    (optimized.Graph.Node |> Seq.countBy (fun n -> if n.Domain = "" then n.OpType else n.Domain + "." + n.OpType)
     |> Seq.map (fun (k, v) -> sprintf "%s %d" k v) |> String.concat ", ")

let features (file: string) =
    use o = sessionOptions ()
    use s = new InferenceSession(file, o)
    let result = checkImages |> Array.map (fun image -> (runAll s [| outputName |] image).[0])
    let sw = Stopwatch.StartNew()
    let proc = Process.GetCurrentProcess()
    proc.Refresh()
    let cpu0 = proc.TotalProcessorTime
    for image in checkImages do runAll s [| outputName |] image |> ignore
    proc.Refresh()
    result, (proc.TotalProcessorTime - cpu0).TotalMilliseconds / float checkImages.Length, sw.Elapsed.TotalMilliseconds / float checkImages.Length
let fRef, cpuRef, wallRef = features (Path.Combine(sourceModels, "ResNet18Onnx/ResNet18.onnx"))
let fFold, cpuFold, _ = features floatFile
let fInt8, cpuInt8, wallInt8 = features int8File
let relError (a: float32[][]) (b: float32[][]) =
    let num = Seq.map2 (fun (x: float32[]) (y: float32[]) -> Array.fold2 (fun s u v -> s + float (u - v) ** 2.0) 0.0 x y) a b |> Seq.sum
    let den = a |> Seq.sumBy (fun x -> x |> Array.sumBy (fun u -> float u ** 2.0))
    sqrt (num / den)
printfn "features of %d check images: ||folded - float|| / ||float|| = %.2e, ||int8 - float|| / ||float|| = %.4f" checkImages.Length (relError fFold fRef) (relError fInt8 fRef)
printfn "one image per run, 1 thread: float %.1f CPU-ms (wall %.1f), folded float %.1f, int8 %.1f CPU-ms (wall %.1f)" cpuRef wallRef cpuFold cpuInt8 wallInt8
