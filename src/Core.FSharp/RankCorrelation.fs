namespace DiffusionFunctional.Core

open System
open MathNet.Numerics.Distributions
open MathNet.Numerics.Statistics

/// How the p-value of a Spearman test was computed.
type SpearmanPValueMethod =
    /// Every permutation of y against x counted (n <= RankCorrelation.exactLimit).
    | ExactPermutation = 0
    /// Student's t with n - 2 degrees of freedom (larger n).
    | TDistribution = 1
    /// No p-value: fewer than 2 pairs or a constant input (rho undefined).
    | Undefined = 2

/// Spearman's rank correlation and its two-sided test of rho = 0.
type SpearmanResult =
    { /// Spearman's rho: Pearson's correlation of the average ranks (ties share their mean rank). NaN when
      /// either input is constant or has fewer than 2 values.
      Rho: float
      /// Two-sided p-value of rho = 0 (no association); NaN when rho is NaN.
      PValue: float
      /// Number of (x, y) pairs.
      Count: int
      /// How PValue was computed.
      Method: SpearmanPValueMethod }

/// Spearman's rank correlation with ties (average ranks) and a two-sided p-value (docs/statistics.md).
/// Ranks and the t distribution come from MathNet.Numerics; the exact permutation count is hand-written
/// (MathNet has no permutation test).
module RankCorrelation =

    /// Up to this many pairs the p-value is exact: all n! permutations of y are counted (10! = 3.6 million
    /// O(1) steps, some 20 ms). Above it, the t approximation (error well under 0.01 from n = 11 on).
    let exactLimit = 10

    /// Average ranks 1..n (MathNet RankDefinition.Average). Example: [10; 20; 20; 5] gives [2; 3.5; 3.5; 1].
    let averageRanks (values: float[]) : float[] =
        if isNull values then nullArg "values"
        Statistics.Ranks(values, RankDefinition.Average)

    let internal validate (x: float[]) (y: float[]) =
        if isNull x then nullArg "x"
        if isNull y then nullArg "y"
        if x.Length <> y.Length then invalidArg "y" (sprintf "x has %d values but y has %d" x.Length y.Length)
        for name, values in [ "x", x; "y", y ] do
            values |> Array.iteri (fun i v ->
                if Double.IsNaN v || Double.IsInfinity v then invalidArg name (sprintf "%s[%d] is %g, not a finite number" name i v))

    /// Spearman's rho alone; NaN for a constant input or fewer than 2 values.
    /// Example: `RankCorrelation.rho [| 1.; 2.; 3. |] [| 30.; 20.; 10. |] = -1.0`.
    let rho (x: float[]) (y: float[]) : float =
        validate x y
        if x.Length < 2 then nan else TaskAffinity.pearson (averageRanks x) (averageRanks y)

    /// Two-sided p-value from Student's t with n - 2 degrees of freedom: t = rho sqrt((n - 2) / (1 - rho^2))
    /// (the approximation scipy.stats.spearmanr uses). |rho| = 1 gives 0. Needs n >= 3.
    let tDistributionPValue (rho: float) (count: int) : float =
        if count < 3 then invalidArg "count" (sprintf "the t approximation needs at least 3 pairs, got %d" count)
        if abs rho >= 1.0 then 0.0
        else
            let t = abs rho * sqrt (float (count - 2) / (1.0 - rho * rho))
            min 1.0 (2.0 * StudentT.CDF(0.0, 1.0, float (count - 2), -t))

    /// The exact two-sided permutation p-value: the share of the n! pairings of y's ranks with x's ranks whose
    /// |rho| is at least the observed one (ties kept as observed, i.e. conditional on the tie pattern). Doubled
    /// average ranks are integers, so the statistic sum 2r_x 2r_y is compared exactly. Heap's algorithm changes
    /// one transposition per step, so each permutation costs O(1).
    let exactPValue (x: float[]) (y: float[]) : float =
        validate x y
        let n = x.Length
        if n < 2 || n > exactLimit then invalidArg "x" (sprintf "the exact p-value needs 2 to %d pairs, got %d" exactLimit n)
        let twice (values: float[]) = averageRanks values |> Array.map (fun r -> int64 (Math.Round(2.0 * r)))
        let rx, ry = twice x, twice y
        // sum_i 2r_x,i = n (n + 1) whatever the ties, so the centred statistic is S - n (n + 1)^2.
        let centre = int64 n * int64 (n + 1) * int64 (n + 1)
        let statistic (order: int[]) = Array.fold2 (fun acc a i -> acc + a * ry.[i]) 0L rx order
        let order = Array.init n id
        let observed = abs (statistic order - centre)
        let mutable s = statistic order
        let mutable atLeast = 1L
        let mutable total = 1L
        let counters = Array.zeroCreate n
        let mutable k = 1
        while k < n do
            if counters.[k] < k then
                let p = if k % 2 = 0 then 0 else counters.[k]
                s <- s + (rx.[p] - rx.[k]) * (ry.[order.[k]] - ry.[order.[p]])
                let swap = order.[p]
                order.[p] <- order.[k]
                order.[k] <- swap
                total <- total + 1L
                if abs (s - centre) >= observed then atLeast <- atLeast + 1L
                counters.[k] <- counters.[k] + 1
                k <- 1
            else
                counters.[k] <- 0
                k <- k + 1
        float atLeast / float total

    /// Spearman's rho with a two-sided p-value: exact for n <= exactLimit, Student's t (n - 2 df) above.
    /// Example: x = 1..5 against y = 5..1 gives rho = -1 and p = 2 / 5! = 1/60.
    let test (x: float[]) (y: float[]) : SpearmanResult =
        let r = rho x y
        let n = x.Length
        if Double.IsNaN r then { Rho = nan; PValue = nan; Count = n; Method = SpearmanPValueMethod.Undefined }
        elif n <= exactLimit then { Rho = r; PValue = exactPValue x y; Count = n; Method = SpearmanPValueMethod.ExactPermutation }
        else { Rho = r; PValue = tDistributionPValue r n; Count = n; Method = SpearmanPValueMethod.TDistribution }
