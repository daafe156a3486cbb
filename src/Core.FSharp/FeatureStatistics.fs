namespace DiffusionFunctional.Core

/// A Gaussian fitted to feature vectors: the mean and the (sample) covariance.
type Gaussian =
    { Mean: float[]
      Covariance: float[,] }

/// Mean and covariance of a feature matrix whose rows are samples (n x d).
module FeatureStatistics =

    /// Throws ArgumentException when a feature matrix has too few rows, no columns or a non-finite entry.
    let internal validate (name: string) (minRows: int) (features: float[,]) =
        if isNull features then nullArg name
        let n, d = Array2D.length1 features, Array2D.length2 features
        if n < minRows then invalidArg name (sprintf "needs at least %d feature rows, got %d" minRows n)
        if d < 1 then invalidArg name "feature vectors must have at least one dimension"
        for i in 0 .. n - 1 do
            for j in 0 .. d - 1 do
                if not (SymmetricMatrix.isFinite features.[i, j]) then
                    invalidArg name (sprintf "feature [%d, %d] is %g, not a finite number" i j features.[i, j])

    let internal meanUnchecked (features: float[,]) : float[] =
        let n, d = Array2D.length1 features, Array2D.length2 features
        let mu = Array.zeroCreate d
        for i in 0 .. n - 1 do
            for j in 0 .. d - 1 do
                mu.[j] <- mu.[j] + features.[i, j]
        Array.map (fun s -> s / float n) mu

    /// The column means of a feature matrix (n x d).
    /// Example: `FeatureStatistics.mean (array2D [ [ 0.0; 2.0 ]; [ 2.0; 4.0 ] ]) = [| 1.0; 3.0 |]`.
    let mean (features: float[,]) : float[] =
        validate "features" 1 features
        meanUnchecked features

    /// Fits a Gaussian: column means and the unbiased covariance (divisor n - 1, as numpy.cov and the
    /// reference FID code use), computed from centred data so that large means cost no precision.
    /// Needs n >= 2 rows. Example: rows [0; 0] and [2; 2] give mean [1; 1] and covariance [[2; 2]; [2; 2]].
    let fit (features: float[,]) : Gaussian =
        validate "features" 2 features
        let n, d = Array2D.length1 features, Array2D.length2 features
        let mu = meanUnchecked features
        let x = SymmetricMatrix.denseOf (Array2D.init n d (fun i j -> features.[i, j] - mu.[j]))
        let covariance = x.TransposeThisAndMultiply(x).Divide(float (n - 1))
        { Mean = mu; Covariance = (SymmetricMatrix.symmetricPart covariance).ToArray() }
