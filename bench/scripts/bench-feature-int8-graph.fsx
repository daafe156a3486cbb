// The int8 probe's float side (bench-feature-int8.fsx loads it): ONNX protobuf helpers, the packaged ResNet-18 graph
// with each BatchNormalization folded into the Conv before it, and OnnxRuntime sessions at one thread as dfn runs them.
[<AutoOpen>]
module FeatureInt8Graph
#I "../../src/Cli/bin/Release/net10.0"
#r "nuget: OnnxSharp, 0.3.2"
#r "Microsoft.ML.OnnxRuntime.dll"
open System
open System.Collections.Generic
open System.IO
open Google.Protobuf
open Onnx
open Microsoft.ML.OnnxRuntime

let binDirectory = Path.GetFullPath(Path.Combine(__SOURCE_DIRECTORY__, "../../src/Cli/bin/Release/net10.0"))
let sourceModels = Path.Combine(binDirectory, "DnnImageModels")
let side = 224

// ---------------------------------------------------------------- model helpers
let floatType = int TensorProto.Types.DataType.Float
let uint8Type = int TensorProto.Types.DataType.Uint8
let int8Type = int TensorProto.Types.DataType.Int8
let int32Type = int TensorProto.Types.DataType.Int32

let floatsOf (t: TensorProto) =
    if t.DataType <> floatType then failwithf "initializer %s is not float" t.Name
    if not t.RawData.IsEmpty then
        let bytes = t.RawData.ToByteArray()
        Array.init (bytes.Length / 4) (fun i -> BitConverter.ToSingle(bytes, 4 * i))
    else Seq.toArray t.FloatData

let tensor (name: string) (dataType: int) (dims: int64 seq) (raw: byte[]) =
    let t = TensorProto(Name = name, DataType = dataType, RawData = ByteString.CopyFrom raw)
    t.Dims.AddRange dims
    t

let floatTensor name dims (values: float32[]) =
    let raw = Array.zeroCreate<byte> (values.Length * 4)
    Buffer.BlockCopy(values, 0, raw, 0, raw.Length)
    tensor name floatType dims raw

let int32Tensor name dims (values: int[]) =
    let raw = Array.zeroCreate<byte> (values.Length * 4)
    Buffer.BlockCopy(values, 0, raw, 0, raw.Length)
    tensor name int32Type dims raw

let node (op: string) (name: string) (inputs: string seq) (outputs: string seq) =
    let n = NodeProto(OpType = op, Name = name)
    n.Input.AddRange inputs
    n.Output.AddRange outputs
    n

let intAttribute (name: string) (value: int64) =
    AttributeProto(Name = name, Type = AttributeProto.Types.AttributeType.Int, I = value)

let floatOutput (name: string) =
    ValueInfoProto(Name = name, Type = TypeProto(TensorType = TypeProto.Types.Tensor(ElemType = floatType)))

// ---------------------------------------------------------------- fold BatchNormalization into Conv
let original = ModelProto.Parser.ParseFrom(File.ReadAllBytes(Path.Combine(sourceModels, "ResNet18Onnx/ResNet18.onnx")))
let g0 = original.Graph
printfn "original: IR %d, opset %s, %d nodes: %s" original.IrVersion
    (original.OpsetImport |> Seq.map (fun o -> sprintf "%s:%d" o.Domain o.Version) |> String.concat ",") g0.Node.Count
    (g0.Node |> Seq.countBy (fun n -> n.OpType) |> Seq.map (fun (k, v) -> sprintf "%s %d" k v) |> String.concat ", ")

let initializers = Dictionary<string, TensorProto>()
for t in g0.Initializer do initializers.[t.Name] <- t
let consumers (g: seq<NodeProto>) =
    let d = Dictionary<string, ResizeArray<NodeProto>>()
    for n in g do
        for i in n.Input do
            if not (d.ContainsKey i) then d.[i] <- ResizeArray()
            d.[i].Add n
    d
