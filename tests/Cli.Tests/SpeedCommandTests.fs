/// Issue 13 through the CLI: libtorch's OpenMP runtime really starts with our short-spin wait settings (set natively
/// before it loads, the user's own settings winning), `bench throughput` compares variants interleaved and splits the step,
/// and a bad precision is bad input.
module DiffusionFunctional.Cli.Tests.SpeedCommandTests

open System
open System.Diagnostics
open System.IO
open System.Text.Json
open Expecto
open DiffusionFunctional.Backend
open DiffusionFunctional.Cli.Tests.Dfn

/// Runs `dfn ARGS` with the OpenMP variables of this process removed, then `extra` set, and OpenMP asked to print
/// its settings when it starts (OMP_DISPLAY_ENV=VERBOSE, to stderr).
let private runShowingOpenMp (extra: (string * string) list) (args: string list) =
    let info = ProcessStartInfo("dotnet", RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false)
    info.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "dfn.dll"))
    for a in args do info.ArgumentList.Add a
    for name in [ "OMP_WAIT_POLICY"; "GOMP_SPINCOUNT"; "OMP_DISPLAY_ENV" ] do info.Environment.Remove name |> ignore
    info.Environment["OMP_DISPLAY_ENV"] <- "VERBOSE"
    for name, value in extra do info.Environment[name] <- value
    use p = Process.Start info
    let out = p.StandardOutput.ReadToEndAsync()
    let err = p.StandardError.ReadToEndAsync()
    if not (p.WaitForExit 120_000) then
        p.Kill true
        failwith "dfn did not finish within 120 s"
    { ExitCode = p.ExitCode; Stdout = out.Result; Stderr = err.Result }

let private tinyBench = [ "bench"; "throughput"; "--model"; "tiny"; "--batch"; "8"; "--steps"; "1"; "--untimed-steps"; "0"; "--sample-batch"; "2"; "--sampler-steps"; "1"; "--threads"; "1" ]

[<Tests>]
let tests =
    testSequenced <| testList "dfn speed" [
        test "libtorch's OpenMP starts with a short spin then sleep, unless the user chose either setting" {
            let r = runShowingOpenMp [] (tinyBench @ [ "--json" ])
            Expect.equal r.ExitCode 0 r.Stderr
            // libgomp prints PASSIVE for an unset policy too; the spin count tells them apart (300000 when unset).
            Expect.stringContains r.Stderr "OMP_WAIT_POLICY = 'PASSIVE'" "passive wait policy"
            let ours = NativeThreading.Defaults.["GOMP_SPINCOUNT"]
            Expect.stringContains r.Stderr $"GOMP_SPINCOUNT = '{ours}'" "idle workers spin briefly"
            Expect.isLessThan (int64 ours) 30000L "far below libgomp's spinning counts"
            // A policy of the user's alone: our spin count would override it in libgomp, so neither of ours is set.
            let theirs = runShowingOpenMp [ "OMP_WAIT_POLICY", "ACTIVE" ] (tinyBench @ [ "--json" ])
            Expect.equal theirs.ExitCode 0 theirs.Stderr
            Expect.stringContains theirs.Stderr "OMP_WAIT_POLICY = 'ACTIVE'" "the user's own policy wins"
            Expect.stringContains theirs.Stderr "GOMP_SPINCOUNT = '30000000000'" "libgomp's active spin count, not ours"
            let spin = runShowingOpenMp [ "GOMP_SPINCOUNT", "0" ] (tinyBench @ [ "--json" ])
            Expect.equal spin.ExitCode 0 spin.Stderr
            Expect.stringContains spin.Stderr "GOMP_SPINCOUNT = '0'" "the user's own spin count wins"
        }

        test "bench throughput compares variants interleaved, reporting each with its ratio to the first and the step's parts" {
            let r = run (tinyBench @ [ "--channels-last"; "off,on"; "--rounds"; "2"; "--json" ])
            Expect.equal r.ExitCode 0 r.Stderr
            let reports = [ for e in JsonDocument.Parse(r.Stdout.Trim()).RootElement.EnumerateArray() -> e ]
            Expect.equal (reports |> List.map (fun e -> e.GetProperty("channels_last").GetBoolean())) [ false; true ] "one report per variant, in order"
            Expect.equal (reports.[0].GetProperty("ratio_to_first").GetDouble()) 1.0 "the first is the reference"
            for e in reports do
                Expect.equal (e.GetProperty("rounds").GetInt32()) 2 "rounds"
                Expect.equal (e.GetProperty("precision").GetString()) "fp32" "precision"
                for part in [ "forward_seconds"; "backward_seconds"; "optimiser_seconds" ] do
                    Expect.isGreaterThan (e.GetProperty(part).GetDouble()) 0.0 part
                Expect.isGreaterThan (e.GetProperty("ddim50_images_per_second").GetDouble()) 0.0 "DDIM images/s"
                Expect.isGreaterThan (e.GetProperty("peak_resident_megabytes").GetDouble()) 0.0 "peak RSS"
        }

        test "an unknown precision or a malformed variant list is bad input (exit 2) with one line" {
            let dir = Path.Combine(Path.GetTempPath(), sprintf "dfn-precision-%s" (Guid.NewGuid().ToString("N")))
            try
                let train = run [ "train"; "--data"; "mnist"; "--model"; "tiny"; "--out"; dir; "--steps"; "1"; "--precision"; "fp16" ]
                Expect.equal train.ExitCode 2 train.Stderr
                Expect.stringContains train.Stderr "--precision: unknown precision 'fp16'" "names the option and value"
                let bench = run (tinyBench @ [ "--channels-last"; "maybe" ])
                Expect.equal bench.ExitCode 2 bench.Stderr
                Expect.stringContains bench.Stderr "--channels-last takes off and on" "names the option"
            finally
                if Directory.Exists dir then Directory.Delete(dir, true)
        }
    ]
