module DiffusionFunctional.Api.Tests.EvaluationTests

open System
open System.IO
open System.IO.Compression
open System.Text
open DiffusionFunctional
open DiffusionFunctional.Evaluation
open Expecto
open SkiaSharp

/// A deterministic grayscale image per seed: a bright square on a gradient, at a seed-dependent place.
let grayImage (seed: int) (side: int) =
    Array.init (side * side) (fun p ->
        let r, c = p / side, p % side
        let inSquare = abs (r - (seed * 5) % side) < 4 && abs (c - (seed * 7) % side) < 4
        if inSquare then 1.0f else float32 (r + c) / float32 (2 * side))

let grayBatch (seeds: int list) side =
    ImageBatch(seeds |> List.map (fun s -> grayImage s side) |> Array.concat, seeds.Length, 1, side, side)

/// The same grayscale images stored as 3 equal channels.
let asRgb (batch: ImageBatch) =
    let plane = batch.Height * batch.Width
    let values = Array.init (batch.Count * 3 * plane) (fun i -> batch.Pixels.[(i / (3 * plane)) * plane + i % plane])
    ImageBatch(values, batch.Count, 3, batch.Height, batch.Width)

let rows (features: double[,]) = [ for i in 0 .. features.GetLength 0 - 1 -> Array.init (features.GetLength 1) (fun j -> features.[i, j]) ]

let tempDir () =
    let dir = Path.Combine(Path.GetTempPath(), "dfn-eval-tests-" + Guid.NewGuid().ToString("N"))
    Directory.CreateDirectory dir |> ignore
    dir

/// One ResNet-18 for the whole list: loading it costs about a second.
let resnet = lazy (new ResNet18Extractor())

/// An extractor whose features are cheap functions of the pixels, counting its calls.
type CountingExtractor(id: string) =
    member val Calls = 0 with get, set
    interface IFeatureExtractor with
        member _.Id = id
        member _.Dimension = 3
        member this.Extract(images, _) =
            this.Calls <- this.Calls + 1
            Array2D.init images.Count 3 (fun i j ->
                let pixels = images.Images(i, 1).ToArray()
                match j with
                | 0 -> float (Array.average pixels)
                | 1 -> float (Array.max pixels)
                | _ -> float pixels.[pixels.Length / 2])
        member _.Dispose() = ()

/// A TorchScript archive written by hand (the layout torch.jit.save produces): no Python is needed to make one.
let writeTorchScript (path: string) (body: string) =
    let code =
        "class Tiny(Module):\n  __parameters__ = []\n  __buffers__ = []\n  training : bool\n" +
        "  def forward(self: __torch__.Tiny,\n    x: Tensor) -> Tensor:\n    return " + body + "\n"
    // pickle protocol 2: __torch__.Tiny() with state {'training': True}; constants: the empty tuple.
    let data = Array.concat [ "\x80\x02c__torch__\nTiny\nq\x00)\x81}q\x01X\x08\x00\x00\x00trainingq\x02\x88sb." |> Seq.map byte |> Array.ofSeq ]
    let constants = "\x80\x02)q\x00." |> Seq.map byte |> Array.ofSeq
    use zip = ZipFile.Open(path, ZipArchiveMode.Create)
    let add (name: string) (bytes: byte[]) =
        use stream = zip.CreateEntry("tiny/" + name, CompressionLevel.NoCompression).Open()
        stream.Write(bytes, 0, bytes.Length)
    add "version" (Encoding.ASCII.GetBytes "3\n")
    add "data.pkl" data
    add "constants.pkl" constants
    add "code/__torch__.py" (Encoding.ASCII.GetBytes code)

