/// The batched ResNet-18 path against the single-image path it replaced: the same features, whatever the batch.
module DiffusionFunctional.Api.Tests.ResNet18BatchTests

open System
open System.IO
open Google.Protobuf
open TorchSharp
open DiffusionFunctional
open DiffusionFunctional.Data
open DiffusionFunctional.Evaluation
open Expecto

/// 200 images in three kinds that reach the network differently: 28x28 gray blobs (MNIST's size), 16x16 gray
/// blobs (the quick demo's size) and 32x32 RGB noise (three different channels, a different resize).
let testSets =
    lazy (
        let gray count size seed =
            use blobs = SyntheticImages.Blobs(count, size, int64 seed)
            use unit = ((blobs.Images + 1.0f) / 2.0f).clamp_min(0.0).clamp_max(1.0)
            ImageBatch.FromTensor unit
        use generator = new torch.Generator(7UL)
        use noise = torch.rand([| 40L; 3L; 32L; 32L |], generator = generator)
        [ "28x28 gray", gray 120 28 1; "16x16 gray", gray 40 16 2; "32x32 RGB", ImageBatch.FromTensor noise ])

/// The features of every test set from the single-image path, computed once.
let reference =
    lazy (
        use single = new ResNet18SingleImage()
        testSets.Value |> List.map (fun (name, images) -> name, single.Extract images))

let maxAbsDifference (a: double[,]) (b: double[,]) =
    Seq.map2 (fun (x: double) y -> abs (x - y)) (Seq.cast<double> a) (Seq.cast<double> b) |> Seq.max

let rows (features: double[,]) = [ for i in 0 .. features.GetLength 0 - 1 -> Array.init (features.GetLength 1) (fun j -> features.[i, j]) ]

/// Rows [start, start + count) of a feature matrix.
let slice (features: double[,]) start count = Array2D.init count (features.GetLength 1) (fun i j -> features.[start + i, j])

/// An ONNX model written field by field (onnx.proto numbers): one operator from input "x" to output "y", both
/// declared float with the given shapes; enough for OnnxRuntime to load and for the batch rewrite to read.
let onnxModel (op: string) (inputShape: int64 list) (outputShape: int64 list) =
    let message (write: CodedOutputStream -> unit) =
        use buffer = new MemoryStream()
        let output = new CodedOutputStream(buffer)
        write output
        output.Flush()
        ByteString.CopyFrom(buffer.ToArray())
    let bytesField (o: CodedOutputStream) (field: int) (value: ByteString) =
        o.WriteTag(field, WireFormat.WireType.LengthDelimited)
        o.WriteBytes value
    let stringField (o: CodedOutputStream) (field: int) (value: string) =
        o.WriteTag(field, WireFormat.WireType.LengthDelimited)
        o.WriteString value
    let valueInfo name (shape: int64 list) =
        let dims = shape |> List.map (fun d -> message (fun o -> o.WriteTag(1, WireFormat.WireType.Varint); o.WriteInt64 d))
        let tensorShape = message (fun o -> for d in dims do bytesField o 1 d)
        let tensorType = message (fun o -> o.WriteTag(1, WireFormat.WireType.Varint); o.WriteInt32 1; bytesField o 2 tensorShape)
        let typeProto = message (fun o -> bytesField o 1 tensorType)
        message (fun o -> stringField o 1 name; bytesField o 2 typeProto)
    let node = message (fun o -> stringField o 1 "x"; stringField o 2 "y"; stringField o 4 op)
    let graph = message (fun o -> bytesField o 1 node; stringField o 2 "g"; bytesField o 11 (valueInfo "x" inputShape); bytesField o 12 (valueInfo "y" outputShape))
    let opset = message (fun o -> o.WriteTag(2, WireFormat.WireType.Varint); o.WriteInt64 8L)
    (message (fun o -> o.WriteTag(1, WireFormat.WireType.Varint); o.WriteInt64 3L; bytesField o 8 opset; bytesField o 7 graph)).ToByteArray()

[<Tests>]
let batchedTests =
    testSequenced <| testList "ResNet-18 features, batched" [
        test "the batched path equals the single-image path to 1e-5 on 200 images (gray 28x28, gray 16x16, RGB 32x32)" {
            use batched = new ResNet18Extractor()
            for (name, images), (_, expected) in List.zip testSets.Value reference.Value do
                let difference = maxAbsDifference (batched.Extract images) expected
                Expect.isLessThanOrEqual difference 1e-5 (sprintf "%s: max |difference| %g" name difference)
            use single = new ResNet18SingleImage()
            Expect.equal batched.Id single.Id "same features, same id: cached features stay valid"
        }
        test "an image's features do not depend on the batch it is in, the batch size or the worker count" {
            let _, images = testSets.Value.[0]
            let images = images.Take 40
            let featuresWith batchSize workers =
                use extractor = new ResNet18Extractor(ResNet18Options(BatchSize = batchSize, Workers = workers))
                rows (extractor.Extract images)
            let byDefault = featuresWith ResNet18Options.DefaultBatchSize 1
            for batchSize, workers in [ 1, 1; 3, 1; 64, 1; 3, 2; 16, 2 ] do
                Expect.equal (featuresWith batchSize workers) byDefault (sprintf "batch %d, %d worker(s)" batchSize workers)
            // The same images in another order, so each lands in another batch with other neighbours.
            let reversed = ImageBatch(Array.concat [ for i in 39 .. -1 .. 0 -> images.Images(i, 1).ToArray() ], 40, 1, 28, 28)
            use extractor = new ResNet18Extractor()
            Expect.equal (List.rev (rows (extractor.Extract reversed))) byDefault "reversed order"
        }
        test "a partial last batch, a batch of one and no images at all" {
            let _, images = testSets.Value.[0]
            let _, expected = reference.Value.[0]
            use extractor = new ResNet18Extractor(ResNet18Options(BatchSize = 8))
            for count in [ 19; 1; 8; 9 ] do
                let difference = maxAbsDifference (extractor.Extract(images.Take count)) (slice expected 0 count)
                Expect.isLessThanOrEqual difference 1e-5 (sprintf "%d images in batches of 8: max |difference| %g" count difference)
            let none = extractor.Extract(images.Take 0)
            Expect.equal (none.GetLength 0, none.GetLength 1) (0, 512) "no images, no rows"
        }
        test "batch sizes out of range are BadInputExceptions naming the value" {
            for size in [ 0; -1; 257 ] do
                let e = Expect.throwsC (fun () -> new ResNet18Extractor(ResNet18Options(BatchSize = size)) |> ignore) id
                Expect.isTrue (e :? BadInputException && e.Message.Contains(string size)) e.Message
        }
    ]

