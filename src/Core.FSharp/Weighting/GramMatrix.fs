namespace DiffusionFunctional.Core.Weighting

open System

/// Checks and small helpers for the k x k Gram matrix G = [g_i . g_j] of per-cluster gradients that
/// every gradient-based weighting takes as input. G usually comes from float32 tensors, so entries may
/// be slightly asymmetric or slightly indefinite; both are tolerated up to 1e-4 (relative) and repaired.
module GramMatrix =

    /// Relative tolerance for float32 rounding in a Gram matrix computed with tensors.
    let tolerance = 1e-4

    /// Checks that `gram` is a non-empty, square, finite, symmetric (to `tolerance` times
    /// sqrt(G_ii G_jj)) matrix with a non-negative diagonal, and returns its symmetrised copy
    /// (G + G')/2. Throws ArgumentException naming the problem otherwise.
    /// Example: `validate (array2D [ [ 1.0; 0.5 ]; [ 0.5; 2.0 ] ])` returns the same matrix.
    let validate (gram: float[,]) : float[,] =
        if isNull gram then nullArg "gram"
        let k = Array2D.length1 gram
        if k = 0 then invalidArg "gram" "the Gram matrix is empty: there must be at least one task"
        if Array2D.length2 gram <> k then
            invalidArg "gram" (sprintf "the Gram matrix must be square, got %d x %d" k (Array2D.length2 gram))
        if Array2D.base1 gram <> 0 || Array2D.base2 gram <> 0 then invalidArg "gram" "the Gram matrix must be zero-based"
        for i in 0 .. k - 1 do
            for j in 0 .. k - 1 do
                let v = gram.[i, j]
                if Double.IsNaN v || Double.IsInfinity v then
                    invalidArg "gram" (sprintf "the Gram matrix has a non-finite entry G[%d,%d] = %g" i j v)
        for i in 0 .. k - 1 do
            if gram.[i, i] < 0.0 then
                invalidArg "gram" (sprintf "the Gram matrix has a negative diagonal entry G[%d,%d] = %g (a squared norm)" i i gram.[i, i])
        for i in 0 .. k - 1 do
            for j in i + 1 .. k - 1 do
                let scale = sqrt (gram.[i, i] * gram.[j, j])
                if abs (gram.[i, j] - gram.[j, i]) > tolerance * scale + 1e-300 then
                    invalidArg "gram" (sprintf "the Gram matrix is not symmetric: G[%d,%d] = %g but G[%d,%d] = %g" i j gram.[i, j] j i gram.[j, i])
        Array2D.init k k (fun i j -> 0.5 * (gram.[i, j] + gram.[j, i]))

    /// `validate`, then also checks positive semi-definiteness: the smallest eigenvalue may be
    /// negative by at most `tolerance` times the largest diagonal entry (float32 rounding), in which
    /// case it is shifted to zero by adding to the diagonal (below 1e-12 relative it is left as is). Throws ArgumentException otherwise.
    /// Example: `validatePositiveSemidefinite (array2D [ [ 1.0; 1.0 ]; [ 1.0; 1.0 ] ])` returns it unchanged.
    let validatePositiveSemidefinite (gram: float[,]) : float[,] =
        let g = validate gram
        let k = Array2D.length1 g
        let largest = Seq.max (seq { for i in 0 .. k - 1 -> g.[i, i] })
        if largest = 0.0 then g
        else
            let smallest = (fst (DenseLinearAlgebra.symmetricEigen g)).[0]
            if smallest < -tolerance * largest then
                invalidArg "gram" (sprintf "the Gram matrix is not positive semi-definite: smallest eigenvalue %g, largest diagonal %g" smallest largest)
            // Eigenvalues within 1e-12 of zero are the Jacobi solver's own rounding: leave exact zeros alone.
            elif smallest < -1e-12 * largest then Array2D.init k k (fun i j -> if i = j then g.[i, j] - smallest else g.[i, j])
            else g

    /// The Gram matrix [v_i . v_j] of explicit vectors (all of the same length); for tests and small problems.
    /// Example: `ofVectors [| [| 1.0; 0.0 |]; [| 1.0; 1.0 |] |] = array2D [ [ 1.0; 1.0 ]; [ 1.0; 2.0 ] ]`.
    let ofVectors (vectors: float[][]) : float[,] =
        if isNull vectors || vectors.Length = 0 then invalidArg "vectors" "there must be at least one vector"
        let d = vectors.[0].Length
        vectors |> Array.iteri (fun i v ->
            if isNull v || v.Length <> d then invalidArg "vectors" (sprintf "vector %d has a different length than vector 0 (%d)" i d))
        Array2D.init vectors.Length vectors.Length (fun i j ->
            let mutable s = 0.0
            for p in 0 .. d - 1 do s <- s + vectors.[i].[p] * vectors.[j].[p]
            s)

    /// The combination sum_j w_j v_j of explicit vectors; the update a trainer applies with tensors.
    /// Example: `combine [| 2.0; 1.0 |] [| [| 1.0; 0.0 |]; [| 0.0; 1.0 |] |] = [| 2.0; 1.0 |]`.
    let combine (weights: float[]) (vectors: float[][]) : float[] =
        if isNull weights || isNull vectors || weights.Length <> vectors.Length then
            invalidArg "weights" "there must be exactly one weight per vector"
        let d = if vectors.Length = 0 then 0 else vectors.[0].Length
        Array.init d (fun p -> Array.fold2 (fun acc w (v: float[]) -> acc + w * v.[p]) 0.0 weights vectors)

    /// The Frobenius norm sqrt(sum_ij G_ij^2).
    /// Example: `frobeniusNorm (array2D [ [ 3.0; 0.0 ]; [ 0.0; 4.0 ] ]) = 5.0`.
    let frobeniusNorm (gram: float[,]) : float =
        let mutable s = 0.0
        gram |> Array2D.iter (fun v -> s <- s + v * v)
        sqrt s