[<Tests>]
let resnetTests =
    testSequenced <| testList "ResNet-18 features (ONNX)" [
        test "the packaged graphs load and give 512 finite features per image, different for different images" {
            let features = resnet.Value.Extract(grayBatch [ 1; 2 ] 28)
            Expect.equal (features.GetLength 0, features.GetLength 1) (2, 512) "shape"
            Expect.equal resnet.Value.Dimension 512 "dimension"
            Expect.all (Seq.cast<double> features) Double.IsFinite "finite"
            Expect.isGreaterThan (Seq.cast<double> features |> Seq.filter (fun v -> v > 0.0) |> Seq.length) 50 "pooled ReLU features are not all zero"
            let r = rows features
            Expect.notEqual r.[0] r.[1] "two different images give different features"
        }
        test "extraction is deterministic and does not depend on batching or the worker count" {
            let batch = grayBatch [ 3; 4; 5 ] 28
            let first = resnet.Value.Extract batch
            Expect.equal (rows (resnet.Value.Extract batch)) (rows first) "same images twice"
            Expect.equal (rows (resnet.Value.Extract(grayBatch [ 4 ] 28))) [ (rows first).[1] ] "an image alone equals the same image in a batch"
            use two = new ResNet18Extractor(ResNet18Options(Workers = 2))
            Expect.equal (rows (two.Extract batch)) (rows first) "two workers"
            Expect.equal two.Id resnet.Value.Id "same model, same id"
        }
        test "a grayscale image gives the same features as its 3-channel copy" {
            let gray = grayBatch [ 6 ] 28
            Expect.equal (rows (resnet.Value.Extract(asRgb gray))) (rows (resnet.Value.Extract gray)) "replicated channels"
        }
        test "a missing model folder is a BadInputException naming the file" {
            let e = Expect.throwsC (fun () -> new ResNet18Extractor(ResNet18Options(ModelDirectory = "/nonexistent/models")) |> ignore) id
            Expect.isTrue (e :? BadInputException && e.Message.Contains "/nonexistent/models") e.Message
        }
    ]

[<Tests>]
let preprocessingTests =
    testList "Image preprocessing" [
        test "bilinear resize matches PyTorch (align_corners = false), scales, and replicates gray to 3 channels" {
            // torch.nn.functional.interpolate([[1, 2], [3, 4]], size = 4, mode = 'bilinear') in PyTorch:
            let torchResult = [| 1.0; 1.25; 1.75; 2.0; 1.5; 1.75; 2.25; 2.5; 2.5; 2.75; 3.25; 3.5; 3.0; 3.25; 3.75; 4.0 |]
            let batch = ImageBatch([| 0.0f; 1.0f / 3.0f; 2.0f / 3.0f; 1.0f |], 1, 1, 2, 2)
            let out = Array.zeroCreate<float32> (3 * 16)
            ImagePreprocessing.ToRgbSquare(batch, 0, 1, 4, 255.0f, 0.0f, Span out)
            for channel in 0 .. 2 do
                for p in 0 .. 15 do
                    Expect.floatClose Accuracy.high (float out.[channel * 16 + p]) ((torchResult.[p] - 1.0) / 3.0 * 255.0) (sprintf "channel %d pixel %d" channel p)
        }
        test "pixel values outside [0, 1] and shape mismatches are rejected" {
            Expect.throwsT<BadInputException> (fun () -> ImageBatch([| 0.5f; 1.5f |], 1, 1, 1, 2) |> ignore) "1.5"
            Expect.throwsT<BadInputException> (fun () -> ImageBatch([| 0.5f; nanf |], 1, 1, 1, 2) |> ignore) "NaN"
            Expect.throwsT<BadInputException> (fun () -> ImageBatch([| 0.5f |], 1, 1, 1, 2) |> ignore) "too few values"
            Expect.throwsT<BadInputException> (fun () -> ImageBatch(Array.zeroCreate 8, 1, 2, 2, 2) |> ignore) "2 channels"
        }
        test "a tensor batch copies over exactly" {
            use t = TorchSharp.torch.rand(2L, 1L, 3L, 3L)
            let batch = ImageBatch.FromTensor t
            Expect.equal (batch.Count, batch.Channels, batch.Height, batch.Width) (2, 1, 3, 3) "shape"
            Expect.equal batch.Pixels (t.data<float32>().ToArray()) "values"
        }
    ]

