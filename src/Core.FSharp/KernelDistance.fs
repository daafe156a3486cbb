namespace DiffusionFunctional.Core

open System
open System.Numerics
open MathNet.Numerics

/// How the subset estimate of KID is drawn. The defaults are those of torch-fidelity, torchmetrics and clean-fid:
/// 100 subsets of 1,000 samples per side (docs/statistics.md).
type KidSettings =
    { /// How many subset pairs are drawn (at least 1).
      Subsets: int
      /// Samples per side in each subset; capped at the smaller set's size, as clean-fid does (at least 2 after capping).
      SubsetSize: int
      /// Seed of the System.Random that draws the subsets: the same seed and inputs give the same estimate.
      Seed: int }

    /// 100 subsets of 1,000 per side, seed 0.
    static member Default = { Subsets = 100; SubsetSize = 1000; Seed = 0 }

/// A KID estimate: the mean over subsets of the unbiased MMD^2, and its spread.
type KidEstimate =
    { /// Mean of the per-subset unbiased MMD^2 estimates (unbiased for MMD^2; may be slightly negative).
      Value: float
      /// Population standard deviation (divisor = subsets) of the per-subset estimates, what torch-fidelity and
      /// torchmetrics report as the KID std: the sampling error of one KID estimate from SubsetSize samples per
      /// side. Not divided by sqrt(Subsets): the subsets overlap, so their estimates are correlated and that would
      /// shrink to 0 with more subsets of the same data. 0 when SubsetSize equals both set sizes (docs/statistics.md).
      StandardError: float
      /// Subsets drawn.
      Subsets: int
      /// Samples per side in each subset (after capping at the set sizes).
      SubsetSize: int }

