/// The README's library example (samples/Readme.Sample, the same code) runs on this machine as written: it fetches
/// MNIST on first use, trains, samples and writes a grid.
module DiffusionFunctional.Experiments.Tests.ReadmeSampleTests

open System
open System.Diagnostics
open System.IO
open Expecto
open DiffusionFunctional.Api.Tests.TestSupport


[<Tests>]
let tests =
    testList "README example" [
        test "samples/Readme.Sample (the README's C# example) trains two steps of MNIST and writes a grid of 64-pixel digits" {
            let dll = Path.Combine(repoRoot (), "samples", "Readme.Sample", "bin", "Release", "net10.0", "Readme.Sample.dll")
            Expect.isTrue (File.Exists dll) (sprintf "%s built with the solution" dll)
            let dir, clean = tempDir "readme"
            use _ = clean
            let info = ProcessStartInfo("dotnet", RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false)
            for a in [ dll; "2"; dir ] do info.ArgumentList.Add a
            use p = Process.Start info
            let err = p.StandardError.ReadToEndAsync()
            let out = p.StandardOutput.ReadToEnd()
            Expect.isTrue (p.WaitForExit 600_000) "finishes"
            Expect.equal p.ExitCode 0 err.Result
            Expect.stringContains out "trained 2 steps" "trained"
            use grid = SkiaSharp.SKBitmap.Decode(Path.Combine(dir, "grid.png"))
            Expect.isGreaterThanOrEqual grid.Width (4 * 64) "16 digits of 28 pixels enlarged to at least 64 each"
            Expect.isTrue (File.Exists(Path.Combine(dir, "checkpoint.dfn"))) "checkpoint written"
        }
    ]
