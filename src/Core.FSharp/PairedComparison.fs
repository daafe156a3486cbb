namespace DiffusionFunctional.Core

open System
open MathNet.Numerics.Distributions

/// A two-sided confidence interval.
type ConfidenceInterval =
    { Lower: float
      Upper: float
      /// The coverage, e.g. 0.95.
      Level: float }

/// A paired comparison of two methods over seeds: per seed, candidate - baseline on the same seed's run.
type PairedComparison =
    { /// Number of seeds (pairs).
      Count: int
      /// Mean over seeds of candidate - baseline.
      MeanDifference: float
      /// Student-t interval of the mean difference; None for a single seed (no spread to estimate).
      DifferenceInterval: ConfidenceInterval option
      /// Mean over seeds of 100 (candidate - baseline) / baseline: negative is an improvement for a metric
      /// that falls (FD, KID).
      MeanRelativeChangePercent: float
      /// Student-t interval of the mean relative change; None for a single seed.
      RelativeChangeInterval: ConfidenceInterval option }

/// The paired t interval over seeds (Student 1908; any statistics text, e.g. Wasserman, All of Statistics,
/// section 10.5): mean(d) +- t_{n-1, (1 + level) / 2} sd(d) / sqrt n with d the per-seed differences and sd the
/// sample standard deviation (divisor n - 1). Quantiles from MathNet.Numerics' StudentT.
module PairedDifference =

    /// The level used when none is given: 95%.
    let defaultLevel = 0.95

    let internal validateLevel (level: float) =
        if not (level > 0.0 && level < 1.0) then invalidArg "level" (sprintf "the level must lie strictly between 0 and 1, got %g" level)

    /// The Student-t interval of the mean of the values; None for fewer than 2 values.
    /// Example: values 1, 2, 3 at 95%: 2 +- 4.303 * 1 / sqrt 3 = [-0.484, 4.484].
    let meanInterval (level: float) (values: float[]) : ConfidenceInterval option =
        validateLevel level
        if isNull values then nullArg "values"
        let n = values.Length
        if n < 2 then None
        else
            let mean = Array.average values
            let sd = sqrt ((values |> Array.sumBy (fun v -> (v - mean) * (v - mean))) / float (n - 1))
            let half = StudentT.InvCDF(0.0, 1.0, float (n - 1), 0.5 + level / 2.0) * sd / sqrt (float n)
            Some { Lower = mean - half; Upper = mean + half; Level = level }

    /// Compares per-seed final metrics of a candidate with a baseline (arrays indexed by seed, same order).
    /// Needs at least one seed, finite values and a non-zero baseline on every seed (for the relative change).
    /// Example: candidate [90; 80], baseline [100; 100]: difference -15 (interval +-63.5 at 95%), relative -15%.
    let compare (level: float) (candidate: float[]) (baseline: float[]) : PairedComparison =
        validateLevel level
        if isNull candidate then nullArg "candidate"
        if isNull baseline then nullArg "baseline"
        if candidate.Length <> baseline.Length then
            invalidArg "baseline" (sprintf "%d candidate values but %d baseline values: one per seed each" candidate.Length baseline.Length)
        if candidate.Length = 0 then invalidArg "candidate" "needs at least one seed"
        for name, values in [ "candidate", candidate; "baseline", baseline ] do
            values |> Array.iteri (fun i v ->
                if Double.IsNaN v || Double.IsInfinity v then invalidArg name (sprintf "%s on seed %d is %g, not a finite number" name i v))
        baseline |> Array.iteri (fun i b -> if b = 0.0 then invalidArg "baseline" (sprintf "baseline on seed %d is 0: no relative change" i))
        let differences = Array.map2 (-) candidate baseline
        let relative = Array.map2 (fun c b -> 100.0 * (c - b) / b) candidate baseline
        { Count = candidate.Length
          MeanDifference = Array.average differences
          DifferenceInterval = meanInterval level differences
          MeanRelativeChangePercent = Array.average relative
          RelativeChangeInterval = meanInterval level relative }
