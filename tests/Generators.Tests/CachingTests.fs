/// Incremental caching: edits that do not touch a facade's configuration leave every tracked step Cached or
/// Unchanged (the DP is not rerun); a real change to the configuration does rerun it.
module DiffusionFunctional.Generators.Tests.CachingTests

open System.Collections.Immutable
open DiffusionFunctional.Generators
open DiffusionFunctional.Generators.Tests.Harness
open Expecto
open Microsoft.CodeAnalysis
open Microsoft.CodeAnalysis.CSharp

let private facadeSource clusters =
    sprintf "using DiffusionFunctional;\nnamespace Demo;\n[TaskClusters(Schedule = \"linear\", Timesteps = 1000, Clusters = %d, Objective = \"snr\")]\npublic static partial class FaceTasks;\n" clusters

let private otherSource = "namespace Demo;\npublic static class Helpers { public static int Twice(int x) => 2 * x; }\n"

let private steps =
    [ TaskClustersGenerator.Steps.Requests; TaskClustersGenerator.Steps.Specs; TaskClustersGenerator.Steps.ClusterRequests
      TaskClustersGenerator.Steps.Outcomes; TaskClustersGenerator.Steps.Facades; TaskClustersGenerator.Steps.Diagnostics ]

/// Reasons of every output of the named step in the driver's last run.
let private reasons (d: GeneratorDriver) (step: string) =
    let result = d.GetRunResult().Results.[0]
    match result.TrackedSteps.TryGetValue step with
    | true, runs -> [ for run in runs do for _, reason in run.Outputs -> reason ]
    | _ -> failwithf "step %s was not tracked; tracked: %A" step (List.ofSeq result.TrackedSteps.Keys)

let private cachedOrUnchanged reason = reason = IncrementalStepRunReason.Cached || reason = IncrementalStepRunReason.Unchanged

let private firstAndSecond (edit: Compilation -> Compilation) =
    let start = compilation true [ facadeSource 5; otherSource ]
    let d = (driver []).RunGenerators start
    let d = d.RunGenerators(edit start)
    d

let private replaceTree (index: int) (text: string) (c: Compilation) =
    let old = c.SyntaxTrees |> Seq.item index
    c.ReplaceSyntaxTree(old, CSharpSyntaxTree.ParseText(text, parseOptions, old.FilePath))

[<Tests>]
let caching =
    testList "Caching" [
        test "adding an unrelated file leaves every step cached" {
            let d = firstAndSecond (fun c -> c.AddSyntaxTrees(CSharpSyntaxTree.ParseText("class Unrelated { }", parseOptions, "Unrelated.cs")))
            for step in steps do
                let rs = reasons d step
                Expect.isNonEmpty rs (sprintf "%s ran" step)
                Expect.all rs cachedOrUnchanged (sprintf "%s: %A" step rs)
            let outputs = d.GetRunResult().Results.[0].TrackedOutputSteps
            for KeyValue(name, runs) in outputs do
                for run in runs do
                    for _, reason in run.Outputs do
                        Expect.isTrue (cachedOrUnchanged reason) (sprintf "output %s: %O" name reason)
        }

        test "editing another file's code leaves every step cached" {
            let d = firstAndSecond (replaceTree 1 (otherSource.Replace("2 * x", "x + x")))
            for step in steps do Expect.all (reasons d step) cachedOrUnchanged step
        }

        test "moving the facade down its file reruns nothing but the diagnostics' locations" {
            let d = firstAndSecond (replaceTree 0 ("// a comment that moves everything below it\n" + facadeSource 5))
            for step in [ TaskClustersGenerator.Steps.Specs; TaskClustersGenerator.Steps.ClusterRequests
                          TaskClustersGenerator.Steps.Outcomes; TaskClustersGenerator.Steps.Facades ] do
                Expect.all (reasons d step) cachedOrUnchanged step
        }

        test "changing the cluster count reruns the clustering and the facade" {
            let d = firstAndSecond (replaceTree 0 (facadeSource 6))
            Expect.contains (reasons d TaskClustersGenerator.Steps.Outcomes) IncrementalStepRunReason.Modified "the DP reran"
            Expect.contains (reasons d TaskClustersGenerator.Steps.Facades) IncrementalStepRunReason.Modified "a new facade"
            let source = d.GetRunResult().Results.[0].GeneratedSources |> Seq.find (fun s -> s.HintName = "Demo.FaceTasks.TaskClusters.g.cs")
            Expect.stringContains (source.SourceText.ToString()) "public const int Count = 6;" "the new facade"
        }

        test "a routed facade: an unrelated edit leaves every step cached, a new routing share reruns the facade" {
            let routed share = (facadeSource 5).Replace("Objective = \"snr\")", sprintf "Objective = \"snr\", Routing = \"dtr\", RoutingShare = %s)" share)
            let start = compilation true [ routed "0.8"; otherSource ]
            let d = (driver []).RunGenerators start
            let unrelated = d.RunGenerators(replaceTree 1 (otherSource.Replace("2 * x", "x + x")) start)
            for step in steps do Expect.all (reasons unrelated step) cachedOrUnchanged step
            let changed = d.RunGenerators(replaceTree 0 (routed "0.5") start)
            Expect.contains (reasons changed TaskClustersGenerator.Steps.Outcomes) IncrementalStepRunReason.Modified "the outcome changed"
            Expect.contains (reasons changed TaskClustersGenerator.Steps.Facades) IncrementalStepRunReason.Modified "a new facade"
            let source = changed.GetRunResult().Results.[0].GeneratedSources |> Seq.find (fun s -> s.HintName = "Demo.FaceTasks.TaskClusters.g.cs")
            Expect.stringContains (source.SourceText.ToString()) "public const double RoutingShare = 0.5;" "the new share"
        }

        test "changing the affinity file reruns; changing another additional file does not" {
            let src = "using DiffusionFunctional;\n[TaskClusters(Timesteps = 40, Clusters = 2, Objective = \"affinity\", AffinityFile = \"m.csv\")]\npublic static partial class A;\n"
            let start = compilation true [ src ]
            let matrix = Harness.InMemoryText("/p/m.csv", "1,0.5\n0.5,1\n")
            let other = Harness.InMemoryText("/p/notes.txt", "v1")
            let d = (driver []).AddAdditionalTexts(ImmutableArray.Create<AdditionalText>(matrix, other)).RunGenerators start
            let d1 = d.ReplaceAdditionalText(other, Harness.InMemoryText("/p/notes.txt", "v2")).RunGenerators start
            Expect.all (reasons d1 TaskClustersGenerator.Steps.Outcomes) cachedOrUnchanged "unrelated file"
            let d2 = d.ReplaceAdditionalText(matrix, Harness.InMemoryText("/p/m.csv", "1,0.1\n0.1,1\n")).RunGenerators start
            Expect.contains (reasons d2 TaskClustersGenerator.Steps.ClusterRequests) IncrementalStepRunReason.Modified "the matrix changed"
        }
    ]
