/// Issue 29's bad inputs (the third pass), each through the built `dfn` as a user would meet them: the bench commands'
/// options, a resume on a changed data folder, evaluate's counts, a torn metrics line, and the smaller messages.
module DiffusionFunctional.Cli.Tests.BadInputThirdPassTests

open System
open System.IO
open DiffusionFunctional.Cli.Tests.Dfn
open DiffusionFunctional.Cli.Tests.BadInputSupport
open Expecto

let private cores = string Environment.ProcessorCount

/// A folder of `count` 8x8 noise PNGs named img-000.png ... (seeded per image).
let private pngFolder (dir: string) (count: int) =
    Directory.CreateDirectory dir |> ignore
    for i in 0 .. count - 1 do writeNoisePng (Path.Combine(dir, sprintf "img-%03d.png" i)) 8 (100 + i)
    dir

let private benchTests =
    testList "bench options" [
        test "overhead and stability refuse --threads outside 1..cores like every other command" {
            for command in [ "overhead"; "stability" ] do
                for threads in [ "0"; "1000" ] do
                    let r = run [ "bench"; command; "--profile"; "synthetic"; "--methods"; "vanilla"; "--steps"; "5"; "--threads"; threads ]
                    expectOneLine 2 [ "--threads"; threads; "1.." + cores ] (sprintf "bench %s --threads %s" command threads) r
        }
        test "overhead refuses step counts that leave nothing to time, naming the minimum, with or without --json" {
            for steps in [ "2"; "3" ] do
                for json in [ []; [ "--json" ] ] do
                    let r = run ([ "bench"; "overhead"; "--profile"; "synthetic"; "--methods"; "vanilla"; "--steps"; steps; "--threads"; "1" ] @ json)
                    expectOneLine 2 [ "--steps"; "at least 4"; steps ] (sprintf "bench overhead --steps %s %A" steps json) r
        }
        test "throughput refuses a negative --untimed-steps (and other counts) in one line naming the option" {
            let defaults = [ "--steps", "1"; "--threads", "1"; "--untimed-steps", "0"; "--rounds", "1" ]
            for option, value in [ "--untimed-steps", "-1"; "--steps", "0"; "--rounds", "0"; "--threads", "1000" ] do
                let options = defaults |> List.map (fun (o, v) -> if o = option then o, value else o, v)
                let r = run ([ "bench"; "throughput"; "--model"; "tiny"; "--batch"; "8" ] @ List.collect (fun (o, v) -> [ o; v ]) options)
                expectOneLine 2 [ option; value ] (sprintf "bench throughput %s %s" option value) r
        }
    ]

let private dataTests =
    testList "resume on changed data" [
        test "a data folder with images added or removed is refused naming both counts; the same images elsewhere resume" {
            let dir = tempFolder "changed-data"
            let data = pngFolder (Path.Combine(dir, "images")) 20
            let out = Path.Combine(dir, "run")
            let train (folder: string) extra = run (trainArgs ("folder:" + folder) out [ "--batch", "4" ] extra)
            Expect.equal (train data []).ExitCode 0 "first run"
            let checkpoint = Path.Combine(out, "checkpoint.dfn")
            let before = fingerprint checkpoint
            for i in 20 .. 23 do writeNoisePng (Path.Combine(data, sprintf "img-%03d.png" i)) 8 (100 + i)
            expectOneLine 2 [ "20 images"; "24 images" ] "4 images added" (train data [ "--resume" ])
            for i in 10 .. 23 do File.Delete(Path.Combine(data, sprintf "img-%03d.png" i))
            expectOneLine 2 [ "20 images"; "10 images" ] "10 images removed" (train data [ "--resume" ])
            Expect.equal (fingerprint checkpoint) before "the checkpoint is untouched"
            let moved = pngFolder (Path.Combine(dir, "moved")) 20
            let r = run (trainArgs ("folder:" + moved) out [ "--batch", "4"; "--steps", "5" ] [ "--resume" ])
            Expect.equal r.ExitCode 0 (sprintf "the same images at another path resume: %s" r.Stderr)
            Directory.Delete(dir, true)
        }
    ]

let private evaluateTests =
    testList "evaluate counts" [
        test "a --count beyond the real images is refused before any sampling, for IDX, folders and MNIST" {
            let dir = tempFolder "evaluate-count"
            let idxPath = Path.Combine(dir, "real-idx3-ubyte")
            writeIdx idxPath 100 3
            let fakes = pngFolder (Path.Combine(dir, "fake")) 30
            let reals = pngFolder (Path.Combine(dir, "real")) 12
            let out = Path.Combine(dir, "base")
            Expect.equal (run (trainArgs ("idx:" + idxPath) out [] [])).ExitCode 0 "a checkpoint to sample"
            let cases =
                [ [ "--real"; "idx:" + idxPath; "--fake"; fakes; "--count"; "200" ], [ "--count 200"; "100" ]
                  [ "--real"; "idx:" + idxPath; "--fake"; out; "--count"; "200" ], [ "--count 200"; "100" ]
                  [ "--real"; "folder:" + reals; "--fake"; out; "--count"; "20" ], [ "--count 20"; "12" ]
                  [ "--real"; "mnist"; "--fake"; out; "--count"; "20000" ], [ "--count 20000"; "10,000" ] ]
            for args, mentions in cases do
                let started = DateTime.UtcNow
                let r = run ([ "evaluate" ] @ args)
                expectOneLine 2 mentions (String.Join(" ", args)) r
                Expect.isFalse (r.Stderr.Contains "sampling") "no sampling started"
                Expect.isLessThan (DateTime.UtcNow - started).TotalSeconds 60.0 "refused at once"
            Directory.Delete(dir, true)
        }
    ]