/// Kernel Inception Distance (Binkowski et al. 2018, "Demystifying MMD GANs", section 4 and appendix): the
/// squared maximum mean discrepancy between two feature sets under the polynomial kernel
/// k(x, y) = (x.y / d + 1)^3, estimated without bias (Gretton et al. 2012, eq. 3). Rows are samples (n x d).
/// Written by hand: no served .NET library computes MMD.
module KernelDistance =

    /// The kernel of KID: (x.y / d + 1)^3 with d the feature dimension.
    /// Example: in two dimensions k([1; 1], [2; 0]) = (2 / 2 + 1)^3 = 8.
    let polynomialKernel (x: float[]) (y: float[]) : float =
        if isNull x then nullArg "x"
        if isNull y then nullArg "y"
        if x.Length <> y.Length || x.Length = 0 then
            invalidArg "y" (sprintf "the vectors must have one non-zero length, got %d and %d" x.Length y.Length)
        let t = Array.fold2 (fun acc a b -> acc + a * b) 0.0 x y / float x.Length + 1.0
        t * t * t

    // The whole cost of KID is dot products of feature rows; SIMD (System.Numerics.Vector) makes them ~4x faster.
    let internal dot (a: float[]) (b: float[]) : float =
        let width = Vector<float>.Count
        let last = a.Length - a.Length % width
        let mutable acc = Vector<float>.Zero
        let mutable i = 0
        while i < last do
            acc <- acc + Vector<float>(a, i) * Vector<float>(b, i)
            i <- i + width
        let mutable sum = Vector.Dot(acc, Vector<float>.One)
        for j in last .. a.Length - 1 do sum <- sum + a.[j] * b.[j]
        sum

    let internal kernelOf (dimension: int) (a: float[]) (b: float[]) : float =
        let t = dot a b / float dimension + 1.0
        t * t * t

    let internal validatePair (x: float[,]) (y: float[,]) =
        FeatureStatistics.validate "x" 2 x
        FeatureStatistics.validate "y" 2 y
        if Array2D.length2 x <> Array2D.length2 y then
            invalidArg "y" (sprintf "feature dimensions differ: %d and %d" (Array2D.length2 x) (Array2D.length2 y))

    /// The sums an MMD^2 estimate needs over index sets I (rows of x) and J (rows of y): the kernel summed over
    /// ordered pairs a <> b within I, within J, and over all of I x J.
    type internal KernelSums = { WithinX: float; WithinY: float; Across: float }

    /// The unbiased estimate from kernel sums: sum_xx / (n (n-1)) + sum_yy / (m (m-1)) - 2 sum_xy / (n m).
    let internal unbiasedOfSums (n: int) (m: int) (sums: KernelSums) : float =
        sums.WithinX / (float n * float (n - 1)) + sums.WithinY / (float m * float (m - 1))
        - 2.0 * sums.Across / (float n * float m)

    /// Kernel sums computed directly from the rows (no stored kernel matrix): for sets too large to tabulate.
    let internal directSums (dimension: int) (xs: float[][]) (ys: float[][]) : KernelSums =
        let within (rows: float[][]) =
            let mutable s = 0.0
            for a in 0 .. rows.Length - 1 do
                for b in a + 1 .. rows.Length - 1 do s <- s + kernelOf dimension rows.[a] rows.[b]
            2.0 * s
        let mutable across = 0.0
        for a in xs do
            for b in ys do across <- across + kernelOf dimension a b
        { WithinX = within xs; WithinY = within ys; Across = across }

    /// The unbiased MMD^2 estimate on the full sets (the U-statistic within each set, all n m pairs across; the
    /// "unbiased" estimator of Binkowski et al. and of torch-fidelity, extended to n <> m). Needs n, m >= 2.
    /// Example: one-dimensional x = {0, 1}, y = {1, 2}: (1 + 1) / 2 + (27 + 27) / 2 - 2 (1 + 1 + 8 + 27) / 4 = 9.5.
    let unbiasedMmd2 (x: float[,]) (y: float[,]) : float =
        validatePair x y
        let xs, ys = PrecisionRecall.rowsOf x, PrecisionRecall.rowsOf y
        unbiasedOfSums xs.Length ys.Length (directSums (Array2D.length2 x) xs ys)

    /// Tabulated kernel matrices K_xx, K_yy (both halves filled) and K_xy as jagged rows.
    type internal KernelTables = { Xx: float[][]; Yy: float[][]; Xy: float[][] }

    /// Dot products of 4 x rows with 2 y rows at once: 6 vector loads feed 8 multiply-adds instead of 16 loads
    /// in 8 separate dots, which makes tabulation about 3x faster. Lane order, horizontal sum and tail are those
    /// of `dot`, so every entry equals `dot` bit for bit.
    let internal dotBlock (a: float[][]) (a0: int) (b0: float[]) (b1: float[]) (out: float[]) =
        let width = Vector<float>.Count
        let last = b0.Length - b0.Length % width
        let x0, x1, x2, x3 = a.[a0], a.[a0 + 1], a.[a0 + 2], a.[a0 + 3]
        let mutable c00, c01, c10, c11 = Vector<float>.Zero, Vector<float>.Zero, Vector<float>.Zero, Vector<float>.Zero
        let mutable c20, c21, c30, c31 = Vector<float>.Zero, Vector<float>.Zero, Vector<float>.Zero, Vector<float>.Zero
        let mutable i = 0
        while i < last do
            let y0, y1 = Vector<float>(b0, i), Vector<float>(b1, i)
            let v0 = Vector<float>(x0, i)
            c00 <- c00 + v0 * y0
            c01 <- c01 + v0 * y1
            let v1 = Vector<float>(x1, i)
            c10 <- c10 + v1 * y0
            c11 <- c11 + v1 * y1
            let v2 = Vector<float>(x2, i)
            c20 <- c20 + v2 * y0
            c21 <- c21 + v2 * y1
            let v3 = Vector<float>(x3, i)
            c30 <- c30 + v3 * y0
            c31 <- c31 + v3 * y1
            i <- i + width
        let finish (acc: Vector<float>) (x: float[]) (y: float[]) =
            let mutable sum = Vector.Dot(acc, Vector<float>.One)
            for j in last .. y.Length - 1 do sum <- sum + x.[j] * y.[j]
            sum
        out.[0] <- finish c00 x0 b0
        out.[1] <- finish c01 x0 b1
        out.[2] <- finish c10 x1 b0
        out.[3] <- finish c11 x1 b1
        out.[4] <- finish c20 x2 b0
        out.[5] <- finish c21 x2 b1
        out.[6] <- finish c30 x3 b0
        out.[7] <- finish c31 x3 b1

    /// Kernel values k(a_r, b_c) for all rows r of a and c of b; with upperOnly (b = a), only c > r is filled.
    /// Work is split into bands of 32 rows of a (one task each) and tiles of 32 rows of b, so that both stay
    /// in the core's cache while they are combined.
    let internal kernelTable (dimension: int) (a: float[][]) (b: float[][]) (upperOnly: bool) : float[][] =
        let table = Array.init a.Length (fun _ -> Array.zeroCreate<float> b.Length)
        let wanted r c = not upperOnly || c > r
        let band = 32
        Array.Parallel.iter (fun first ->
            let out = Array.zeroCreate 8
            let rowEnd = min a.Length (first + band)
            let blockEnd = first + (rowEnd - first) / 4 * 4
            for tile in 0 .. band .. b.Length - 1 do
                let tileEnd = min b.Length (tile + band)
                let pairEnd = tile + (tileEnd - tile) / 2 * 2
                for r0 in first .. 4 .. blockEnd - 1 do
                    for c0 in tile .. 2 .. pairEnd - 1 do
                        if wanted r0 (c0 + 1) then
                            dotBlock a r0 b.[c0] b.[c0 + 1] out
                            for k in 0 .. 7 do table.[r0 + k / 2].[c0 + k % 2] <- out.[k]
                    for c in pairEnd .. tileEnd - 1 do
                        for r in r0 .. r0 + 3 do table.[r].[c] <- dot a.[r] b.[c]
                for r in blockEnd .. rowEnd - 1 do
                    for c in tile .. tileEnd - 1 do table.[r].[c] <- dot a.[r] b.[c]) [| 0 .. band .. a.Length - 1 |]
        for r in 0 .. a.Length - 1 do
            let row = table.[r]
            for c in 0 .. b.Length - 1 do
                row.[c] <- if wanted r c then (let t = row.[c] / float dimension + 1.0 in t * t * t) else 0.0
        table

    let internal tabulate (dimension: int) (xs: float[][]) (ys: float[][]) : KernelTables =
        let symmetric (rows: float[][]) =
            let table = kernelTable dimension rows rows true
            for r in 0 .. rows.Length - 1 do
                for c in 0 .. r - 1 do table.[r].[c] <- table.[c].[r]
            table
        { Xx = symmetric xs; Yy = symmetric ys; Xy = kernelTable dimension xs ys false }

    /// The sum of row.[indices.[k]] for k >= start. Four accumulators: one would serialise every addition on
    /// its latency, and these sums are the other half of KID's cost.
    let internal sumAt (row: float[]) (indices: int[]) (start: int) : float =
        let mutable s0, s1, s2, s3 = 0.0, 0.0, 0.0, 0.0
        let last = start + (indices.Length - start) / 4 * 4
        let mutable k = start
        while k < last do
            s0 <- s0 + row.[indices.[k]]
            s1 <- s1 + row.[indices.[k + 1]]
            s2 <- s2 + row.[indices.[k + 2]]
            s3 <- s3 + row.[indices.[k + 3]]
            k <- k + 4
        while k < indices.Length do
            s0 <- s0 + row.[indices.[k]]
            k <- k + 1
        (s0 + s1) + (s2 + s3)

    let internal tabulatedSums (tables: KernelTables) (i: int[]) (j: int[]) : KernelSums =
        let within (table: float[][]) (indices: int[]) =
            let mutable s = 0.0
            for a in 0 .. indices.Length - 1 do s <- s + sumAt table.[indices.[a]] indices (a + 1)
            2.0 * s
        let mutable across = 0.0
        for a in i do across <- across + sumAt tables.Xy.[a] j 0
        { WithinX = within tables.Xx i; WithinY = within tables.Yy j; Across = across }

    /// Whole-set kernel tables are used when they hold at most this many entries (8 bytes each, 400 MB) and cost
    /// fewer kernel evaluations than tables per subset. Either way the cost is about 0.08 s of CPU per million
    /// kernel values at d = 512 (measured): 1,000 against 2,000 images (4.5 million) take about 0.5 s of CPU, but
    /// 100 subsets of 1,000 from 10,000 real images need per-subset tables (200 million values, some 15 s).
    let internal tableEntryLimit = 50_000_000L

    let internal useTables (n: int) (m: int) (subsets: int) (size: int) =
        let n, m, s = int64 n, int64 m, int64 size
        let tableEntries = n * n + m * m + n * m
        let tableCost = n * (n - 1L) / 2L + m * (m - 1L) / 2L + n * m
        tableEntries <= tableEntryLimit && tableCost <= int64 subsets * (s * (s - 1L) + s * s)

    /// Draws subset index sets without replacement (MathNet.Numerics.Combinatorics), sorted ascending so that
    /// table rows are read in order. All draws happen before any parallel work: the seed alone fixes them.
    let internal drawSubsets (settings: KidSettings) (n: int) (m: int) (size: int) : (int[] * int[])[] =
        let random = Random(settings.Seed)
        let indicesOf (mask: bool[]) = [| for k in 0 .. mask.Length - 1 do if mask.[k] then yield k |]
        Array.init settings.Subsets (fun _ ->
            let i = indicesOf (Combinatorics.GenerateCombination(n, size, random))
            let j = indicesOf (Combinatorics.GenerateCombination(m, size, random))
            i, j)

    let internal estimateWith (tabulated: bool) (settings: KidSettings) (x: float[,]) (y: float[,]) : KidEstimate =
        validatePair x y
        if settings.Subsets < 1 then invalidArg "settings" (sprintf "needs at least 1 subset, got %d" settings.Subsets)
        let n, m, d = Array2D.length1 x, Array2D.length1 y, Array2D.length2 x
        let size = min settings.SubsetSize (min n m)
        if size < 2 then invalidArg "settings" (sprintf "the subset size must be at least 2, got %d" settings.SubsetSize)
        let xs, ys = PrecisionRecall.rowsOf x, PrecisionRecall.rowsOf y
        let draws = drawSubsets settings n m size
        let values =
            if tabulated then
                let tables = tabulate d xs ys
                draws |> Array.Parallel.map (fun (i, j) -> unbiasedOfSums size size (tabulatedSums tables i j))
            else
                // One small table per subset (tabulate is parallel itself); the same kernel values and summation
                // order as the tabulated path, so both give identical estimates.
                let all = Array.init size id
                draws |> Array.map (fun (i, j) ->
                    let tables = tabulate d (Array.map (Array.get xs) i) (Array.map (Array.get ys) j)
                    unbiasedOfSums size size (tabulatedSums tables all all))
        let mean = Array.average values
        let variance = values |> Array.averageBy (fun v -> (v - mean) * (v - mean))
        { Value = mean; StandardError = sqrt variance; Subsets = settings.Subsets; SubsetSize = size }

    /// KID as the common implementations compute it (torch-fidelity, torchmetrics, clean-fid): `Subsets` times,
    /// draw SubsetSize rows of x and of y without replacement and take the unbiased MMD^2 of the pair; report
    /// the mean and the population standard deviation of those estimates. The subset size is capped at
    /// min(n, m). The result depends on the inputs and the seed only (not on the thread count).
    let estimate (settings: KidSettings) (x: float[,]) (y: float[,]) : KidEstimate =
        validatePair x y
        let size = min settings.SubsetSize (min (Array2D.length1 x) (Array2D.length1 y))
        estimateWith (useTables (Array2D.length1 x) (Array2D.length1 y) settings.Subsets size) settings x y