[<Tests>]
let batchDimensionTests =
    testList "ONNX batch dimension" [
        test "the packaged network gets a symbolic batch; its weights are copied unchanged" {
            let file = Path.Combine(ResNet18Extractor.DefaultModelDirectory, ResNet18Extractor.NetworkPath)
            let original = File.ReadAllBytes file
            let rewritten = OnnxBatchDimension.MakeBatchDynamic original
            use options = new Microsoft.ML.OnnxRuntime.SessionOptions()
            use session = new Microsoft.ML.OnnxRuntime.InferenceSession(rewritten, options)
            Expect.equal (List.ofArray (session.InputMetadata.Values |> Seq.head).Dimensions) [ -1; 3; 224; 224 ] "input"
            Expect.equal (List.ofArray (session.OutputMetadata.Values |> Seq.head).Dimensions) [ -1; 512; 1; 1 ] "output"
            // 73 value_info shapes plus input and output: each dim_value 1 (2 bytes) becomes dim_param "N" (3 bytes),
            // and the lengths of the messages around them grow; the 63 MB of weights do not change.
            Expect.isLessThan (abs (rewritten.Length - original.Length)) 2000 (sprintf "size %d -> %d" original.Length rewritten.Length)
            let e = Expect.throwsC (fun () -> OnnxBatchDimension.MakeBatchDynamic rewritten |> ignore) id
            Expect.isTrue (e :? BadInputException && e.Message.Contains "symbolic") ("a second rewrite finds no fixed batch: " + e.Message)
        }
        test "a one-operator model runs on any batch after the rewrite, with the same values" {
            let model = OnnxBatchDimension.MakeBatchDynamic(onnxModel "Relu" [ 1L; 2L; 3L ] [ 1L; 2L; 3L ])
            use options = new Microsoft.ML.OnnxRuntime.SessionOptions()
            use session = new Microsoft.ML.OnnxRuntime.InferenceSession(model, options)
            let values = Array.init 30 (fun i -> float32 (i - 15))
            use input = Microsoft.ML.OnnxRuntime.OrtValue.CreateTensorValueFromMemory(values, [| 5L; 2L; 3L |])
            use runOptions = new Microsoft.ML.OnnxRuntime.RunOptions()
            use outputs = session.Run(runOptions, [| "x" |], [| input |], [| "y" |])
            Expect.equal (outputs.[0].GetTensorDataAsSpan<float32>().ToArray()) (values |> Array.map (max 0.0f)) "ReLU of 5 images"
        }
        test "a quantized (QDQ) model's QuantizeLinear and DequantizeLinear take the symbolic batch" {
            // Per-tensor activation scales treat every image alike (bench/scripts/bench-feature-int8.fsx writes such a model).
            for op in [ "QuantizeLinear"; "DequantizeLinear" ] do
                let model = OnnxBatchDimension.MakeBatchDynamic(onnxModel op [ 1L; 6L ] [ 1L; 6L ])
                Expect.isGreaterThan model.Length 0 op
        }
        test "operators that may fix or mix the batch, batches other than 1 and non-ONNX bytes are refused" {
            let refused (bytes: byte[]) (fragment: string) =
                let e = Expect.throwsC (fun () -> OnnxBatchDimension.MakeBatchDynamic bytes |> ignore) id
                Expect.isTrue (e :? BadInputException && e.Message.Contains fragment) e.Message
            refused (onnxModel "Reshape" [ 1L; 6L ] [ 1L; 6L ]) "Reshape"
            refused (onnxModel "Relu" [ 2L; 6L ] [ 2L; 6L ]) "leading dimension of 2"
            refused [| 0xFFuy; 0xFFuy; 0xFFuy |] "ONNX model"
        }
        test "a preprocessing graph that is not a channel flip and a mean subtraction is refused" {
            let dir, cleanup = TestSupport.tempDir "prep"
            use _ = cleanup
            let file = Path.Combine(dir, "identity.onnx")
            File.WriteAllBytes(file, onnxModel "Identity" [ 1L; 3L; 224L; 224L ] [ 1L; 3L; 224L; 224L ])
            let e = Expect.throwsC (fun () -> ResNetMeanImage.Load(file, 224) |> ignore) id
            Expect.isTrue (e :? BadInputException && e.Message.Contains "not the expected preprocessing") e.Message
        }
    ]