[<Tests>]
let cacheTests =
    testList "Feature cache" [
        test "a miss extracts and stores; a hit returns the same features without extracting" {
            let dir = tempDir ()
            try
                let cache = FeatureCache(dir)
                let extractor = new CountingExtractor("counting-v1")
                let images = grayBatch [ 1; 2; 3 ] 8
                let struct (features, hit) = cache.GetOrExtract(extractor, images)
                Expect.isFalse hit "first call is a miss"
                let struct (again, hit2) = cache.GetOrExtract(extractor, images)
                Expect.isTrue hit2 "second call is a hit"
                Expect.equal extractor.Calls 1 "extracted once"
                Expect.equal (rows again) (rows features) "exact round trip"
                Expect.equal (Directory.GetFiles dir |> Array.map Path.GetExtension) [| ".features" |] "one file, no temporary left behind"
            finally Directory.Delete(dir, true)
        }
        test "the key changes with any pixel and with the extractor id" {
            let images = grayBatch [ 1; 2 ] 8
            let changed = ImageBatch(Array.copy images.Pixels, 2, 1, 8, 8)
            changed.Pixels.[77] <- changed.Pixels.[77] * 0.5f + 0.01f
            let a, b = new CountingExtractor("a"), new CountingExtractor("b")
            Expect.equal (FeatureCache.Key(a, images)) (FeatureCache.Key(a, grayBatch [ 1; 2 ] 8)) "equal content, equal key"
            Expect.notEqual (FeatureCache.Key(a, images)) (FeatureCache.Key(a, changed)) "one pixel"
            Expect.notEqual (FeatureCache.Key(a, images)) (FeatureCache.Key(b, images)) "extractor id"
        }
        test "a truncated cache file counts as a miss and is rewritten" {
            let dir = tempDir ()
            try
                let cache = FeatureCache(dir)
                let extractor = new CountingExtractor("counting-v1")
                let images = grayBatch [ 4; 5; 6 ] 8
                cache.GetOrExtract(extractor, images) |> ignore
                let file = Directory.GetFiles(dir).[0]
                File.WriteAllBytes(file, File.ReadAllBytes(file).[.. 20])
                Expect.isNull (cache.TryLoad(FeatureCache.Key(extractor, images))) "truncated file is unreadable"
                let struct (_, hit) = cache.GetOrExtract(extractor, images)
                Expect.isFalse hit "miss"
                Expect.equal extractor.Calls 2 "extracted again"
            finally Directory.Delete(dir, true)
        }
    ]

[<Tests>]
let evaluatorTests =
    testList "Evaluator" [
        test "a set against itself: FD 0, precision 1, recall 1; against a different set: FD > 0" {
            let extractor = new CountingExtractor("counting-v1")
            use evaluator = new Evaluator(extractor, null, null, 3)
            let real = grayBatch [ 1 .. 8 ] 16
            let self = evaluator.Evaluate(real, real)
            Expect.isLessThan (abs self.FdResNet18) 1e-9 "FD(self)"
            Expect.equal (self.Precision, self.Recall) (1.0, 1.0) "precision, recall"
            Expect.isNone (Option.ofNullable self.Fid) "no FID without Inception"
            let other = evaluator.Evaluate(real, grayBatch [ 11 .. 18 ] 16)
            Expect.isGreaterThan other.FdResNet18 1e-6 "different sets"
        }
        test "with the real ResNet-18 and a cache: the second run reads the real features from the cache" {
            let dir = tempDir ()
            try
                use evaluator = new Evaluator(resnet.Value, null, FeatureCache(dir), 3)
                let real = grayBatch [ 1 .. 5 ] 28
                let first = evaluator.Evaluate(real, real)
                Expect.isFalse first.RealFeaturesFromCache "first run extracts"
                Expect.isLessThan (abs first.FdResNet18) 1e-6 "FD of a set with itself"
                let second = evaluator.Evaluate(real, real)
                Expect.isTrue second.RealFeaturesFromCache "second run hits the cache"
                Expect.equal second.FdResNet18 first.FdResNet18 "same result"
            finally Directory.Delete(dir, true)
        }
        test "too few images for k = 3 is a BadInputException" {
            use evaluator = new Evaluator(new CountingExtractor("c"), null, null, 3)
            Expect.throwsT<BadInputException> (fun () -> evaluator.Evaluate(grayBatch [ 1 .. 3 ] 8, grayBatch [ 1 .. 8 ] 8) |> ignore) "3 real images"
        }
    ]

