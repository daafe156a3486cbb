/// Generated facades against Core at run time: for every schedule and objective, k = 1..20 and T up to 4000,
/// the compile-time boundaries, cost, plan and ClusterOf equal what Core computes now.
module DiffusionFunctional.Generators.Tests.EquivalenceTests

open System
open System.Collections.Generic
open DiffusionFunctional.Core
open DiffusionFunctional.Generators.Tests.Harness
open Expecto

type Case =
    { Name: string
      Schedule: string
      Timesteps: int
      Clusters: int
      Objective: string
      SnrScale: string
      Affinity: float[,] option }

let private schedules = [ "linear"; "scaled_linear"; "squaredcos_cap_v2"; "sigmoid" ]

/// Every schedule x {timestep, snr log, snr raw} x k = 1..20, with T drawn (seeded) from k..4000 and the
/// extremes T = k and T = 4000 included; plus affinity cases over random symmetric matrices.
let cases =
    let random = Random 20231201
    let plain =
        [ for schedule in schedules do
            for objective, scale in [ "timestep", "log"; "snr", "log"; "snr", "raw" ] do
                for k in 1 .. 20 ->
                    let t = match k % 7 with 0 -> k | 1 -> 4000 | _ -> random.Next(k, 4001)
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

/// One compilation holding every case: the generator runs once, the result is compiled and loaded.
let private generated =
    lazy (
        let source = "using DiffusionFunctional;\nnamespace Cases;\n" + (cases |> List.map declaration |> String.concat "\n")
        let files = cases |> List.choose (fun c -> c.Affinity |> Option.map (fun m -> sprintf "/cases/%s.csv" c.Name, AffinityCsv.format m))
        let r = run files true [ source ]
        if not (List.isEmpty (crashes r)) then failwithf "generator failed: %A" (crashes r)
        if not (List.isEmpty r.GeneratorDiagnostics) then failwithf "unexpected diagnostics:\n%s" (describe r.GeneratorDiagnostics)
        let assembly = load r
        cases |> List.map (fun c -> c, assembly.GetType("Cases." + c.Name, true)))

let private checkCase (c: Case, t: Type) =
    let expected = runtime c
    let boundaries = staticValue t "Boundaries" :?> IReadOnlyList<int> |> Array.ofSeq
    Expect.equal boundaries expected.Boundaries (sprintf "%s boundaries" c.Name)
    Expect.equal (staticValue t "Count" :?> int) expected.Count (sprintf "%s Count" c.Name)
    Expect.equal (staticValue t "Timesteps" :?> int) c.Timesteps (sprintf "%s Timesteps" c.Name)
    // The const is written with round-trip formatting, so it is the very same double.
    Expect.equal (staticValue t "Cost" :?> float) expected.Cost (sprintf "%s Cost" c.Name)
    let plan = staticValue t "Plan" :?> ClusterPlan
    let corePlan = ClusterPlan.OfClusters expected
    Expect.isTrue (plan.SameAs corePlan) (sprintf "%s: %O vs %O" c.Name plan corePlan)
    Expect.equal plan.Origin corePlan.Origin (sprintf "%s origin" c.Name)
    let clusterOf = t.GetMethod("ClusterOf")
    for time in [ 0; c.Timesteps - 1; c.Timesteps / 2; c.Timesteps / 3 ] @ [ for b in expected.Boundaries.[1 .. expected.Count - 1] do yield b - 1; yield b ] do
        Expect.equal (clusterOf.Invoke(null, [| box time |]) :?> int) (corePlan.ClusterOf time) (sprintf "%s ClusterOf %d" c.Name time)
    let schedule = Schedule.create (Result.defaultWith failwith (Schedule.tryParseKind c.Schedule)) c.Timesteps
    for i in 0 .. expected.Count - 1 do
        let cluster = staticValue t (sprintf "Cluster%d" i)
        let field name = cluster.GetType().GetProperty(name).GetValue cluster
        Expect.equal (field "Start" :?> int, field "End" :?> int) (expected.Boundaries.[i], expected.Boundaries.[i + 1]) (sprintf "%s Cluster%d" c.Name i)
        Expect.equal (field "LogSnrStart" :?> float) schedule.LogSnr.[expected.Boundaries.[i]] (sprintf "%s Cluster%d ln SNR start" c.Name i)
        Expect.equal (field "LogSnrEnd" :?> float) schedule.LogSnr.[expected.Boundaries.[i + 1] - 1] (sprintf "%s Cluster%d ln SNR end" c.Name i)

[<Tests>]
let equivalence =
    testList "Generated equals run time" [
        test "the case grid covers every schedule, objective and k = 1..20, T up to 4000" {
            let grid = cases |> List.filter (fun c -> c.Affinity.IsNone)
            Expect.equal (grid |> List.map (fun c -> c.Clusters) |> List.distinct |> List.sort) [ 1 .. 20 ] "every k"
            Expect.equal (cases |> List.map (fun c -> c.Schedule) |> List.distinct |> List.sort) (List.sort schedules) "every schedule"
            Expect.equal (cases |> List.map (fun c -> c.Objective) |> List.distinct |> List.sort) [ "affinity"; "snr"; "timestep" ] "every objective"
            Expect.equal (cases |> List.map (fun c -> c.Timesteps) |> List.max) 4000 "T reaches 4000"
        }

        test "boundaries, cost, plan, ClusterOf and ln SNR ranges equal Core's run-time result" {
            for case in generated.Value do checkCase case
        }

        test "ClusterOf rejects timesteps outside [0, T)" {
            let c, t = generated.Value |> List.head
            for bad in [ -1; c.Timesteps; Int32.MinValue; Int32.MaxValue ] do
                let thrown = Expect.throwsC (fun () -> t.GetMethod("ClusterOf").Invoke(null, [| box bad |]) |> ignore) id
                Expect.isTrue (thrown.InnerException :? ArgumentOutOfRangeException) (sprintf "ClusterOf %d: %O" bad thrown.InnerException)
        }

        test "SampleBatch draws chunk i from cluster i with ChunkSize samples" {
            for c, t in generated.Value |> List.filter (fun (c, _) -> c.Clusters >= 3) |> List.truncate 5 do
                let batch = t.GetMethod("SampleBatch").Invoke(null, [| box 37; box (Random 1) |]) :?> int[]
                let plan = ClusterPlan.OfClusters(runtime c)
                let expectedClusters = [| for i in 0 .. plan.Count - 1 do for _ in 1 .. plan.ChunkSize(i, 37) -> i |]
                Expect.equal (batch |> Array.map plan.ClusterOf) expectedClusters (sprintf "%s: clusters of the batch" c.Name)
        }
    ]
