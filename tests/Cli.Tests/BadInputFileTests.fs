/// Issue 11's bad files and locations: truncated images, checkpoints with valid checksums but unusable contents,
/// real images of another size, outputs that cannot be written, signals and EMA weights that are still noise.
module DiffusionFunctional.Cli.Tests.BadInputFileTests

open System
open System.Diagnostics
open System.IO
open System.Text.Json
open System.Text.Json.Nodes
open System.Text.RegularExpressions
open DiffusionFunctional.Cli.Tests.Dfn
open DiffusionFunctional.Cli.Tests.BadInputSupport
open DiffusionFunctional.Cli.Tests.BadInputSupport.Fixture
open Expecto

let private evaluateJson (what: string) (r: Outcome) =
    Expect.equal r.ExitCode 0 (sprintf "%s: %s" what r.Stderr)
    JsonDocument.Parse(r.Stdout.Trim()).RootElement

let private warnings (r: Outcome) = r.Stderr.Split('\n') |> Array.filter (fun l -> l.Contains "warning")

/// A folder of `count` noise PNGs of `size` x `size`, named img-00.png, ...
let private noiseFolder name size count =
    let dir = fresh name
    Directory.CreateDirectory dir |> ignore
    for i in 0 .. count - 1 do writeNoisePng (Path.Combine(dir, sprintf "img-%02d.png" i)) size (1000 * size + i)
    dir