[<Tests>]
let inceptionTests =
    testList "Inception (user-supplied TorchScript)" [
        test "a missing file is a BadInputException that says FID needs a user-supplied file" {
            let e = Expect.throwsC (fun () -> new InceptionExtractor("/nonexistent/inception.pt") |> ignore) id
            Expect.isTrue (e :? BadInputException && e.Message.Contains "--inception") e.Message
        }
        test "a file that is not TorchScript is a BadInputException" {
            let file = Path.GetTempFileName()
            try
                File.WriteAllText(file, "not a zip archive")
                Expect.throwsT<BadInputException> (fun () -> new InceptionExtractor(file) |> ignore) "garbage"
            finally File.Delete file
        }
        test "a TorchScript module loads and sees 299 x 299 RGB in the chosen range" {
            let file = Path.Combine(Path.GetTempPath(), Guid.NewGuid().ToString("N") + ".pt")
            try
                writeTorchScript file "torch.mean(x, [2, 3])"
                let constant v = ImageBatch(Array.create (2 * 28 * 28) v, 2, 1, 28, 28)
                for range, expected in [ InceptionInputRange.ZeroToOne, 0.25; InceptionInputRange.MinusOneToOne, -0.5; InceptionInputRange.ZeroTo255, 63.75 ] do
                    use inception = new InceptionExtractor(file, range)
                    Expect.equal inception.Dimension 3 "the probe learns the feature dimension"
                    let features = inception.Extract(constant 0.25f)
                    Expect.equal (features.GetLength 0, features.GetLength 1) (2, 3) "shape"
                    // float32 sums over 299 x 299 pixels: about 1e-7 relative error.
                    for v in Seq.cast<double> features do Expect.floatClose { absolute = 1e-6; relative = 1e-6 } v expected (string range)
            finally File.Delete file
        }
        test "a module whose output is not per-image features is a BadInputException" {
            let file = Path.Combine(Path.GetTempPath(), Guid.NewGuid().ToString("N") + ".pt")
            try
                writeTorchScript file "torch.mean(x)"
                Expect.throwsT<BadInputException> (fun () -> new InceptionExtractor(file) |> ignore) "scalar output"
            finally File.Delete file
        }
    ]

/// Writes an 8-bit image from RGB triples.
let writePng (path: string) (width: int) (height: int) (pixel: int -> int -> byte * byte * byte) =
    use bitmap = new SKBitmap(SKImageInfo(width, height, SKColorType.Rgba8888, SKAlphaType.Unpremul))
    for y in 0 .. height - 1 do
        for x in 0 .. width - 1 do
            let r, g, b = pixel x y
            bitmap.SetPixel(x, y, SKColor(r, g, b, 255uy))
    use data = bitmap.Encode(SKEncodedImageFormat.Png, 100)
    File.WriteAllBytes(path, data.ToArray())

let private imagesOf (struct (images: ImageBatch, _skipped: int)) = images

