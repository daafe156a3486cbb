namespace DiffusionFunctional.Core

open System
open System.Runtime.InteropServices

/// A paired comparison in a flat shape for C#: the interval bounds are NaN (and HasInterval false) for a
/// single seed. See PairedComparison for the F# shape with options.
type PairedComparisonSummary =
    { /// Number of seeds (pairs).
      Count: int
      /// Mean over seeds of candidate - baseline.
      MeanDifference: float
      /// Lower bound of the Student-t interval of MeanDifference; NaN for one seed.
      DifferenceLower: float
      /// Upper bound of the Student-t interval of MeanDifference; NaN for one seed.
      DifferenceUpper: float
      /// Mean over seeds of 100 (candidate - baseline) / baseline.
      MeanRelativeChangePercent: float
      /// Lower bound of the interval of MeanRelativeChangePercent; NaN for one seed.
      RelativeChangeLower: float
      /// Upper bound of the interval of MeanRelativeChangePercent; NaN for one seed.
      RelativeChangeUpper: float
      /// The intervals' coverage, e.g. 0.95.
      Level: float
      /// Whether the intervals exist (at least 2 seeds).
      HasInterval: bool }

/// The statistics behind `dfn reproduce` (docs/statistics.md) with signatures for C#: arrays, records, NaN with a
/// documented meaning and Try-methods instead of F# options. F# callers can use the modules directly
/// (KernelDistance, RankCorrelation, PairedDifference, StepsToTarget, AffinityDecay, Plateau).
/// Invalid input throws ArgumentException with a message naming the problem.
[<AbstractClass; Sealed>]
type ReproductionStatistics =

    /// KID with the default subsets (100 of 1,000 per side, seed 0); see KernelDistance.estimate.
    static member Kid(x: float[,], y: float[,]) : KidEstimate = KernelDistance.estimate KidSettings.Default x y

    /// KID with the given subset count, size and seed; see KernelDistance.estimate.
    static member Kid(x: float[,], y: float[,], settings: KidSettings) : KidEstimate = KernelDistance.estimate settings x y

    /// The unbiased MMD^2 with KID's polynomial kernel on the full sets (no subsets); see KernelDistance.unbiasedMmd2.
    static member UnbiasedMmd2(x: float[,], y: float[,]) : float = KernelDistance.unbiasedMmd2 x y

    /// Spearman's rho (average ranks for ties) and its two-sided p-value; Rho and PValue are NaN for a constant
    /// input or fewer than 2 pairs (Method = Undefined). See RankCorrelation.test.
    static member Spearman(x: float[], y: float[]) : SpearmanResult = RankCorrelation.test x y

    /// Candidate - baseline over seeds with Student-t intervals at `level` (default 0.95); NaN bounds for one seed.
    static member ComparePaired(candidate: float[], baseline: float[], [<Optional; DefaultParameterValue(0.95)>] level: float) : PairedComparisonSummary =
        let c = PairedDifference.compare level candidate baseline
        let bounds (interval: ConfidenceInterval option) =
            match interval with
            | Some i -> i.Lower, i.Upper
            | None -> nan, nan
        let dLow, dHigh = bounds c.DifferenceInterval
        let rLow, rHigh = bounds c.RelativeChangeInterval
        ({ Count = c.Count
           MeanDifference = c.MeanDifference
           DifferenceLower = dLow
           DifferenceUpper = dHigh
           MeanRelativeChangePercent = c.MeanRelativeChangePercent
           RelativeChangeLower = rLow
           RelativeChangeUpper = rHigh
           Level = level
           HasInterval = c.DifferenceInterval.IsSome } : PairedComparisonSummary)

    /// The first (interpolated) step where the falling metric reaches the target: true and the step, or false
    /// (step NaN) when it never does. See StepsToTarget.tryFind.
    static member TryStepsToTarget(steps: float[], metrics: float[], target: float, [<Out>] step: byref<float>) : bool =
        match StepsToTarget.tryFind steps metrics target with
        | Some s -> step <- s; true
        | None -> step <- nan; false

    /// Summary over seeds of per-seed steps to a target, where NaN marks a seed that never reached it.
    static member SummarizeSteps(stepsPerSeed: float[]) : StepsAcrossSeeds =
        if isNull stepsPerSeed then nullArg "stepsPerSeed"
        stepsPerSeed |> Array.map (fun s -> if Double.IsNaN s then None else Some s) |> StepsToTarget.summarize

    /// The affinity decay curve with the given |delta log-SNR| bin edges; see AffinityDecay.compute.
    static member AffinityDecay(affinity: float[,], groupLogSnr: float[], binEdges: float[]) : AffinityDecayCurve =
        AffinityDecay.compute affinity groupLogSnr binEdges

    /// The affinity decay curve with binCount equal-width bins from 0 to the largest gap.
    static member AffinityDecay(affinity: float[,], groupLogSnr: float[], binCount: int) : AffinityDecayCurve =
        AffinityDecay.compute affinity groupLogSnr (AffinityDecay.equalWidthEdges binCount groupLogSnr)

    /// Whether the last `points` values lie within `tolerancePercent` of each other; see Plateau.check.
    static member Plateau(values: float[], points: int, tolerancePercent: float) : PlateauCheck =
        Plateau.check points tolerancePercent values
