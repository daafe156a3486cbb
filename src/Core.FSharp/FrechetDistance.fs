namespace DiffusionFunctional.Core

open MathNet.Numerics.LinearAlgebra

/// The fixed (real) side of many Frechet distances, prepared once by FrechetDistance.reference: its Gaussian,
/// the square root of its covariance and that covariance's trace.
type FrechetReference =
    internal
        { Gaussian: Gaussian
          CovarianceRoot: Matrix<float>
          CovarianceTrace: float }

/// The Frechet (2-Wasserstein) distance between Gaussians, the statistic behind FID and FD-ResNet18
/// (docs/evaluation.md): ||mu_r - mu_g||^2 + Tr(S_r + S_g - 2 (S_r S_g)^{1/2}).
module FrechetDistance =

    let private traceOf (c: float[,]) = Seq.sum (seq { for i in 0 .. Array2D.length1 c - 1 -> c.[i, i] })

    let private squaredDistance (mean1: float[]) (mean2: float[]) =
        Array.fold2 (fun acc a b -> acc + (a - b) * (a - b)) 0.0 mean1 mean2

    /// Tr (S_1 S_2)^{1/2} for symmetric PSD S_1, S_2. S_1 S_2 is not symmetric, but it is similar to
    /// S_1^{1/2} S_2 S_1^{1/2} = (S_2^{1/2} S_1^{1/2})^T (S_2^{1/2} S_1^{1/2}), so the trace is the sum of
    /// the singular values of S_2^{1/2} S_1^{1/2}. Taking singular values of that product (rather than
    /// square roots of eigenvalues of the squared form) keeps absolute errors near eps * ||S|| instead of
    /// sqrt(eps) * ||S|| when the covariances are singular, as they are whenever n <= d.
    let traceSqrtProduct (s1: float[,]) (s2: float[,]) : float =
        SymmetricMatrix.validateSquare "s1" s1
        SymmetricMatrix.validateSquare "s2" s2
        if Array2D.length1 s1 <> Array2D.length1 s2 then
            invalidArg "s2" (sprintf "covariances differ in size: %d x %d and %d x %d"
                                 (Array2D.length1 s1) (Array2D.length1 s1) (Array2D.length1 s2) (Array2D.length1 s2))
        let root1 = SymmetricMatrix.sqrtPsdOf (SymmetricMatrix.denseOf s1)
        let root2 = SymmetricMatrix.sqrtPsdOf (SymmetricMatrix.denseOf s2)
        let product: Matrix<float> = root2.Multiply root1
        product.Svd(false).S.Sum()

    /// The Frechet distance from means and covariances. Mathematically non-negative; for identical inputs
    /// rounding leaves a value of order eps * Tr S of either sign (not clamped, so errors stay visible).
    /// Example: in one dimension, N(0, 1) and N(3, 4) are at distance 3^2 + (1 - 2)^2 = 10.
    let fromMoments (mean1: float[]) (cov1: float[,]) (mean2: float[]) (cov2: float[,]) : float =
        if isNull mean1 then nullArg "mean1"
        if isNull mean2 then nullArg "mean2"
        let d = mean1.Length
        if mean2.Length <> d then invalidArg "mean2" (sprintf "means differ in length: %d and %d" d mean2.Length)
        for name, cov in [ "cov1", cov1; "cov2", cov2 ] do
            SymmetricMatrix.validateSquare name cov
            if Array2D.length1 cov <> d then
                invalidArg name (sprintf "covariance is %d x %d but the mean has %d entries" (Array2D.length1 cov) (Array2D.length2 cov) d)
        squaredDistance mean1 mean2 + traceOf cov1 + traceOf cov2 - 2.0 * traceSqrtProduct cov1 cov2

    /// The Frechet distance between two fitted Gaussians.
    let distance (g1: Gaussian) (g2: Gaussian) : float = fromMoments g1.Mean g1.Covariance g2.Mean g2.Covariance

    /// Prepares a feature matrix (rows are samples, n >= 2) as the fixed side of many distances
    /// (ofFeaturesAgainst): an evaluation along training scores every checkpoint against the same real images.
    let reference (features: float[,]) : FrechetReference =
        let fit = FeatureStatistics.fit features
        { Gaussian = fit
          CovarianceRoot = SymmetricMatrix.sqrtPsdOf (SymmetricMatrix.denseOf fit.Covariance)
          CovarianceTrace = traceOf fit.Covariance }

    /// The Frechet distance between the reference's Gaussian and one fitted to features (n >= 2 rows, the
    /// reference's dimension), without forming the second covariance: with Y the centred rows, S_2 = Y^T Y / (n - 1),
    /// so S_1^{1/2} S_2 S_1^{1/2} = B^T B for B = Y S_1^{1/2} / sqrt(n - 1). Tr (S_1 S_2)^{1/2} is then the sum of B's
    /// singular values (singular values, not roots of eigenvalues, as in traceSqrtProduct) and Tr S_2 the sum of Y's
    /// squares over n - 1: one n x d product and a thin SVD instead of an eigendecomposition and an SVD of d x d matrices.
    let ofFeaturesAgainst (reference: FrechetReference) (features: float[,]) : float =
        FeatureStatistics.validate "features" 2 features
        let n, d = Array2D.length1 features, Array2D.length2 features
        let mean1 = reference.Gaussian.Mean
        if d <> mean1.Length then
            invalidArg "features" (sprintf "features have %d dimensions but the reference has %d" d mean1.Length)
        let mean2 = FeatureStatistics.meanUnchecked features
        let y = Array2D.init n d (fun i j -> features.[i, j] - mean2.[j])
        let b = (SymmetricMatrix.denseOf y).Multiply(reference.CovarianceRoot).Divide(sqrt (float (n - 1)))
        let trace2 = (Seq.sumBy (fun v -> v * v) (Seq.cast<float> y)) / float (n - 1)
        squaredDistance mean1 mean2 + reference.CovarianceTrace + trace2 - 2.0 * b.Svd(false).S.Sum()

    /// Fits a Gaussian to each feature matrix (rows are samples, n >= 2) and returns their Frechet distance.
    let ofFeatures (features1: float[,]) (features2: float[,]) : float =
        ofFeaturesAgainst (reference features1) features2
