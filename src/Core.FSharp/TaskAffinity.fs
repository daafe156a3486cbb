namespace DiffusionFunctional.Core

open System

/// Pure statistics behind the task-affinity analysis (ANT section 3.2, observation O1; docs/analysis.md): cosines from a Gram
/// matrix, averaging over checkpoints, and how affinity relates to the log-SNR gap.
module TaskAffinity =

    /// Cosine similarities from a Gram matrix G = [g_i . g_j]: G_ij / sqrt(G_ii G_jj), symmetrised (a Gram
    /// matrix from floating-point products can differ from its transpose in the last bit).
    /// A zero gradient has cosine 0 with every other one (and 1 with itself).
    /// Example: `TaskAffinity.cosines (array2D [[4.;2.];[2.;1.]])` is all ones.
    let cosines (gram: float[,]) : float[,] =
        let n = Array2D.length1 gram
        if n <> Array2D.length2 gram then invalidArg "gram" "the Gram matrix must be square"
        Array2D.init n n (fun i j ->
            if i = j then 1.0
            else
                let d = sqrt (gram.[i, i] * gram.[j, j])
                let g = 0.5 * (gram.[i, j] + gram.[j, i])
                if d > 0.0 then max -1.0 (min 1.0 (g / d)) else 0.0)

    /// The element-wise mean of equally sized square matrices (one per checkpoint).
    let average (matrices: float[,] seq) : float[,] =
        let all = Seq.toArray matrices
        if all.Length = 0 then invalidArg "matrices" "at least one matrix is needed"
        let n = Array2D.length1 all.[0]
        if all |> Array.exists (fun m -> Array2D.length1 m <> n || Array2D.length2 m <> n) then
            invalidArg "matrices" "every matrix must have the same square shape"
        Array2D.init n n (fun i j -> (all |> Array.sumBy (fun m -> m.[i, j])) / float all.Length)

    /// Ranks 1..n with ties given their average rank.
    let ranks (values: float[]) : float[] =
        let order = values |> Array.mapi (fun i v -> v, i) |> Array.sortBy fst
        let result = Array.zeroCreate values.Length
        let mutable i = 0
        while i < order.Length do
            let mutable j = i
            while j + 1 < order.Length && fst order.[j + 1] = fst order.[i] do j <- j + 1
            let rank = float (i + j) / 2.0 + 1.0
            for m in i .. j do result.[snd order.[m]] <- rank
            i <- j + 1
        result

    /// Pearson correlation; NaN when either input is constant.
    let pearson (x: float[]) (y: float[]) : float =
        if x.Length <> y.Length then invalidArg "y" "x and y must have the same length"
        let n = float x.Length
        let mx, my = Array.sum x / n, Array.sum y / n
        let mutable sxy, sxx, syy = 0.0, 0.0, 0.0
        for i in 0 .. x.Length - 1 do
            let dx, dy = x.[i] - mx, y.[i] - my
            sxy <- sxy + dx * dy
            sxx <- sxx + dx * dx
            syy <- syy + dy * dy
        if sxx = 0.0 || syy = 0.0 then nan else sxy / sqrt (sxx * syy)

    /// Spearman's rank correlation (Pearson on average ranks). Example: a strictly decreasing
    /// relation gives -1.
    let spearman (x: float[]) (y: float[]) : float = pearson (ranks x) (ranks y)

    /// The mean log-SNR of each of G equal groups of the schedule's timesteps (G must divide T).
    let groupLogSnr (schedule: NoiseSchedule) (groups: int) : float[] =
        if groups < 1 || schedule.Timesteps % groups <> 0 then
            invalidArg "groups" (sprintf "%d groups do not divide %d timesteps" groups schedule.Timesteps)
        let width = schedule.Timesteps / groups
        Array.init groups (fun g -> Array.average schedule.LogSnr.[g * width .. (g + 1) * width - 1])

    /// Every off-diagonal pair (i < j) as (|log-SNR gap|, affinity), and Spearman's rho between them.
    /// Observation O1 predicts a negative rho: affinity falls as the gap widens.
    let versusLogSnrGap (affinity: float[,]) (groupLogSnr: float[]) : (float * float)[] * float =
        let g = Array2D.length1 affinity
        if groupLogSnr.Length <> g then invalidArg "groupLogSnr" "one log-SNR per group is needed"
        let pairs = [| for i in 0 .. g - 1 do for j in i + 1 .. g - 1 -> abs (groupLogSnr.[i] - groupLogSnr.[j]), affinity.[i, j] |]
        let rho = if pairs.Length < 2 then nan else spearman (Array.map fst pairs) (Array.map snd pairs)
        pairs, rho