let consumersOf (d: Dictionary<string, ResizeArray<NodeProto>>) name = match d.TryGetValue name with | true, l -> List.ofSeq l | _ -> []

// Folded conv weights and biases by conv node name.
let convWeights = Dictionary<string, float32[] * int64[] * float32[]>()
let folded = ResizeArray<NodeProto>()
let c0 = consumers g0.Node
let skip = HashSet<NodeProto>(HashIdentity.Reference)
let renames = Dictionary<string, string>()
for n in g0.Node do
    if not (skip.Contains n) then
        if n.OpType = "Conv" then
            let w = initializers.[n.Input.[1]]
            let weights = floatsOf w
            let dims = Seq.toArray w.Dims
            let outChannels = int dims.[0]
            let perChannel = weights.Length / outChannels
            let bias = if n.Input.Count > 2 then floatsOf initializers.[n.Input.[2]] else Array.zeroCreate outChannels
            let conv = NodeProto(n)
            match consumersOf c0 n.Output.[0] with
            | [ bn ] when bn.OpType = "BatchNormalization" ->
                let get i = floatsOf initializers.[bn.Input.[i]]
                let gamma, beta, mean, var = get 1, get 2, get 3, get 4
                let eps = bn.Attribute |> Seq.tryFind (fun a -> a.Name = "epsilon") |> Option.map (fun a -> a.F) |> Option.defaultValue 1e-5f
                for a in bn.Attribute do
                    if a.Name = "spatial" && a.I <> 1L then failwithf "%s: non-spatial BatchNormalization" bn.Name
                let w' = Array.copy weights
                let b' = Array.zeroCreate<float32> outChannels
                for c in 0 .. outChannels - 1 do
                    let k = float gamma.[c] / sqrt (float var.[c] + float eps)
                    for j in 0 .. perChannel - 1 do w'.[c * perChannel + j] <- float32 (float weights.[c * perChannel + j] * k)
                    b'.[c] <- float32 ((float bias.[c] - float mean.[c]) * k + float beta.[c])
                skip.Add bn |> ignore
                conv.Output.[0] <- bn.Output.[0]
                convWeights.[n.Name] <- (w', dims, b')
            | _ -> convWeights.[n.Name] <- (weights, dims, bias)
            conv.Input.Clear()
            conv.Input.Add n.Input.[0]
            folded.Add conv
        elif n.OpType = "BatchNormalization" then failwithf "%s does not follow a Conv" n.Name
        else folded.Add(NodeProto(n))
let convNames = folded |> Seq.filter (fun n -> n.OpType = "Conv") |> Seq.map (fun n -> n.Name) |> Seq.toArray
if convNames |> Array.distinct |> Array.length <> convNames.Length || convNames |> Array.exists String.IsNullOrEmpty then
    failwith "Conv nodes need distinct names"

// Other initializers some node still uses (none expected in this graph).
let usedOthers =
    folded |> Seq.filter (fun n -> n.OpType <> "Conv") |> Seq.collect (fun n -> n.Input) |> Seq.filter initializers.ContainsKey |> Seq.distinct |> Seq.toArray
printfn "folded: %d nodes, %d conv, other initializers used: %A" folded.Count convNames.Length usedOthers

let inputName = g0.Input |> Seq.map (fun i -> i.Name) |> Seq.find (fun n -> not (initializers.ContainsKey n))
let outputName = g0.Output.[0].Name

let newModel (nodes: seq<NodeProto>) (inits: seq<TensorProto>) (extraOutputs: string seq) =
    let g = GraphProto(Name = g0.Name)
    g.Node.AddRange nodes
    g.Initializer.AddRange inits
    for n in usedOthers do g.Initializer.Add initializers.[n]
    g.Input.Add(g0.Input |> Seq.find (fun i -> i.Name = inputName))
    g.Output.Add g0.Output.[0]
    for e in extraOutputs do g.Output.Add(floatOutput e)
    let m = ModelProto(IrVersion = 7L, ProducerName = "bench-feature-int8.fsx", Graph = g)
    m.OpsetImport.Add(OperatorSetIdProto(Domain = "", Version = 13L))
    m

