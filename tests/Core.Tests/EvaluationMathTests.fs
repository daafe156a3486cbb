module DiffusionFunctional.Core.Tests.EvaluationMathTests

open System
open DiffusionFunctional.Core
open DiffusionFunctional.Core.Tests.Generators
open Expecto
open FsCheck.FSharp
open MathNet.Numerics.LinearAlgebra

let eps = 2.220446049250313e-16

/// A d x d orthogonal matrix: the Q of a random matrix's QR decomposition.
let genOrthogonal d = gen {
    let! cells = Gen.arrayOfLength (d * d) (genFinite -1.0 1.0)
    let m = Matrix<float>.Build.DenseOfColumnMajor(d, d, cells) + Matrix<float>.Build.DenseIdentity(d).Multiply(0.01)
    return m.QR().Q }

/// Eigenvalues spanning many orders of magnitude, with exact zeros: singular and ill-conditioned spectra.
let genSpectrum d =
    Gen.arrayOfLength d (Gen.elements [ 0.0; 0.0; 1e-12; 1e-9; 1e-6; 1e-3; 0.5; 1.0; 7.0; 1e3 ])

let fromEigen (q: Matrix<float>) (values: float[]) =
    let m = q * Matrix<float>.Build.DiagonalOfDiagonalArray values * q.Transpose()
    ((m + m.Transpose()) / 2.0).ToArray()

let genFeatures = gen {
    let! n = Gen.choose (2, 12)
    let! d = Gen.choose (1, 8)
    let! cells = Gen.arrayOfLength (n * d) (Gen.oneof [ genFinite -50.0 50.0; Gen.choose (-2, 2) |> Gen.map float ])
    return Array2D.init n d (fun i j -> cells.[i * d + j]) }

let genVector d = Gen.arrayOfLength d (genFinite -5.0 5.0)

let trace (a: float[,]) = Seq.sum (seq { for i in 0 .. Array2D.length1 a - 1 -> a.[i, i] })
let maxAbsDiff (a: float[,]) (b: float[,]) =
    Seq.max (seq { for i in 0 .. Array2D.length1 a - 1 do for j in 0 .. Array2D.length2 a - 1 -> abs (a.[i, j] - b.[i, j]) })

/// Reference for Tr (S1 S2)^{1/2} by a different algorithm: eigenvalues of the non-symmetric product S1 S2
/// (Hessenberg QR), which are real and non-negative in exact arithmetic.
let referenceTraceSqrt (s1: float[,]) (s2: float[,]) =
    let p = Matrix<float>.Build.DenseOfArray s1 * Matrix<float>.Build.DenseOfArray s2
    // MathNet's Hessenberg QR does not converge on an all-zero matrix; its answer is known.
    if p.FrobeniusNorm() = 0.0 then 0.0 else
    p.Evd(Symmetricity.Asymmetric).EigenValues.ToArray() |> Array.sumBy (fun c -> sqrt (max c.Real 0.0))

