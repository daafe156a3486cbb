module DiffusionFunctional.Core.Tests.ClusteringTests

open System
open DiffusionFunctional.Core
open DiffusionFunctional.Core.Tests.Generators
open Expecto
open FsCheck.FSharp

/// A random objective's interval cost over n items: timestep, log/raw SNR of random betas,
/// arbitrary values (L1 to median, possibly non-monotone) or a random symmetric affinity matrix.
let genCost n =
    Gen.oneof [
        Gen.constant ("timestep", IntervalCost.l1ToMedian (Array.init n float))
        genBetas n |> Gen.map (fun b -> "snr-log", IntervalCost.l1ToMedian (Schedule.create (CustomBetas b) n).LogSnr)
        genBetas n |> Gen.map (fun b -> "snr-raw", IntervalCost.l1ToMedian (Schedule.create (CustomBetas b) n).Snr)
        genValues n |> Gen.map (fun v -> "values", IntervalCost.l1ToMedian v)
        genSymmetric n |> Gen.map (fun m -> "affinity", IntervalCost.affinity m) ]

let genCase = gen {
    let! n, k = genSizes
    let! name, cost = genCost n
    return name, cost, k }

let genMongeCase = gen {
    let! n = Gen.choose (1, 60)
    let! k = Gen.choose (1, n)
    let! cost =
        Gen.oneof [ Gen.constant (IntervalCost.l1ToMedian (Array.init n float))
                    genBetas n |> Gen.map (fun b -> IntervalCost.l1ToMedian (Schedule.create (CustomBetas b) n).LogSnr)
                    Gen.arrayOfLength n (genFinite -100.0 100.0) |> Gen.map (Array.sort >> IntervalCost.l1ToMedian) ]
    return cost, k }

let forAllCases property = Prop.forAll (Arb.fromGen genCase) property

[<Tests>]
let properties =
    testList "Clustering properties" [
        testPropertyWithConfig config "optimal cost equals brute-force enumeration (n <= 10, every k <= n)" <| fun () ->
            forAllCases <| fun (name, cost, k) ->
                let result = Clustering.solve cost k
                let best, _ = bruteForce cost k
                Expect.isTrue (close 1e-9 result.Cost best) (sprintf "%s: DP %g vs brute force %g" name result.Cost best)

        testPropertyWithConfig config "the O(k n^2) path is optimal for every cost (n <= 10)" <| fun () ->
            forAllCases <| fun (name, cost, k) ->
                let result = Clustering.solveQuadratic cost k
                Expect.isTrue (close 1e-9 result.Cost (fst (bruteForce cost k))) name

        testPropertyWithConfig config "boundaries strictly increase from 0 to n" <| fun () ->
            forAllCases <| fun (_, cost, k) ->
                let b = (Clustering.solve cost k).Boundaries
                Expect.equal b.Length (k + 1) "k + 1 boundaries"
                Expect.equal b.[0] 0 "starts at 0"
                Expect.equal b.[k] cost.Length "ends at n"
                Expect.isTrue (b |> Array.pairwise |> Array.forall (fun (a, c) -> a < c)) "strictly increasing"

        testPropertyWithConfig config "reported cost equals the recomputed cost of the boundaries" <| fun () ->
            forAllCases <| fun (_, cost, k) ->
                let r = Clustering.solve cost k
                Expect.equal r.Cost (Clustering.totalCost cost r.Boundaries) "same sum"

        // Splitting an interval never raises an L1-to-median cost, so more clusters never cost more. The
        // affinity cost lacks that property (a split moves the centre), so it is excluded here.
        testPropertyWithConfig config "optimal cost never increases with k (L1 objectives)" <| fun () ->
            forAllCases <| fun (name, cost, k) ->
                if k < cost.Length && name <> "affinity" then
                    let a, b = (Clustering.solve cost k).Cost, (Clustering.solve cost (k + 1)).Cost
                    Expect.isTrue (b <= a + 1e-9 * max 1.0 (abs a)) (sprintf "%s: k=%d %g, k+1 %g" name k a b)

        testPropertyWithConfig { config with endSize = 60 } "the Monge fast path equals the O(k n^2) path" <| fun () ->
            Prop.forAll (Arb.fromGen genMongeCase) <| fun (cost, k) ->
                let fast, slow = Clustering.solveMonge cost k, Clustering.solveQuadratic cost k
                Expect.isTrue (close 1e-9 fast.Cost slow.Cost) (sprintf "fast %g vs slow %g" fast.Cost slow.Cost)

        testPropertyWithConfig config "timestep gives equal widths when k divides T" <| fun () ->
            let cases = gen {
                let! k = Gen.choose (1, 12)
                let! width = Gen.choose (1, 40)
                return k, k * width }
            Prop.forAll (Arb.fromGen cases) <| fun (k, t) ->
                let r = Objectives.cluster (Schedule.create Linear t) TimestepObjective k
                match r with
                | Ok c -> Expect.equal c.Boundaries (Array.init (k + 1) (fun i -> i * t / k)) "equal widths"
                | Error e -> failtest (ClusteringError.message e)

        testPropertyWithConfig config "L1-to-median prefix sums agree with the naive sum" <| fun () ->
            let cases = gen {
                let! n = Gen.choose (1, 30)
                let! v = Gen.arrayOfLength n (genFinite -10.0 10.0)
                let! l = Gen.choose (0, n - 1)
                let! r = Gen.choose (l + 1, n)
                let! descending = Gen.elements [ true; false ]
                return (if descending then Array.sortDescending v else Array.sort v), l, r }
            Prop.forAll (Arb.fromGen cases) <| fun (v, l, r) ->
                let c = IntervalCost.l1ToMedian v
                Expect.isTrue c.IsMonge "sorted values are Monge"
                Expect.isTrue (close 1e-9 (c.Cost l r) (naiveL1 v.[l .. r - 1])) "same cost"

        testPropertyWithConfig config "affinity cost is minus the centre row's sum" <| fun () ->
            let cases = gen {
                let! g = Gen.choose (1, 12)
                let! m = genSymmetric g
                let! l = Gen.choose (0, g - 1)
                let! r = Gen.choose (l + 1, g)
                return m, l, r }
            Prop.forAll (Arb.fromGen cases) <| fun (m, l, r) ->
                let c = l + (r - l) / 2
                let expected = -(Seq.sum (seq { for j in l .. r - 1 -> m.[c, j] }))
                Expect.isTrue (close 1e-12 ((IntervalCost.affinity m).Cost l r) expected) "centre row sum"
    ]