let private metricsTests =
    testList "torn metrics" [
        test "a torn last metrics line at the checkpoint's step is reported in one line on resume, and the run goes on" {
            let dir = tempFolder "torn-metrics"
            let out = Path.Combine(dir, "run")
            let data = pngFolder (Path.Combine(dir, "images")) 16
            Expect.equal (run (trainArgs ("folder:" + data) out [ "--batch", "4"; "--steps", "4" ] [])).ExitCode 0 "first run"
            let metrics = Path.Combine(out, "metrics.jsonl")
            let lines = File.ReadAllLines metrics
            File.WriteAllLines(metrics, Array.append lines.[.. lines.Length - 2] [| lines.[lines.Length - 1].[.. 20] |])
            let r = run (trainArgs ("folder:" + data) out [ "--batch", "4"; "--steps", "6" ] [ "--resume" ])
            Expect.equal r.ExitCode 0 r.Stderr
            let warnings = r.Stderr.Split('\n') |> Array.filter (fun l -> l.Contains "metrics.jsonl lacks")
            Expect.equal warnings.Length 1 (sprintf "one line about the lost step: %s" r.Stderr)
            Expect.stringContains warnings.[0] "1 of the 4 steps" "how many"
            Expect.stringContains warnings.[0] "from step 4" "which"
            Directory.Delete(dir, true)
        }
    ]

let private messageTests =
    testList "smaller messages" [
        test "affinity names an unknown checkpoint format like the other commands" {
            let dir = tempFolder "format-99"
            let out = Path.Combine(dir, "base")
            let idxPath = Path.Combine(dir, "d-idx3-ubyte")
            writeIdx idxPath 40 5
            Expect.equal (run (trainArgs ("idx:" + idxPath) out [] [])).ExitCode 0 "a checkpoint"
            let future = Path.Combine(dir, "future.dfn")
            rebuildCheckpoint (Path.Combine(out, "checkpoint.dfn")) future (fun h -> h.["format"] <- Text.Json.Nodes.JsonValue.Create 99) id
            let r = run [ "affinity"; "--checkpoints"; future; "--data"; "idx:" + idxPath; "--groups"; "4"; "--images"; "4"; "--out"; Path.Combine(dir, "aff") ]
            expectOneLine 2 [ "format 99"; "formats 1 to" ] "format 99" r
            Directory.Delete(dir, true)
        }
        test "demo --methods ,,, says no methods were given; a missing data folder leaves no demo.json" {
            let dir = tempFolder "demo-msgs"
            expectOneLine 2 [ "no methods given" ] "--methods ,,," (run [ "demo"; "--methods"; ",,,"; "--profile"; "smoke"; "--out"; Path.Combine(dir, "a") ])
            let out = Path.Combine(dir, "b")
            expectOneLine 2 [ "/no/such/folder" ] "missing data" (run [ "demo"; "--data"; "folder:/no/such/folder"; "--profile"; "smoke"; "--threads"; "1"; "--out"; out ])
            Expect.isEmpty (filesWritten out) "no demo.json or anything else"
            Directory.Delete(dir, true)
        }
        test "a cut checkpoint's resume gives dfn users advice, not the library's; --out /proc does not name a probe file" {
            let dir = tempFolder "cut"
            let idxPath = Path.Combine(dir, "d-idx3-ubyte")
            writeIdx idxPath 40 6
            let out = Path.Combine(dir, "run")
            Expect.equal (run (trainArgs ("idx:" + idxPath) out [] [])).ExitCode 0 "a checkpoint"
            let checkpoint = Path.Combine(out, "checkpoint.dfn")
            rebuildCheckpoint checkpoint checkpoint ignore (fun n -> n / 2)
            let r = run (trainArgs ("idx:" + idxPath) out [] [ "--resume" ])
            expectOneLine 2 [ "cannot be read"; "damaged"; "another folder" ] "cut checkpoint" r
            Expect.isFalse (r.Stderr.Contains "build a new trainer") "no library advice"
            let proc = run (trainArgs ("idx:" + idxPath) "/proc" [] [])
            expectOneLine 2 [ "/proc"; "not writable" ] "--out /proc" proc
            Expect.isFalse (proc.Stderr.Contains ".dfn-write-test") "no probe file name"
            Directory.Delete(dir, true)
        }
    ]

[<Tests>]
let tests = testList "bad input, third pass" [ benchTests; dataTests; evaluateTests; metricsTests; messageTests ]
