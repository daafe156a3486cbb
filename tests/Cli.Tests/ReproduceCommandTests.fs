/// `dfn reproduce --profile smoke`: all three parts (convergence, O1, O2) end to end, interrupted once and resumed,
/// with every output checked for existence and parsed.
module DiffusionFunctional.Cli.Tests.ReproduceCommandTests

open System
open System.Diagnostics
open System.IO
open System.Text.RegularExpressions
open System.Text.Json
open DiffusionFunctional.Cli.Tests.Dfn
open Expecto

let private outDir = Path.Combine(Path.GetTempPath(), sprintf "dfn-reproduce-test-%s" (Guid.NewGuid().ToString("N")))
let private args = [ "reproduce"; "--profile"; "smoke"; "--out"; outDir; "--threads"; "1"; "--workers"; "1"; "--log-every"; "1" ]
let private results () = Path.Combine(outDir, "convergence", "results.jsonl")

/// Starts the smoke run, sends SIGINT once the second method trains, and returns the exit code and the convergence
/// results written by then.
let private interrupted =
    lazy (
        let r = runInterruptedAt "min-snr seed 0: step 4/" args
        let saved = if File.Exists(results ()) then File.ReadAllLines(results ()) else [||]
        r.ExitCode, r.Stderr + "\nstdout:\n" + r.Stdout, saved)

let private finished =
    lazy (
        interrupted.Force() |> ignore
        runWithin 900 args)

let private json (name: string) = JsonDocument.Parse(File.ReadAllText(Path.Combine(outDir, name))).RootElement

