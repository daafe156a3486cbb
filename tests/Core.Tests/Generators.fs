/// Shared FsCheck generators and the brute-force models the implementation is checked against.
module DiffusionFunctional.Core.Tests.Generators

open DiffusionFunctional.Core
open FsCheck
open FsCheck.FSharp
open Expecto

/// Small sizes so that every small case (n <= 10, k <= n) is hit often.
let config = { FsCheckConfig.defaultConfig with maxTest = 300; endSize = 10 }

let genFinite (lo: float) (hi: float) = Gen.choose (0, 1_000_000) |> Gen.map (fun i -> lo + (hi - lo) * float i / 1e6)

/// n in 1..10 and k in 1..n.
let genSizes = gen {
    let! n = Gen.choose (1, 10)
    let! k = Gen.choose (1, n)
    return n, k }

/// Random values, sometimes with repeats (ties stress the tie-breaking).
let genValues n = Gen.oneof [ Gen.arrayOfLength n (genFinite -50.0 50.0)
                              Gen.arrayOfLength n (Gen.choose (-3, 3) |> Gen.map float) ]

let genSymmetric g = gen {
    let! cells = Gen.arrayOfLength (g * g) (genFinite -1.0 1.0)
    return Array2D.init g g (fun r c -> let a, b = min r c, max r c in cells.[a * g + b]) }

/// Random betas in (0, 0.5): a valid custom schedule.
let genBetas n = Gen.arrayOfLength n (genFinite 1e-4 0.5)

/// Every partition of 0..n-1 into k non-empty contiguous intervals, as boundary arrays.
let rec partitions (start: int) (n: int) (k: int) : int list list =
    if k = 1 then [ [ start; n ] ]
    else [ for b in start + 1 .. n - k + 1 do for rest in partitions b n (k - 1) -> start :: rest ]

/// The brute-force optimum: enumerate every partition.
let bruteForce (cost: IntervalCost) (k: int) =
    partitions 0 cost.Length k
    |> List.map (fun b -> let b = Array.ofList b in Clustering.totalCost cost b, b)
    |> List.minBy fst

/// The L1 distance to a median computed naively (sort, take the middle).
let naiveL1 (values: float[]) =
    let sorted = Array.sort values
    let med = sorted.[(sorted.Length - 1) / 2]
    values |> Array.sumBy (fun v -> abs (v - med))

let close (tolerance: float) (a: float) (b: float) = abs (a - b) <= tolerance * max 1.0 (max (abs a) (abs b))
