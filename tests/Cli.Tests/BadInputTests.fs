/// Issue 11's bad inputs, each run through the built `dfn` as a user would: refusals exit 2 with one line naming the
/// option and the values, failures exit 1 with one line, and nothing already written is lost or rewritten.
module DiffusionFunctional.Cli.Tests.BadInputTests

open System
open System.Diagnostics
open System.IO
open System.Text.Json
open DiffusionFunctional.Cli.Tests.Dfn
open DiffusionFunctional.Cli.Tests.BadInputSupport
open DiffusionFunctional.Cli.Tests.BadInputSupport.Fixture
open Expecto

let private resumeTests =
    testList "train --resume" [
        test "refuses every setting that changes what is trained, names it and both values, and keeps the checkpoint" {
            let out = fresh "resume"
            Expect.equal (run (trainArgs (idx ()) out [] [])).ExitCode 0 "first run"
            let checkpoint = Path.Combine(out, "checkpoint.dfn")
            let metrics = Path.Combine(out, "metrics.jsonl")
            let before, metricsBefore = fingerprint checkpoint, fingerprint metrics
            let otherIdx = fresh "other-idx3-ubyte"
            writeIdx otherIdx 40 12
            let cases =
                [ [ "--prediction", "v" ], [ "prediction"; "eps"; "v" ]
                  [ "--schedule", "scaled_linear" ], [ "schedule"; "linear"; "scaled_linear" ]
                  [ "--seed", "5" ], [ "seed 0"; "5" ]
                  [ "--lr", "0.001" ], [ "learning rate"; "0.0002"; "0.001" ]
                  [ "--batch", "4" ], [ "batch size"; "8"; "4" ]
                  [ "--clusters", "2" ], [ "cluster"; "0,40"; "0,13,40" ]
                  [ "--weighting", "min-snr" ], [ "weighting"; "vanilla"; "min-snr" ]
                  [ "--routing", "dtr" ], [ "routing"; "none"; "dtr" ] ]
            for changes, mentions in cases do
                let r = run (trainArgs (idx ()) out changes [ "--resume" ])
                expectOneLine 2 (checkpoint :: mentions) (sprintf "resume with %A" changes) r
            let r = run (trainArgs ("idx:" + otherIdx) out [] [ "--resume" ])
            expectOneLine 2 [ "data"; idxFile (); otherIdx ] "resume with other --data" r
            Expect.equal (fingerprint checkpoint) before "the checkpoint is byte-identical and was not rewritten"
            Expect.equal (fingerprint metrics) metricsBefore "metrics.jsonl untouched"
            // --steps may change: the run continues from step 3 to 5.
            let more = run (trainArgs (idx ()) out [ "--steps", "5" ] [ "--resume" ])
            Expect.equal more.ExitCode 0 more.Stderr
            Expect.stringContains more.Stderr "at step 3" "resumed where it stopped"
            expectConsecutiveSteps (metricSteps metrics) "continued metrics"
            Expect.equal (metricSteps metrics).Length 5 "two more steps"
        }

        test "the same data through another relative path (another working folder) is the same data" {
            let out = fresh "relative"
            Directory.CreateDirectory out |> ignore
            let dataFolder = Path.GetDirectoryName(idxFile ())
            let name = Path.GetFileName(idxFile ())
            let first = runIn dataFolder (trainArgs ("idx:" + name) out [] [])
            Expect.equal first.ExitCode 0 first.Stderr
            let again = runIn out (trainArgs ("idx:../" + name) out [ "--steps", "4" ] [ "--resume" ])
            Expect.equal again.ExitCode 0 (sprintf "resumed from another folder: %s" again.Stderr)
            Expect.stringContains again.Stderr "at step 3" "resumed where it stopped"
        }
    ]

