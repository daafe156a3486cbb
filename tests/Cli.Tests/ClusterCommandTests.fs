module DiffusionFunctional.Cli.Tests.ClusterCommandTests

open System.Text.Json
open DiffusionFunctional.Core
open DiffusionFunctional.Cli.Tests.Dfn
open Expecto

let private expectBadInput (args: string list) (mentions: string) =
    let r = run args
    Expect.equal r.ExitCode 2 (sprintf "exit code for %A (stderr: %s)" args r.Stderr)
    let lines = r.Stderr.Trim().Split('\n')
    Expect.equal lines.Length 1 (sprintf "one line on stderr for %A, got: %s" args r.Stderr)
    Expect.stringContains (r.Stderr.ToLowerInvariant()) (mentions.ToLowerInvariant()) (sprintf "message for %A" args)
    Expect.isFalse (r.Stderr.Contains "   at ") "no stack trace"

[<Tests>]
let tests =
    testList "dfn cluster" [
        test "--json prints exactly one object with Core's optimum" {
            let r = run [ "cluster"; "--schedule"; "linear"; "--timesteps"; "1000"; "--clusters"; "5"; "--cluster-objective"; "snr"; "--json" ]
            Expect.equal r.ExitCode 0 r.Stderr
            let doc = JsonDocument.Parse(r.Stdout.Trim())
            let root = doc.RootElement
            let expected = Objectives.cluster (Schedule.create Linear 1000) (SnrObjective LogScale) 5 |> Result.defaultWith (fun _ -> failwith "core")
            Expect.equal (root.GetProperty("schedule").GetString()) "linear" "schedule"
            Expect.equal (root.GetProperty("objective").GetString()) "snr" "objective"
            Expect.equal (root.GetProperty("timesteps").GetInt32()) 1000 "T"
            Expect.equal (root.GetProperty("clusters").GetInt32()) 5 "k"
            Expect.equal [| for b in root.GetProperty("boundaries").EnumerateArray() -> b.GetInt32() |] expected.Boundaries "boundaries"
            Expect.floatClose Accuracy.veryHigh (root.GetProperty("cost").GetDouble()) expected.Cost "cost"
            Expect.equal (r.Stdout.Trim().Split('\n').Length) 1 "one line"
        }

        test "table mode shows one row per cluster with ranges and sizes" {
            let r = run [ "cluster"; "--cluster-objective"; "timestep"; "--clusters"; "4"; "--timesteps"; "100" ]
            Expect.equal r.ExitCode 0 r.Stderr
            for range in [ "[0, 25)"; "[25, 50)"; "[50, 75)"; "[75, 100)" ] do
                Expect.stringContains r.Stdout range "range row"
        }

        test "the affinity objective reads a CSV and reports timesteps" {
            use f = new TempFile("1,1,-1,-1\n1,1,-1,-1\n-1,-1,1,1\n-1,-1,1,1\n")
            let r = run [ "cluster"; "--cluster-objective"; "affinity"; "--affinity"; f.Path; "--timesteps"; "100"; "--clusters"; "2"; "--json" ]
            Expect.equal r.ExitCode 0 r.Stderr
            Expect.stringContains r.Stdout "\"boundaries\":[0,50,100]" "block boundary in timesteps"
        }

        test "raw SNR scale is accepted and differs from log" {
            let r = run [ "cluster"; "--cluster-objective"; "snr-raw"; "--json" ]
            Expect.equal r.ExitCode 0 r.Stderr
            Expect.stringContains r.Stdout "\"boundaries\":[0,1,2,5,18,1000]" "degenerate raw-SNR clusters (ANT (Go et al. 2023) section 4.1; docs/clustering.md)"
        }

        test "bad input: exit 2 and one line naming the problem" {
            expectBadInput [ "cluster"; "--clusters"; "0" ] "clusters must be at least 1"
            expectBadInput [ "cluster"; "--clusters"; "11"; "--timesteps"; "10" ] "cannot exceed"
            expectBadInput [ "cluster"; "--timesteps"; "0" ] "timesteps"
            expectBadInput [ "cluster"; "--timesteps"; "ten" ] "ten"
            expectBadInput [ "cluster"; "--schedule"; "quadratic" ] "quadratic"
            expectBadInput [ "cluster"; "--cluster-objective"; "entropy" ] "entropy"
            expectBadInput [ "cluster"; "--snr-scale"; "ln" ] "ln"
            expectBadInput [ "cluster"; "--cluster-objective"; "affinity" ] "affinity"
            expectBadInput [ "cluster"; "--cluster-objective"; "affinity"; "--affinity"; "/no/such/file.csv" ] "/no/such/file.csv"
            expectBadInput [ "cluster"; "--no-such-option" ] "no-such-option"
        }

        test "bad affinity files: exit 2 naming the fault" {
            let cases =
                [ "1,x\nx,1\n", "not a number"
                  "1,NaN\nNaN,1\n", "not a finite number"
                  "1,Infinity\nInfinity,1\n", "not a finite number"
                  "1,2,3\n4,5,6\n", "square"
                  "1,2\n3,1\n", "symmetric"
                  "", "no rows" ]
            for text, mention in cases do
                use f = new TempFile(text)
                expectBadInput [ "cluster"; "--cluster-objective"; "affinity"; "--affinity"; f.Path; "--timesteps"; "10"; "--clusters"; "2" ] mention
            use g3 = new TempFile("1,0,0\n0,1,0\n0,0,1\n")
            expectBadInput [ "cluster"; "--cluster-objective"; "affinity"; "--affinity"; g3.Path; "--timesteps"; "10"; "--clusters"; "2" ] "does not divide"
            expectBadInput [ "cluster"; "--cluster-objective"; "affinity"; "--affinity"; g3.Path; "--timesteps"; "9"; "--clusters"; "4" ] "cannot exceed"
        }
    ]
