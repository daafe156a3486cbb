/// `dfn bench stability` and `dfn bench overhead` on the synthetic profile: the trainer runs every method, divergence is
/// reported per run, results resume from their file, overhead prints one object keyed by method.
module DiffusionFunctional.Cli.Tests.BenchCommandTests

open System
open System.IO
open System.Text.Json
open DiffusionFunctional.Cli.Tests.Dfn
open Expecto

let private small = [ "--timesteps"; "100"; "--batch"; "8"; "--threads"; "1" ]

[<Tests>]
let tests =
    testSequenced <| testList "dfn bench" [
        test "stability trains each method and seed, appends each run to --results, and a re-run resumes instead of retraining" {
            let results = Path.Combine(Path.GetTempPath(), sprintf "dfn-stability-%s.jsonl" (Guid.NewGuid().ToString("N")))
            try
                let args = [ "bench"; "stability"; "--methods"; "vanilla,uw:snr:3"; "--seeds"; "2"; "--steps"; "4"; "--json"; "--results"; results ] @ small
                let first = run args
                Expect.equal first.ExitCode 0 first.Stderr
                let runs = [ for r in JsonDocument.Parse(first.Stdout.Trim()).RootElement.EnumerateArray() -> r ]
                Expect.equal (runs |> List.map (fun r -> r.GetProperty("Method").GetString(), r.GetProperty("Seed").GetInt64()))
                    [ "vanilla", 0L; "vanilla", 1L; "uw:snr:3", 0L; "uw:snr:3", 1L ] "one result per method and seed"
                for r in runs do
                    Expect.equal (r.GetProperty("StepsRun").GetInt64()) 4L "ran every step"
                    Expect.isFalse (r.GetProperty("Diverged").GetBoolean()) "no divergence"
                Expect.equal (File.ReadAllLines results).Length 4 "each run appended as it ended"
                let again = run args
                Expect.equal again.ExitCode 0 again.Stderr
                Expect.equal (again.Stdout.Trim()) (first.Stdout.Trim()) "the stored runs are reported, not retrained"
                Expect.equal (File.ReadAllLines results).Length 4 "nothing appended"
            finally
                File.Delete results
        }

        test "stability reports a diverging run (absurd learning rate, no clipping) and exits 1" {
            let r = run ([ "bench"; "stability"; "--methods"; "vanilla"; "--seeds"; "1"; "--steps"; "40"; "--lr"; "5"; "--clip"; "0"; "--warmup"; "0" ] @ small)
            Expect.equal r.ExitCode 1 r.Stderr
            Expect.stringContains r.Stdout "DIVERGED at step" "the run's divergence is printed"
        }

        test "overhead --json prints one object mapping each method to seconds and ratios, with the k-backward baseline" {
            let r = run ([ "bench"; "overhead"; "--methods"; "uw,vanilla+dtr,vanilla,pcgrad:snr:3"; "--steps"; "5"; "--json" ] @ small)
            Expect.equal r.ExitCode 0 r.Stderr
            let doc = JsonDocument.Parse(r.Stdout.Trim()).RootElement
            let names = [ for p in doc.EnumerateObject() -> p.Name ]
            Expect.equal names [ "vanilla"; "uw:snr:5"; "vanilla+dtr"; "pcgrad:snr:3"; "k-backward" ]
                "plain vanilla first (once), then the methods (vanilla with routing is one of them), then the baseline"
            Expect.floatClose Accuracy.veryHigh (doc.GetProperty("vanilla").GetProperty("vsVanilla").GetDouble()) 1.0 "vanilla is the unit"
            for name in names do
                Expect.isGreaterThan (doc.GetProperty(name).GetProperty("seconds").GetDouble()) 0.0 (sprintf "%s timed" name)
            Expect.isGreaterThan (doc.GetProperty("pcgrad:snr:3").GetProperty("vsForwardPlusKBackward").GetDouble()) 0.0 "gradient methods are judged against k backward passes"
        }

        test "bad settings are one line and exit 2" {
            for args, says in [ [ "--profile"; "nonsense" ], "nonsense"; [ "--methods"; "vanila" ], "vanila"; [ "--threads"; "0" ], "threads" ] do
                let r = run ([ "bench"; "stability"; "--steps"; "2" ] @ args)
                Expect.equal r.ExitCode 2 (sprintf "%A: %s" args r.Stderr)
                Expect.stringContains r.Stderr says "names the problem"
                Expect.equal (r.Stderr.Trim().Split('\n').Length) 1 "one line"
        }
    ]