[<Tests>]
let tests =
    testSequenced <| testList "dfn reproduce" [
        test "SIGINT stops with 130 after writing what allows a resume" {
            let code, stderr, saved = interrupted.Force()
            Expect.equal code 130 stderr
            Expect.isGreaterThan saved.Length 0 "some evaluation points were recorded before the signal"
            Expect.isTrue (File.Exists(Path.Combine(outDir, "report.md"))) "a partial report is written"
        }

        test "the same command resumes, finishes with exit 0 and redoes nothing it had finished" {
            let r = finished.Force()
            Expect.equal r.ExitCode 0 r.Stderr
            let _, _, before = interrupted.Force()
            let after = File.ReadAllLines(results ())
            for line in before do Expect.contains after line "a finished evaluation is kept as it was, not redone"
        }

        test "report.json holds every part: 4 methods with at least 10 points, floors, O1 at 3 stages, O2 for 2 models, verdicts" {
            finished.Force() |> ignore
            let root = json "report.json"
            let methods = [ for m in root.GetProperty("methods").EnumerateArray() -> m ]
            Expect.equal [ for m in methods -> m.GetProperty("id").GetString() ] [ "vanilla"; "min-snr"; "uw-snr-k5"; "nash-snr-k5" ] "methods"
            for m in methods do
                Expect.isGreaterThanOrEqual (m.GetProperty("curve").GetArrayLength()) 10 "at least 10 evaluation points"
                Expect.equal (m.GetProperty("final_fd").GetArrayLength()) 1 "one seed"
            Expect.isTrue (root.GetProperty("complete").GetBoolean()) "complete"
            Expect.isGreaterThan (root.GetProperty("floors").GetArrayLength()) 0 "real-vs-real floors"
            Expect.equal (root.GetProperty("affinity").GetArrayLength()) 3 "affinity at early, middle and final checkpoints"
            Expect.equal (root.GetProperty("ntg").GetArrayLength()) 2 "NTG of vanilla and ANT-UW"
            let verdicts = [ for c in root.GetProperty("claims").EnumerateArray() -> c.GetProperty("verdict").GetString() ]
            Expect.isGreaterThanOrEqual verdicts.Length 6 "a verdict per claim"
            for v in verdicts do Expect.isTrue (v.StartsWith "reproduced" || v.StartsWith "partly" || v.StartsWith "not" || v.Contains "ends" || v.Contains "difference") v
        }

        test "report.md has the summary and the three sections; every figure is a PNG, sample grids at 64 pixels per image; the plots are also SVG" {
            finished.Force() |> ignore
            let md = File.ReadAllText(Path.Combine(outDir, "report.md"))
            for heading in [ "## Summary"; "## 1. Convergence"; "## 2. Observation O1"; "## 3. Observation O2"; "Plateau criterion" ] do
                Expect.stringContains md heading heading
            for png in [ "convergence-fd.png"; "convergence-kid.png"; "affinity-heatmap.png"; "affinity-decay.png"; "ntg.png"; "samples-vanilla.png"; "samples-nash-snr-k5.png" ] do
                let bytes = File.ReadAllBytes(Path.Combine(outDir, png))
                Expect.sequenceEqual bytes.[0..7] [| 0x89uy; 0x50uy; 0x4Euy; 0x47uy; 0x0Duy; 0x0Auy; 0x1Auy; 0x0Auy |] (png + " is a PNG")
            for svg in [ "convergence-fd.svg"; "convergence-kid.svg" ] do
                let text = File.ReadAllText(Path.Combine(outDir, svg))
                Expect.stringContains text "<svg" (svg + " is an SVG document")
                Expect.stringContains text "</svg>" (svg + " is complete")
            // FD falls by orders of magnitude: its axis is logarithmic. The vertical axis's tick labels (numbers drawn at
            // one x position) sit at heights linear in the logarithm of their values.
            let fdSvg = File.ReadAllText(Path.Combine(outDir, "convergence-fd.svg"))
            Expect.stringContains fdSvg "log scale" "the FD axis says it is logarithmic"
            let yTicks =
                Regex.Matches(fdSvg, @"<text transform=""translate\(([-0-9.]+) ([-0-9.]+)\)[^>]*>\s*([0-9][0-9,.]*)\s*</text>")
                |> Seq.map (fun m -> float m.Groups.[1].Value, float m.Groups.[2].Value, float (m.Groups.[3].Value.Replace(",", "")))
                |> Seq.groupBy (fun (x, _, _) -> x)
                |> Seq.map (fun (_, ticks) -> ticks |> Seq.map (fun (_, y, v) -> y, v) |> Seq.sortBy snd |> Seq.toArray)
                |> Seq.maxBy (fun ticks -> ticks.Length)
            Expect.isGreaterThanOrEqual yTicks.Length 2 "at least two labelled FD ticks"
            let pixelsPerDecade =
                yTicks |> Array.pairwise |> Array.map (fun ((y0, v0), (y1, v1)) -> (y0 - y1) / (log10 v1 - log10 v0))
            for p in pixelsPerDecade do
                Expect.floatClose Accuracy.low p pixelsPerDecade.[0] "tick heights linear in log10 of their values"
            use grid = SkiaSharp.SKBitmap.Decode(Path.Combine(outDir, "samples-vanilla.png"))
            // 16 samples of 16x16 in a 4x4 grid: each image enlarged to at least 64 pixels.
            Expect.isGreaterThanOrEqual grid.Width (4 * 64) "images at least 64 pixels wide"
        }

        test "a final point scored on more images also has the FD of its first images; a result written without it gains it from the checkpoint" {
            finished.Force() |> ignore
            let fdOfFirst (line: string) =
                let node = Nodes.JsonNode.Parse(line)
                match node["fd_of_first"] with
                | null -> nan
                | v when v.GetValueKind() = JsonValueKind.String -> Double.Parse(v.GetValue<string>(), Globalization.CultureInfo.InvariantCulture) // "NaN"
                | v -> v.GetValue<double>()
            let isFinal (line: string) =
                let samples = Nodes.JsonNode.Parse(line)["samples"]
                samples.GetValue<int>() = 16
            let lines = File.ReadAllLines(results ())
            let finals = lines |> Array.filter isFinal
            Expect.equal finals.Length 4 "the final point of each method is scored on 16 images, the others on 12"
            for line in finals do Expect.isTrue (Double.IsFinite (fdOfFirst line)) line
            for line in lines |> Array.filter (isFinal >> not) do Expect.isTrue (Double.IsNaN (fdOfFirst line)) line
            // As an older version wrote them: no fd_of_first at all.
            let older =
                lines |> Array.map (fun line ->
                    let node = Nodes.JsonNode.Parse(line).AsObject()
                    node.Remove("fd_of_first") |> ignore
                    node.ToJsonString())
            File.WriteAllLines(results (), older)
            let r = runWithin 600 args
            Expect.equal r.ExitCode 0 r.Stderr
            let again = File.ReadAllLines(results ()) |> Array.filter isFinal
            Expect.equal again.Length 4 "still one final record per method"
            for before, after in Array.zip (finals |> Array.map fdOfFirst |> Array.sort) (again |> Array.map fdOfFirst |> Array.sort) do
                Expect.floatClose Accuracy.medium after before "the same checkpoint and sampler noise give the same FD"
        }

        test "a folder started under DDIM is refused by ours (now DPM-Solver++) and goes on under ours:sampler=ddim" {
            let dir = Path.Combine(outDir, "ddim-era", "convergence")
            Directory.CreateDirectory dir |> ignore
            let manifest = """{ "format": 2, "profile": "reproduce-smoke", "data": "mnist", "schedule": "linear", "timesteps": 100, "split_seed": 20231 }"""
            File.WriteAllText(Path.Combine(dir, "demo.json"), manifest)
            let report recipe = run [ "reproduce"; "--profile"; "smoke"; "--recipe"; recipe; "--report"; "--threads"; "1"; "--out"; Path.GetDirectoryName dir ]
            let refused = report "ours"
            Expect.equal refused.ExitCode 2 refused.Stderr
            Expect.stringContains refused.Stderr "sampler DDIM or DDPM, not \"DPM-Solver++(2M), 5 steps\"" "names both samplers"
            let continued = report "ours:sampler=ddim"
            Expect.equal continued.ExitCode 1 (sprintf "the report step names the missing cells; stderr: %s" continued.Stderr)
            Expect.stringContains (continued.Stdout + continued.Stderr) "unfinished" "missing cells named"
            Expect.equal (File.ReadAllText(Path.Combine(dir, "demo.json"))) manifest "demo.json untouched"
        }

        test "cleanup" {
            if Directory.Exists outDir then Directory.Delete(outDir, true)
        }
    ]
