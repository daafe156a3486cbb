/// The README example is the sample project of the solution: it compiles (with the real compiler loading
/// the generator, Core and FSharp.Core as analyzers) and prints Core's run-time boundaries.
module DiffusionFunctional.Generators.Tests.SampleTests

open System
open System.Diagnostics
open System.IO
open DiffusionFunctional.Core
open Expecto

/// The repository root: the folder above the test binaries that holds DiffusionFunctional.sln.
let repoRoot =
    lazy (
        let rec up (dir: DirectoryInfo) =
            if isNull dir then failwith "DiffusionFunctional.sln not found above the test binaries"
            elif File.Exists(Path.Combine(dir.FullName, "DiffusionFunctional.sln")) then dir.FullName
            else up dir.Parent
        up (DirectoryInfo AppContext.BaseDirectory))

/// Release or Debug: the configuration these tests were built in (the sample is built alongside).
let configuration =
    if AppContext.BaseDirectory.Replace('\\', '/').Contains "/bin/Debug/" then "Debug" else "Release"

/// Runs a process to completion (with a time limit) and returns its exit code and combined output.
let runProcess (workingDirectory: string) (timeout: TimeSpan) (file: string) (arguments: string list) =
    let info = ProcessStartInfo(file, arguments, WorkingDirectory = workingDirectory, RedirectStandardOutput = true, RedirectStandardError = true)
    info.Environment.["DOTNET_CLI_TELEMETRY_OPTOUT"] <- "1"
    info.Environment.["DOTNET_NOLOGO"] <- "1"
    use p = Process.Start info
    let out = p.StandardOutput.ReadToEndAsync()
    let err = p.StandardError.ReadToEndAsync()
    if not (p.WaitForExit(int timeout.TotalMilliseconds)) then
        p.Kill true
        failwithf "%s %s timed out after %O" file (String.Join(" ", arguments)) timeout
    p.ExitCode, out.Result + err.Result

/// The "boundaries: ..." line a facade program prints, parsed.
let printedBoundaries (output: string) =
    output.Split('\n')
    |> Array.tryFind (fun l -> l.StartsWith "boundaries: ")
    |> Option.map (fun l -> l.Substring("boundaries: ".Length).Trim().Split(',') |> Array.map int)

let readmeExampleBoundaries () =
    (Result.defaultWith (fun e -> failwith (ClusteringError.message e)) (Objectives.clusterByName "linear" 1000 5 "snr" "log" None)).Boundaries

[<Tests>]
let sample =
    testList "Sample" [
        test "README shows the sample's declaration" {
            let readme = File.ReadAllText(Path.Combine(repoRoot.Value, "README.md"))
            let program = File.ReadAllText(Path.Combine(repoRoot.Value, "samples", "ClusterFacade.Sample", "Program.cs"))
            let line = "[TaskClusters(Schedule = \"linear\", Timesteps = 1000, Clusters = 5, Objective = \"snr\")]"
            Expect.stringContains readme line "README example"
            Expect.stringContains program line "sample program"
            let routed = "[TaskClusters(Schedule = \"linear\", Timesteps = 1000, Clusters = 5, Objective = \"snr\", Routing = \"dtr\", RoutingShare = 0.8, RoutingSharpness = 4)]"
            Expect.stringContains readme routed "README routing example"
            Expect.stringContains program routed "sample program's routing"
        }

        test "the sample project runs and prints Core's boundaries" {
            let dll = Path.Combine(repoRoot.Value, "samples", "ClusterFacade.Sample", "bin", configuration, "net10.0", "ClusterFacade.Sample.dll")
            if not (File.Exists dll) then failtestf "%s is missing: build the solution (-c %s) first" dll configuration
            let code, output = runProcess repoRoot.Value (TimeSpan.FromSeconds 60.0) "dotnet" [ dll ]
            Expect.equal code 0 output
            Expect.equal (printedBoundaries output) (Some(readmeExampleBoundaries ())) output
            Expect.stringContains output "same as run time: True" output
            Expect.stringContains output "routing same as Core: True" output
            // The README's numbers: the window of t = 500 and the overlap of the two ends, for C = 128.
            let w = TaskRouting.window 500 1000 128 TaskRouting.DefaultShare TaskRouting.DefaultSharpness
            Expect.stringContains output (sprintf "t = 500: active channels (start, count) (%d, %d) of 128" w.Start w.Width) output
            let ends = TaskRouting.overlap 0 999 1000 128 TaskRouting.DefaultShare TaskRouting.DefaultSharpness
            Expect.stringContains output (sprintf "t = 0 and t = 999 share %d channels" ends) output
        }
    ]
