module DiffusionFunctional.Cli.Tests.AnalysisCommandTests

open System
open System.IO
open System.Text.Json
open DiffusionFunctional.Core
open DiffusionFunctional.Cli.Tests.Dfn
open Expecto

/// A small synthetic IDX3 data set: 8x8 bright squares of random size and place on a dark background.
let private writeIdx (path: string) (count: int) =
    let rng = Random(11)
    use f = File.Create path
    let header = [| 0uy; 0uy; 8uy; 3uy |]
    f.Write(header, 0, 4)
    for dim in [ count; 8; 8 ] do
        f.Write([| byte (dim >>> 24); byte (dim >>> 16); byte (dim >>> 8); byte dim |], 0, 4)
    for _ in 1 .. count do
        let size = rng.Next(2, 6)
        let r0, c0 = rng.Next(0, 8 - size + 1), rng.Next(0, 8 - size + 1)
        let pixels = Array.init 64 (fun i -> let r, c = i / 8, i % 8 in if r >= r0 && r < r0 + size && c >= c0 && c < c0 + size then 230uy else 10uy)
        f.Write(pixels, 0, 64)

let private tempFolder name =
    let dir = Path.Combine(Path.GetTempPath(), sprintf "dfn-%s-%s" name (Guid.NewGuid().ToString("N").Substring(0, 8)))
    Directory.CreateDirectory dir |> ignore
    dir