[<Tests>]
let frechetProperties =
    testList "Frechet distance properties" [
        testPropertyWithConfig config "FD of a feature set with itself is 0 (to 1e-6), singular covariances included" <| fun () ->
            Prop.forAll (Arb.fromGen genFeatures) <| fun features ->
                let fd = FrechetDistance.ofFeatures features features
                Expect.isLessThanOrEqual (abs fd) 1e-6 (sprintf "FD(self) = %g for %d x %d features" fd (Array2D.length1 features) (Array2D.length2 features))

        testPropertyWithConfig config "commuting covariances: FD = |mu1 - mu2|^2 + sum (sqrt a_i - sqrt b_i)^2" <| fun () ->
            let genCase = gen {
                let! d = Gen.choose (1, 8)
                let! q = genOrthogonal d
                let! a = genSpectrum d
                let! b = genSpectrum d
                let! m1 = genVector d
                let! m2 = genVector d
                return q, a, b, m1, m2 }
            Prop.forAll (Arb.fromGen genCase) <| fun (q, a, b, m1, m2) ->
                let expected = Array.fold2 (fun s x y -> s + (x - y) ** 2.0) 0.0 m1 m2
                               + Array.fold2 (fun s x y -> s + (sqrt x - sqrt y) ** 2.0) 0.0 a b
                let actual = FrechetDistance.fromMoments m1 (fromEigen q a) m2 (fromEigen q b)
                // An eigenvalue 0 that rounding moves to eps * max a has a root of sqrt(eps * max a), which meets
                // a root of up to sqrt(max b): the computed trace term is only good to about sqrt(eps) * scale,
                // as for any backward-stable method (the distance itself is not Lipschitz at singular S).
                let scale = max 1.0 (max (Array.max a) (Array.max b))
                let d = float q.RowCount
                let tolerance = 1e-9 * scale + 4.0 * d * sqrt (eps * d) * scale
                Expect.isLessThanOrEqual (abs (actual - expected)) tolerance (sprintf "FD %.17g vs closed form %.17g" actual expected)

        testPropertyWithConfig config "2 x 2 covariances in general position: Tr (S1 S2)^{1/2} = sqrt(Tr S1 S2 + 2 sqrt(det S1 det S2))" <| fun () ->
            let genSpd = gen {
                let! q = genOrthogonal 2
                let! values = Gen.arrayOfLength 2 (genFinite 0.0 10.0)
                return fromEigen q values }
            Prop.forAll (Arb.fromGen (Gen.zip3 genSpd genSpd (Gen.zip (genVector 2) (genVector 2)))) <| fun (s1, s2, (m1, m2)) ->
                let det (s: float[,]) = s.[0, 0] * s.[1, 1] - s.[0, 1] * s.[1, 0]
                let traceProduct = s1.[0, 0] * s2.[0, 0] + s1.[0, 1] * s2.[1, 0] + s1.[1, 0] * s2.[0, 1] + s1.[1, 1] * s2.[1, 1]
                let traceSqrt = sqrt (max 0.0 (traceProduct + 2.0 * sqrt (max 0.0 (det s1 * det s2))))
                let expected = Array.fold2 (fun s x y -> s + (x - y) ** 2.0) 0.0 m1 m2 + trace s1 + trace s2 - 2.0 * traceSqrt
                let actual = FrechetDistance.fromMoments m1 s1 m2 s2
                Expect.isLessThanOrEqual (abs (actual - expected)) (1e-6 * (1.0 + trace s1 + trace s2)) (sprintf "FD %.17g vs closed form %.17g" actual expected)

        testPropertyWithConfig config "FD against a prepared reference (thin SVD of the data) equals FD of the two fitted Gaussians (d x d roots)" <| fun () ->
            Prop.forAll (Arb.fromGen (Gen.zip genFeatures genFeatures)) <| fun (a, b) ->
                if Array2D.length2 a = Array2D.length2 b then
                    let ga, gb = FeatureStatistics.fit a, FeatureStatistics.fit b
                    let fromData = FrechetDistance.ofFeaturesAgainst (FrechetDistance.reference a) b
                    let fromMoments = FrechetDistance.distance ga gb
                    let scale = 1.0 + trace ga.Covariance + trace gb.Covariance + Array.fold2 (fun s x y -> s + (x - y) ** 2.0) 0.0 ga.Mean gb.Mean
                    // Square roots of singular covariances carry errors of order sqrt(eps) * ||S|| in either route, so
                    // the two algorithms agree to about 1e-8 of the scale (measured up to 4e-9), not to eps.
                    Expect.isLessThanOrEqual (abs (fromData - fromMoments)) (1e-7 * scale)
                        (sprintf "from the data %.17g, from the moments %.17g (%d and %d rows, d = %d)" fromData fromMoments (Array2D.length1 a) (Array2D.length1 b) (Array2D.length2 a))

        testPropertyWithConfig config "FD is symmetric in its arguments" <| fun () ->
            Prop.forAll (Arb.fromGen (Gen.zip genFeatures genFeatures)) <| fun (a, b) ->
                if Array2D.length2 a = Array2D.length2 b then
                    let ab, ba = FrechetDistance.ofFeatures a b, FrechetDistance.ofFeatures b a
                    Expect.isTrue (close 1e-7 ab ba) (sprintf "FD(a, b) = %g, FD(b, a) = %g" ab ba)

        testPropertyWithConfig config "sqrtPsd matches Q diag(sqrt lambda) Q^T on singular and ill-conditioned matrices" <| fun () ->
            let genCase = gen {
                let! d = Gen.choose (1, 8)
                let! q = genOrthogonal d
                let! values = genSpectrum d
                return q, values }
            Prop.forAll (Arb.fromGen genCase) <| fun (q, values) ->
                let a = fromEigen q values
                let root = SymmetricMatrix.sqrtPsd a
                let reference = fromEigen q (Array.map sqrt values)
                let d = float q.RowCount
                let scale = Array.max values + 1e-300
                let tolerance = 4.0 * d * sqrt (eps * scale * d)
                Expect.isLessThanOrEqual (maxAbsDiff root reference) tolerance "root differs from the eigen reference"
                Expect.equal root (Array2D.init (Array2D.length1 root) (Array2D.length1 root) (fun i j -> root.[j, i])) "root is exactly symmetric"
                let squared = (Matrix<float>.Build.DenseOfArray root * Matrix<float>.Build.DenseOfArray root).ToArray()
                Expect.isLessThanOrEqual (maxAbsDiff squared a) (1e-12 * d * scale) "root * root reproduces the matrix"

        testPropertyWithConfig config "Tr (S1 S2)^{1/2} matches the non-symmetric eigenvalue reference on singular matrices" <| fun () ->
            let genCase = gen {
                let! d = Gen.choose (1, 8)
                let! q1 = genOrthogonal d
                let! q2 = genOrthogonal d
                let! a = genSpectrum d
                let! b = genSpectrum d
                return fromEigen q1 a, fromEigen q2 b, Array.max a * Array.max b }
            Prop.forAll (Arb.fromGen genCase) <| fun (s1, s2, scale) ->
                let actual = FrechetDistance.traceSqrtProduct s1 s2
                let reference = referenceTraceSqrt s1 s2
                let d = float (Array2D.length1 s1)
                // The reference takes square roots of eigenvalues known to eps * scale.
                let tolerance = 1e-9 * sqrt scale + 4.0 * d * sqrt (eps * scale * d) + 1e-300
                Expect.isLessThanOrEqual (abs (actual - reference)) tolerance (sprintf "trace sqrt %.17g vs reference %.17g" actual reference)
                Expect.isGreaterThanOrEqual actual 0.0 "a sum of singular values is non-negative"
    ]