let private imageTests =
    testList "images" [
        test "a half-truncated PNG is skipped with a warning naming it and counted, by train and by evaluate" {
            let images = noiseFolder "train-pngs" 16 12
            let broken = Path.Combine(images, "img-05.png")
            truncateToHalf broken
            let out = fresh "folder-run"
            let r = run (trainArgs ("folder:" + images) out [ "--batch", "4"; "--steps", "2" ] [])
            Expect.equal r.ExitCode 0 r.Stderr
            Expect.equal (warnings r |> Array.filter (fun l -> l.Contains broken)).Length 1 (sprintf "one warning names the file: %s" r.Stderr)
            Expect.stringContains r.Stderr "skipped 1 unreadable image(s), using 11" "counted"
            Expect.equal (metricSteps (Path.Combine(out, "metrics.jsonl"))) [ 1L; 2L ] "training ran"

            let fakes = noiseFolder "fake-pngs" 16 6
            let brokenFake = Path.Combine(fakes, "img-02.png")
            truncateToHalf brokenFake
            let e = run [ "evaluate"; "--real"; images; "--fake"; fakes; "--no-cache"; "--json" ]
            let json = evaluateJson "evaluate" e
            for file in [ broken; brokenFake ] do
                Expect.equal (warnings e |> Array.filter (fun l -> l.Contains file)).Length 1 (sprintf "one warning names %s: %s" file e.Stderr)
            Expect.equal (json.GetProperty("real_skipped").GetInt32()) 1 "real file counted"
            Expect.equal (json.GetProperty("fake_skipped").GetInt32()) 1 "generated file counted"
            Expect.equal (json.GetProperty("real_count").GetInt32()) 11 "the rest of the real images used"
            Expect.equal (json.GetProperty("fake_count").GetInt32()) 5 "the rest of the generated images used"
        }

        test "evaluate resizes IDX real images to a 16x16 model's size and reports the seeded subset; other-size folders are refused" {
            let run16 = fresh "run16"
            Expect.equal (run (trainArgs (idx ()) run16 [ "--image-size", "16"; "--steps", "2" ] [])).ExitCode 0 "16x16 run"
            let evaluate seed = run [ "evaluate"; "--real"; idx (); "--fake"; run16; "--count"; "4"; "--sampler-steps"; "2"; "--seed"; seed; "--no-cache"; "--json" ]
            for seed in [ "0"; "3" ] do
                let json = evaluateJson "evaluate a run folder" (evaluate seed)
                Expect.equal [ for d in json.GetProperty("image_shape").EnumerateArray() -> d.GetInt32() ] [ 1; 16; 16 ] "8x8 real images resized to 16x16"
                Expect.equal (json.GetProperty("real_selection").GetString()) (sprintf "random 4 of 40 (seed %s)" seed) "seeded random subset, stated"
                Expect.equal (json.GetProperty("fake_count").GetInt32()) 4 "four samples"
            let small = noiseFolder "real-8" 8 4
            let r = run [ "evaluate"; "--real"; small; "--fake"; run16; "--count"; "4"; "--sampler-steps"; "2"; "--no-cache" ]
            // The generated images are sampled before the real ones are read: that progress line may precede the error.
            let progress, error = r.Stderr.Trim().Split('\n') |> Array.partition (fun l -> l.StartsWith "dfn: sampling ")
            Expect.isLessThanOrEqual progress.Length 1 "at most the sampling line besides the error"
            expectOneLine 2 [ "8x8"; "16x16" ] "real folder of another size" { r with Stderr = String.Join("\n", error) }
        }

        test "evaluate --count draws a seeded random subset of a real or generated folder, not its first N files" {
            let sorted = fresh "sorted"
            Directory.CreateDirectory sorted |> ignore
            // Sorted by name, the first six are black and the last six white.
            for i in 0 .. 5 do
                writePng (Path.Combine(sorted, sprintf "a-%02d.png" i)) 16 (fun _ _ -> 0uy)
                writePng (Path.Combine(sorted, sprintf "b-%02d.png" i)) 16 (fun _ _ -> 255uy)
            let files = Directory.GetFiles sorted |> Array.sort
            let noise = noiseFolder "noise" 16 4
            // A seed whose draw mixes black and white (most do); the permutation is the library's data order.
            let seed, chosen =
                Seq.initInfinite id
                |> Seq.map (fun s -> s, DiffusionFunctional.Data.DataStream.Permutation(12, uint64 s, 0UL) |> Array.take 4)
                |> Seq.find (fun (_, c) -> Array.exists (fun i -> i < 6) c && Array.exists (fun i -> i >= 6) c)
            let copyOf name (picked: int seq) =
                let dir = fresh name
                Directory.CreateDirectory dir |> ignore
                for i in picked do File.Copy(files.[i], Path.Combine(dir, Path.GetFileName files.[i]))
                dir
            let fd (j: JsonElement) = j.GetProperty("fd_resnet18").GetDouble()
            let evaluate real fake =
                evaluateJson "evaluate folders" (run [ "evaluate"; "--real"; real; "--fake"; fake; "--count"; "4"; "--seed"; string seed; "--no-cache"; "--json" ])
            let drawn = evaluate sorted noise
            Expect.equal (drawn.GetProperty("real_selection").GetString()) (sprintf "random 4 (seed %d)" seed) "the subset is stated"
            let drawnCopy = copyOf "real-drawn" chosen
            Expect.floatClose Accuracy.medium (fd drawn) (fd (evaluate drawnCopy noise)) "the real subset is the seeded permutation's first four"
            let firstFour = evaluate (copyOf "real-first" [ 0 .. 3 ]) noise
            Expect.isGreaterThan (abs (fd drawn - fd firstFour)) (1e-3 * (1.0 + abs (fd drawn))) "not the first four files"
            // Generated images from a folder are drawn the same way.
            let drawnFakes = evaluate noise sorted
            Expect.equal (drawnFakes.GetProperty("fake_selection").GetString()) (sprintf "random 4 (seed %d)" seed) "the generated subset is stated"
            Expect.floatClose Accuracy.medium (fd drawnFakes) (fd (evaluate noise drawnCopy)) "the generated subset is the same seeded draw"
        }
    ]

let private checkpointTests =
    testList "checkpoints" [
        test "an unknown format or a truncated payload behind a valid checksum: exit 2, one line, file unchanged" {
            let source = baseCheckpoint ()
            let control = Path.Combine(fresh "rebuilt", "checkpoint.dfn")
            rebuildCheckpoint source control ignore id
            let ok = run [ "sample"; "--checkpoint"; control; "--out"; fresh "control-samples"; "--count"; "2"; "--sampler-steps"; "2" ]
            Expect.equal ok.ExitCode 0 (sprintf "a rebuilt but unchanged checkpoint loads (the helper is right): %s" ok.Stderr)
            let format99 = Path.Combine(fresh "format99", "checkpoint.dfn")
            rebuildCheckpoint source format99 (fun h -> h.["format"] <- JsonValue.Create 99) id
            // Three eighths of the sections: the live weights (about a quarter) and part of the EMA weights.
            let truncated = Path.Combine(fresh "truncated", "checkpoint.dfn")
            rebuildCheckpoint source truncated ignore (fun n -> n * 3 / 8)
            for file, mentions in [ format99, [ "format 99"; "1 to 3" ]; truncated, [ "cannot be read" ] ] do
                let before = fingerprint file
                let out = fresh "refused"
                let runFolder = Path.GetDirectoryName file
                for args in
                    [ [ "sample"; "--checkpoint"; file; "--out"; out; "--count"; "2"; "--sampler-steps"; "2" ]
                      [ "export"; "--checkpoint"; file; "--format"; "pytorch"; "--out"; Path.Combine(out, "unet.pt") ]
                      [ "evaluate"; "--real"; idx (); "--fake"; file; "--count"; "4"; "--sampler-steps"; "2"; "--no-cache" ]
                      trainArgs (idx ()) runFolder [] [ "--resume" ] ] do
                    expectOneLine 2 (file :: mentions) (String.Join(" ", args)) (run args)
                Expect.equal (fingerprint file) before (sprintf "%s unchanged" file)
                Expect.isEmpty (filesWritten out) "no output written"
                Expect.equal (filesWritten runFolder) [ file ] "the refused resume wrote nothing into the run folder"
        }
    ]

