namespace DiffusionFunctional.Core

open System

/// One |delta log-SNR| bin of an affinity decay curve.
type DecayBin =
    { /// Lower edge (inclusive).
      Lower: float
      /// Upper edge (exclusive, except for the last bin, which includes it).
      Upper: float
      /// Group pairs (i < j) whose gap falls in the bin.
      Pairs: int
      /// Mean affinity of those pairs; NaN for an empty bin.
      MeanAffinity: float }

/// Task affinity against the noise-level gap (observation O1, ANT section 3.2, observation O1; docs/analysis.md; docs/statistics.md).
type AffinityDecayCurve =
    { /// The bins in increasing gap order.
      Bins: DecayBin[]
      /// Spearman's rho of affinity against |delta log-SNR| over all pairs i < j, with its p-value
      /// (O1 predicts rho < 0).
      Correlation: SpearmanResult
      /// Pairs whose gap lies outside every bin (counted in Correlation, not in Bins).
      PairsOutsideBins: int }

/// The decay of affinity with the log-SNR gap between groups: per-bin mean affinity and Spearman's rho.
module AffinityDecay =

    /// binCount equal-width bins from 0 to the largest |delta log-SNR| between two groups (binCount + 1 edges).
    /// Example: log-SNR [0; 1; 4] and 2 bins give edges [0; 2; 4].
    let equalWidthEdges (binCount: int) (groupLogSnr: float[]) : float[] =
        if isNull groupLogSnr then nullArg "groupLogSnr"
        if binCount < 1 then invalidArg "binCount" (sprintf "needs at least 1 bin, got %d" binCount)
        if groupLogSnr.Length < 2 then invalidArg "groupLogSnr" (sprintf "needs at least 2 groups, got %d" groupLogSnr.Length)
        let widest = Array.max groupLogSnr - Array.min groupLogSnr
        if not (widest > 0.0) || Double.IsInfinity widest then
            invalidArg "groupLogSnr" (sprintf "the largest log-SNR gap is %g: the bins need a finite positive one" widest)
        Array.init (binCount + 1) (fun b -> if b = binCount then widest else widest * float b / float binCount)

    let internal validate (affinity: float[,]) (groupLogSnr: float[]) (binEdges: float[]) =
        SymmetricMatrix.validateSquare "affinity" affinity
        if isNull groupLogSnr then nullArg "groupLogSnr"
        if isNull binEdges then nullArg "binEdges"
        let g = Array2D.length1 affinity
        if groupLogSnr.Length <> g then
            invalidArg "groupLogSnr" (sprintf "the affinity matrix is %d x %d but %d log-SNR values were given" g g groupLogSnr.Length)
        groupLogSnr |> Array.iteri (fun i v ->
            if Double.IsNaN v || Double.IsInfinity v then invalidArg "groupLogSnr" (sprintf "log-SNR of group %d is %g, not a finite number" i v))
        if binEdges.Length < 2 then invalidArg "binEdges" (sprintf "needs at least 2 edges (one bin), got %d" binEdges.Length)
        for b in 0 .. binEdges.Length - 1 do
            if Double.IsNaN binEdges.[b] || Double.IsInfinity binEdges.[b] then invalidArg "binEdges" (sprintf "edge %d is %g, not a finite number" b binEdges.[b])
            if b > 0 && not (binEdges.[b] > binEdges.[b - 1]) then
                invalidArg "binEdges" (sprintf "edges must increase: edge %d is %g after %g" b binEdges.[b] binEdges.[b - 1])

    /// The bin of a gap: b with edges[b] <= gap < edges[b + 1], the last bin closed; None outside.
    let internal binOf (edges: float[]) (gap: float) : int option =
        let last = edges.Length - 2
        if gap < edges.[0] || gap > edges.[last + 1] then None
        elif gap = edges.[last + 1] then Some last
        else Some (Array.findIndexBack (fun e -> e <= gap) edges.[.. last])

    /// The decay curve of a G x G affinity matrix (e.g. gradient cosines; the upper triangle i < j is used)
    /// given each group's centre log-SNR: the mean affinity of the pairs in each |delta log-SNR| bin, and
    /// Spearman's rho (RankCorrelation.test) of affinity against the gap over all pairs.
    let compute (affinity: float[,]) (groupLogSnr: float[]) (binEdges: float[]) : AffinityDecayCurve =
        validate affinity groupLogSnr binEdges
        let pairs, _ = TaskAffinity.versusLogSnrGap affinity groupLogSnr
        let binned = pairs |> Array.choose (fun (gap, value) -> binOf binEdges gap |> Option.map (fun b -> b, value))
        let bins =
            Array.init (binEdges.Length - 1) (fun b ->
                let values = binned |> Array.filter (fun (bin, _) -> bin = b) |> Array.map snd
                { Lower = binEdges.[b]
                  Upper = binEdges.[b + 1]
                  Pairs = values.Length
                  MeanAffinity = if values.Length = 0 then nan else Array.average values })
        { Bins = bins
          Correlation = RankCorrelation.test (Array.map fst pairs) (Array.map snd pairs)
          PairsOutsideBins = pairs.Length - binned.Length }
