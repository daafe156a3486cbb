/// Paired comparisons over seeds, steps to reach a target, and the plateau criterion.
module DiffusionFunctional.Core.Tests.SeedStatisticsTests

open System
open DiffusionFunctional.Core
open DiffusionFunctional.Core.Tests.Generators
open Expecto
open FsCheck.FSharp

// Student-t quantiles from scipy.stats.t.ppf (SciPy 1.10.1): t(0.975, 2 df), t(0.975, 1 df).
let t975With2 = 4.302652729911275
let t975With1 = 12.706204736432095

let interval (i: ConfidenceInterval option) = match i with Some i -> i.Lower, i.Upper | None -> nan, nan

[<Tests>]
let pairedTests =
    testList "Paired comparison over seeds" [
        test "three seeds, differences -10, -20, -30: mean -20, sd 10, 95% interval -20 +- t(2) 10 / sqrt 3" {
            let c = PairedDifference.compare 0.95 [| 90.0; 80.0; 70.0 |] [| 100.0; 100.0; 100.0 |]
            let half = t975With2 * 10.0 / sqrt 3.0
            Expect.equal (c.Count, c.MeanDifference) (3, -20.0) "mean"
            let lo, hi = interval c.DifferenceInterval
            Expect.floatClose Accuracy.high lo (-20.0 - half) "lower (scipy: -44.84137711843753)"
            Expect.floatClose Accuracy.high hi (-20.0 + half) "upper (scipy: 4.841377118437528)"
            Expect.floatClose Accuracy.high c.MeanRelativeChangePercent -20.0 "a baseline of 100 makes % equal to the difference"
            Expect.floatClose Accuracy.high (fst (interval c.RelativeChangeInterval)) (-20.0 - half) "relative interval"
        }
        test "relative change is the mean of per-seed ratios: (90 - 100) / 100 and (150 - 200) / 200 give -17.5%" {
            let c = PairedDifference.compare 0.95 [| 90.0; 150.0 |] [| 100.0; 200.0 |]
            Expect.floatClose Accuracy.veryHigh c.MeanDifference -30.0 "difference"
            Expect.floatClose Accuracy.veryHigh c.MeanRelativeChangePercent -17.5 "relative"
            // relative changes -10 and -25: sd = 7.5 sqrt 2, half width t(1) sd / sqrt 2 = 7.5 t(1).
            let lo, hi = interval c.RelativeChangeInterval
            Expect.floatClose Accuracy.high lo (-17.5 - 7.5 * t975With1) "lower"
            Expect.floatClose Accuracy.high hi (-17.5 + 7.5 * t975With1) "upper"
        }
        test "one seed: no interval (None in F#, NaN bounds and HasInterval false in the C# shape)" {
            let c = PairedDifference.compare 0.95 [| 90.0 |] [| 100.0 |]
            Expect.equal (c.MeanDifference, c.DifferenceInterval, c.RelativeChangeInterval) (-10.0, None, None) "F#"
            let s = ReproductionStatistics.ComparePaired([| 90.0 |], [| 100.0 |])
            Expect.isFalse s.HasInterval "HasInterval"
            Expect.isTrue (Double.IsNaN s.DifferenceLower && Double.IsNaN s.DifferenceUpper && Double.IsNaN s.RelativeChangeLower) "NaN bounds"
            Expect.equal (s.MeanDifference, s.MeanRelativeChangePercent, s.Level) (-10.0, -10.0, 0.95) "values and default level"
        }
        testPropertyWithConfig config "intervals are centred on the mean, narrower at 90% than 95%, and the facade agrees" <| fun () ->
            let genCase = gen {
                let! n = Gen.choose (2, 8)
                let! c = Gen.arrayOfLength n (genFinite 1.0 100.0)
                let! b = Gen.arrayOfLength n (genFinite 1.0 100.0)
                return c, b }
            Prop.forAll (Arb.fromGen genCase) <| fun (c, b) ->
                let at95, at90 = PairedDifference.compare 0.95 c b, PairedDifference.compare 0.90 c b
                let lo95, hi95 = interval at95.DifferenceInterval
                let lo90, hi90 = interval at90.DifferenceInterval
                Expect.isTrue (close 1e-9 ((lo95 + hi95) / 2.0) at95.MeanDifference) "centred"
                Expect.isTrue (lo95 <= lo90 && hi90 <= hi95) "90% inside 95%"
                let s = ReproductionStatistics.ComparePaired(c, b, 0.9)
                Expect.equal (s.DifferenceLower, s.DifferenceUpper, s.HasInterval) (lo90, hi90, true) "facade"
        test "a constant difference has a zero-width interval" {
            let c = PairedDifference.compare 0.95 [| 12.0; 22.0; 32.0 |] [| 10.0; 20.0; 30.0 |]
            Expect.equal (interval c.DifferenceInterval) (2.0, 2.0) "no spread"
        }
        test "bad input: lengths differ, no seeds, a zero baseline, a level outside (0, 1)" {
            Expect.throwsT<ArgumentException> (fun () -> PairedDifference.compare 0.95 [| 1.0 |] [| 1.0; 2.0 |] |> ignore) "lengths"
            Expect.throwsT<ArgumentException> (fun () -> PairedDifference.compare 0.95 [||] [||] |> ignore) "empty"
            Expect.throwsT<ArgumentException> (fun () -> PairedDifference.compare 0.95 [| 1.0 |] [| 0.0 |] |> ignore) "zero baseline"
            Expect.throwsT<ArgumentException> (fun () -> PairedDifference.compare 1.0 [| 1.0 |] [| 1.0 |] |> ignore) "level 1"
        }
    ]

