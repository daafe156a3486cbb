module DiffusionFunctional.Core.Tests.KernelDistanceTests

open System
open DiffusionFunctional.Core
open DiffusionFunctional.Core.Tests.Generators
open Expecto
open FsCheck.FSharp
open MathNet.Numerics.Distributions

let rows (a: float[,]) = [ for i in 0 .. Array2D.length1 a - 1 -> [ for j in 0 .. Array2D.length2 a - 1 -> a.[i, j] ] ]

/// The polynomial kernel of KID written out: (x.y / d + 1)^3.
let naiveKernel (a: float list) (b: float list) = (List.sum (List.map2 (*) a b) / float a.Length + 1.0) ** 3.0

/// Binkowski et al. (2018), the unbiased MMD^2 written naively: pairs i <> j within each set, all pairs across.
let naiveUnbiased (x: float[,]) (y: float[,]) =
    let xs, ys = rows x, rows y
    let n, m = float xs.Length, float ys.Length
    let within (s: float list list) = List.sum [ for i, a in List.indexed s do for j, b in List.indexed s do if i <> j then naiveKernel a b ]
    within xs / (n * (n - 1.0)) + within ys / (m * (m - 1.0)) - 2.0 * List.sum [ for a in xs do for b in ys -> naiveKernel a b ] / (n * m)

/// The biased V-statistic: every pair including i = j, each mean over n^2, m^2, n m.
let naiveBiased (x: float[,]) (y: float[,]) =
    let xs, ys = rows x, rows y
    let mean (pairs: float list) = List.average pairs
    mean [ for a in xs do for b in xs -> naiveKernel a b ] + mean [ for a in ys do for b in ys -> naiveKernel a b ]
    - 2.0 * mean [ for a in xs do for b in ys -> naiveKernel a b ]

/// n x d standard normal features plus a shift, from one seed.
let gaussian (seed: int) (n: int) (d: int) (shift: float) =
    let values = Normal.Samples(Random(seed), 0.0, 1.0) |> Seq.take (n * d) |> Array.ofSeq
    Array2D.init n d (fun i j -> values.[i * d + j] + shift)

let genMatrix rowsMin rowsMax d = gen {
    let! n = Gen.choose (rowsMin, rowsMax)
    let! cells = Gen.arrayOfLength (n * d) (Gen.choose (-3, 3) |> Gen.map float)
    return Array2D.init n d (fun i j -> cells.[i * d + j]) }

let genPair = gen {
    let! d = Gen.choose (1, 4)
    let! x = genMatrix 2 7 d
    let! y = genMatrix 2 7 d
    return x, y }

