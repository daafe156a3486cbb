namespace DiffusionFunctional.Core

open System

/// "Steps to reach a target" summarised over seeds. Seeds that never reached the target are counted in Seeds
/// but not in the statistics (they are censored: the step is only known to lie beyond the last evaluation).
type StepsAcrossSeeds =
    { /// Seeds given.
      Seeds: int
      /// Seeds whose curve reached the target; the statistics below are over these.
      Reached: int
      /// Mean step; NaN when no seed reached the target.
      Mean: float
      /// Sample standard deviation (divisor Reached - 1); NaN for fewer than 2 seeds that reached the target.
      StandardDeviation: float
      /// Smallest step; NaN when no seed reached the target.
      Min: float
      /// Largest step; NaN when no seed reached the target.
      Max: float }

/// Whether a convergence curve has flattened: the last Points values lie within TolerancePercent of each other.
type PlateauCheck =
    { /// RelativeRangePercent <= TolerancePercent (false when the curve has fewer than Points values).
      Held: bool
      /// 100 (max - min) / min over the last Points values: the largest relative difference between any two of
      /// them. NaN when the curve has fewer than Points values.
      RelativeRangePercent: float
      /// How many trailing values were checked.
      Points: int
      /// The tolerance in percent.
      TolerancePercent: float }

/// The first step at which a falling metric curve (FD, KID at evaluation points) reaches a target, interpolated
/// between evaluation points (docs/statistics.md). Steps and metrics are parallel arrays, steps increasing.
module StepsToTarget =

    let internal validateCurve (steps: float[]) (metrics: float[]) =
        if isNull steps then nullArg "steps"
        if isNull metrics then nullArg "metrics"
        if steps.Length <> metrics.Length then invalidArg "metrics" (sprintf "%d steps but %d metric values" steps.Length metrics.Length)
        if steps.Length = 0 then invalidArg "steps" "the curve has no evaluation points"
        for i in 0 .. steps.Length - 1 do
            if Double.IsNaN steps.[i] || Double.IsInfinity steps.[i] then invalidArg "steps" (sprintf "step %d is %g, not a finite number" i steps.[i])
            if i > 0 && not (steps.[i] > steps.[i - 1]) then
                invalidArg "steps" (sprintf "steps must increase: step %d is %g after %g" i steps.[i] steps.[i - 1])
            if not (metrics.[i] > 0.0) || Double.IsInfinity metrics.[i] then
                invalidArg "metrics" (sprintf "metric at step %g is %g: log-linear interpolation needs finite positive values" steps.[i] metrics.[i])

    /// The first step where the metric is at or below the target, None when it never gets there. Between the
    /// bracketing evaluation points (metric above the target at the earlier, at or below at the later) the
    /// metric is taken as linear in log(metric) against step, so a curve m = a exp(-b step) is recovered
    /// exactly. An evaluation point equal to the target gives its own step. A curve already at or below the
    /// target at its first point gives that first step (nothing is known before it).
    /// Example: steps [0; 100], metrics [100; 1], target 10 gives 50 (log 10 is halfway between log 100 and log 1).
    let tryFind (steps: float[]) (metrics: float[]) (target: float) : float option =
        validateCurve steps metrics
        if not (target > 0.0) || Double.IsInfinity target then invalidArg "target" (sprintf "the target must be finite and positive, got %g" target)
        match Array.tryFindIndex (fun m -> m <= target) metrics with
        | None -> None
        | Some 0 -> Some steps.[0]
        | Some i when metrics.[i] = target -> Some steps.[i]
        | Some i ->
            let before, after = log metrics.[i - 1], log metrics.[i]
            let fraction = (before - log target) / (before - after)
            let step = steps.[i - 1] + fraction * (steps.[i] - steps.[i - 1])
            Some (max steps.[i - 1] (min steps.[i] step))

    /// Mean, sample standard deviation, min and max of per-seed results over the seeds that reached the target.
    /// Example: [Some 100; Some 200; None] gives Seeds 3, Reached 2, Mean 150, StandardDeviation 70.7.
    let summarize (perSeed: float option[]) : StepsAcrossSeeds =
        if isNull perSeed then nullArg "perSeed"
        let reached = Array.choose id perSeed
        let n = reached.Length
        let mean = if n = 0 then nan else Array.average reached
        let sd = if n < 2 then nan else sqrt ((reached |> Array.sumBy (fun s -> (s - mean) * (s - mean))) / float (n - 1))
        { Seeds = perSeed.Length
          Reached = n
          Mean = mean
          StandardDeviation = sd
          Min = (if n = 0 then nan else Array.min reached)
          Max = (if n = 0 then nan else Array.max reached) }

    /// tryFind on each seed's curve (steps, metrics), summarised.
    let acrossSeeds (curves: (float[] * float[])[]) (target: float) : StepsAcrossSeeds =
        if isNull curves then nullArg "curves"
        curves |> Array.map (fun (steps, metrics) -> tryFind steps metrics target) |> summarize

/// A plateau criterion for convergence curves (docs/statistics.md).
module Plateau =

    /// Whether the last `points` values lie within `tolerancePercent` of each other: every pair differs by at
    /// most that share of the smaller one, i.e. 100 (max - min) / min <= tolerancePercent. Values must be
    /// positive (FD is); a curve with fewer than `points` values has not (yet) plateaued.
    /// Example: points 3, tolerance 5%, values [..., 100; 103; 101]: range 3%, held.
    let check (points: int) (tolerancePercent: float) (values: float[]) : PlateauCheck =
        if isNull values then nullArg "values"
        if points < 2 then invalidArg "points" (sprintf "a plateau needs at least 2 points, got %d" points)
        if not (tolerancePercent >= 0.0) || Double.IsInfinity tolerancePercent then
            invalidArg "tolerancePercent" (sprintf "the tolerance must be a finite non-negative percentage, got %g" tolerancePercent)
        values |> Array.iteri (fun i v ->
            if not (v > 0.0) || Double.IsInfinity v then invalidArg "values" (sprintf "value %d is %g: the relative range needs finite positive values" i v))
        if values.Length < points then
            { Held = false; RelativeRangePercent = nan; Points = points; TolerancePercent = tolerancePercent }
        else
            let last = values.[values.Length - points ..]
            let lo, hi = Array.min last, Array.max last
            let range = 100.0 * (hi - lo) / lo
            { Held = range <= tolerancePercent; RelativeRangePercent = range; Points = points; TolerancePercent = tolerancePercent }