[<Tests>]
let examples =
    testList "Clustering examples" [
        test "one parse of objective names: every listed name parses to itself; snr with scale raw is snr-raw; unknown names are errors" {
            for name in Objectives.names do
                match Objectives.tryChoose name "" with
                | Ok c -> Expect.equal c.Name name "canonical"
                | Error e -> failtest (ClusteringError.message e)
            let chosen name scale = Objectives.tryChoose name scale |> Result.map (fun c -> c.Name, c.Scale, c.NeedsAffinity, c.UsesSnr)
            Expect.equal (chosen "SNR" "raw") (Ok("snr-raw", RawScale, false, true)) "snr + raw"
            Expect.equal (chosen "timesteps" "") (Ok("timestep", LogScale, false, false)) "the plural"
            Expect.equal (chosen "affinity" "") (Ok("affinity", LogScale, true, false)) "affinity"
            Expect.equal (chosen "sn" "") (Error(UnknownObjective "sn")) "unknown"
            Expect.equal (chosen "snr" "log10") (Error(UnknownSnrScale "log10")) "unknown scale"
            let same a b = Objectives.clusterByName "linear" 1000 5 a b None |> Result.map (fun c -> c.Boundaries)
            Expect.equal (same "snr-raw" "") (same "snr" "raw") "snr-raw is snr on the raw scale"
        }

        test "log-SNR clusters of linear T = 1000, k = 5 are balanced; raw SNR ones are degenerate" {
            let schedule = Schedule.create Linear 1000
            let logClusters = Objectives.cluster schedule (SnrObjective LogScale) 5 |> Result.defaultWith (fun _ -> failwith "log")
            let rawClusters = Objectives.cluster schedule (SnrObjective RawScale) 5 |> Result.defaultWith (fun _ -> failwith "raw")
            let widths (b: int[]) = b |> Array.pairwise |> Array.map (fun (a, c) -> c - a)
            Expect.isTrue (widths logClusters.Boundaries |> Array.forall (fun w -> w >= 50)) (sprintf "log: %A" logClusters.Boundaries)
            Expect.isTrue (rawClusters.Boundaries.[4] < 30) (sprintf "raw: four intervals inside t < 30, got %A" rawClusters.Boundaries)
        }

        test "timestep clusters of T = 1000, k = 5" {
            match Objectives.clusterByName "linear" 1000 5 "timestep" "log" None with
            | Ok c -> Expect.equal c.Boundaries [| 0; 200; 400; 600; 800; 1000 |] "equal fifths"
            | Error e -> failtest (ClusteringError.message e)
        }

        test "affinity boundaries are reported in timesteps" {
            // Two blocks of groups that like each other: {0,1} and {2,3}; T = 100, G = 4.
            let m = Array2D.init 4 4 (fun r c -> if (r < 2) = (c < 2) then 1.0 else -1.0)
            match Objectives.cluster (Schedule.create Linear 100) (AffinityObjective m) 2 with
            | Ok c -> Expect.equal c.Boundaries [| 0; 50; 100 |] "block structure found, scaled by T/G"
            | Error e -> failtest (ClusteringError.message e)
        }

        test "errors name the problem" {
            let err r = match r with Error e -> ClusteringError.message e | Ok _ -> failtest "expected an error"
            Expect.stringContains (err (Objectives.clusterByName "linear" 10 0 "snr" "log" None)) "at least 1" "k = 0"
            Expect.stringContains (err (Objectives.clusterByName "linear" 10 11 "snr" "log" None)) "(11)" "k > T"
            Expect.stringContains (err (Objectives.clusterByName "linear" 0 1 "snr" "log" None)) "timesteps" "T = 0"
            Expect.stringContains (err (Objectives.clusterByName "cosinus" 10 2 "snr" "log" None)) "cosinus" "schedule"
            Expect.stringContains (err (Objectives.clusterByName "linear" 10 2 "entropy" "log" None)) "entropy" "objective"
            Expect.stringContains (err (Objectives.clusterByName "linear" 10 2 "snr" "ln" None)) "ln" "scale"
            let m3 = Array2D.create 3 3 0.5
            Expect.stringContains (err (Objectives.clusterByName "linear" 10 2 "affinity" "log" (Some m3))) "does not divide" "G | T"
            Expect.stringContains (err (Objectives.clusterByName "linear" 9 4 "affinity" "log" (Some m3))) "(3)" "k > G"
            let asym = Array2D.init 2 2 (fun r c -> float (r * 2 + c))
            Expect.stringContains (err (Objectives.clusterByName "linear" 10 2 "affinity" "log" (Some asym))) "symmetric" "asymmetric"
        }

        test "solveMonge refuses costs without the Monge property" {
            Expect.throwsT<ArgumentException> (fun () -> Clustering.solveMonge (IntervalCost.affinity (Array2D.create 2 2 1.0)) 1 |> ignore) "refused"
        }

        test "a user-supplied cost is solved exactly" {
            // Cost favours intervals of width 3 exactly.
            let cost = IntervalCost.ofFunction 9 (fun l r -> if r - l = 3 then 0.0 else 1.0)
            Expect.equal (Clustering.solve cost 3).Boundaries [| 0; 3; 6; 9 |] "widths of 3"
        }
    ]

