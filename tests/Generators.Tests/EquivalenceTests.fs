/// Generated facades against Core at run time: for every schedule and objective, k = 1..20 and T up to 4000,
/// the compile-time boundaries, cost, plan and ClusterOf equal what Core computes now.
module DiffusionFunctional.Generators.Tests.EquivalenceTests

open System
open System.Collections.Generic
open DiffusionFunctional.Core
open DiffusionFunctional.Generators.Tests.Harness
open Expecto
open Microsoft.CodeAnalysis
open Microsoft.CodeAnalysis.CSharp.Syntax

type Case =
    { Name: string
      Schedule: string
      Timesteps: int
      Clusters: int
      Objective: string
      SnrScale: string
      Affinity: float[,] option }

let private schedules = [ "linear"; "scaled_linear"; "squaredcos_cap_v2"; "sigmoid" ]

/// Every schedule x {timestep, snr log, snr raw, snr-raw} x k = 1..20, with T drawn (seeded) from k..1000 and the
/// extremes T = k and T = 4000 included; plus affinity cases over random symmetric matrices.
let cases =
    let random = Random 20231201
    let plain =
        [ for schedule in schedules do
            for objective, scale in [ "timestep", "log"; "snr", "log"; "snr", "raw"; "snr-raw", "" ] do
                for k in 1 .. 20 ->
                    // The DP dominates this test's time: most T stay small, every seventh k reaches 4000.
                    let t = match k % 7 with 0 -> k | 1 -> 4000 | _ -> random.Next(k, 1001)
                    { Name = ""; Schedule = schedule; Timesteps = t; Clusters = k; Objective = objective; SnrScale = scale; Affinity = None } ]
    let affinity =
        [ for i in 0 .. 39 ->
            let g = 1 + random.Next 40
            let t = g * (1 + random.Next(max 1 (4000 / g)))
            let k = 1 + random.Next(min 20 g)
            let cells = Array.init (g * g) (fun _ -> Math.Round(random.NextDouble() * 2.0 - 1.0, 6))
            let m = Array2D.init g g (fun r c -> cells.[min r c * g + max r c])
            { Name = ""; Schedule = schedules.[i % 4]; Timesteps = t; Clusters = k; Objective = "affinity"; SnrScale = "log"; Affinity = Some m } ]
    plain @ affinity |> List.mapi (fun i c -> { c with Name = sprintf "Case%03d" i })

let private declaration (c: Case) =
    let file = match c.Affinity with Some _ -> sprintf ", AffinityFile = \"%s.csv\"" c.Name | None -> ""
    sprintf "[TaskClusters(Schedule = \"%s\", Timesteps = %d, Clusters = %d, Objective = \"%s\", SnrScale = \"%s\"%s)]\npublic static partial class %s;\n"
        c.Schedule c.Timesteps c.Clusters c.Objective c.SnrScale file c.Name

let private runtime (c: Case) =
    match Objectives.clusterByName c.Schedule c.Timesteps c.Clusters c.Objective c.SnrScale c.Affinity with
    | Ok clusters -> clusters
    | Error e -> failwithf "%s: Core rejects the case: %s" c.Name (ClusteringError.message e)

/// Runs the generator once over the given cases (one compilation, one facade per case).
let private generate (selected: Case list) =
    let source = "using DiffusionFunctional;\nnamespace Cases;\n" + (selected |> List.map declaration |> String.concat "\n")
    let files = selected |> List.choose (fun c -> c.Affinity |> Option.map (fun m -> sprintf "/cases/%s.csv" c.Name, AffinityCsv.format m))
    let r = run files true [ source ]
    if not (List.isEmpty (crashes r)) then failwithf "generator failed: %A" (crashes r)
    if not (List.isEmpty r.GeneratorDiagnostics) then failwithf "unexpected diagnostics:\n%s" (describe r.GeneratorDiagnostics)
    r

/// Every case, read from the compiler's view of the generated code (constants and initialisers): compiling
/// and loading all of them would take minutes, so the run-time members are checked on a subset below.
let private generatedAll = lazy (generate cases)

/// A subset (every k for T = 4000 and every eighth case besides), compiled and loaded.
let private loaded =
    lazy (
        let subset = cases |> List.mapi (fun i c -> i, c) |> List.filter (fun (i, c) -> i % 8 = 0 || c.Timesteps = 4000) |> List.map snd
        let assembly = load (generate subset)
        subset |> List.map (fun c -> c, assembly.GetType("Cases." + c.Name, true)))

/// The constant values in a field's initialiser: array elements or constructor arguments, in order.
let private initializerConstants (compilation: Compilation) (field: IFieldSymbol) =
    let syntax = field.DeclaringSyntaxReferences.[0].GetSyntax() :?> VariableDeclaratorSyntax
    let model = compilation.GetSemanticModel syntax.SyntaxTree
    let expressions =
        match syntax.Initializer.Value with
        | :? ArrayCreationExpressionSyntax as array -> array.Initializer.Expressions |> Seq.toList
        | :? ObjectCreationExpressionSyntax as call -> call.ArgumentList.Arguments |> Seq.map (fun a -> a.Expression) |> Seq.toList
        | other -> failwithf "unexpected initialiser %O" other
    expressions
    |> List.map (fun e -> let v = model.GetConstantValue e in if v.HasValue then v.Value else failwithf "%O is not constant" e)
    |> Array.ofList