let private outputTests =
    testList "outputs" [
        test "--out is a file: train, sample, affinity, ntg and demo refuse it at once and leave it alone" {
            let file = fresh "a-file"
            File.WriteAllText(file, "keep me")
            let before = fingerprint file
            for name, args in
                [ "train", trainArgs (idx ()) file [ "--steps", "100000" ] []
                  "sample", [ "sample"; "--checkpoint"; baseRun (); "--out"; file; "--count"; "1000" ]
                  "affinity", [ "affinity"; "--checkpoints"; baseCheckpoint (); "--data"; idx (); "--groups"; "4"; "--images"; "4"; "--out"; file ]
                  "ntg", [ "ntg"; "--data"; idx (); "--model"; "tiny"; "--image-size"; "8"; "--timesteps"; "40"; "--sampler-steps"; "2"; "--steps"; "100000"; "--threads"; "1"; "--out"; file ]
                  "demo", [ "demo"; "--data"; idx (); "--profile"; "smoke"; "--threads"; "1"; "--out"; file ] ] do
                let clock = Stopwatch.StartNew()
                expectOneLine 2 [ "--out"; file; "is a file" ] name (runWithin 60 args)
                Expect.isLessThan clock.Elapsed.TotalSeconds 20.0 (sprintf "%s refused before any work" name)
            Expect.equal (fingerprint file) before "the file is untouched"
        }

        test "--out inside a read-only folder: exit 2 naming it, before any work" {
            match readOnlyFolder () with
            | None -> skiptest "no folder refuses writes on this machine"
            | Some folder ->
                let inside name = Path.Combine(folder, sprintf "dfn-%s-%s" name (Guid.NewGuid().ToString("N").Substring(0, 6)))
                for name, args in
                    [ "train", trainArgs (idx ()) (inside "train") [ "--steps", "100000" ] []
                      "sample", [ "sample"; "--checkpoint"; baseRun (); "--out"; inside "sample"; "--count"; "1000" ]
                      "affinity", [ "affinity"; "--checkpoints"; baseCheckpoint (); "--data"; idx (); "--groups"; "4"; "--images"; "4"; "--out"; inside "affinity" ]
                      "ntg", [ "ntg"; "--data"; idx (); "--model"; "tiny"; "--image-size"; "8"; "--timesteps"; "40"; "--sampler-steps"; "2"; "--steps"; "100000"; "--threads"; "1"; "--out"; inside "ntg" ]
                      "demo", [ "demo"; "--data"; idx (); "--profile"; "smoke"; "--threads"; "1"; "--out"; inside "demo" ]
                      "export", [ "export"; "--checkpoint"; baseRun (); "--format"; "pytorch"; "--out"; Path.Combine(inside "export", "unet.pt") ] ] do
                    let clock = Stopwatch.StartNew()
                    expectOneLine 2 [ "--out"; folder; "not writable" ] name (runWithin 60 args)
                    Expect.isLessThan clock.Elapsed.TotalSeconds 20.0 (sprintf "%s refused before any work" name)
                if folder <> "/sys" then Directory.Delete folder
        }

        test "writing into /dev/full: export and cluster --json exit with one line and no type name, the checkpoint kept" {
            let checkpoint = baseCheckpoint ()
            let before = fingerprint checkpoint
            let r = run [ "export"; "--checkpoint"; checkpoint; "--format"; "pytorch"; "--out"; "/dev/full" ]
            // Where /dev may be written (root), the write itself fails: exit 1. Elsewhere the folder is refused first: exit 2.
            Expect.contains [ 1; 2 ] r.ExitCode (sprintf "export to /dev/full: a failure or a refusal, never a crash: %s" r.Stderr)
            if r.ExitCode = 1 then expectOneLine 1 [ "/dev/full"; "space" ] "export to /dev/full" r
            else expectOneLine 2 [ "/dev"; "not writable" ] "export to /dev/full" r
            // A device is written into, never replaced by a file (as root a rename would swap the node itself).
            use stat = Process.Start(ProcessStartInfo("stat", [ "-c"; "%F"; "/dev/full" ], RedirectStandardOutput = true))
            Expect.equal (stat.StandardOutput.ReadToEnd().Trim()) "character special file" "/dev/full is still the device"
            Expect.equal (fingerprint checkpoint) before "the checkpoint is untouched"
            let info = ProcessStartInfo("/bin/sh", RedirectStandardError = true, UseShellExecute = false)
            for a in [ "-c"; "exec dotnet \"$0\" cluster --json > /dev/full"; Path.Combine(AppContext.BaseDirectory, "dfn.dll") ] do info.ArgumentList.Add a
            use p = Process.Start info
            let err = p.StandardError.ReadToEnd()
            Expect.isTrue (p.WaitForExit 60_000) "cluster ends"
            expectOneLine 1 [ "space" ] "cluster --json > /dev/full" { ExitCode = p.ExitCode; Stdout = ""; Stderr = err }
        }
    ]

