/// Denoising task routing beside the clusters: the compiled facade's RoutingWindow and RoutingOverlap equal
/// Core's TaskRouting (docs/routing-and-densities.md) for several settings, timesteps and channel counts; the
/// attribute's defaults are Core's; a facade without routing is the same text as before routing existed.
module DiffusionFunctional.Generators.Tests.RoutingTests

open System
open System.Reflection
open DiffusionFunctional.Core
open DiffusionFunctional.Generators.Tests.Harness
open Expecto

type RoutedCase =
    { Name: string
      Timesteps: int
      /// The attribute text of the two settings ("" leaves Core's default).
      Share: string
      Sharpness: string
      ExpectedShare: float
      ExpectedSharpness: float }

/// Hand-picked edges (T = 1, share 1, sharpness below 1, int literals, defaults) and seeded random settings.
let private cases =
    let fixedCases =
        [ "Defaults", 1000, "", "", TaskRouting.DefaultShare, TaskRouting.DefaultSharpness
          "OneStep", 1, "0.5", "1", 0.5, 1.0
          "FullShare", 37, "1", "0.5", 1.0, 0.5
          "Narrow", 4000, "0.3", "2.5", 0.3, 2.5
          "Tiny", 250, "0.01", "4", 0.01, 4.0 ]
    let random = Random 20240507
    let invariant = Globalization.CultureInfo.InvariantCulture
    let randomCases =
        [ for i in 0 .. 9 ->
            // Written as the C# literal the attribute gets; the expected value is that literal read back.
            let share = Math.Round(0.05 + 0.95 * random.NextDouble(), 4).ToString("R", invariant)
            let sharpness = Math.Round(0.25 + 6.0 * random.NextDouble(), 3).ToString("R", invariant)
            sprintf "Random%d" i, 2 + random.Next 2000, share, sharpness, Double.Parse(share, invariant), Double.Parse(sharpness, invariant) ]
    (fixedCases @ randomCases)
    |> List.map (fun (name, t, share, sharpness, s, a) ->
        { Name = name; Timesteps = t; Share = share; Sharpness = sharpness; ExpectedShare = s; ExpectedSharpness = a })

let private declaration (c: RoutedCase) =
    let setting name value = if value = "" then "" else sprintf ", %s = %s" name value
    sprintf "[TaskClusters(Timesteps = %d, Clusters = 1, Routing = \"dtr\"%s%s)]\npublic static partial class %s;\n"
        c.Timesteps (setting "RoutingShare" c.Share) (setting "RoutingSharpness" c.Sharpness) c.Name

/// Every case in one compilation, compiled and loaded once.
let private loaded =
    lazy (
        let source = "using DiffusionFunctional;\nnamespace Routed;\n" + (cases |> List.map declaration |> String.concat "\n")
        let r = run [] true [ source ]
        if not (List.isEmpty (crashes r)) then failwithf "generator failed: %A" (crashes r)
        if not (List.isEmpty r.GeneratorDiagnostics) then failwithf "unexpected diagnostics:\n%s" (describe r.GeneratorDiagnostics)
        let assembly = load r
        cases |> List.map (fun c -> c, assembly.GetType("Routed." + c.Name, true)))

let private invoke (t: Type) (name: string) (arguments: obj[]) =
    try t.GetMethod(name).Invoke(null, arguments)
    with :? TargetInvocationException as e -> raise e.InnerException

let private windowOf (t: Type) (time: int) (channels: int) =
    let struct (start, count) = invoke t "RoutingWindow" [| box time; box channels |] :?> struct (int * int)
    start, count

/// Timesteps at both ends, around a third and a half, and the neighbours of the ends.
let private timesOf (c: RoutedCase) =
    [ 0; 1; c.Timesteps / 3; c.Timesteps / 2; c.Timesteps - 2; c.Timesteps - 1 ] |> List.filter (fun t -> t >= 0 && t < c.Timesteps) |> List.distinct

let private channelCounts = [ 1; 2; 3; 7; 64; 100; 128; 320; 1280 ]

let private activatesAChannel (c: RoutedCase) channels = Math.Floor(c.ExpectedShare * float channels) >= 1.0