[<Tests>]
let examples =
    testList "KID examples" [
        test "one dimension, x = {0, 1}, y = {1, 2}: 9.5 by hand, with subsets that are the whole sets" {
            // k(a, b) = (a b / 1 + 1)^3: k(0, 1) = 1, k(1, 2) = 27; across: k(0, 1) = 1, k(0, 2) = 1, k(1, 1) = 8, k(1, 2) = 27.
            let withinX = (1.0 + 1.0) / (2.0 * 1.0)
            let withinY = (27.0 + 27.0) / (2.0 * 1.0)
            let across = 2.0 * (1.0 + 1.0 + 8.0 + 27.0) / (2.0 * 2.0)
            let byHand = withinX + withinY - across
            Expect.equal byHand 9.5 "the arithmetic above"
            let x, y = array2D [ [ 0.0 ]; [ 1.0 ] ], array2D [ [ 1.0 ]; [ 2.0 ] ]
            Expect.floatClose Accuracy.veryHigh (KernelDistance.unbiasedMmd2 x y) byHand "full sets"
            let e = KernelDistance.estimate { Subsets = 7; SubsetSize = 2; Seed = 3 } x y
            Expect.floatClose Accuracy.veryHigh e.Value byHand "every subset is the whole set"
            Expect.equal (e.StandardError, e.SubsetSize, e.Subsets) (0.0, 2, 7) "no spread, size, count"
        }
        test "two dimensions, 2 against 3 rows: -19/12 by hand (the kernel divides x.y by d = 2)" {
            // x = (1,0), (0,1); y = (1,1), (2,0), (0,0). k = (x.y / 2 + 1)^3.
            let withinX = 2.0 * 1.0 / (2.0 * 1.0)                      // x0.x1 = 0
            let withinY = 2.0 * (8.0 + 1.0 + 1.0) / (3.0 * 2.0)        // y0.y1 = 2, y0.y2 = 0, y1.y2 = 0
            let across = 2.0 * (3.375 + 8.0 + 1.0 + 3.375 + 1.0 + 1.0) / (2.0 * 3.0)  // dots 1, 2, 0 and 1, 0, 0
            Expect.floatClose Accuracy.veryHigh (withinX + withinY - across) (-19.0 / 12.0) "the arithmetic above"
            let x = array2D [ [ 1.0; 0.0 ]; [ 0.0; 1.0 ] ]
            let y = array2D [ [ 1.0; 1.0 ]; [ 2.0; 0.0 ]; [ 0.0; 0.0 ] ]
            Expect.floatClose Accuracy.veryHigh (KernelDistance.unbiasedMmd2 x y) (-19.0 / 12.0) "unbiased MMD^2 can be negative"
            Expect.equal (KernelDistance.polynomialKernel [| 1.0; 1.0 |] [| 2.0; 0.0 |]) 8.0 "k((1,1), (2,0))"
        }
        test "same seed, same estimate; another seed draws other subsets" {
            let x, y = gaussian 1 40 6 0.0, gaussian 2 50 6 0.3
            let settings = { Subsets = 30; SubsetSize = 20; Seed = 5 }
            let a, b = KernelDistance.estimate settings x y, KernelDistance.estimate settings x y
            Expect.equal a b "deterministic"
            Expect.equal (ReproductionStatistics.Kid(x, y, settings)) a "C# facade"
            Expect.equal (ReproductionStatistics.UnbiasedMmd2(x, y)) (KernelDistance.unbiasedMmd2 x y) "C# facade, full sets"
            Expect.notEqual (KernelDistance.estimate { settings with Seed = 6 } x y).Value a.Value "another seed"
            Expect.isGreaterThan a.StandardError 0.0 "subsets smaller than the sets vary"
        }
        test "the subset size is capped at the smaller set" {
            let e = KernelDistance.estimate KidSettings.Default (gaussian 1 12 3 0.0) (gaussian 2 30 3 0.0)
            Expect.equal (e.SubsetSize, e.Subsets) (12, 100) "min(1000, 12, 30)"
        }
        test "bad input: different dimensions, one row, no subsets, non-finite features" {
            let x = gaussian 1 5 3 0.0
            Expect.throwsT<ArgumentException> (fun () -> KernelDistance.unbiasedMmd2 x (gaussian 2 5 4 0.0) |> ignore) "dimensions"
            Expect.throwsT<ArgumentException> (fun () -> KernelDistance.unbiasedMmd2 x (gaussian 2 1 3 0.0) |> ignore) "one row"
            Expect.throwsT<ArgumentException> (fun () -> KernelDistance.estimate { KidSettings.Default with Subsets = 0 } x x |> ignore) "0 subsets"
            Expect.throwsT<ArgumentException> (fun () -> KernelDistance.estimate { KidSettings.Default with SubsetSize = 1 } x x |> ignore) "subsets of 1"
            let bad = Array2D.copy x
            bad.[2, 1] <- nan
            Expect.throwsT<ArgumentException> (fun () -> KernelDistance.unbiasedMmd2 x bad |> ignore) "NaN"
        }
    ]

