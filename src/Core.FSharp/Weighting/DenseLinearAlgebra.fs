namespace DiffusionFunctional.Core.Weighting

open System
open DiffusionFunctional.Core

/// Tiny dense k x k linear algebra for the multi-task weighting solvers (k is the number of task
/// clusters, at most a few dozen). The eigen-decomposition is MathNet.Numerics'; Cholesky and the
/// pivoted solve stay hand-written because the solvers branch on their failure signals (a non-positive
/// pivot, a pivot below a relative threshold) rather than on exceptions. Matrices are row-major `float[,]`.
module DenseLinearAlgebra =

    /// The Cholesky factor L (lower triangular, A = L L') of a symmetric positive-definite matrix,
    /// or None when a pivot is not positive (A is not numerically positive definite).
    /// Example: `tryCholesky (array2D [ [ 4.0; 2.0 ]; [ 2.0; 2.0 ] ]) = Some (array2D [ [ 2.0; 0.0 ]; [ 1.0; 1.0 ] ])`.
    let tryCholesky (a: float[,]) : float[,] option =
        let n = Array2D.length1 a
        let l = Array2D.zeroCreate n n
        let mutable ok = true
        let mutable j = 0
        while ok && j < n do
            let mutable d = a.[j, j]
            for p in 0 .. j - 1 do d <- d - l.[j, p] * l.[j, p]
            if not (d > 0.0) || Double.IsInfinity d then ok <- false
            else
                let ljj = sqrt d
                l.[j, j] <- ljj
                for i in j + 1 .. n - 1 do
                    let mutable s = a.[i, j]
                    for p in 0 .. j - 1 do s <- s - l.[i, p] * l.[j, p]
                    l.[i, j] <- s / ljj
            j <- j + 1
        if ok then Some l else None

    /// Solves L L' x = b given the Cholesky factor L from `tryCholesky`.
    /// Example: `choleskySolve (array2D [ [ 2.0; 0.0 ]; [ 1.0; 1.0 ] ]) [| 6.0; 4.0 |] = [| 1.0; 1.0 |]`.
    let choleskySolve (l: float[,]) (b: float[]) : float[] =
        let n = b.Length
        let y = Array.copy b
        for i in 0 .. n - 1 do
            for p in 0 .. i - 1 do y.[i] <- y.[i] - l.[i, p] * y.[p]
            y.[i] <- y.[i] / l.[i, i]
        for i in n - 1 .. -1 .. 0 do
            for p in i + 1 .. n - 1 do y.[i] <- y.[i] - l.[p, i] * y.[p]
            y.[i] <- y.[i] / l.[i, i]
        y

    /// Solves A x = b by LU with partial pivoting; None when a pivot falls below
    /// `relativePivot` times the largest absolute entry of A (numerically singular).
    /// Example: `trySolve 1e-12 (array2D [ [ 0.0; 1.0 ]; [ 2.0; 0.0 ] ]) [| 3.0; 4.0 |] = Some [| 2.0; 3.0 |]`.
    let trySolve (relativePivot: float) (a: float[,]) (b: float[]) : float[] option =
        let n = b.Length
        let m = Array2D.copy a
        let x = Array.copy b
        let mutable scale = 0.0
        for i in 0 .. n - 1 do
            for j in 0 .. n - 1 do scale <- max scale (abs m.[i, j])
        let threshold = relativePivot * scale
        let mutable singular = scale = 0.0
        let mutable col = 0
        while not singular && col < n do
            let mutable pivot = col
            for r in col + 1 .. n - 1 do
                if abs m.[r, col] > abs m.[pivot, col] then pivot <- r
            if abs m.[pivot, col] <= threshold then singular <- true
            else
                if pivot <> col then
                    for c in 0 .. n - 1 do
                        let t = m.[col, c]
                        m.[col, c] <- m.[pivot, c]
                        m.[pivot, c] <- t
                    let t = x.[col]
                    x.[col] <- x.[pivot]
                    x.[pivot] <- t
                for r in col + 1 .. n - 1 do
                    let f = m.[r, col] / m.[col, col]
                    if f <> 0.0 then
                        for c in col .. n - 1 do m.[r, c] <- m.[r, c] - f * m.[col, c]
                        x.[r] <- x.[r] - f * x.[col]
            col <- col + 1
        if singular then None
        else
            for i in n - 1 .. -1 .. 0 do
                for c in i + 1 .. n - 1 do x.[i] <- x.[i] - m.[i, c] * x.[c]
                x.[i] <- x.[i] / m.[i, i]
            Some x

    /// Eigen-decomposition of a symmetric matrix (MathNet.Numerics' symmetric EVD, shared with the Frechet
    /// distance): eigenvalues in ascending order and the matching orthonormal eigenvectors as columns.
    /// Example: `fst (symmetricEigen (array2D [ [ 2.0; 1.0 ]; [ 1.0; 2.0 ] ])) = [| 1.0; 3.0 |]` (to rounding).
    let symmetricEigen (a: float[,]) : float[] * float[,] =
        let values, vectors = SymmetricMatrix.eigen (SymmetricMatrix.denseOf a)
        values, vectors.ToArray()

    /// The minimum-norm least-squares solution of A x = b (A square), via the eigen-decomposition of
    /// A'A with singular values below `relativeCutoff` times the largest treated as zero.
    /// Example: `minNormLeastSquares 1e-10 (array2D [ [ 1.0; 1.0 ]; [ 1.0; 1.0 ] ]) [| 2.0; 2.0 |] = [| 1.0; 1.0 |]`.
    let minNormLeastSquares (relativeCutoff: float) (a: float[,]) (b: float[]) : float[] =
        let n = b.Length
        let ata = Array2D.init n n (fun i j -> Seq.sum (seq { for r in 0 .. n - 1 -> a.[r, i] * a.[r, j] }))
        let atb = Array.init n (fun i -> Seq.sum (seq { for r in 0 .. n - 1 -> a.[r, i] * b.[r] }))
        let values, vectors = symmetricEigen ata
        let largest = values |> Array.fold (fun acc v -> max acc (abs v)) 0.0
        // Eigenvalues of A'A are squared singular values, hence the squared cutoff.
        let cutoff = relativeCutoff * relativeCutoff * largest
        let x = Array.zeroCreate n
        for e in 0 .. n - 1 do
            if values.[e] > cutoff && values.[e] > 0.0 then
                let mutable proj = 0.0
                for i in 0 .. n - 1 do proj <- proj + vectors.[i, e] * atb.[i]
                let coef = proj / values.[e]
                for i in 0 .. n - 1 do x.[i] <- x.[i] + coef * vectors.[i, e]
        x

    /// y = A x for a square matrix.
    /// Example: `multiply (array2D [ [ 1.0; 2.0 ]; [ 3.0; 4.0 ] ]) [| 1.0; 1.0 |] = [| 3.0; 7.0 |]`.
    let multiply (a: float[,]) (x: float[]) : float[] =
        Array.init (Array2D.length1 a) (fun i ->
            let mutable s = 0.0
            for j in 0 .. x.Length - 1 do s <- s + a.[i, j] * x.[j]
            s)

    /// The quadratic form x' A x.
    /// Example: `quadraticForm (array2D [ [ 2.0; 0.0 ]; [ 0.0; 3.0 ] ]) [| 1.0; 1.0 |] = 5.0`.
    let quadraticForm (a: float[,]) (x: float[]) : float =
        let ax = multiply a x
        let mutable s = 0.0
        for i in 0 .. x.Length - 1 do s <- s + x.[i] * ax.[i]
        s
