module DiffusionFunctional.Core.Tests.RankCorrelationTests

open System
open DiffusionFunctional.Core
open DiffusionFunctional.Core.Tests.Generators
open Expecto
open FsCheck.FSharp
open MathNet.Numerics.Statistics

/// Every ordering of a list.
let rec permutations (items: 'a list) : 'a list list =
    match items with
    | [] -> [ [] ]
    | _ -> [ for i, item in List.indexed items do
               for rest in permutations (List.removeAt i items) -> item :: rest ]

/// The permutation test by brute force: pair x with every ordering of y and count |rho| >= the observed |rho|.
let bruteForcePValue (x: float[]) (y: float[]) =
    let observed = abs (TaskAffinity.spearman x y)
    let all = permutations (List.ofArray y)
    let atLeast = all |> List.filter (fun p -> abs (TaskAffinity.spearman x (Array.ofList p)) >= observed - 1e-12) |> List.length
    float atLeast / float all.Length

let genPairs minN maxN = gen {
    let! n = Gen.choose (minN, maxN)
    let! x = genValues n
    let! y = genValues n
    return x, y }

[<Tests>]
let tests =
    testList "Spearman's rank correlation" [
        testPropertyWithConfig config "rho equals MathNet's Correlation.Spearman (ties included)" <| fun () ->
            Prop.forAll (Arb.fromGen (genPairs 2 30)) <| fun (x, y) ->
                let expected = Correlation.Spearman(x, y)
                let actual = RankCorrelation.rho x y
                if Double.IsNaN expected then Expect.isTrue (Double.IsNaN actual) "constant input"
                else Expect.isTrue (close 1e-12 actual expected) (sprintf "%g vs %g" actual expected)

        testPropertyWithConfig { config with maxTest = 150 } "the exact p-value equals a brute-force count over all permutations (n <= 7)" <| fun () ->
            Prop.forAll (Arb.fromGen (genPairs 2 7)) <| fun (x, y) ->
                let result = RankCorrelation.test x y
                if Double.IsNaN result.Rho then Expect.equal result.Method SpearmanPValueMethod.Undefined "constant input"
                else
                    Expect.equal result.Method SpearmanPValueMethod.ExactPermutation "small n is exact"
                    Expect.isTrue (close 1e-12 result.PValue (bruteForcePValue x y)) (sprintf "%g vs %g" result.PValue (bruteForcePValue x y))

        test "a strictly decreasing relation on 5 points: rho = -1, exact p = 2 / 5! (both orderings as extreme)" {
            let result = RankCorrelation.test [| 1.0 .. 5.0 |] [| 50.0; 40.0; 30.0; 20.0; 10.0 |]
            Expect.equal result.Rho -1.0 "rho"
            Expect.floatClose Accuracy.veryHigh result.PValue (2.0 / 120.0) "p"
            Expect.equal (result.Count, result.Method) (5, SpearmanPValueMethod.ExactPermutation) "exact"
        }
        test "ties get average ranks" {
            Expect.equal (RankCorrelation.averageRanks [| 10.0; 20.0; 20.0; 5.0 |]) [| 2.0; 3.5; 3.5; 1.0 |] "ranks"
        }
        test "n > 10 uses Student's t with n - 2 df and matches scipy.stats.spearmanr (SciPy 1.10.1)" {
            // scipy.stats.spearmanr(x, y) printed statistic=0.9370629370629372, pvalue=6.99316495321054e-06.
            let x = [| 1.0 .. 12.0 |]
            let y = [| 2.0; 1.0; 4.0; 3.0; 7.0; 5.0; 6.0; 9.0; 8.0; 12.0; 10.0; 11.0 |]
            let result = RankCorrelation.test x y
            Expect.equal result.Method SpearmanPValueMethod.TDistribution "t"
            Expect.floatClose Accuracy.high result.Rho 0.9370629370629372 "rho"
            Expect.floatClose { absolute = 0.0; relative = 1e-6 } result.PValue 6.99316495321054e-06 "p"
            // With ties (two pairs in x, one in y): statistic=-0.8937939536688503, pvalue=3.812493798897645e-05.
            let x2 = [| 3.1; 1.2; 5.5; 5.5; 2.0; 8.8; 7.1; 4.4; 4.4; 9.9; 0.5; 6.6; 3.3 |]
            let y2 = [| 10.0; 12.0; 9.0; 9.0; 15.0; 4.0; 8.0; 11.0; 7.0; 3.0; 14.0; 6.0; 13.0 |]
            let tied = RankCorrelation.test x2 y2
            Expect.floatClose Accuracy.high tied.Rho -0.8937939536688503 "rho with ties"
            Expect.floatClose { absolute = 0.0; relative = 1e-6 } tied.PValue 3.812493798897645e-05 "p with ties"
        }
        // Without ties: with many ties the exact (tie-conditional) permutation distribution is coarse and the t
        // approximation is off by far more (x = [2;-2;3;2;2;2;-2;-2;-2;1], y = [-2;-2;1;1;1;1;1;1;3;3]: exact 0.84,
        // t 0.69), so the property is stated for distinct values, where the largest difference over every possible
        // rho at n = 10 is 0.013 (computed over all 10! pairings).
        testPropertyWithConfig { config with maxTest = 40 } "at n = 10 without ties the exact p-value and the t approximation agree within 0.05" <| fun () ->
            let distinct = gen {
                let! x = Gen.shuffle [| 1.0 .. 10.0 |]
                let! y = Gen.shuffle [| 1.0 .. 10.0 |]
                return x, y }
            Prop.forAll (Arb.fromGen distinct) <| fun (x, y) ->
                let result = RankCorrelation.test x y
                if not (Double.IsNaN result.Rho) then
                    let approximate = RankCorrelation.tDistributionPValue result.Rho 10
                    Expect.isLessThan (abs (result.PValue - approximate)) 0.05 (sprintf "exact %g, t %g" result.PValue approximate)

        test "two points: rho = +-1 and p = 1; a constant input or one point: undefined" {
            let two = RankCorrelation.test [| 1.0; 2.0 |] [| 5.0; 3.0 |]
            Expect.equal (two.Rho, two.PValue) (-1.0, 1.0) "n = 2"
            let constant = RankCorrelation.test [| 1.0; 2.0; 3.0 |] [| 4.0; 4.0; 4.0 |]
            Expect.isTrue (Double.IsNaN constant.Rho && Double.IsNaN constant.PValue) "constant"
            Expect.equal constant.Method SpearmanPValueMethod.Undefined "undefined"
            Expect.isTrue (Double.IsNaN (RankCorrelation.test [| 1.0 |] [| 2.0 |]).Rho) "one point"
        }
        test "the C# facade returns the same result; mismatched lengths and NaN are rejected" {
            let x, y = [| 1.0; 3.0; 2.0; 5.0 |], [| 2.0; 1.0; 4.0; 3.0 |]
            Expect.equal (ReproductionStatistics.Spearman(x, y)) (RankCorrelation.test x y) "facade"
            Expect.throwsT<ArgumentException> (fun () -> RankCorrelation.test x [| 1.0 |] |> ignore) "lengths"
            Expect.throwsT<ArgumentException> (fun () -> RankCorrelation.test x [| 1.0; nan; 2.0; 3.0 |] |> ignore) "NaN"
        }
    ]