[<Tests>]
let folderTests =
    testList "Image folder loader" [
        test "gray PNGs load as one channel, in file-name order, with exact values" {
            let dir = tempDir ()
            try
                for i in [ 2; 0; 1 ] do writePng (Path.Combine(dir, sprintf "img%d.png" i)) 3 2 (fun x y -> let v = byte (i * 50 + x + 10 * y) in v, v, v)
                File.WriteAllText(Path.Combine(dir, "notes.txt"), "ignored")
                let struct (batch, skipped) = ImageFolderLoader.Load dir
                Expect.equal skipped 0 "nothing skipped"
                Expect.equal (batch.Count, batch.Channels, batch.Height, batch.Width) (3, 1, 2, 3) "shape"
                Expect.equal batch.Pixels.[6 + 4] (float32 (50 + 1 + 10) / 255.0f) "image 1, row 1, column 1"
                Expect.equal ((imagesOf (ImageFolderLoader.Load(dir, 2))).Count) 2 "--count"
            finally Directory.Delete(dir, true)
        }
        test "color PNGs load as RGB planes" {
            let dir = tempDir ()
            try
                writePng (Path.Combine(dir, "a.png")) 2 2 (fun x y -> byte (10 * x), byte (20 * y), 200uy)
                let struct (batch, _) = ImageFolderLoader.Load dir
                Expect.equal batch.Channels 3 "RGB"
                Expect.equal [ batch.Pixels.[1]; batch.Pixels.[4 + 2]; batch.Pixels.[8 + 3] ] [ 10.0f / 255.0f; 20.0f / 255.0f; 200.0f / 255.0f ] "R, G, B planes"
            finally Directory.Delete(dir, true)
        }
        test "a count draws a seeded random subset, not the first files" {
            let dir = tempDir ()
            try
                for i in 0 .. 19 do writePng (Path.Combine(dir, sprintf "img%02d.png" i)) 2 2 (fun _ _ -> byte (10 * i), byte (10 * i), byte (10 * i))
                let firstValues seed = (imagesOf (ImageFolderLoader.Load(dir, 5, seed))).Pixels |> Array.chunkBySize 4 |> Array.map (fun p -> p.[0])
                let chosen = firstValues 0L
                Expect.equal (firstValues 0L) chosen "the same seed draws the same images"
                Expect.notEqual (Array.sort chosen) [| for i in 0 .. 4 -> float32 (10 * i) / 255.0f |] "not the first five files"
                Expect.notEqual (firstValues 1L) chosen "another seed draws others"
                Expect.equal (Array.distinct chosen).Length 5 "five different images"
            finally Directory.Delete(dir, true)
        }
        test "a truncated PNG is skipped with a warning and counted, not decoded halfway" {
            let dir = tempDir ()
            try
                for i in 0 .. 2 do writePng (Path.Combine(dir, sprintf "img%d.png" i)) 16 16 (fun x y -> byte x, byte y, 0uy)
                let whole = File.ReadAllBytes(Path.Combine(dir, "img1.png"))
                File.WriteAllBytes(Path.Combine(dir, "img1.png"), whole.[.. whole.Length / 2])
                let warnings = Collections.Generic.List<string>()
                let struct (batch, skipped) = ImageFolderLoader.Load(dir, warn = Action<string>(warnings.Add))
                Expect.equal (batch.Count, skipped) (2, 1) "two images kept, one skipped"
                Expect.equal warnings.Count 1 "one warning"
                Expect.stringContains warnings.[0] "img1.png" "the warning names the file"
                let struct (trainingImages, trainingSkipped) = DiffusionFunctional.Data.ImageFolder.LoadUnitRange(dir, 1, 8)
                trainingImages.Dispose()
                Expect.equal trainingSkipped 1 "the training loader skips it the same way"
            finally Directory.Delete(dir, true)
        }
        test "missing folders, empty folders, mixed sizes and too large counts are BadInputExceptions" {
            let dir = tempDir ()
            try
                Expect.throwsT<BadInputException> (fun () -> ImageFolderLoader.Load(Path.Combine(dir, "missing")) |> ignore) "missing"
                Expect.throwsT<BadInputException> (fun () -> ImageFolderLoader.Load dir |> ignore) "empty"
                writePng (Path.Combine(dir, "a.png")) 2 2 (fun _ _ -> 0uy, 0uy, 0uy)
                Expect.throwsT<BadInputException> (fun () -> ImageFolderLoader.Load(dir, 5) |> ignore) "count"
                writePng (Path.Combine(dir, "b.png")) 3 2 (fun _ _ -> 0uy, 0uy, 0uy)
                Expect.throwsT<BadInputException> (fun () -> ImageFolderLoader.Load dir |> ignore) "sizes"
            finally Directory.Delete(dir, true)
        }
    ]