[<Tests>]
let frechetExamples =
    testList "Frechet distance examples" [
        test "one dimension: N(0, 1) vs N(3, 4) is 3^2 + (1 - 2)^2 = 10" {
            Expect.floatClose Accuracy.veryHigh (FrechetDistance.fromMoments [| 0.0 |] (array2D [ [ 1.0 ] ]) [| 3.0 |] (array2D [ [ 4.0 ] ])) 10.0 "FD"
        }
        test "a rank-one covariance against the zero covariance: FD is its trace" {
            let s = array2D [ [ 1.0; 2.0; 3.0 ]; [ 2.0; 4.0; 6.0 ]; [ 3.0; 6.0; 9.0 ] ]
            let fd = FrechetDistance.fromMoments (Array.zeroCreate 3) s (Array.zeroCreate 3) (Array2D.zeroCreate 3 3)
            Expect.floatClose Accuracy.high fd 14.0 "FD"
        }
        test "20 samples in 64 dimensions (rank-19 covariance): FD(x, x) = 0 and FD(x, x + c) = |c|^2" {
            let random = Random 7
            let x = Array2D.init 20 64 (fun _ _ -> random.NextDouble() * 10.0 - 5.0)
            let c = Array.init 64 (fun j -> float (j % 5) - 2.0)
            let shifted = Array2D.init 20 64 (fun i j -> x.[i, j] + c.[j])
            Expect.isLessThanOrEqual (abs (FrechetDistance.ofFeatures x x)) 1e-6 "FD(self)"
            let expected = Array.sumBy (fun v -> v * v) c
            Expect.floatClose { absolute = 1e-6; relative = 1e-9 } (FrechetDistance.ofFeatures x shifted) expected "a shift moves only the mean term"
        }
        test "sqrtPsd of a diagonal matrix is the elementwise root" {
            let root = SymmetricMatrix.sqrtPsd (array2D [ [ 4.0; 0.0 ]; [ 0.0; 9.0 ] ])
            Expect.isLessThan (maxAbsDiff root (array2D [ [ 2.0; 0.0 ]; [ 0.0; 3.0 ] ])) 1e-14 "root"
        }
        test "fit: unbiased covariance of two points" {
            let g = FeatureStatistics.fit (array2D [ [ 0.0; 0.0 ]; [ 2.0; 2.0 ] ])
            Expect.equal g.Mean [| 1.0; 1.0 |] "mean"
            Expect.isLessThan (maxAbsDiff g.Covariance (array2D [ [ 2.0; 2.0 ]; [ 2.0; 2.0 ] ])) 1e-15 "covariance"
        }
        test "mismatched sizes, too few rows and non-finite entries are rejected" {
            Expect.throwsT<ArgumentException> (fun () -> FrechetDistance.fromMoments [| 0.0 |] (array2D [ [ 1.0 ] ]) [| 0.0; 0.0 |] (array2D [ [ 1.0; 0.0 ]; [ 0.0; 1.0 ] ]) |> ignore) "sizes"
            Expect.throwsT<ArgumentException> (fun () -> FeatureStatistics.fit (array2D [ [ 1.0; 2.0 ] ]) |> ignore) "one row"
            Expect.throwsT<ArgumentException> (fun () -> FeatureStatistics.fit (array2D [ [ 1.0 ]; [ nan ] ]) |> ignore) "NaN"
        }
    ]

[<Tests>]
let statisticsProperties =
    testList "Feature statistics properties" [
        testPropertyWithConfig config "fit matches the textbook mean and unbiased covariance" <| fun () ->
            Prop.forAll (Arb.fromGen genFeatures) <| fun x ->
                let n, d = Array2D.length1 x, Array2D.length2 x
                let mu = Array.init d (fun j -> (Seq.sum (seq { for i in 0 .. n - 1 -> x.[i, j] })) / float n)
                let cov = Array2D.init d d (fun a b -> Seq.sum (seq { for i in 0 .. n - 1 -> (x.[i, a] - mu.[a]) * (x.[i, b] - mu.[b]) }) / float (n - 1))
                let g = FeatureStatistics.fit x
                Expect.isTrue (Array.forall2 (close 1e-12) g.Mean mu) "mean"
                Expect.isLessThanOrEqual (maxAbsDiff g.Covariance cov) (1e-12 * (1.0 + (cov |> Seq.cast<float> |> Seq.map abs |> Seq.max))) "covariance"
    ]
