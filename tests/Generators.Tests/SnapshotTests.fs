/// Exact generated text for a few configurations, checked against reviewed snapshots in Snapshots/.
/// To accept a deliberate change: DFN_UPDATE_SNAPSHOTS=1 dotnet run --project tests/Generators.Tests -- --filter "Snapshots"
module DiffusionFunctional.Generators.Tests.SnapshotTests

open System
open System.IO
open DiffusionFunctional.Generators.Tests.Harness
open Expecto

let private snapshotDir = Path.Combine(AppContext.BaseDirectory, "Snapshots")

let private sourceSnapshotDir () =
    // bin/<Configuration>/net10.0 -> the project folder, for DFN_UPDATE_SNAPSHOTS.
    Path.GetFullPath(Path.Combine(AppContext.BaseDirectory, "..", "..", "..", "Snapshots"))

let private firstDifference (expected: string) (actual: string) =
    let e, a = expected.Split('\n'), actual.Split('\n')
    let n = min e.Length a.Length
    match Seq.tryFind (fun i -> e.[i] <> a.[i]) (seq { 0 .. n - 1 }) with
    | Some i -> sprintf "line %d:\n  expected: %s\n  actual:   %s" (i + 1) e.[i] a.[i]
    | None -> sprintf "lengths differ: %d expected lines, %d actual" e.Length a.Length

let private checkSnapshot (name: string) (hint: string) (additional: (string * string) list) (source: string) =
    let r = run additional true [ source ]
    Expect.isEmpty (crashes r) "no generator failure"
    Expect.isEmpty r.GeneratorDiagnostics (describe r.GeneratorDiagnostics)
    Expect.isEmpty (errors r) (describe (errors r))
    let actual = Map.tryFind hint r.Sources |> Option.defaultWith (fun () -> failwithf "no source %s; got %A" hint (facadeHints r))
    if Environment.GetEnvironmentVariable "DFN_UPDATE_SNAPSHOTS" = "1" then
        Directory.CreateDirectory(sourceSnapshotDir ()) |> ignore
        File.WriteAllText(Path.Combine(sourceSnapshotDir (), name + ".txt"), actual)
    let expectedPath = Path.Combine(snapshotDir, name + ".txt")
    if not (File.Exists expectedPath) then failtestf "missing snapshot %s" expectedPath
    let expected = File.ReadAllText(expectedPath).Replace("\r\n", "\n")
    if expected <> actual then
        let saved = Path.Combine(Path.GetTempPath(), sprintf "%s.%s.actual.txt" name (Guid.NewGuid().ToString "N"))
        File.WriteAllText(saved, actual)
        failtestf "generated text for %s differs from Snapshots/%s.txt at %s\n(actual text saved to %s)" hint name (firstDifference expected actual) saved

[<Tests>]
let snapshots =
    testList "Snapshots" [
        test "README example: linear, T = 1000, k = 5, snr" {
            checkSnapshot "FaceTasks" "Demo.FaceTasks.TaskClusters.g.cs" [] """
using DiffusionFunctional;
namespace Demo;
[TaskClusters(Schedule = "linear", Timesteps = 1000, Clusters = 5, Objective = "snr")]
public static partial class FaceTasks;
"""
        }

        test "README routing example: DTR beside the clusters (an int literal for the double sharpness)" {
            checkSnapshot "RoutedTasks" "Demo.RoutedTasks.TaskClusters.g.cs" [] """
using DiffusionFunctional;
namespace Demo;
[TaskClusters(Schedule = "linear", Timesteps = 1000, Clusters = 5, Objective = "snr", Routing = "dtr", RoutingShare = 0.8, RoutingSharpness = 4)]
public static partial class RoutedTasks;
"""
        }

        test "one cluster, timestep objective, a struct nested in a partial class, global namespace" {
            checkSnapshot "Outer.Single" "Outer+Single.TaskClusters.g.cs" [] """
public partial class Outer
{
    [DiffusionFunctional.TaskClusters(Schedule = "cosine", Timesteps = 4, Clusters = 1, Objective = "timestep")]
    internal partial struct Single { }
}
"""
        }

        test "affinity objective from an AdditionalFiles CSV, generic record" {
            let csv = "# 4 groups\n1.0,0.9,0.1,0.0\n0.9,1.0,0.2,0.1\n0.1,0.2,1.0,0.8\n0.0,0.1,0.8,1.0\n"
            checkSnapshot "Affinity" "Lab.Affinity_1.TaskClusters.g.cs" [ "/project/data/affinity.csv", csv ] """
namespace Lab
{
    [DiffusionFunctional.TaskClusters(Schedule = "sigmoid", Timesteps = 100, Clusters = 2, Objective = "affinity", AffinityFile = "data/affinity.csv")]
    public partial record Affinity<TModel>;
}
"""
        }
    ]