[<Tests>]
let properties =
    testList "KID properties" [
        testPropertyWithConfig config "the unbiased MMD^2 equals the naive double sum" <| fun () ->
            Prop.forAll (Arb.fromGen genPair) <| fun (x, y) ->
                let expected = naiveUnbiased x y
                Expect.isTrue (close 1e-10 (KernelDistance.unbiasedMmd2 x y) expected) (sprintf "%g vs %g" (KernelDistance.unbiasedMmd2 x y) expected)

        testPropertyWithConfig config "symmetry: MMD^2(x, y) = MMD^2(y, x), and KID with whole-set subsets too" <| fun () ->
            Prop.forAll (Arb.fromGen genPair) <| fun (x, y) ->
                Expect.isTrue (close 1e-12 (KernelDistance.unbiasedMmd2 x y) (KernelDistance.unbiasedMmd2 y x)) "full sets"
                if Array2D.length1 x = Array2D.length1 y then
                    let settings = { Subsets = 3; SubsetSize = Array2D.length1 x; Seed = 0 }
                    let forward, backward = KernelDistance.estimate settings x y, KernelDistance.estimate settings y x
                    Expect.isTrue (close 1e-12 forward.Value backward.Value) "whole-set subsets"

        testPropertyWithConfig config "whole-set tables and per-subset tables give the same estimate; whole-set subsets give the full-sample MMD^2" <| fun () ->
            Prop.forAll (Arb.fromGen genPair) <| fun (x, y) ->
                let settings = { Subsets = 4; SubsetSize = 3; Seed = 11 }
                let tabulated = KernelDistance.estimateWith true settings x y
                let direct = KernelDistance.estimateWith false settings x y
                Expect.equal direct tabulated "same kernel values, same summation order"
                if Array2D.length1 x = Array2D.length1 y then
                    let whole = KernelDistance.estimateWith true { settings with Subsets = 1; SubsetSize = 99 } x y
                    Expect.isTrue (close 1e-10 (KernelDistance.unbiasedMmd2 x y) whole.Value) "whole sets"

        test "tabulation (4 x 2 blocks, bands, odd sizes) equals the kernel entry by entry" {
            let x, y = gaussian 3 37 9 0.0, gaussian 4 71 9 0.5
            let xs, ys = PrecisionRecall.rowsOf x, PrecisionRecall.rowsOf y
            let tables = KernelDistance.tabulate 9 xs ys
            for a in 0 .. 36 do
                for b in 0 .. 70 do
                    Expect.equal tables.Xy.[a].[b] (KernelDistance.kernelOf 9 xs.[a] ys.[b]) "across"
                for b in 0 .. 36 do
                    if a <> b then Expect.equal tables.Xx.[a].[b] (KernelDistance.kernelOf 9 xs.[min a b] xs.[max a b]) "within"
        }
        test "the mean over many subsets converges to the full-sample estimate (U-statistics average to it)" {
            let x, y = gaussian 5 12 3 0.0, gaussian 6 15 3 0.4
            let e = KernelDistance.estimate { Subsets = 20000; SubsetSize = 6; Seed = 1 } x y
            let full = KernelDistance.unbiasedMmd2 x y
            // Given the data, the subsets are independent draws: the mean's error is StandardError / sqrt(subsets).
            Expect.isLessThan (abs (e.Value - full)) (5.0 * e.StandardError / sqrt 20000.0) (sprintf "%g vs %g" e.Value full)
        }
        test "unbiased: on two samples of one distribution KID averages to 0, while the V-statistic is clearly positive" {
            let draws = 400
            let estimates =
                Array.init draws (fun s ->
                    let x, y = gaussian (2 * s) 20 4 0.0, gaussian (2 * s + 1) 20 4 0.0
                    (KernelDistance.estimate { Subsets = 5; SubsetSize = 10; Seed = s } x y).Value, naiveBiased x y)
            let meanAndError (values: float[]) =
                let mean = Array.average values
                mean, sqrt (Array.averageBy (fun v -> (v - mean) ** 2.0) values / float (values.Length - 1))
            let kid, kidError = meanAndError (Array.map fst estimates)
            let biased, biasedError = meanAndError (Array.map snd estimates)
            Expect.isLessThan (abs kid) (4.0 * kidError) (sprintf "KID mean %g, standard error %g" kid kidError)
            Expect.isGreaterThan biased (10.0 * biasedError) (sprintf "V-statistic mean %g, standard error %g" biased biasedError)
        }
        test "a shifted distribution gives a KID many standard errors above 0, one distribution a KID within them" {
            let settings = { Subsets = 100; SubsetSize = 50; Seed = 0 }
            let shifted = KernelDistance.estimate settings (gaussian 7 100 8 0.0) (gaussian 8 100 8 1.0)
            let same = KernelDistance.estimate settings (gaussian 7 100 8 0.0) (gaussian 9 100 8 0.0)
            Expect.isGreaterThan shifted.StandardError 0.0 "spread"
            Expect.isGreaterThan shifted.Value (5.0 * shifted.StandardError) (sprintf "shifted: %g +- %g" shifted.Value shifted.StandardError)
            Expect.isLessThan (abs same.Value) (3.0 * same.StandardError) (sprintf "same: %g +- %g" same.Value same.StandardError)
        }
    ]
