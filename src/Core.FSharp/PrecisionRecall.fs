namespace DiffusionFunctional.Core

open System

/// Improved precision and recall (Kynkaanniemi et al., 2019): the share of generated samples inside the
/// real k-NN manifold, and the share of real samples inside the generated one.
type PrecisionRecallResult =
    { /// Fraction of generated samples within the k-NN ball of some real sample.
      Precision: float
      /// Fraction of real samples within the k-NN ball of some generated sample.
      Recall: float }

/// A real feature set prepared by PrecisionRecall.reference: the features and their k-th neighbour radii.
type PrecisionRecallReference =
    internal
        { K: int
          Real: float[,]
          RealSquaredRadii: float[] }

/// k-NN manifold estimates on feature matrices whose rows are samples (n x d).
/// Written by hand: no served .NET library computes these; the distances are exact pairwise
/// Euclidean distances (no Gram-matrix shortcut, whose cancellation would blur samples on a ball's edge).
module PrecisionRecall =

    /// The k used in the paper and by default here.
    let defaultK = 3

    // Rows as flat arrays: the inner loop below runs n * m * d times and is the whole cost.
    let internal rowsOf (a: float[,]) : float[][] =
        Array.init (Array2D.length1 a) (fun i -> Array.init (Array2D.length2 a) (fun j -> a.[i, j]))

    let internal squaredDistance (a: float[]) (b: float[]) =
        let mutable sum = 0.0
        for c in 0 .. a.Length - 1 do
            let diff = a.[c] - b.[c]
            sum <- sum + diff * diff
        sum

    // Squared distances throughout: a sqrt-then-square round trip could push a sample lying exactly on a
    // ball's edge (e.g. a copy of the k-th neighbour) outside it.
    let internal kthNeighbourSquaredRadii (k: int) (features: float[,]) : float[] =
        if k < 1 then invalidArg "k" (sprintf "k must be at least 1, got %d" k)
        FeatureStatistics.validate "features" (k + 1) features
        let rows = rowsOf features
        let n = rows.Length
        Array.Parallel.init n (fun i ->
            let distances = Array.init (n - 1) (fun j -> squaredDistance rows.[i] rows.[if j < i then j else j + 1])
            Array.Sort distances
            distances.[k - 1])

    /// For each row, the Euclidean distance to its k-th nearest other row (duplicates count as neighbours
    /// at distance 0). Needs more than k rows. Example: rows 0, 1, 3 on a line with k = 1 give radii 1, 1, 2.
    let kthNeighbourRadii (k: int) (features: float[,]) : float[] =
        kthNeighbourSquaredRadii k features |> Array.map sqrt

    let internal coverageSquared (manifold: float[,]) (squaredRadii: float[]) (queries: float[,]) : float =
        FeatureStatistics.validate "manifold" 1 manifold
        FeatureStatistics.validate "queries" 1 queries
        if isNull squaredRadii || squaredRadii.Length <> Array2D.length1 manifold then
            invalidArg "radii" "needs one radius per manifold row"
        if Array2D.length2 manifold <> Array2D.length2 queries then
            invalidArg "queries" (sprintf "feature dimensions differ: %d and %d" (Array2D.length2 manifold) (Array2D.length2 queries))
        let manifoldRows, queryRows = rowsOf manifold, rowsOf queries
        let inside =
            Array.Parallel.init queryRows.Length (fun q ->
                let mutable found = false
                let mutable i = 0
                while not found && i < squaredRadii.Length do
                    found <- squaredDistance queryRows.[q] manifoldRows.[i] <= squaredRadii.[i]
                    i <- i + 1
                found)
        float (inside |> Array.filter id |> Array.length) / float inside.Length

    /// The fraction of query rows that lie within radii.[i] (inclusive) of some manifold row i.
    /// Example: manifold rows 0 and 10 on a line with radii 1 and 1 cover queries 0.5 and 10 but not 5: 2/3.
    let coverage (manifold: float[,]) (radii: float[]) (queries: float[,]) : float =
        if isNull radii then nullArg "radii"
        coverageSquared manifold (radii |> Array.map (fun r -> r * r)) queries

    /// Prepares real features (more than k rows) as the fixed side of many computations (computeAgainst): their
    /// k-NN radii, the costly part (n^2 distances), computed once.
    let reference (k: int) (real: float[,]) : PrecisionRecallReference =
        { K = k; Real = real; RealSquaredRadii = kthNeighbourSquaredRadii k real }

    /// Precision and recall of generated features (more than k rows, the real set's dimension) against a prepared
    /// real set.
    let computeAgainst (reference: PrecisionRecallReference) (generated: float[,]) : PrecisionRecallResult =
        let generatedRadii = kthNeighbourSquaredRadii reference.K generated
        { Precision = coverageSquared reference.Real reference.RealSquaredRadii generated
          Recall = coverageSquared generated generatedRadii reference.Real }

    /// Precision and recall of generated features against real features with k-NN radii (k = 3 in the paper).
    /// Both sets need more than k rows and the same feature dimension.
    let compute (k: int) (real: float[,]) (generated: float[,]) : PrecisionRecallResult =
        computeAgainst (reference k real) generated