let private exportTests =
    testList "export" [
        test "refuses to overwrite its own checkpoint, given as a file or through its run folder" {
            let checkpoint = baseCheckpoint ()
            let before = fingerprint checkpoint
            for source in [ checkpoint; baseRun () ] do
                let r = run [ "export"; "--checkpoint"; source; "--out"; checkpoint ]
                expectOneLine 2 [ "--out"; checkpoint ] (sprintf "export %s onto itself" source) r
            Expect.equal (fingerprint checkpoint) before "the checkpoint is byte-identical"
        }

        test "--checkpoint a run folder works; --out an existing folder does not touch the checkpoint" {
            let checkpoint = baseCheckpoint ()
            let before = fingerprint checkpoint
            let dir = fresh "export"
            Directory.CreateDirectory dir |> ignore
            let file = Path.Combine(dir, "unet.pt")
            let r = run [ "export"; "--checkpoint"; baseRun (); "--format"; "pytorch"; "--out"; file ]
            Expect.equal r.ExitCode 0 r.Stderr
            Expect.isGreaterThan (FileInfo(file).Length) 1000L "the weights were written"
            let intoFolder = run [ "export"; "--checkpoint"; checkpoint; "--out"; dir ]
            Expect.contains [ 0; 2 ] intoFolder.ExitCode (sprintf "an existing folder is refused or written into, never a crash: %s" intoFolder.Stderr)
            if intoFolder.ExitCode = 2 then expectOneLine 2 [ dir ] "export into a folder" intoFolder
            Expect.equal (fingerprint checkpoint) before "the checkpoint is byte-identical"
        }
    ]

let private concurrencyTests =
    testList "one run per folder" [
        test "a second train on a busy --out exits 2 naming the folder and the other process; metrics stay well formed" {
            let out = fresh "busy"
            let metrics = Path.Combine(out, "metrics.jsonl")
            use first = new Background(trainArgs (idx ()) out [ "--steps", "400" ] [])
            first.WaitUntil 120 "the first metrics line" (fun () -> metricLines metrics > 0)
            for flags in [ []; [ "--resume" ] ] do
                let second = run (trainArgs (idx ()) out [ "--steps", "400" ] flags)
                expectOneLine 2 [ out; sprintf "process %d" first.Id; "in use" ] (sprintf "second run %A" flags) second
            first.Signal "INT"
            let r = first.Finish 120
            Expect.equal r.ExitCode 130 r.Stderr
            Expect.isTrue (File.Exists(Path.Combine(out, "checkpoint.dfn"))) "the first run checkpointed on SIGINT"
            expectConsecutiveSteps (metricSteps metrics) "metrics.jsonl of the first run"
        }

        test "a run killed with SIGKILL leaves no lock behind: the next run on its folder starts and logs from step 1" {
            let out = fresh "killed"
            let metrics = Path.Combine(out, "metrics.jsonl")
            use first = new Background(trainArgs (idx ()) out [ "--steps", "400" ] [])
            first.WaitUntil 120 "five metrics lines" (fun () -> metricLines metrics >= 5)
            first.Signal "KILL"
            Expect.equal (first.Finish 60).ExitCode 137 "killed"
            Expect.isTrue (File.Exists(Path.Combine(out, ".dfn-lock"))) "the lock file is still there"
            let next = run (trainArgs (idx ()) out [] [ "--resume" ])
            Expect.equal next.ExitCode 0 next.Stderr
            Expect.equal (metricSteps metrics) [ 1L; 2L; 3L ] "no checkpoint had been written: a fresh start, the old lines replaced"
        }
    ]

