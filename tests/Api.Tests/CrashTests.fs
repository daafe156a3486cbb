/// End-to-end fault tests: the built `dfn` is killed with SIGKILL at random moments and interrupted with SIGINT.
module DiffusionFunctional.Api.Tests.CrashTests

open System
open System.Diagnostics
open System.IO
open System.Threading
open Expecto
open DiffusionFunctional.Training
open DiffusionFunctional.Api.Tests.TestSupport

/// The dfn apphost built beside this test program (the test project references the CLI project for the build order).
let private dfnPath () =
    let baseDir = AppContext.BaseDirectory
    let rec up (dir: DirectoryInfo) =
        if isNull dir then failwith "repository root not found"
        elif File.Exists(Path.Combine(dir.FullName, "DiffusionFunctional.sln")) then dir.FullName
        else up dir.Parent
    let root = up (DirectoryInfo baseDir)
    let configuration = if baseDir.Contains "/Debug/" then "Debug" else "Release"
    Path.Combine(root, "src", "Cli", "bin", configuration, "net10.0", "dfn")

/// A 64-image 8x8 IDX file of diagonal stripes.
let private writeData (path: string) =
    let header = Array.concat [ [| 0uy; 0uy; 8uy; 3uy |]; yield! [ 64; 8; 8 ] |> List.map (fun v -> BitConverter.GetBytes(v) |> Array.rev) ]
    let body = Array.init (64 * 64) (fun k -> let i, r, c = k / 64, (k / 8) % 8, k % 8 in if (r + c + i) % 4 = 0 then 255uy else 0uy)
    File.WriteAllBytes(path, Array.append header body)

/// The last step the most recently started dfn printed.
let mutable private lastPrinted = 0L

let private start (args: string list) =
    lastPrinted <- 0L
    // Through `env --default-signal`: a suite started from a background job or under nohup hands its children SIGINT
    // and SIGHUP ignored, exec keeps an ignored signal ignored, and dfn would rightly never see the test's Ctrl-C.
    let info = ProcessStartInfo("env", [ "--default-signal=INT,TERM,HUP"; dfnPath () ] @ args, RedirectStandardOutput = true, RedirectStandardError = true)
    let p = Process.Start info
    // Drain both pipes so the child never blocks on a full pipe; keep stderr for assertions.
    let stderr = Text.StringBuilder()
    p.ErrorDataReceived.Add(fun e -> if not (isNull e.Data) then lock stderr (fun () -> stderr.AppendLine e.Data |> ignore))
    p.OutputDataReceived.Add(fun e ->
        // Plain progress lines "step N/M ..." of this process (not of the run before it, unlike metrics.jsonl).
        if not (isNull e.Data) && e.Data.StartsWith "step " then
            lastPrinted <- int64 (e.Data.Substring(5, e.Data.IndexOf('/') - 5)))
    p.BeginErrorReadLine()
    p.BeginOutputReadLine()
    p, stderr

let private trainArgs data out steps =
    [ "train"; "--data"; "idx:" + data; "--model"; "tiny"; "--out"; out; "--steps"; string steps; "--batch"; "4"
      "--lr"; "1e-3"; "--seed"; "3"; "--threads"; "1"; "--checkpoint-every"; "2"; "--sample-count"; "0"; "--log-every"; "1" ]

/// The step of the last complete line of metrics.jsonl (0 when absent), read without disturbing the writer.
let private lastLoggedStep (dir: string) =
    let path = Path.Combine(dir, "metrics.jsonl")
    if not (File.Exists path) then 0L
    else
        use fs = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite ||| FileShare.Delete)
        use reader = new StreamReader(fs)
        reader.ReadToEnd().Split('\n') |> Array.choose (fun l -> MetricsLog.StepOf l |> Option.ofNullable) |> Array.fold max 0L

let private checkpointStep (dir: string) =
    let path = Path.Combine(dir, Trainer.CheckpointName)
    if not (File.Exists path) then None
    else
        Expect.isTrue (CheckpointFile.IsValid path) "the checkpoint on disk is always complete"
        let header, reader = CheckpointFile.Read(path).ToTuple()
        reader.Dispose()
        Some(header.["step"].GetValue<int64>())

let private losses dir = MetricsLog.ReadLosses(Path.Combine(dir, "metrics.jsonl")) |> Seq.map (fun struct (s, l) -> s, l) |> List.ofSeq

