module DiffusionFunctional.Api.Tests.SampleProjectTests

open System.IO
open Expecto
open DiffusionFunctional.Samples
open DiffusionFunctional.Api.Tests.TestSupport

[<Tests>]
let tests =
    testList "Sample project" [
        test "samples/Training.Sample trains the tiny UNet, its loss falls, and it writes checkpoint, metrics and a grid" {
            let dir, clean = tempDir "sample"
            use _ = clean
            let losses = TinyTraining.Run(dir, 150) |> Array.ofSeq
            Expect.equal losses.Length 150 "one loss per step"
            let first = Array.average losses.[0 .. 9]
            let last = Array.average losses.[120 ..]
            Expect.isLessThan last (first * 0.7) (sprintf "loss %.4f -> %.4f" first last)
            for file in [ "checkpoint.dfn"; "metrics.jsonl"; "grid.png" ] do
                Expect.isTrue (File.Exists(Path.Combine(dir, file))) (sprintf "%s written" file)
        }
    ]
