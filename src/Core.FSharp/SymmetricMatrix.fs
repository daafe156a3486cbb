namespace DiffusionFunctional.Core

open System
open MathNet.Numerics.LinearAlgebra

/// Functions of symmetric positive semi-definite matrices, done through the symmetric
/// eigen-decomposition (MathNet.Numerics), which stays accurate for singular and ill-conditioned input
/// where Newton or Schur iterations for a general square root lose accuracy or fail.
module SymmetricMatrix =

    let internal isFinite (x: float) = not (Double.IsNaN x || Double.IsInfinity x)

    let internal denseOf (a: float[,]) : Matrix<float> = Matrix<float>.Build.DenseOfArray a

    /// (M + M^T) / 2: removes the rounding asymmetry of products such as X^T X before a symmetric solver sees it.
    let internal symmetricPart (m: Matrix<float>) : Matrix<float> = (m + m.Transpose()).Divide 2.0

    let internal validateSquare (name: string) (a: float[,]) =
        if isNull a then nullArg name
        let n = Array2D.length1 a
        if n < 1 || Array2D.length2 a <> n then
            invalidArg name (sprintf "must be a non-empty square matrix, got %d x %d" n (Array2D.length2 a))
        a |> Array2D.iteri (fun i j v -> if not (isFinite v) then invalidArg name (sprintf "entry [%d, %d] is %g, not a finite number" i j v))

    /// Eigenvalues (ascending) and eigenvectors (columns) of the symmetric part of a matrix.
    let internal eigen (m: Matrix<float>) : float[] * Matrix<float> =
        let evd = (symmetricPart m).Evd(Symmetricity.Symmetric)
        evd.EigenValues.Real().ToArray(), evd.EigenVectors

    /// The eigenvalues of a symmetric matrix, ascending (the symmetric part is used if it is not exactly symmetric).
    /// Example: `SymmetricMatrix.eigenvalues (array2D [ [ 2.0; 0.0 ]; [ 0.0; 1.0 ] ]) = [| 1.0; 2.0 |]`.
    let eigenvalues (a: float[,]) : float[] =
        validateSquare "a" a
        fst (eigen (denseOf a))

    let internal sqrtPsdOf (m: Matrix<float>) : Matrix<float> =
        let values, vectors = eigen m
        // A PSD matrix has no negative eigenvalue; rounding produces ones of order eps * ||A||: those are zeros.
        let roots = values |> Array.map (fun v -> sqrt (max v 0.0))
        let scaled = vectors.Multiply(Matrix<float>.Build.DiagonalOfDiagonalArray roots)
        symmetricPart (scaled.TransposeAndMultiply vectors)

    /// The principal square root of a symmetric positive semi-definite matrix: the unique symmetric PSD R
    /// with R R = A, computed as V diag(sqrt(max(lambda, 0))) V^T. Singular input is fine (zero eigenvalues
    /// stay zero); eigenvalues that rounding made slightly negative are treated as zero.
    /// Example: `SymmetricMatrix.sqrtPsd (array2D [ [ 4.0; 0.0 ]; [ 0.0; 9.0 ] ]) = array2D [ [ 2.0; 0.0 ]; [ 0.0; 3.0 ] ]`.
    let sqrtPsd (a: float[,]) : float[,] =
        validateSquare "a" a
        (sqrtPsdOf (denseOf a)).ToArray()
