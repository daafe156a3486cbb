namespace DiffusionFunctional.Core

open System

/// An optimal partition of 0..n-1 into k contiguous half-open intervals [b_i, b_{i+1}),
/// b_0 = 0 < b_1 < ... < b_k = n, and its total cost (recomputed from the boundaries).
type Clustering =
    { Boundaries: int[]
      Cost: float }

/// Exact interval clustering by dynamic programming (ANT (Go et al. 2023) section 4.1; docs/clustering.md):
/// D(j, i) = min_{m < i} D(j-1, m) + cost(m, i), D(0, 0) = 0, answer D(k, n).
/// Among partitions whose costs agree to 1e-10 (relative), the one with the smallest sum of squared
/// widths wins, so ties resolve to the most balanced partition (equal widths for `timestep` when k | n).
module Clustering =

    // A DP value: the primary cost and the tie-breaking sum of squared widths.
    [<Struct>]
    type private Value = { Primary: float; Squares: float }

    let private infinite = { Primary = Double.PositiveInfinity; Squares = Double.PositiveInfinity }

    let private lessThan (a: Value) (b: Value) =
        let tolerance = 1e-10 * max 1.0 (max (abs a.Primary) (abs b.Primary))
        if Double.IsPositiveInfinity b.Primary then not (Double.IsPositiveInfinity a.Primary)
        elif a.Primary < b.Primary - tolerance then true
        elif a.Primary > b.Primary + tolerance then false
        else a.Squares < b.Squares

    /// Checks 1 <= k <= n and that the backtracking table fits in memory; throws ArgumentException otherwise.
    let validate (length: int) (k: int) =
        if length < 1 then invalidArg "length" (sprintf "there must be at least one item to cluster, got %d" length)
        if k < 1 then invalidArg "k" (sprintf "the number of clusters must be at least 1, got %d" k)
        if k > length then invalidArg "k" (sprintf "cannot split %d items into %d non-empty clusters" length k)
        if int64 k * int64 (length + 1) > 400_000_000L then
            invalidArg "k" (sprintf "k = %d with n = %d needs a %d-entry backtracking table; too large" k length (int64 k * int64 (length + 1)))

    /// The total cost of a partition given by its boundaries, summed left to right.
    let totalCost (cost: IntervalCost) (boundaries: int[]) =
        let mutable total = 0.0
        for i in 0 .. boundaries.Length - 2 do
            total <- total + cost.Cost boundaries.[i] boundaries.[i + 1]
        total

    let private backtrack (argmin: int[][]) (length: int) (k: int) =
        let bounds = Array.zeroCreate (k + 1)
        bounds.[k] <- length
        for j in k .. -1 .. 1 do
            bounds.[j - 1] <- argmin.[j].[bounds.[j]]
        bounds

    // Layer j only needs i in [j, n - (k - j)]: every interval left and right of i must be non-empty.
    let private run (cost: IntervalCost) (k: int) (fillLayer: int -> Value[] -> Value[] -> int[] -> unit) =
        validate cost.Length k
        let n = cost.Length
        let mutable prev = Array.create (n + 1) infinite
        prev.[0] <- { Primary = 0.0; Squares = 0.0 }
        let argmin = Array.init (k + 1) (fun j -> if j = 0 then [||] else Array.create (n + 1) -1)
        for j in 1 .. k do
            let cur = Array.create (n + 1) infinite
            fillLayer j prev cur argmin.[j]
            prev <- cur
        let bounds = backtrack argmin n k
        { Boundaries = bounds; Cost = totalCost cost bounds }

    /// The O(k n^2) dynamic program: exact for any interval cost.
    /// Example: `Clustering.solveQuadratic (IntervalCost.l1ToMedian [|0.;1.;10.;11.|]) 2` has boundaries [|0;2;4|].
    let solveQuadratic (cost: IntervalCost) (k: int) : Clustering =
        let n = cost.Length
        let f = OptimizedClosures.FSharpFunc<int, int, float>.Adapt cost.Cost
        run cost k (fun j prev cur arg ->
            for i in j .. n - (k - j) do
                let mutable best = infinite
                let mutable bestM = -1
                for m in j - 1 .. i - 1 do
                    let p = prev.[m]
                    if not (Double.IsPositiveInfinity p.Primary) then
                        let primary = p.Primary + f.Invoke(m, i)
                        // Cheap rejection first: most candidates lose by far more than the tie tolerance.
                        if primary <= best.Primary + 1e-10 * max 1.0 (max (abs primary) (abs best.Primary)) then
                            let w = float (i - m)
                            let candidate = { Primary = primary; Squares = p.Squares + w * w }
                            if lessThan candidate best then
                                best <- candidate
                                bestM <- m
                cur.[i] <- best
                arg.[i] <- bestM)

    /// Divide and conquer over monotone split points, O(k n log n). Exact for costs with the quadrangle
    /// (Monge) property, such as the L1-to-median costs of sorted values; wrong for others, so it
    /// refuses costs not marked `IsMonge`.
    let solveMonge (cost: IntervalCost) (k: int) : Clustering =
        if not cost.IsMonge then invalidArg "cost" "solveMonge needs a cost with the quadrangle (Monge) property"
        let n = cost.Length
        let f = OptimizedClosures.FSharpFunc<int, int, float>.Adapt cost.Cost
        run cost k (fun j prev cur arg ->
            let rec fill lo hi optLo optHi =
                if lo <= hi then
                    let mid = lo + (hi - lo) / 2
                    let mutable best = infinite
                    let mutable bestM = -1
                    for m in max optLo (j - 1) .. min optHi (mid - 1) do
                        let p = prev.[m]
                        if not (Double.IsPositiveInfinity p.Primary) then
                            let w = float (mid - m)
                            let candidate = { Primary = p.Primary + f.Invoke(m, mid); Squares = p.Squares + w * w }
                            if lessThan candidate best then
                                best <- candidate
                                bestM <- m
                    cur.[mid] <- best
                    arg.[mid] <- bestM
                    let split = if bestM < 0 then optLo else bestM
                    fill lo (mid - 1) optLo split
                    fill (mid + 1) hi split optHi
            fill j (n - (k - j)) (j - 1) (n - 1))

    /// The exact optimum by the fastest valid path: divide and conquer for Monge costs, else O(k n^2).
    let solve (cost: IntervalCost) (k: int) : Clustering =
        if cost.IsMonge then solveMonge cost k else solveQuadratic cost k