// Float folded model: Conv with weight and bias initializers.
let floatNodes =
    folded |> Seq.map (fun n ->
        let c = NodeProto(n)
        if n.OpType = "Conv" then c.Input.Add(n.Name + "_W"); c.Input.Add(n.Name + "_B")
        c) |> Seq.toArray
let floatInits =
    convNames |> Seq.collect (fun name ->
        let w, dims, b = convWeights.[name]
        [ floatTensor (name + "_W") dims w; floatTensor (name + "_B") [ int64 b.Length ] b ]) |> Seq.toArray

let sessionOptions () =
    let o = new SessionOptions(GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL, IntraOpNumThreads = 1, InterOpNumThreads = 1)
    o.AddSessionConfigEntry("session.intra_op.allow_spinning", "0")
    o

let runAll (session: InferenceSession) (outputs: string[]) (image: float32[]) =
    use input = OrtValue.CreateTensorValueFromMemory(image, [| 1L; 3L; int64 side; int64 side |])
    // Held in a `use`: an unnamed RunOptions can be finalised while Run reads it (segfaults in 3 of 4 runs of this script before; none in 7 since).
    use runOptions = new RunOptions()
    use results = session.Run(runOptions, [| inputName |], [| input |], outputs)
    [| for r in results -> r.GetTensorDataAsSpan<float32>().ToArray() |]

/// Entropy (KL) calibration, as TensorRT's int8 calibrator describes it, written here because no .NET library serves it
/// (OnnxRuntime's calibrators are Python only): the threshold t on |x| whose quantisation of the 2,048-bin histogram of
/// |x| into `levels` levels (256 for a tensor that is never negative, 128 per side otherwise) loses the least
/// information, KL(P || Q), P the histogram clipped at t (the tail added to its last bin), Q its quantised expansion;
/// t is searched on every 8th bin from `levels` up, so it is resolved to 8 bins, 0.4% of the largest |x|.
/// Exact zeros (most of a ReLU's output on these digits' flat backgrounds) are left out: the zero point represents them
/// exactly at any t, and a spike in the first bin makes the narrowest groups, the smallest t, look best.
let entropyThreshold (allValues: float32[]) (levels: int) =
    let values = allValues |> Array.filter (fun v -> v <> 0f)
    let bins = 2048
    let absMax = values |> Array.fold (fun m v -> max m (abs v)) 0f
    if values.Length = 0 then 0f else
    let width = float absMax / float bins
    let hist = Array.zeroCreate<float> bins
    for v in values do
        let b = min (bins - 1) (int (float (abs v) / width))
        hist.[b] <- hist.[b] + 1.0
    let divergence (i: int) =
        let p = Array.sub hist 0 i
        p.[i - 1] <- p.[i - 1] + Array.sum hist.[i ..]
        let q = Array.zeroCreate<float> i
        for g in 0 .. levels - 1 do
            let first, last = g * i / levels, (g + 1) * i / levels // [first, last)
            let nonzero = seq { first .. last - 1 } |> Seq.filter (fun j -> hist.[j] > 0.0) |> Seq.length
            let total = Seq.sum (seq { for j in first .. last - 1 -> hist.[j] })
            for j in first .. last - 1 do if hist.[j] > 0.0 then q.[j] <- total / float nonzero
        let sp, sq = Array.sum p, Array.sum q
        Seq.sum (seq { for j in 0 .. i - 1 do
                         if p.[j] > 0.0 then
                             let pj, qj = p.[j] / sp, max (q.[j] / sq) 1e-12
                             yield pj * log (pj / qj) })
    let best = seq { levels .. 8 .. bins } |> Seq.minBy divergence
    float32 ((float best + 0.5) * width)