let private signalAndWeightTests =
    testList "signals and EMA weights" [
        test "SIGHUP and SIGTERM stop training at a step: exit 130, checkpoint written, --resume continues" {
            for signal in [ "HUP"; "TERM" ] do
                let out = fresh ("signal-" + signal)
                let metrics = Path.Combine(out, "metrics.jsonl")
                use p = new Background(trainArgs (idx ()) out [ "--steps", "400" ] [])
                p.WaitUntil 120 "three metrics lines" (fun () -> metricLines metrics >= 3)
                p.Signal signal
                let r = p.Finish 120
                Expect.equal r.ExitCode 130 (sprintf "SIG%s: %s" signal r.Stderr)
                Expect.stringContains r.Stderr ("SIG" + signal) "names the signal"
                let stopped = Regex.Match(r.Stderr, @"checkpoint of step (\d+) written")
                Expect.isTrue stopped.Success (sprintf "says which step was checkpointed: %s" r.Stderr)
                let step = int stopped.Groups.[1].Value
                Expect.isTrue (File.Exists(Path.Combine(out, "checkpoint.dfn"))) "checkpoint written"
                Expect.equal (metricSteps metrics) [ 1L .. int64 step ] "metrics up to the checkpointed step"
                let resumed = run (trainArgs (idx ()) out [ "--steps", string (step + 2) ] [ "--resume" ])
                Expect.equal resumed.ExitCode 0 resumed.Stderr
                Expect.stringContains resumed.Stderr (sprintf "at step %d" step) "resumed where it stopped"
                Expect.equal (metricSteps metrics) [ 1L .. int64 (step + 2) ] "continued without a gap or a repeat"
        }

        test "sample warns once, naming --live and --ema-decay, when the EMA weights are still the initial ones" {
            let raw = fresh "ema-raw"
            Expect.equal (run (trainArgs (idx ()) raw [] [ "--no-ema-warmup" ])).ExitCode 0 "trained without EMA warm-up"
            let sample source flags =
                let out = fresh "ema-samples"
                let r = run ([ "sample"; "--checkpoint"; source; "--out"; out; "--count"; "2"; "--sampler-steps"; "2" ] @ flags)
                Expect.equal r.ExitCode 0 r.Stderr
                Expect.equal (Directory.GetFiles(Path.Combine(out, "images"))).Length 2 "two images written"
                Expect.isTrue (File.Exists(Path.Combine(out, "grid.png"))) "grid written"
                r
            let noisy = sample raw []
            Expect.equal (warnings noisy).Length 1 (sprintf "one warning: %s" noisy.Stderr)
            for m in [ "--live"; "--ema-decay"; "noise" ] do Expect.stringContains (warnings noisy).[0] m "the warning says what to do"
            Expect.isEmpty (warnings (sample raw [ "--live" ])) "the live weights need no warning"
            Expect.isEmpty (warnings (sample (baseRun ()) [])) "with the default EMA warm-up there is no warning"
        }
    ]

/// Every test of this file, run in sequence by BadInputTests.
let tests = testList "files and locations" [ imageTests; checkpointTests; outputTests; signalAndWeightTests ]
