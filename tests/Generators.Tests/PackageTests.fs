/// `dotnet pack` gives a package from which a fresh consumer project gets the attribute, the generator and
/// what it loads at compile time; the consumer builds, runs and prints Core's boundaries.
module DiffusionFunctional.Generators.Tests.PackageTests

open System
open System.IO
open System.IO.Compression
open System.Xml.Linq
open DiffusionFunctional.Core
open DiffusionFunctional.Generators.Tests.SampleTests
open Expecto

let private consumerProgram = """
using DiffusionFunctional;

Console.WriteLine("boundaries: " + string.Join(",", Cosine.Boundaries));
Console.WriteLine("affinity: " + string.Join(",", FromFile.Boundaries));
Console.WriteLine("plan: " + Cosine.Plan);
var perCluster = Cosine.PerCluster<int>.Create(c => Cosine.Clusters[c].Size);
Console.WriteLine("sizes: " + perCluster);

[TaskClusters(Schedule = "squaredcos_cap_v2", Timesteps = 500, Clusters = 4, Objective = "snr")]
static partial class Cosine;

[TaskClusters(Schedule = "linear", Timesteps = 60, Clusters = 3, Objective = "affinity", AffinityFile = "affinity.csv")]
static partial class FromFile;
"""

let private affinityCsv = "1,0.9,0.8,0.1,0,0\n0.9,1,0.9,0.2,0.1,0\n0.8,0.9,1,0.3,0.1,0.1\n0.1,0.2,0.3,1,0.9,0.2\n0,0.1,0.1,0.9,1,0.7\n0,0,0.1,0.2,0.7,1\n"

let private consumerProject = """<Project Sdk="Microsoft.NET.Sdk">
  <PropertyGroup>
    <OutputType>Exe</OutputType>
    <TargetFramework>net10.0</TargetFramework>
    <ImplicitUsings>enable</ImplicitUsings>
    <Nullable>enable</Nullable>
  </PropertyGroup>
  <ItemGroup>
    <PackageReference Include="DiffusionFunctional.Generators" Version="%s" />
    <AdditionalFiles Include="affinity.csv" />
  </ItemGroup>
</Project>
"""

let private consumerProjectFor (version: string) = consumerProject.Replace("%s", version)

let private nugetConfig = """<?xml version="1.0" encoding="utf-8"?>
<configuration>
  <packageSources>
    <clear />
    <add key="local" value="%s" />
    <add key="nuget" value="https://api.nuget.org/v3/index.json" />
  </packageSources>
</configuration>
"""

let private nugetConfigFor (feed: string) = nugetConfig.Replace("%s", feed)

let private globalPackages () =
    match Environment.GetEnvironmentVariable "NUGET_PACKAGES" with
    | null | "" -> Path.Combine(Environment.GetFolderPath Environment.SpecialFolder.UserProfile, ".nuget", "packages")
    | path -> path

/// Creates a unique temporary folder, runs the body, then deletes the folder and the test version's
/// extracted copy in the global packages folder, whatever happened.
let private withWorkspace (body: string -> string -> unit) =
    let version = sprintf "0.1.0-test.%d" DateTime.UtcNow.Ticks
    let root = Path.Combine(Path.GetTempPath(), "dfn-pack-" + Guid.NewGuid().ToString "N")
    Directory.CreateDirectory root |> ignore
    try
        body root version
    finally
        let extracted = Path.Combine(globalPackages (), "diffusionfunctional.generators")
        for dir in [ root; Path.Combine(extracted, version) ] do
            try if Directory.Exists dir then Directory.Delete(dir, true) with _ -> ()
        try if Directory.Exists extracted && Seq.isEmpty (Directory.EnumerateFileSystemEntries extracted) then Directory.Delete extracted with _ -> ()

let private entries (nupkg: string) =
    use zip = ZipFile.OpenRead nupkg
    zip.Entries |> Seq.map (fun e -> e.FullName) |> Set.ofSeq

let private dependencies (nupkg: string) =
    use zip = ZipFile.OpenRead nupkg
    let nuspec = zip.Entries |> Seq.find (fun e -> e.FullName.EndsWith ".nuspec")
    use stream = nuspec.Open()
    XDocument.Load(stream).Descendants()
    |> Seq.filter (fun e -> e.Name.LocalName = "dependency")
    |> Seq.map (fun e -> e.Attribute(XName.Get "id").Value)
    |> Set.ofSeq

