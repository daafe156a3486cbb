/// `dfn bench throughput --peer` (issue 13): our training step and the same step in PyTorch (bench/peer, Debian's
/// python3-torch under /usr/bin/python3), timed interleaved. Skipped, with the reason, where that Python lacks torch.
/// The figures are a benchmark's, not asserted against any speed: only that they were measured and are consistent.
module DiffusionFunctional.Cli.Tests.PeerCommandTests

open System.Diagnostics
open System.IO
open System.Text.Json
open Expecto
open DiffusionFunctional.Backend
open DiffusionFunctional.Cli.Tests.Dfn

let private python = "/usr/bin/python3"

/// torch.__version__ under /usr/bin/python3, or None when it cannot import torch and numpy.
let private torchVersion =
    lazy
        (if not (File.Exists python) then None
         else
             let info = ProcessStartInfo(python, RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false)
             for a in [ "-c"; "import numpy, torch; print(torch.__version__)" ] do info.ArgumentList.Add a
             use p = Process.Start info
             let out = p.StandardOutput.ReadToEnd()
             p.WaitForExit()
             if p.ExitCode = 0 then Some(out.Trim()) else None)

let private requireTorch () =
    if torchVersion.Value.IsNone then skiptest "no PyTorch: /usr/bin/python3 cannot import torch and numpy (bench/peer/install.sh)"

let private median (values: float list) =
    let sorted = List.sort values
    let n = sorted.Length
    if n % 2 = 1 then sorted.[n / 2] else (sorted.[n / 2 - 1] + sorted.[n / 2]) / 2.0

[<Tests>]
let tests =
    testSequenced <| testList "dfn bench throughput --peer" [
        test "--peer --json: each variant has the peer at its thread count, measured in every round, after a passed forward check" {
            requireTorch ()
            let r =
                runWithin 300 [ "bench"; "throughput"; "--model"; "tiny"; "--batch"; "8"; "--steps"; "2"; "--untimed-steps"; "1"; "--sample-batch"; "2"
                                "--sampler-steps"; "1"; "--threads"; "1,2"; "--rounds"; "3"; "--peer"; "--json" ]
            Expect.equal r.ExitCode 0 r.Stderr
            let reports = [ for e in JsonDocument.Parse(r.Stdout.Trim()).RootElement.EnumerateArray() -> e ]
            Expect.equal reports.Length 2 "one report per thread count"
            for e in reports do
                let peer = e.GetProperty "peer"
                Expect.equal (peer.GetProperty("threads").GetInt32()) (e.GetProperty("threads").GetInt32()) "the peer ran at the variant's thread count"
                Expect.equal (peer.GetProperty("rounds").GetInt32()) 3 "rounds"
                Expect.equal (peer.GetProperty("torch_version").GetString()) torchVersion.Value.Value "torch's version"
                let spin = NativeThreading.Defaults.["GOMP_SPINCOUNT"]
                Expect.equal (peer.GetProperty("openmp_wait").GetString()) $"OMP_WAIT_POLICY=PASSIVE, GOMP_SPINCOUNT={spin}" "our OpenMP wait settings"
                for name in [ "img_per_s"; "step_seconds"; "ratio" ] do
                    Expect.isGreaterThan (peer.GetProperty(name).GetDouble()) 0.0 name
                let step = peer.GetProperty("step_seconds").GetDouble()
                Expect.floatClose Accuracy.high (peer.GetProperty("img_per_s").GetDouble()) (8.0 / step) "img/s = batch / seconds per step"
                let rounds = [ for x in peer.GetProperty("round_ratios").EnumerateArray() -> x.GetDouble() ]
                Expect.equal rounds.Length 3 "one ratio per round"
                Expect.all rounds (fun x -> x > 0.0) "every round timed both"
                Expect.floatClose Accuracy.high (peer.GetProperty("ratio").GetDouble()) (median rounds) "ratio = median over rounds"
                Expect.isTrue (peer.GetProperty("guarded").GetBoolean()) "fp32 is held to the target"
                Expect.equal (peer.GetProperty("meets_target").GetBoolean()) (peer.GetProperty("ratio").GetDouble() >= 1.0) "the guard: ours / PyTorch >= 1"
                let check = peer.GetProperty "check"
                Expect.isTrue (check.GetProperty("passed").GetBoolean()) "the forward check passed"
                let diff, largest = check.GetProperty("max_abs_diff").GetDouble(), check.GetProperty("max_abs_output").GetDouble()
                Expect.isGreaterThan largest 0.1 "the checked output is not trivially zero"
                Expect.isLessThanOrEqual diff (1e-5 * max 1.0 largest) (sprintf "max |PyTorch - ours| = %g on a fixed input" diff)
        }

        test "--peer without --json adds the peer's rows to the table" {
            requireTorch ()
            let r =
                runWithin 300 [ "bench"; "throughput"; "--model"; "tiny"; "--batch"; "4"; "--steps"; "1"; "--untimed-steps"; "0"; "--sample-batch"; "1"
                                "--sampler-steps"; "1"; "--threads"; "1"; "--peer" ]
            Expect.equal r.ExitCode 0 r.Stderr
            for row in [ "PyTorch peer images/s"; "ours / PyTorch (target >= 1.0)"; "peer check" ] do
                Expect.stringContains r.Stdout row row
            Expect.stringContains r.Stderr "PyTorch peer check: max |peer - ours|" "the check is reported first"
        }
    ]
