/// The convolution kernel check as a user meets it (docs/platform.md): `dfn kernels`, `dfn --version`, DFN_KERNELS,
/// the verdict cache, the metrics header and libtorch's silenced warnings.
module DiffusionFunctional.Cli.Tests.KernelsCommandTests

open System
open System.IO
open System.Runtime.Intrinsics.X86
open System.Text.Json
open Expecto
open DiffusionFunctional.Cli.Tests.Dfn

/// An AMD CPU whose cache-topology leaf (CPUID 0x8000001D) is zeroed, as some virtual machines do: libtorch's oneDNN
/// then believes in 1-byte caches and its shipped kernels compute wrong numbers.
let private hidesCacheTopology () =
    X86Base.IsSupported
    && (let struct (_, b, c, d) = X86Base.CpuId(0, 0) in b = 0x68747541 && d = 0x69746e65 && c = 0x444d4163) // "AuthenticAMD"
    && (let struct (maxExtended, _, _, _) = X86Base.CpuId(int 0x80000000u, 0) in uint32 maxExtended >= 0x8000001Du)
    && (let struct (eax, _, _, _) = X86Base.CpuId(int 0x8000001Du, 0) in eax &&& 0x1F = 0)

let private verdictJson (r: Outcome) = JsonDocument.Parse(r.Stdout).RootElement

[<Tests>]
let tests =
    let dir = Path.Combine(Path.GetTempPath(), sprintf "dfn-kernels-%s" (Guid.NewGuid().ToString("N").Substring(0, 8)))
    let freshCache name = Path.Combine(dir, name)
    testSequenced <| testList "kernels" [
        test "dfn kernels: a verdict for this machine, fp32 correct, in one of the named configurations" {
            let r = run [ "kernels"; "--json" ]
            Expect.equal r.ExitCode 0 r.Stderr
            let v = verdictJson r
            Expect.isTrue (v.GetProperty("Fp32Correct").GetBoolean()) r.Stdout
            Expect.contains [ "onednn"; "onednn-repaired"; "aten" ] (v.GetProperty("Configuration").GetString()) "configuration"
        }
        test "the first process on a machine checks, the next one applies the cached verdict" {
            let env = [ "DFN_CACHE", freshCache "cache-reuse" ]
            let first = runWithEnvironment env 300 [ "kernels" ]
            let second = runWithEnvironment env 300 [ "kernels" ]
            Expect.equal (first.ExitCode, second.ExitCode) (0, 0) (first.Stderr + second.Stderr)
            Expect.stringContains first.Stdout "checked in" "first: checked"
            Expect.stringContains second.Stdout "(cached verdict)" "second: cached"
        }
        test "libtorch as shipped is refused exactly where oneDNN cannot read the cache sizes, and repaired there by default" {
            let env = [ "DFN_CACHE", freshCache "shipped"; "DFN_KERNELS", "onednn" ]
            let shipped = runWithEnvironment env 300 [ "kernels"; "--recheck" ]
            let automatic = runWithEnvironment [ "DFN_CACHE", freshCache "automatic" ] 300 [ "kernels"; "--json" ]
            Expect.equal automatic.ExitCode 0 automatic.Stderr
            if hidesCacheTopology () then
                Expect.equal shipped.ExitCode 2 shipped.Stdout
                Expect.stringContains shipped.Stderr "DFN_KERNELS=onednn compute wrong results" "names the forced configuration"
                Expect.equal (shipped.Stderr.Trim().Split('\n').Length) 1 "one line"
                Expect.equal ((verdictJson automatic).GetProperty("Configuration").GetString()) "onednn-repaired" "repaired"
            else
                Expect.equal shipped.ExitCode 0 shipped.Stderr
        }
        test "DFN_KERNELS=aten forces ATen's kernels: a notice, correct fp32, training runs and its metrics header says aten" {
            let env = [ "DFN_CACHE", freshCache "aten"; "DFN_KERNELS", "aten" ]
            let out = Path.Combine(dir, "aten-run")
            let r = runWithEnvironment env 300 [ "train"; "--data"; "mnist"; "--model"; "tiny"; "--steps"; "3"; "--batch"; "16"; "--threads"; "1"
                                                 "--sample-count"; "0"; "--out"; out ]
            Expect.equal r.ExitCode 0 r.Stderr
            Expect.stringContains r.Stderr "convolution kernels: aten (forced by DFN_KERNELS): fp32 correct" "the one-line notice"
            Expect.isFalse (r.Stderr.Contains "NNPACK") "libtorch's NNPACK warnings are silenced"
            let header = JsonDocument.Parse(File.ReadLines(Path.Combine(out, "metrics.jsonl")) |> Seq.head).RootElement.GetProperty("header")
            Expect.stringStarts (header.GetProperty("kernels").GetString()) "aten" "metrics header"
            let version = runWithEnvironment env 120 [ "--version" ]
            Expect.equal version.ExitCode 0 version.Stderr
            Expect.stringContains version.Stdout "kernels: aten (forced by DFN_KERNELS)" "--version names it"
        }
        test "an unknown DFN_KERNELS is bad input: exit 2, one line naming the variable, before any work" {
            let out = Path.Combine(dir, "unknown")
            let r = runWithEnvironment [ "DFN_KERNELS", "fastest" ] 120 [ "train"; "--data"; "mnist"; "--model"; "tiny"; "--steps"; "2"; "--out"; out ]
            Expect.equal r.ExitCode 2 r.Stderr
            Expect.equal (r.Stderr.Trim().Split('\n').Length) 1 r.Stderr
            Expect.stringContains r.Stderr "DFN_KERNELS='fastest'" "names it"
            Expect.isFalse (Directory.Exists out) "nothing written"
        }
        test "cleanup" { if Directory.Exists dir then Directory.Delete(dir, true) }
    ]