let private expectedBoundaries schedule t k objective affinity =
    (Result.defaultWith (fun e -> failwith (ClusteringError.message e)) (Objectives.clusterByName schedule t k objective "log" affinity)).Boundaries

[<Tests>]
let package =
    testList "Package" [
        test "pack, consume from a local folder, build and run" {
            withWorkspace <| fun root version ->
                let feed = Path.Combine(root, "feed")
                let project = Path.Combine(repoRoot.Value, "generators", "DiffusionFunctional.Generators.csproj")
                let code, output =
                    runProcess repoRoot.Value (TimeSpan.FromMinutes 3.0) "dotnet"
                        [ "pack"; project; "-c"; configuration; "--no-build"; "-o"; feed; "-p:PackageVersion=" + version; "-nologo" ]
                Expect.equal code 0 (sprintf "dotnet pack failed (build the solution in %s first):\n%s" configuration output)
                let nupkg = Path.Combine(feed, sprintf "DiffusionFunctional.Generators.%s.nupkg" version)
                Expect.isTrue (File.Exists nupkg) (sprintf "no %s after pack:\n%s" nupkg output)

                let files = entries nupkg
                for required in [ "analyzers/dotnet/cs/DiffusionFunctional.Generators.dll"; "analyzers/dotnet/cs/DiffusionFunctional.Core.dll"
                                  "analyzers/dotnet/cs/FSharp.Core.dll"; "lib/netstandard2.0/DiffusionFunctional.Core.dll" ] do
                    Expect.contains files required (sprintf "package content: %A" files)
                let analyzerDlls = files |> Set.filter (fun f -> f.StartsWith "analyzers/" && f.EndsWith ".dll")
                Expect.equal analyzerDlls.Count 3 (sprintf "exactly the generator, Core and FSharp.Core under analyzers: %A" analyzerDlls)
                Expect.isFalse (files |> Set.exists (fun f -> f.StartsWith "lib/" && f.Contains "Generators")) "the generator is not a run-time reference"
                Expect.equal (dependencies nupkg) (Set.ofList [ "FSharp.Core" ]) "only FSharp.Core as a dependency (Roslyn stays private)"

                let consumer = Path.Combine(root, "consumer")
                Directory.CreateDirectory consumer |> ignore
                // Empty Directory.Build files stop MSBuild from picking up anything above the temp folder.
                File.WriteAllText(Path.Combine(consumer, "Directory.Build.props"), "<Project />")
                File.WriteAllText(Path.Combine(consumer, "Directory.Build.targets"), "<Project />")
                File.WriteAllText(Path.Combine(consumer, "nuget.config"), nugetConfigFor feed)
                File.WriteAllText(Path.Combine(consumer, "Consumer.csproj"), consumerProjectFor version)
                File.WriteAllText(Path.Combine(consumer, "Program.cs"), consumerProgram)
                File.WriteAllText(Path.Combine(consumer, "affinity.csv"), affinityCsv)

                let code, build = runProcess consumer (TimeSpan.FromMinutes 3.0) "dotnet" [ "build"; "-c"; "Release"; "-nologo"; "-v"; "q" ]
                Expect.equal code 0 (sprintf "consumer build failed:\n%s" build)
                for bad in [ "CS8785"; "CS8032"; "AD0001"; "DFN0" ] do
                    Expect.isFalse (build.Contains bad) (sprintf "consumer build reports %s:\n%s" bad build)
                let code, run = runProcess consumer (TimeSpan.FromMinutes 1.0) "dotnet" [ "run"; "-c"; "Release"; "--no-build" ]
                Expect.equal code 0 (sprintf "consumer run failed:\n%s" run)
                Expect.equal (printedBoundaries run) (Some(expectedBoundaries "squaredcos_cap_v2" 500 4 "snr" None)) run
                let matrix = Result.defaultWith failwith (AffinityCsv.parse affinityCsv)
                let affinityLine = run.Split('\n') |> Array.find (fun l -> l.StartsWith "affinity: ")
                Expect.equal (affinityLine.Substring(10).Trim()) (String.Join(",", expectedBoundaries "linear" 60 3 "affinity" (Some matrix))) run
        }
    ]
