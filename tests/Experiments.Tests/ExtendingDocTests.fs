/// docs/extending.md shows the files of samples/Extending.Sample whole, and they run: a weighting registered from
/// outside the library, a clustering objective and a data source train together.
module DiffusionFunctional.Experiments.Tests.ExtendingDocTests

open System
open System.Diagnostics
open System.IO
open System.Text.RegularExpressions
open Expecto
open DiffusionFunctional.Api.Tests.TestSupport


/// The page's C# blocks that name their file ("// file: PATH" on their first line): (path, code without that line).
let private blocks (page: string) =
    [ for m in Regex.Matches(page, "```csharp\n// file: (?<path>[^\n]+)\n(?<code>.*?)```", RegexOptions.Singleline) ->
        m.Groups.["path"].Value.Trim(), m.Groups.["code"].Value ]

[<Tests>]
let tests =
    testList "docs/extending.md" [
        test "every file of the sample is on the page, as it is" {
            let root = repoRoot ()
            let shown = blocks (File.ReadAllText(Path.Combine(root, "docs", "extending.md")).ReplaceLineEndings "\n")
            let files = Directory.GetFiles(Path.Combine(root, "samples", "Extending.Sample"), "*.cs") |> Array.map (fun f -> Path.GetRelativePath(root, f).Replace('\\', '/')) |> Set.ofArray
            Expect.equal (shown |> List.map fst |> Set.ofList) files "one block per file"
            for path, code in shown do
                Expect.equal code (File.ReadAllText(Path.Combine(root, path)).ReplaceLineEndings "\n") (sprintf "%s as on the page" path)
        }
        test "the sample trains with the registered weighting, the new objective's plan and the new data source" {
            let dll = Path.Combine(repoRoot (), "samples", "Extending.Sample", "bin", "Release", "net10.0", "Extending.Sample.dll")
            Expect.isTrue (File.Exists dll) (sprintf "%s built with the solution" dll)
            let info = ProcessStartInfo("dotnet", RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false)
            for a in [ dll; "3" ] do info.ArgumentList.Add a
            use p = Process.Start info
            let err = p.StandardError.ReadToEndAsync()
            let out = p.StandardOutput.ReadToEnd()
            Expect.isTrue (p.WaitForExit 300_000) "finishes"
            Expect.equal p.ExitCode 0 err.Result
            Expect.stringContains out "trained 3 steps of rings (64 images, seed 1) with 'scaled'" "trained"
            Expect.stringContains out "sqrt-snr k=4" "on the new objective's plan"
            Expect.stringContains out "trained 3 steps of a pixel MLP of width 64" "the registered backbone trained"
        }
    ]