let private optionTests =
    testList "option checks" [
        test "sample --eta and --threads everywhere: exit 2, one line, nothing written" {
            let out = fresh "opts"
            let sample extra = [ "sample"; "--checkpoint"; baseRun (); "--out"; out; "--count"; "2"; "--sampler-steps"; "2" ] @ extra
            for eta in [ "nan"; "-1"; "1.5" ] do
                expectOneLine 2 [ "--eta"; (if eta = "nan" then "NaN" else eta) ] ("--eta " + eta) (run (sample [ "--eta"; eta ]))
            for threads in [ "0"; "-1"; "1000" ] do
                let commands =
                    [ "train", trainArgs (idx ()) out [ "--threads", threads ] []
                      "sample", sample [ "--threads"; threads ]
                      "demo", [ "demo"; "--data"; idx (); "--profile"; "smoke"; "--out"; out; "--threads"; threads ]
                      "ntg", [ "ntg"; "--data"; idx (); "--out"; out; "--threads"; threads ] ]
                for name, args in commands do
                    expectOneLine 2 [ "--threads"; threads; string Environment.ProcessorCount ] (sprintf "%s --threads %s" name threads) (run args)
            Expect.isEmpty (filesWritten out) "nothing written"
        }

        test "on a one-core machine demo and ntg default to one thread, and --threads 2 is refused" {
            let oneCore = [ "DOTNET_PROCESSOR_COUNT", "1" ]
            let missing = "/no/such/idx-file"
            for name, args in
                [ "demo", [ "demo"; "--data"; "idx:" + missing; "--profile"; "smoke"; "--out"; fresh "one-core-demo" ]
                  "ntg", [ "ntg"; "--data"; "idx:" + missing; "--out"; fresh "one-core-ntg" ] ] do
                // The default thread count passes the check: the run gets as far as the (missing) data.
                expectOneLine 2 [ missing ] (name + " with the default threads") (runWithEnvironment oneCore args)
                expectOneLine 2 [ "--threads"; "1..1"; "got 2" ] (name + " --threads 2") (runWithEnvironment oneCore (args @ [ "--threads"; "2" ]))
        }

        test "train --clusters 0, --batch beyond the data, model sizes and channels: exit 2, no checkpoint" {
            let out = fresh "model"
            let cases =
                [ trainArgs (idx ()) out [ "--clusters", "0" ] [], [ "--clusters"; "0" ]
                  trainArgs (idx ()) out [ "--batch", "100000" ] [], [ "batch"; "100000"; "40 images" ] ]
                @ [ for size in [ "0"; "-8"; "10000"; "7" ] do
                        yield trainArgs (idx ()) out [ "--image-size", size ] [], [ "image size"; size; "512" ]
                        yield [ "ntg"; "--data"; idx (); "--model"; "tiny"; "--image-size"; size; "--threads"; "1"; "--out"; out ], [ "image size"; size ] ]
                @ [ for channels in [ "0"; "2" ] -> trainArgs (idx ()) out [ "--channels", channels ] [], [ "channels"; channels; "1"; "3" ] ]
            for args, mentions in cases do
                expectOneLine 2 mentions (String.Join(" ", args)) (run args)
            Expect.isEmpty (filesWritten out) "no checkpoint, no metrics, no samples"
        }

        test "parser errors and unknown names name the option and the value" {
            for args, mentions in
                [ [ "train"; "--steps"; "abc"; "--out"; fresh "p" ], [ "--steps"; "'abc'"; "integer" ]
                  [ "sample"; "--checkpoint"; "x"; "--out"; "y"; "--eta"; "much" ], [ "--eta"; "'much'"; "number" ]
                  // An unknown method is refused before the (here missing) data are read.
                  [ "train"; "--weighting"; "gradnorm-x"; "--data"; "idx:/no/such/file"; "--out"; fresh "p" ], [ "--weighting"; "'gradnorm-x'"; "min-snr" ] ] do
                expectOneLine 2 mentions (String.Join(" ", args)) (run args)
        }

        test "affinity and evaluate settings are checked before any work" {
            let out = fresh "affinity"
            let affinity extra = [ "affinity"; "--checkpoints"; baseCheckpoint (); "--data"; idx (); "--images"; "4"; "--out"; out ] @ extra
            for args, mentions in
                [ affinity [ "--groups"; "0" ], [ "--groups"; "0" ]
                  affinity [ "--groups"; "3" ], [ "--groups"; "3"; "T = 40" ]
                  affinity [ "--groups"; "2000" ], [ "--groups"; "2000"; "T = 40" ]
                  affinity [ "--groups"; "4"; "--sketch-dim"; "-1" ], [ "--sketch-dim"; "-1" ]
                  [ "evaluate"; "--real"; idx (); "--fake"; baseRun (); "--sampler-steps"; "0" ], [ "--sampler-steps"; "0" ] ] do
                let clock = Stopwatch.StartNew()
                expectOneLine 2 mentions (String.Join(" ", args)) (runWithin 60 args)
                Expect.isLessThan clock.Elapsed.TotalSeconds 20.0 "refused at once"
            Expect.isEmpty (filesWritten out) "no affinity.csv or plot"
        }

        test "a folder given as train --affinity is called a folder" {
            let folder = fresh "affinity-folder"
            Directory.CreateDirectory folder |> ignore
            let r = run (trainArgs (idx ()) (fresh "aff-run") [ "--clusters", "2"; "--cluster-objective", "affinity"; "--affinity", folder ] [])
            expectOneLine 2 [ folder; "is a folder" ] "train --affinity FOLDER" r
        }
    ]

[<Tests>]
let tests =
    testSequenced <| testList "bad input" [
        resumeTests
        exportTests
        concurrencyTests
        optionTests
        BadInputFileTests.tests
        test "cleanup" {
            removeRoot ()
        }
    ]
