/// Grids of cells (`--shard`, `--cell`, `--report`, `--jobs`): shards run at once plus the report step give the
/// sequential run's report; a cell another process holds is left alone; `--jobs` stops and resumes like one process.
module DiffusionFunctional.Cli.Tests.GridCommandTests

open System
open System.Diagnostics
open System.IO
open System.Text.Json.Nodes
open DiffusionFunctional.Cli.Tests.Dfn
open DiffusionFunctional.Cli.Tests.BadInputSupport
open Expecto

let private folder name = Path.Combine(Path.GetTempPath(), sprintf "dfn-grid-%s-%s" name (Guid.NewGuid().ToString("N")))

let private reproduce (out: string) (extra: string list) =
    [ "reproduce"; "--profile"; "smoke"; "--no-observations"; "--out"; out; "--threads"; "1"; "--workers"; "1"; "--log-every"; "10" ] @ extra

/// Starts `dfn ARGS` without waiting.
let private start (args: string list) =
    let p = Process.Start(signallableStartInfo args)
    let out = p.StandardOutput.ReadToEndAsync()
    let err = p.StandardError.ReadToEndAsync()
    fun () ->
        if not (p.WaitForExit 600_000) then p.Kill true; failwith "a shard did not finish within 10 minutes"
        { ExitCode = p.ExitCode; Stdout = out.Result; Stderr = err.Result }

/// report.json without what may differ between runs of the same cells: timings and the output folder's name.
let private comparable (out: string) =
    let rec strip (node: JsonNode) =
        match node with
        | :? JsonObject as o ->
            for key in [ for p in o -> p.Key ] do
                if key.Contains "seconds" then o.Remove key |> ignore else strip o.[key]
        | :? JsonArray as a -> for item in a do if not (isNull item) then strip item
        | _ -> ()
    let root = JsonNode.Parse(File.ReadAllText(Path.Combine(out, "report.json")))
    strip root
    root.ToJsonString().Replace(out, "OUT")

let private sequential = lazy (let out = folder "sequential" in out, runWithin 600 (reproduce out []))