[<Tests>]
let routing =
    testList "Routing" [
        test "the routing constants are the declared settings, Core's defaults when not written" {
            for c, t in loaded.Value do
                Expect.equal (staticValue t "Routing" :?> string) "dtr" c.Name
                Expect.equal (staticValue t "RoutingShare" :?> float) c.ExpectedShare (sprintf "%s share" c.Name)
                Expect.equal (staticValue t "RoutingSharpness" :?> float) c.ExpectedSharpness (sprintf "%s sharpness" c.Name)
        }

        test "RoutingWindow equals Core's TaskRouting.window for every case, timestep and channel count" {
            let mutable compared = 0
            for c, t in loaded.Value do
                for channels in channelCounts |> List.filter (activatesAChannel c) do
                    for time in timesOf c do
                        let expected = TaskRouting.window time c.Timesteps channels c.ExpectedShare c.ExpectedSharpness
                        Expect.equal (windowOf t time channels) (expected.Start, expected.Width) (sprintf "%s t = %d, C = %d" c.Name time channels)
                        compared <- compared + 1
            Expect.isGreaterThan compared 500 "enough comparisons"
        }

        test "the ends of the schedule: t = 0 starts at channel 0, t = T - 1 ends at the last channel" {
            for c, t in loaded.Value do
                for channels in channelCounts |> List.filter (activatesAChannel c) do
                    let width = int (Math.Floor(c.ExpectedShare * float channels))
                    Expect.equal (windowOf t 0 channels) (0, width) (sprintf "%s t = 0, C = %d" c.Name channels)
                    if c.Timesteps > 1 then
                        Expect.equal (windowOf t (c.Timesteps - 1) channels) (channels - width, width) (sprintf "%s t = T - 1, C = %d" c.Name channels)
        }

        test "RoutingOverlap equals Core's TaskRouting.overlap for pairs of timesteps" {
            for c, t in loaded.Value do
                for channels in [ 64; 128; 320 ] |> List.filter (activatesAChannel c) do
                    for t1 in timesOf c do
                        for t2 in timesOf c do
                            let expected = TaskRouting.overlap t1 t2 c.Timesteps channels c.ExpectedShare c.ExpectedSharpness
                            Expect.equal (invoke t "RoutingOverlap" [| box t1; box t2; box channels |] :?> int) expected (sprintf "%s (%d, %d), C = %d" c.Name t1 t2 channels)
        }

        test "bad timesteps and channel counts throw ArgumentOutOfRangeException; a share that activates nothing, Core's ArgumentException" {
            let c, t = loaded.Value |> List.find (fun (c, _) -> c.Name = "Tiny")
            for bad in [ -1; c.Timesteps; Int32.MinValue; Int32.MaxValue ] do
                Expect.throwsT<ArgumentOutOfRangeException> (fun () -> windowOf t bad 128 |> ignore) (sprintf "window at t = %d" bad)
                Expect.throwsT<ArgumentOutOfRangeException> (fun () -> invoke t "RoutingOverlap" [| box 0; box bad; box 128 |] |> ignore) (sprintf "overlap at t = %d" bad)
            for bad in [ 0; -5 ] do
                Expect.throwsT<ArgumentOutOfRangeException> (fun () -> windowOf t 0 bad |> ignore) (sprintf "C = %d" bad)
            // share 0.01: floor(0.01 * 64) = 0 channels.
            let thrown = Expect.throwsC (fun () -> windowOf t 0 64 |> ignore) id
            Expect.equal (thrown.GetType()) typeof<ArgumentException> "Core's own check"
            Expect.stringContains thrown.Message "activates no channel" thrown.Message
        }

        test "the attribute's routing defaults are Core's" {
            let r = run [] true [ "class Nothing { }" ]
            let attribute = Map.find "DiffusionFunctional.TaskClustersAttribute.g.cs" r.Sources
            let literal (x: float) = x.ToString("R", Globalization.CultureInfo.InvariantCulture)
            Expect.stringContains attribute (sprintf "public double RoutingShare { get; set; } = %s;" (literal TaskRouting.DefaultShare)) "share"
            Expect.stringContains attribute (sprintf "public double RoutingSharpness { get; set; } = %s.0;" (literal TaskRouting.DefaultSharpness)) "sharpness"
            Expect.stringContains attribute "public string Routing { get; set; } = \"none\";" "routing"
        }

        test "Routing = \"none\" (any case) emits the very text of a facade that never mentions routing" {
            let plain = "using DiffusionFunctional;\nnamespace Demo;\n[TaskClusters(Schedule = \"linear\", Timesteps = 1000, Clusters = 5, Objective = \"snr\")]\npublic static partial class FaceTasks;\n"
            let none = plain.Replace("Objective = \"snr\")", "Objective = \"snr\", Routing = \"NONE\")")
            let hint = "Demo.FaceTasks.TaskClusters.g.cs"
            let a, b = run [] true [ plain ], run [] true [ none ]
            Expect.isEmpty (b.GeneratorDiagnostics) (describe b.GeneratorDiagnostics)
            Expect.equal (Map.find hint b.Sources) (Map.find hint a.Sources) "same text"
        }
    ]