[<Tests>]
let tests =
    testSequenced <| testList "dfn ntg, evaluate and affinity" [
        test "ntg trains, scores hybrids and resumes; affinity measures its checkpoints; cluster reads the CSV" {
            let dir = tempFolder "analysis"
            try
                let idx = Path.Combine(dir, "squares-idx3-ubyte")
                writeIdx idx 160
                let out = Path.Combine(dir, "ntg")
                let ntgArgs =
                    [ "ntg"; "--data"; "idx:" + idx; "--model"; "tiny"; "--image-size"; "8"; "--steps"; "12"; "--warmup"; "2"
                      "--specialists"; "2"; "--timesteps"; "40"; "--samples"; "8"; "--real-images"; "24"; "--sampler-steps"; "4"
                      "--threads"; "1"; "--out"; out; "--json" ]
                let first = run ntgArgs
                Expect.equal first.ExitCode 0 first.Stderr
                let doc = JsonDocument.Parse(first.Stdout.Trim()).RootElement
                let fdShared = doc.GetProperty("fd_shared").GetDouble()
                let intervals = [ for i in doc.GetProperty("intervals").EnumerateArray() -> i ]
                Expect.equal intervals.Length 2 "one entry per interval"
                for i in intervals do
                    Expect.floatClose Accuracy.high (i.GetProperty("ntg").GetDouble()) (i.GetProperty("fd_hybrid").GetDouble() - fdShared) "NTG = FD(hybrid) - FD(shared)"
                for f in [ "ntg.json"; "ntg.png"; "ntg-evaluations.json"; "shared/checkpoint.dfn"; "specialist-0/checkpoint.dfn"; "specialist-1/checkpoint.dfn" ] do
                    Expect.isTrue (File.Exists(Path.Combine(out, f))) (sprintf "%s written" f)
                // A second run finds everything done: it resumes, retrains nothing and gives the same numbers.
                let again = run ntgArgs
                Expect.equal again.ExitCode 0 again.Stderr
                Expect.stringContains again.Stderr "resumed at step 12" "resumed from checkpoints"
                Expect.equal (JsonDocument.Parse(again.Stdout.Trim()).RootElement.GetProperty("fd_shared").GetDouble()) fdShared "same result"

                // dfn evaluate samples a checkpoint and reads real images from a data specification.
                let evaluated =
                    run [ "evaluate"; "--real"; "idx:" + idx; "--fake"; Path.Combine(out, "shared", "checkpoint.dfn"); "--count"; "8"
                          "--sampler-steps"; "3"; "--no-cache"; "--json" ]
                Expect.equal evaluated.ExitCode 0 evaluated.Stderr
                let e = JsonDocument.Parse(evaluated.Stdout.Trim()).RootElement
                Expect.equal (e.GetProperty("fake_count").GetInt32()) 8 "eight samples drawn from the checkpoint"
                Expect.equal (e.GetProperty("real_count").GetInt32()) 8 "eight real images"
                Expect.isTrue (Double.IsFinite(e.GetProperty("fd_resnet18").GetDouble())) "a finite FD"

                let affinityOut = Path.Combine(dir, "affinity")
                let shared = Path.Combine(out, "shared", "checkpoint.dfn")
                let aff =
                    run [ "affinity"; "--checkpoints"; shared + "," + Path.Combine(out, "specialist-0", "checkpoint.dfn")
                          "--data"; "idx:" + idx; "--groups"; "4"; "--images"; "6"; "--out"; affinityOut; "--json" ]
                Expect.equal aff.ExitCode 0 aff.Stderr
                let a = JsonDocument.Parse(aff.Stdout.Trim()).RootElement
                Expect.equal (a.GetProperty("checkpoints").GetArrayLength()) 2 "averaged over two checkpoints"
                let csv = a.GetProperty("csv").GetString()
                for p in [ "csv"; "heatmap"; "scatter" ] do
                    Expect.isTrue (File.Exists(a.GetProperty(p).GetString())) (sprintf "%s written" p)
                match AffinityCsv.parse (File.ReadAllText csv) with
                | Ok m -> Expect.equal (Array2D.length1 m) 4 "G x G"
                | Error e -> failtest e
                let clustered = run [ "cluster"; "--cluster-objective"; "affinity"; "--affinity"; csv; "--timesteps"; "40"; "--clusters"; "2"; "--json" ]
                Expect.equal clustered.ExitCode 0 clustered.Stderr
                Expect.stringContains clustered.Stdout "\"boundaries\":[0," "clustered on the measured matrix"

                let sketched =
                    run [ "affinity"; "--checkpoints"; shared; "--data"; "idx:" + idx; "--groups"; "4"; "--images"; "6"
                          "--sketch-dim"; "512"; "--out"; Path.Combine(dir, "sketch"); "--json" ]
                Expect.equal sketched.ExitCode 0 sketched.Stderr
                let err = JsonDocument.Parse(sketched.Stdout.Trim()).RootElement.GetProperty("sketch_max_cosine_error").GetDouble()
                Expect.isTrue (err >= 0.0 && err < 0.5) (sprintf "measured sketch error %g reported" err)
            finally
                try Directory.Delete(dir, true) with _ -> ()
        }

        test "dfn train takes a weighting method, its options and an affinity plan" {
            let dir = tempFolder "weighting"
            try
                let idx = Path.Combine(dir, "squares-idx3-ubyte")
                writeIdx idx 40
                let affinity = Path.Combine(dir, "affinity.csv")
                File.WriteAllText(affinity, "1,0.9,0.1,0\n0.9,1,0.2,0.1\n0.1,0.2,1,0.8\n0,0.1,0.8,1\n")
                for weighting, extra in [ "nash", [ "--nash-every"; "2" ]; "min-snr", [ "--snr-gamma"; "3" ]; "uw", [ "--uw-lr"; "0.01" ] ] do
                    let out = Path.Combine(dir, weighting)
                    let r =
                        run ([ "train"; "--data"; "idx:" + idx; "--model"; "tiny"; "--image-size"; "8"; "--timesteps"; "40"; "--steps"; "3"
                               "--batch"; "8"; "--clusters"; "2"; "--cluster-objective"; "affinity"; "--affinity"; affinity
                               "--weighting"; weighting; "--threads"; "1"; "--sample-count"; "0"; "--out"; out ] @ extra)
                    Expect.equal r.ExitCode 0 (sprintf "%s: %s" weighting r.Stderr)
                    Expect.stringContains r.Stderr "[0, 20) [20, 40)" "the affinity plan splits the two blocks"
                    Expect.equal (File.ReadAllLines(Path.Combine(out, "metrics.jsonl")) |> Array.filter (fun l -> l.StartsWith "{\"step\"") |> Array.length) 3 "three steps logged"
                let given =
                    run [ "train"; "--data"; "idx:" + idx; "--model"; "tiny"; "--image-size"; "8"; "--timesteps"; "40"; "--steps"; "2"
                          "--batch"; "8"; "--boundaries"; "0,10,40"; "--weighting"; "pcgrad"; "--threads"; "1"; "--sample-count"; "0"
                          "--out"; Path.Combine(dir, "given") ]
                Expect.equal given.ExitCode 0 given.Stderr
                Expect.stringContains given.Stderr "[0, 10) [10, 40)" "a plan from explicit boundaries"
                let badBounds = run [ "train"; "--data"; "idx:" + idx; "--model"; "tiny"; "--timesteps"; "40"; "--boundaries"; "0,10,30"; "--out"; Path.Combine(dir, "bb") ]
                Expect.equal badBounds.ExitCode 2 badBounds.Stderr
                let bad = run [ "train"; "--data"; "idx:" + idx; "--model"; "tiny"; "--out"; Path.Combine(dir, "bad"); "--weighting"; "gradnorm-x" ]
                Expect.equal bad.ExitCode 2 bad.Stderr
                Expect.stringContains bad.Stderr "gradnorm-x" "names the unknown method"
            finally
                try Directory.Delete(dir, true) with _ -> ()
        }

        test "bad analysis input: exit 2 with one line" {
            for args, mention in
                [ [ "affinity"; "--checkpoints"; "/no/such.dfn"; "--data"; "mnist" ], "/no/such.dfn"
                  [ "affinity"; "--data"; "mnist" ], "no checkpoint"
                  [ "ntg"; "--specialists"; "3"; "--timesteps"; "1000"; "--data"; "idx:/no/such/file" ], "does not divide"
                  [ "ntg"; "--data"; "idx:/no/such/file" ], "/no/such/file" ] do
                let r = run args
                Expect.equal r.ExitCode 2 (sprintf "%A: %s" args r.Stderr)
                Expect.stringContains r.Stderr mention (sprintf "%A" args)
                Expect.equal (r.Stderr.Trim().Split('\n').Length) 1 "one line"
        }
    ]
