/// `dfn bench evaluation`: both ResNet-18 paths run on the same images, one JSON object with the figures per batch size.
module DiffusionFunctional.Cli.Tests.BenchEvaluationTests

open System.Text.Json
open DiffusionFunctional.Cli.Tests.Dfn
open Expecto

[<Tests>]
let tests =
    testSequenced <| testList "dfn bench evaluation" [
        test "--json gives every timed pair and one summary per batch size, with equal features on both paths" {
            let r = run [ "bench"; "evaluation"; "--images"; "5"; "--feature-batch"; "2,5"; "--repeats"; "2"; "--json" ]
            Expect.equal r.ExitCode 0 r.Stderr
            let doc = JsonDocument.Parse(r.Stdout.Trim()).RootElement
            Expect.equal (doc.GetProperty("images").GetInt32()) 5 "images"
            let runs = [ for x in doc.GetProperty("runs").EnumerateArray() -> x.GetProperty("repeat").GetInt32(), x.GetProperty("batch_size").GetInt32() ]
            Expect.equal runs [ 1, 2; 1, 5; 2, 2; 2, 5 ] "each repeat times each batch size"
            let summaries = [ for x in doc.GetProperty("summaries").EnumerateArray() -> x ]
            Expect.equal (summaries |> List.map (fun x -> x.GetProperty("batch_size").GetInt32())) [ 2; 5 ] "one summary per batch size"
            for s in summaries do
                Expect.isLessThanOrEqual (s.GetProperty("max_abs_difference").GetDouble()) 1e-5 "the batched path gives the single-image path's features"
                Expect.isGreaterThan (s.GetProperty("single_cpu_ms_per_image").GetDouble()) 0.0 "CPU time measured"
                Expect.isGreaterThan (s.GetProperty("batched_cpu_ms_per_image").GetDouble()) 0.0 "CPU time measured"
                Expect.isGreaterThan (s.GetProperty("cpu_ratio").GetDouble()) 0.0 "a ratio"
        }

        test "bad settings are one line and exit 2" {
            for args, says in [ [ "--feature-batch"; "8,x" ], "'x'"; [ "--feature-batch"; "300" ], "300"; [ "--images"; "0" ], "0 images"; [ "--sessions"; "0" ], "sessions" ] do
                let r = run ([ "bench"; "evaluation"; "--repeats"; "1" ] @ args)
                Expect.equal r.ExitCode 2 (sprintf "%A: %s" args r.Stderr)
                Expect.stringContains r.Stderr says "names the problem"
                Expect.equal (r.Stderr.Trim().Split('\n').Length) 1 "one line"
        }
    ]