[<Tests>]
let planTests =
    testList "ClusterPlan" [
        testPropertyWithConfig config "ClusterOf agrees with the boundaries and chunks sum to the batch" <| fun () ->
            let cases = gen {
                let! n, k = genSizes
                let! name, cost = genCost n
                let! batch = Gen.choose (k, 200)
                return cost, k, batch }
            Prop.forAll (Arb.fromGen cases) <| fun (cost, k, batch) ->
                let b = (Clustering.solve cost k).Boundaries
                let plan = ClusterPlan.Create(cost.Length, b, "test")
                for t in 0 .. cost.Length - 1 do
                    let c = plan.ClusterOf t
                    Expect.isTrue (plan.Start c <= t && t < plan.End c) "t inside its cluster"
                let chunks = [ for c in 0 .. k - 1 -> plan.ChunkSize(c, batch) ]
                Expect.equal (List.sum chunks) batch "chunks cover the batch"
                Expect.isLessThanOrEqual (List.max chunks - List.min chunks) 1 "remainder spread one by one"

        test "bad plans and timesteps are refused" {
            Expect.throwsT<ArgumentException> (fun () -> ClusterPlan.Create(10, [| 0; 5; 5; 10 |], "") |> ignore) "empty cluster"
            Expect.throwsT<ArgumentException> (fun () -> ClusterPlan.Create(10, [| 0; 9 |], "") |> ignore) "does not reach T"
            Expect.throwsT<ArgumentOutOfRangeException> (fun () -> (ClusterPlan.Single 10).ClusterOf 10 |> ignore) "t = T"
        }
    ]