[<Tests>]
let tests =
    testList "Faults (dfn process)" [
        test "SIGKILL at random moments: every restart resumes from a complete checkpoint and the losses match an uninterrupted run" {
            let dir, clean = tempDir "sigkill"
            use _ = clean
            let data = Path.Combine(dir, "data-idx3-ubyte")
            writeData data
            // Long enough that a loaded machine (stdout read late, the child running ahead) cannot finish the run
            // before the tenth kill.
            let steps = 300
            let reference = Path.Combine(dir, "reference")
            let p, err = start (trainArgs data reference steps)
            p.WaitForExit()
            Expect.equal p.ExitCode 0 (sprintf "reference run: %O" err)

            let killed = Path.Combine(dir, "killed")
            let rng = Random(20231125)
            let mutable kills = 0
            let mutable finished = false
            let mutable previous = 0L
            while not finished do
                let before = checkpointStep killed
                let args = trainArgs data killed steps @ (if before.IsSome then [ "--resume" ] else [])
                let p, err = start args
                if kills < 10 then
                    if kills % 4 = 3 then
                        // Some kills land during start-up or the first steps: after a random delay, but never later
                        // than the fifth new step, since a fast machine trains all 300 steps of this model within it.
                        let delay = int64 (rng.Next(200, 2500))
                        let latest = defaultArg before 0L + 5L
                        let clock = Stopwatch.StartNew()
                        while clock.ElapsedMilliseconds < delay && lastPrinted < latest && not p.HasExited do Thread.Sleep 1
                    else
                        // Most land a random few steps into training, at a random moment inside a step or a checkpoint write.
                        let target = defaultArg before 0L + int64 (rng.Next(1, 6))
                        let clock = Stopwatch.StartNew()
                        while lastPrinted < target && not p.HasExited && clock.Elapsed.TotalSeconds < 60.0 do Thread.Sleep 5
                        Thread.Sleep(rng.Next(0, 60))
                    if not p.HasExited then
                        p.Kill()
                        kills <- kills + 1
                    p.WaitForExit()
                else
                    if not (p.WaitForExit 120000) then
                        p.Kill()
                        failtest "the final run did not finish within 120 s"
                    Expect.equal p.ExitCode 0 (sprintf "final run: %O" err)
                    finished <- true
                if p.HasExited && p.ExitCode = 0 then finished <- true
                let text = lock err (fun () -> err.ToString())
                match before with
                | Some step when text.Contains "resuming" ->
                    Expect.stringContains text (sprintf "at step %d" step) "resumed from the checkpoint that was on disk"
                | _ -> ()
                match checkpointStep killed with
                | Some step ->
                    Expect.isGreaterThanOrEqual step previous "checkpoints never go back"
                    previous <- step
                | None -> ()
            Expect.isGreaterThanOrEqual kills 10 "at least ten kills"
            let expected = losses reference
            let actual = losses killed
            Expect.equal (List.map fst actual) [ 1L .. int64 steps ] "one metrics line per step, in order"
            for (s, a), (_, b) in List.zip actual expected do
                Expect.floatClose { absolute = 0.0; relative = 1e-6 } a b (sprintf "loss of step %d" s)
        }

        test "a diverging run (lr 1e12, no clipping) exits 1 naming the step and keeps the last good checkpoint" {
            let dir, clean = tempDir "diverge"
            use _ = clean
            let data = Path.Combine(dir, "data-idx3-ubyte")
            writeData data
            let out = Path.Combine(dir, "run")
            let args = trainArgs data out 200 |> List.map (fun a -> if a = "1e-3" then "1e12" else a)
            let p, err = start (args @ [ "--clip"; "0"; "--checkpoint-every"; "1" ])
            if not (p.WaitForExit 120000) then
                p.Kill()
                failtest "dfn did not stop"
            let text = lock err (fun () -> err.ToString())
            Expect.equal p.ExitCode 1 text
            let m = Text.RegularExpressions.Regex.Match(text, @"training diverged at step (\d+) \((.+)\); last good checkpoint kept")
            Expect.isTrue m.Success (sprintf "message names the step, the reason and the checkpoint: %s" text)
            let failedAt = int64 m.Groups.[1].Value
            Expect.equal (checkpointStep out) (Some(failedAt - 1L)) "the checkpoint is the step before the failure"
            Expect.equal (text.Split('\n') |> Array.filter (fun l -> l.StartsWith "dfn: " && l.Contains "at step") |> Array.length) 1 "one line"
        }

        test "SIGINT finishes the step, writes a checkpoint and exits 130" {
            let dir, clean = tempDir "sigint"
            use _ = clean
            let data = Path.Combine(dir, "data-idx3-ubyte")
            writeData data
            let out = Path.Combine(dir, "run")
            let p, err = start (trainArgs data out 100000)
            let clock = Stopwatch.StartNew()
            while lastLoggedStep out < 3L && clock.Elapsed.TotalSeconds < 60.0 do Thread.Sleep 10
            use kill = Process.Start("kill", [ "-INT"; string p.Id ])
            kill.WaitForExit()
            if not (p.WaitForExit 60000) then
                p.Kill()
                failtest "dfn did not stop within 60 s of SIGINT"
            Expect.equal p.ExitCode 130 (sprintf "exit code (%O)" err)
            let step = checkpointStep out
            Expect.equal step (Some(lastLoggedStep out)) "the checkpoint holds the last finished step"
        }
    ]

[<Tests>]
let sampleTests =
    testList "dfn sample and export" [
        test "a short run's checkpoint samples into a grid and N single PNGs, deterministically, and exports to PyTorch" {
            let dir, clean = tempDir "clisample"
            use _ = clean
            let data = Path.Combine(dir, "data-idx3-ubyte")
            writeData data
            let out = Path.Combine(dir, "run")
            let run args =
                let p, err = start args
                if not (p.WaitForExit 120000) then
                    p.Kill()
                    failtest "dfn did not finish"
                Expect.equal p.ExitCode 0 (lock err (fun () -> err.ToString()))
            run (trainArgs data out 4)
            let checkpoint = Path.Combine(out, Trainer.CheckpointName)
            let sampleInto name = run [ "sample"; "--checkpoint"; checkpoint; "--count"; "5"; "--steps"; "5"; "--seed"; "2"; "--threads"; "1"; "--out"; Path.Combine(dir, name) ]
            sampleInto "a"
            sampleInto "b"
            let images name = Directory.GetFiles(Path.Combine(dir, name, "images")) |> Array.sort
            Expect.equal (images "a").Length 5 "five single images"
            Expect.isTrue (File.Exists(Path.Combine(dir, "a", "grid.png"))) "grid"
            for fa, fb in Array.zip (images "a") (images "b") do
                Expect.sequenceEqual (File.ReadAllBytes fa) (File.ReadAllBytes fb) "same seed, same PNG"
            let weights = Path.Combine(dir, "unet.pt")
            run [ "export"; "--checkpoint"; checkpoint; "--out"; weights; "--format"; "pytorch" ]
            Expect.isGreaterThan (FileInfo(weights).Length) 1000L "a PyTorch file was written"
        }
    ]
