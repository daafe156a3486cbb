namespace DiffusionFunctional.Core

open System

/// The cost of every half-open interval [l, r) of 0..Length-1, 0 <= l < r <= Length.
/// `Cost` must be O(1) for the DP bounds to hold. `IsMonge` promises the quadrangle inequality
/// cost(a,c) + cost(b,d) <= cost(a,d) + cost(b,c) for a <= b <= c <= d, which licenses the
/// divide-and-conquer path; never set it for a cost that lacks the property.
type IntervalCost =
    { Length: int
      Cost: int -> int -> float
      IsMonge: bool }

/// Constructors for interval costs.
module IntervalCost =

    /// Any user-supplied cost over n items. Example: `IntervalCost.ofFunction 10 (fun l r -> float (r - l) ** 2.0)`.
    let ofFunction (length: int) (cost: int -> int -> float) : IntervalCost =
        if length < 1 then invalidArg "length" (sprintf "length must be at least 1, got %d" length)
        { Length = length; Cost = cost; IsMonge = false }

    /// A user-supplied cost that the caller guarantees satisfies the quadrangle (Monge) inequality.
    let ofMongeFunction (length: int) (cost: int -> int -> float) : IntervalCost =
        { ofFunction length cost with IsMonge = true }

    let private isMonotone (values: float[]) =
        let mutable nonDecreasing = true
        let mutable nonIncreasing = true
        for i in 1 .. values.Length - 1 do
            if values.[i] < values.[i - 1] then nonDecreasing <- false
            if values.[i] > values.[i - 1] then nonIncreasing <- false
        nonDecreasing || nonIncreasing

    let private checkFinite (values: float[]) =
        if isNull values || values.Length = 0 then invalidArg "values" "at least one value is needed"
        values
        |> Array.iteri (fun i v ->
            if Double.IsNaN v || Double.IsInfinity v then invalidArg "values" (sprintf "value %d is %g; values must be finite" i v))

    // Sorted (monotone) values: the median of [l, r) sits at its middle index, and the L1 distance to it
    // is (sum of the upper half) - (sum of the lower half), two prefix-sum differences.
    let private sortedL1 (values: float[]) =
        let ascending = if values.Length > 1 && values.[0] > values.[values.Length - 1] then Array.rev values else values
        let n = values.Length
        let prefix = Array.zeroCreate (n + 1)
        for i in 0 .. n - 1 do prefix.[i + 1] <- prefix.[i] + ascending.[i]
        let reversed = ascending.Length > 0 && not (obj.ReferenceEquals(ascending, values))
        fun (l: int) (r: int) ->
            // Map [l, r) of the original order onto the ascending copy.
            let l', r' = if reversed then n - r, n - l else l, r
            let m = l' + (r' - l') / 2
            let med = ascending.[m]
            let below = med * float (m - l') - (prefix.[m] - prefix.[l'])
            let above = (prefix.[r'] - prefix.[m]) - med * float (r' - m)
            below + above

    // Unsorted values: a full table, each row grown by sorted insertion (O(n^3) once; meant for small n).
    let private tableL1 (values: float[]) =
        let n = values.Length
        let table = Array.init n (fun l -> Array.zeroCreate<float> (n - l + 1))
        for l in 0 .. n - 1 do
            let low = Collections.Generic.List<float>() // kept sorted
            for r in l + 1 .. n do
                let v = values.[r - 1]
                let at = low.BinarySearch v
                low.Insert((if at < 0 then ~~~at else at), v)
                let med = low.[(low.Count - 1) / 2]
                let mutable s = 0.0
                for x in low do s <- s + abs (x - med)
                table.[l].[r - l] <- s
        fun (l: int) (r: int) -> table.[l].[r - l]

    /// Sum over the interval of |v_t - median| (any median gives the same sum).
    /// O(1) per interval with prefix sums when the values are monotone (timesteps, SNR, log-SNR), where the
    /// cost is Monge; other inputs fall back to a precomputed table (at most 1000 values).
    /// Example: `(IntervalCost.l1ToMedian [|0.;1.;2.;3.|]).Cost 0 4 = 4.0`.
    let l1ToMedian (values: float[]) : IntervalCost =
        checkFinite values
        if isMonotone values then
            { Length = values.Length; Cost = sortedL1 values; IsMonge = true }
        else
            if values.Length > 1000 then
                invalidArg "values" (sprintf "non-monotone values need a precomputed table; %d values is too many (at most 1000)" values.Length)
            { Length = values.Length; Cost = tableL1 values; IsMonge = false }

    /// The affinity cost of ANT (Go et al. 2023) section 4.1; docs/clustering.md: cost([l, r)) = - sum_{g in [l, r)} A[c, g] with centre
    /// c = l + (r - l) / 2 (integer division). O(1) per interval through row prefix sums.
    let affinity (matrix: float[,]) : IntervalCost =
        let g = Array2D.length1 matrix
        if g < 1 || Array2D.length2 matrix <> g then invalidArg "matrix" "the affinity matrix must be square and non-empty"
        let prefix = Array.zeroCreate ((g + 1) * g)
        for c in 0 .. g - 1 do
            let row = c * (g + 1)
            for j in 0 .. g - 1 do
                prefix.[row + j + 1] <- prefix.[row + j] + matrix.[c, j]
        let cost (l: int) (r: int) =
            let c = l + (r - l) / 2
            let row = c * (g + 1)
            -(prefix.[row + r] - prefix.[row + l])
        { Length = g; Cost = cost; IsMonge = false }