[<Tests>]
let tests =
    testSequenced <| testList "grids of cells" [
        test "two shards run at once, then --report, give the sequential run's report.json (timings aside)" {
            let out = folder "shards"
            try
                let first = start (reproduce out [ "--shard"; "1/2" ])
                let second = start (reproduce out [ "--shard"; "2/2" ])
                let shards = [ first (); second () ]
                for r in shards do
                    Expect.equal r.ExitCode 0 r.Stderr
                    Expect.isFalse (File.Exists(Path.Combine(out, "report.json"))) "a shard writes no report"
                Expect.stringContains (shards.[0].Stderr + shards.[1].Stderr) "--report writes the report" "the last shard says what comes next"
                let report = runWithin 600 (reproduce out [ "--report" ])
                Expect.equal report.ExitCode 0 report.Stderr
                let markdown = File.ReadAllText(Path.Combine(out, "report.md"))
                Expect.stringContains markdown "Not measured: the run had --no-observations." "O1 and O2 say why they are empty"
                Expect.isFalse (markdown.Contains "not measured yet") "not 'yet': this run will never measure them"
                let seqOut, seqRun = sequential.Force()
                Expect.equal seqRun.ExitCode 0 seqRun.Stderr
                Expect.equal (comparable out) (comparable seqOut) "the same report, number for number"
            finally
                if Directory.Exists out then Directory.Delete(out, true)
        }

        test "with O1 and O2, a seed's specialists are a cell of the grid: a shard trains them, --report only scores, the report is the sequential one's" {
            let observed out extra = reproduce out extra |> List.filter ((<>) "--no-observations")
            let out = folder "observed-shards"
            let seqOut = folder "observed-sequential"
            try
                let unknown = runWithin 120 (observed out [ "--cell"; "nope/seed-0" ])
                expectOneLine 2 [ "nope/seed-0"; "ntg/seed-0" ] "an unknown cell lists the specialists' cell too" unknown
                let first = start (observed out [ "--shard"; "1/2" ])
                let second = start (observed out [ "--shard"; "2/2" ])
                let shards = [ first (); second () ] |> List.map (fun r -> Expect.equal r.ExitCode 0 r.Stderr; r.Stdout + r.Stderr)
                // 4 convergence cells then ntg/seed-0 at position 4: shard 1 of 2 takes positions 0, 2, 4.
                Expect.stringContains shards.[0] "specialist-0: training steps" "shard 1/2 trains the specialists"
                Expect.isFalse (shards.[1].Contains "specialist-") "shard 2/2 trains none"
                Expect.isTrue (File.Exists(Path.Combine(out, "ntg", "seed-0", "specialists.done"))) "the cell says it is finished"
                let report = runWithin 600 (observed out [ "--report" ])
                Expect.equal report.ExitCode 0 report.Stderr
                Expect.isFalse ((report.Stdout + report.Stderr).Contains "training steps") "the report step trains nothing"
                let sequential = runWithin 600 (observed seqOut [])
                Expect.equal sequential.ExitCode 0 sequential.Stderr
                Expect.equal (comparable out) (comparable seqOut) "the same report, number for number"
            finally
                for d in [ out; seqOut ] do if Directory.Exists d then Directory.Delete(d, true)
        }

        test "--report before the cells ran names every missing cell, exits 1, and writes a partial report" {
            let out = folder "early"
            try
                let r = runWithin 300 (reproduce out [ "--report" ])
                Expect.equal r.ExitCode 1 r.Stderr
                for cell in [ "vanilla/seed-0"; "min-snr/seed-0"; "uw-snr-k5/seed-0"; "nash-snr-k5/seed-0" ] do
                    Expect.stringContains r.Stderr cell "each missing cell is named"
                Expect.isTrue (File.Exists(Path.Combine(out, "report.md"))) "a partial report"
            finally
                if Directory.Exists out then Directory.Delete(out, true)
        }

        test "a cell whose lock another process holds is left to it: nothing of it is written, and it runs once released" {
            let out = folder "held"
            try
                let lockPath = Path.Combine(out, "convergence", "runs", "vanilla", "seed-0", "cell.lock")
                Directory.CreateDirectory(Path.GetDirectoryName lockPath) |> ignore
                let held = new FileStream(lockPath, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None)
                let r = runWithin 300 (reproduce out [ "--cell"; "vanilla/seed-0,min-snr/seed-0" ])
                held.Dispose()
                Expect.equal r.ExitCode 0 r.Stderr
                Expect.stringContains r.Stderr "vanilla/seed-0: another process is running this cell" "said"
                let results = File.ReadAllText(Path.Combine(out, "convergence", "results.jsonl"))
                Expect.isFalse (results.Contains "\"method\":\"vanilla\"") "no record of the held cell"
                Expect.stringContains results "\"method\":\"min-snr\"" "the other cell ran"
                Expect.isEmpty (Directory.GetFiles(Path.GetDirectoryName lockPath, "*.dfn")) "no checkpoint of the held cell"
                let again = runWithin 300 (reproduce out [ "--cell"; "vanilla/seed-0" ])
                Expect.equal again.ExitCode 0 again.Stderr
                Expect.stringContains (File.ReadAllText(Path.Combine(out, "convergence", "results.jsonl"))) "\"method\":\"vanilla\"" "released, it runs"
            finally
                if Directory.Exists out then Directory.Delete(out, true)
        }

        test "--jobs 2 stopped by SIGINT stops both shards at a checkpoint (130); the same command resumes and matches the sequential report" {
            let out = folder "jobs"
            try
                let stopped = runInterruptedAt "[shard 2/2] min-snr seed 0: step 10/" (reproduce out [ "--jobs"; "2" ])
                Expect.equal stopped.ExitCode 130 (stopped.Stderr + stopped.Stdout)
                Expect.stringContains stopped.Stdout "[shard 1/2]" "shard 1's lines are relayed"
                Expect.isNonEmpty (Directory.GetFiles(Path.Combine(out, "convergence", "runs"), "*.dfn", SearchOption.AllDirectories)) "checkpoints written"
                let finished = runWithin 600 (reproduce out [ "--jobs"; "2" ])
                Expect.equal finished.ExitCode 0 finished.Stderr
                let seqOut, _ = sequential.Force()
                Expect.equal (comparable out) (comparable seqOut) "the same report as one process"
            finally
                if Directory.Exists out then Directory.Delete(out, true)
        }

        test "bad selections are one-line errors with exit 2" {
            let out = folder "bad"
            for extra, mention in [ [ "--shard"; "3/2" ], "1 <= i <= n"; [ "--shard"; "half" ], "i/n"
                                    [ "--cell"; "nope/seed-0" ], "vanilla/seed-0"; [ "--jobs"; "2"; "--shard"; "1/2" ], "--jobs"
                                    [ "--shard"; "1/2"; "--report" ], "one of them" ] do
                expectOneLine 2 [ mention ] (String.Join(" ", extra)) (runWithin 120 (reproduce out extra))
            Expect.isFalse (Directory.Exists out) "nothing written"
        }

        test "cleanup" {
            let out, _ = sequential.Force()
            if Directory.Exists out then Directory.Delete(out, true)
        }
    ]