/// Increasing steps from positive gaps.
let genCurve = gen {
    let! n = Gen.choose (1, 8)
    let! gaps = Gen.arrayOfLength n (Gen.choose (1, 500))
    let! metrics = Gen.arrayOfLength n (genFinite 0.5 200.0)
    let steps = Array.scan (+) 0 gaps |> Array.tail |> Array.map float
    return steps, metrics }

[<Tests>]
let stepsTests =
    testList "Steps to reach a target" [
        test "log-linear halfway: metrics 100 then 1, target 10, steps 0 and 100 give 50" {
            Expect.equal (StepsToTarget.tryFind [| 0.0; 100.0 |] [| 100.0; 1.0 |] 10.0) (Some 50.0) "halfway in log"
        }
        test "an evaluation point equal to the target gives its step exactly; never reaching gives None" {
            let steps, metrics = [| 100.0; 200.0; 300.0; 400.0 |], [| 80.0; 40.0; 20.0; 10.0 |]
            Expect.equal (StepsToTarget.tryFind steps metrics 20.0) (Some 300.0) "exact"
            Expect.equal (StepsToTarget.tryFind steps metrics 5.0) None "never"
            Expect.equal (StepsToTarget.tryFind steps metrics 90.0) (Some 100.0) "already below at the first point"
            let mutable step = 0.0
            Expect.isFalse (ReproductionStatistics.TryStepsToTarget(steps, metrics, 5.0, &step)) "facade: never"
            Expect.isTrue (Double.IsNaN step) "facade: NaN"
            Expect.isTrue (ReproductionStatistics.TryStepsToTarget(steps, metrics, 20.0, &step) && step = 300.0) "facade: exact"
        }
        test "the first crossing counts when the curve rises again" {
            Expect.equal (StepsToTarget.tryFind [| 1.0; 2.0; 3.0; 4.0 |] [| 50.0; 10.0; 60.0; 5.0 |] 10.0) (Some 2.0) "first"
        }
        testPropertyWithConfig config "the step lies between the bracketing evaluation points (or is the first step)" <| fun () ->
            Prop.forAll (Arb.fromGen (Gen.zip genCurve (genFinite 0.5 200.0))) <| fun ((steps, metrics), target) ->
                match StepsToTarget.tryFind steps metrics target, Array.tryFindIndex (fun m -> m <= target) metrics with
                | None, None -> ()
                | Some s, Some 0 -> Expect.equal s steps.[0] "reached at the first point"
                | Some s, Some i ->
                    Expect.isTrue (steps.[i - 1] <= s && s <= steps.[i]) (sprintf "%g not in [%g, %g]" s steps.[i - 1] steps.[i])
                    Expect.isTrue (metrics.[.. i - 1] |> Array.forall (fun m -> m > target)) "not reached before"
                | found, first -> failtestf "tryFind %A but first point at or below the target %A" found first

        testPropertyWithConfig config "a log-linear curve m = a exp(-b step) is recovered exactly" <| fun () ->
            Prop.forAll (Arb.fromGen (Gen.zip3 genCurve (genFinite 1.0 100.0) (genFinite 1e-4 1e-2))) <| fun ((steps, _), a, b) ->
                let metrics = steps |> Array.map (fun s -> a * exp (-b * s))
                let truth = (steps.[0] + steps.[steps.Length - 1]) / 2.0
                match StepsToTarget.tryFind steps metrics (a * exp (-b * truth)) with
                | Some s when steps.Length > 1 -> Expect.isTrue (close 1e-9 s truth) (sprintf "%g vs %g" s truth)
                | Some s -> Expect.equal s steps.[0] "one point"
                | None -> failtest "a target inside the curve's range is reached"

        test "over seeds: mean, sample sd, min and max of the seeds that reached it" {
            let summary = StepsToTarget.summarize [| Some 100.0; Some 200.0; None |]
            Expect.equal (summary.Seeds, summary.Reached, summary.Mean, summary.Min, summary.Max) (3, 2, 150.0, 100.0, 200.0) "summary"
            Expect.floatClose Accuracy.veryHigh summary.StandardDeviation (50.0 * sqrt 2.0) "sd"
            Expect.equal (ReproductionStatistics.SummarizeSteps [| 100.0; 200.0; nan |]) summary "facade with NaN for never"
            let curves = [| [| 0.0; 100.0 |], [| 100.0; 1.0 |]; [| 0.0; 100.0 |], [| 100.0; 50.0 |] |]
            let across = StepsToTarget.acrossSeeds curves 10.0
            Expect.equal (across.Reached, across.Mean) (1, 50.0) "one seed of two"
            Expect.isTrue (Double.IsNaN across.StandardDeviation) "one value has no sd"
        }
        test "bad input: steps not increasing, a non-positive metric or target" {
            Expect.throwsT<ArgumentException> (fun () -> StepsToTarget.tryFind [| 2.0; 1.0 |] [| 3.0; 2.0 |] 1.0 |> ignore) "steps"
            Expect.throwsT<ArgumentException> (fun () -> StepsToTarget.tryFind [| 1.0; 2.0 |] [| 3.0; 0.0 |] 1.0 |> ignore) "metric 0"
            Expect.throwsT<ArgumentException> (fun () -> StepsToTarget.tryFind [| 1.0 |] [| 3.0 |] -1.0 |> ignore) "target"
        }
    ]