let private checkGenerated (compilation: Compilation) (c: Case) =
    let expected = runtime c
    let t = compilation.GetTypeByMetadataName("Cases." + c.Name)
    if isNull t then failwithf "%s was not generated" c.Name
    let field name = t.GetMembers(name) |> Seq.head :?> IFieldSymbol
    let boundaries = initializerConstants compilation (field "taskClustersBoundaries") |> Array.map (fun v -> v :?> int)
    Expect.equal boundaries expected.Boundaries (sprintf "%s boundaries" c.Name)
    Expect.equal ((field "Count").ConstantValue :?> int) expected.Count (sprintf "%s Count" c.Name)
    Expect.equal ((field "Timesteps").ConstantValue :?> int) c.Timesteps (sprintf "%s Timesteps" c.Name)
    // The const is written with round-trip formatting, so it is the very same double.
    Expect.equal ((field "Cost").ConstantValue :?> float) expected.Cost (sprintf "%s Cost" c.Name)
    let schedule = Schedule.create (Result.defaultWith failwith (Schedule.tryParseKind c.Schedule)) c.Timesteps
    let b = expected.Boundaries
    for i in 0 .. expected.Count - 1 do
        let args = initializerConstants compilation (field (sprintf "Cluster%d" i))
        Expect.equal args [| box i; box b.[i]; box b.[i + 1]; box schedule.LogSnr.[b.[i]]; box schedule.LogSnr.[b.[i + 1] - 1] |] (sprintf "%s Cluster%d" c.Name i)

/// The compiled facade at run time: Boundaries, Plan (equal to Core's), ClusterOf around every boundary.
let private checkLoaded (c: Case, t: Type) =
    let expected = runtime c
    let boundaries = staticValue t "Boundaries" :?> IReadOnlyList<int> |> Array.ofSeq
    Expect.equal boundaries expected.Boundaries (sprintf "%s boundaries" c.Name)
    Expect.equal (staticValue t "Cost" :?> float) expected.Cost (sprintf "%s Cost" c.Name)
    let plan = staticValue t "Plan" :?> ClusterPlan
    let corePlan = ClusterPlan.OfClusters expected
    Expect.isTrue (plan.SameAs corePlan) (sprintf "%s: %O vs %O" c.Name plan corePlan)
    Expect.equal plan.Origin corePlan.Origin (sprintf "%s origin" c.Name)
    let clusterOf = t.GetMethod("ClusterOf")
    for time in [ 0; c.Timesteps - 1; c.Timesteps / 2; c.Timesteps / 3 ] @ [ for b in expected.Boundaries.[1 .. expected.Count - 1] do yield b - 1; yield b ] do
        Expect.equal (clusterOf.Invoke(null, [| box time |]) :?> int) (corePlan.ClusterOf time) (sprintf "%s ClusterOf %d" c.Name time)
    let last = staticValue t (sprintf "Cluster%d" (expected.Count - 1))
    Expect.equal (last.GetType().GetProperty("End").GetValue last :?> int) c.Timesteps (sprintf "%s last cluster ends at T" c.Name)

[<Tests>]
let equivalence =
    testList "Generated equals run time" [
        test "the case grid covers every schedule, objective and k = 1..20, T up to 4000" {
            let grid = cases |> List.filter (fun c -> c.Affinity.IsNone)
            Expect.equal (grid |> List.map (fun c -> c.Clusters) |> List.distinct |> List.sort) [ 1 .. 20 ] "every k"
            Expect.equal (cases |> List.map (fun c -> c.Schedule) |> List.distinct |> List.sort) (List.sort schedules) "every schedule"
            Expect.equal (cases |> List.map (fun c -> c.Objective) |> List.distinct |> List.sort) (List.sort (List.ofArray Objectives.names)) "every objective Core names"
            Expect.equal (cases |> List.map (fun c -> c.Timesteps) |> List.max) 4000 "T reaches 4000"
        }

        test "generated boundaries, cost and per-cluster ln SNR ranges equal Core's run-time result, every case" {
            let r = generatedAll.Value
            Expect.equal (facadeHints r).Length cases.Length "one facade per case"
            for case in cases do checkGenerated r.Output case
        }

        test "compiled facades: Boundaries, Plan and ClusterOf equal Core's at run time" {
            for case in loaded.Value do checkLoaded case
        }

        test "ClusterOf rejects timesteps outside [0, T)" {
            let c, t = loaded.Value |> List.head
            for bad in [ -1; c.Timesteps; Int32.MinValue; Int32.MaxValue ] do
                let thrown = Expect.throwsC (fun () -> t.GetMethod("ClusterOf").Invoke(null, [| box bad |]) |> ignore) id
                Expect.isTrue (thrown.InnerException :? ArgumentOutOfRangeException) (sprintf "ClusterOf %d: %O" bad thrown.InnerException)
        }

        test "SampleBatch draws chunk i from cluster i with ChunkSize samples" {
            for c, t in loaded.Value |> List.filter (fun (c, _) -> c.Clusters >= 3) |> List.truncate 5 do
                let batch = t.GetMethod("SampleBatch").Invoke(null, [| box 37; box (Random 1) |]) :?> int[]
                let plan = ClusterPlan.OfClusters(runtime c)
                let expectedClusters = [| for i in 0 .. plan.Count - 1 do for _ in 1 .. plan.ChunkSize(i, 37) -> i |]
                Expect.equal (batch |> Array.map plan.ClusterOf) expectedClusters (sprintf "%s: clusters of the batch" c.Name)
        }
    ]