[<Tests>]
let plateauTests =
    testList "Plateau criterion" [
        test "last three 100, 103, 101: relative range 3%, held at 5%, not at 2%" {
            let values = [| 300.0; 150.0; 100.0; 103.0; 101.0 |]
            let check = Plateau.check 3 5.0 values
            Expect.isTrue check.Held "5%"
            Expect.floatClose Accuracy.veryHigh check.RelativeRangePercent 3.0 "range"
            Expect.isFalse (Plateau.check 3 2.0 values).Held "2%"
            Expect.isFalse (Plateau.check 4 5.0 values).Held "the fourth-last point is 150"
            Expect.equal (ReproductionStatistics.Plateau(values, 3, 5.0)) check "facade"
        }
        test "fewer values than points: not held, range NaN; bad input rejected" {
            let check = Plateau.check 3 5.0 [| 10.0; 10.0 |]
            Expect.isFalse check.Held "too short"
            Expect.isTrue (Double.IsNaN check.RelativeRangePercent) "NaN"
            Expect.throwsT<ArgumentException> (fun () -> Plateau.check 1 5.0 [| 1.0 |] |> ignore) "1 point"
            Expect.throwsT<ArgumentException> (fun () -> Plateau.check 2 5.0 [| 1.0; -1.0 |] |> ignore) "negative value"
        }
        testPropertyWithConfig config "held exactly when every pair of the last N is within P% of the smaller one" <| fun () ->
            let genCase = gen {
                let! values = Gen.arrayOfLength 6 (genFinite 90.0 110.0)
                let! points = Gen.choose (2, 6)
                let! tolerance = genFinite 0.0 25.0
                return values, points, tolerance }
            Prop.forAll (Arb.fromGen genCase) <| fun (values, points, tolerance) ->
                let last = values.[values.Length - points ..]
                let pairwise = [ for a in last do for b in last -> 100.0 * abs (a - b) / min a b ] |> List.max
                let check = Plateau.check points tolerance values
                Expect.isTrue (close 1e-12 check.RelativeRangePercent pairwise) "range = largest pairwise relative gap"
                Expect.equal check.Held (pairwise <= tolerance) "held"
    ]
