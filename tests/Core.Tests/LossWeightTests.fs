module DiffusionFunctional.Core.Tests.LossWeightTests

open System
open DiffusionFunctional.Core
open DiffusionFunctional.Core.Weighting
open DiffusionFunctional.Core.Tests.Generators
open Expecto
open FsCheck.FSharp

let lossConfig = { config with maxTest = 200 }

/// Central finite difference of f at x along coordinate i.
let partial (f: float[] -> float) (x: float[]) (i: int) =
    let h = 1e-6 * max 1.0 (abs x.[i])
    let shifted delta = Array.mapi (fun j v -> if j = i then v + delta else v) x
    (f (shifted h) - f (shifted -h)) / (2.0 * h)

let genTaskArrays lo hi = gen {
    let! k = Gen.choose (1, 8)
    let! a = Gen.arrayOfLength k (genFinite lo hi)
    let! b = Gen.arrayOfLength k (genFinite lo hi)
    let! c = Gen.arrayOfLength k (genFinite lo hi)
    return a, b, c }

let finiteDifferenceClose (expected: float) (actual: float) what =
    Expect.isTrue (abs (expected - actual) <= 1e-6 * (1.0 + abs expected)) (sprintf "%s: %g vs finite difference %g" what actual expected)

[<Tests>]
let snrWeights =
    testList "Min-SNR and P2" [
        testPropertyWithConfig lossConfig "Min-SNR clips the SNR at gamma" <| fun () ->
            Prop.forAll (Arb.fromGen (Gen.zip (genFinite 1e-4 100.0) (genFinite 0.5 20.0))) <| fun (snr, gamma) ->
                let eps, v = MinSnr.epsilonWeight snr gamma, MinSnr.vWeight snr gamma
                if snr <= gamma then
                    Expect.equal eps 1.0 "eps: weight 1 below gamma"
                    Expect.floatClose Accuracy.veryHigh v (snr / (snr + 1.0)) "v: SNR / (SNR + 1) below gamma"
                else
                    Expect.floatClose Accuracy.veryHigh (eps * snr) gamma "eps: w SNR = gamma above gamma"
                    Expect.floatClose Accuracy.veryHigh (v * (snr + 1.0)) gamma "v: w (SNR + 1) = gamma above gamma"

        test "on a linear schedule Min-SNR weights rise and P2 weights rise with t (noisier)" {
            let s = Schedule.create Linear 1000
            let eps = s.Snr |> Array.map (fun snr -> MinSnr.epsilonWeight snr 5.0)
            let p2 = s.Snr |> Array.map (fun snr -> P2.weight snr 1.0 1.0)
            Expect.isTrue (eps |> Array.pairwise |> Array.forall (fun (a, b) -> a <= b)) "Min-SNR non-decreasing in t"
            Expect.isTrue (p2 |> Array.pairwise |> Array.forall (fun (a, b) -> a < b)) "P2 increasing in t"
            Expect.floatClose Accuracy.veryHigh p2.[0] (1.0 / (1.0 + s.Snr.[0])) "P2 gamma = 1"
            Expect.floatClose Accuracy.veryHigh (P2.weight s.Snr.[0] 1.0 0.5) (1.0 / sqrt (1.0 + s.Snr.[0])) "P2 gamma = 0.5"
        }

        test "bad SNR and gamma are rejected" {
            Expect.throwsT<ArgumentException> (fun () -> MinSnr.epsilonWeight 0.0 5.0 |> ignore) "SNR = 0"
            Expect.throwsT<ArgumentException> (fun () -> MinSnr.vWeight 1.0 -5.0 |> ignore) "gamma < 0"
            Expect.throwsT<ArgumentException> (fun () -> P2.weight nan 1.0 1.0 |> ignore) "NaN"
        }
    ]

[<Tests>]
let uncertainty =
    testList "Uncertainty weighting" [
        testPropertyWithConfig lossConfig "the gradient matches finite differences of the loss" <| fun () ->
            Prop.forAll (Arb.fromGen (genTaskArrays 0.01 3.0)) <| fun (losses, s, _) ->
                let s = Array.map (fun x -> x - 1.5) s
                let g = Uncertainty.gradient s losses
                g |> Array.iteri (fun i gi -> finiteDifferenceClose (partial (fun s -> Uncertainty.loss s losses) s i) gi "d/ds")
                let w = Uncertainty.lossWeights s
                w |> Array.iteri (fun i wi -> finiteDifferenceClose (partial (Uncertainty.loss s) losses i) wi "d/dL")

        testPropertyWithConfig lossConfig "s_i = log(L_i / k) zeroes the gradient and minimises the loss" <| fun () ->
            Prop.forAll (Arb.fromGen (genTaskArrays 0.01 3.0)) <| fun (losses, nudge, _) ->
                let best = Uncertainty.optimalLogVariances losses
                Uncertainty.gradient best losses |> Array.iter (fun x -> Expect.isLessThan (abs x) 1e-12 "stationary")
                let moved = Array.map2 (fun s d -> s + d - 1.5) best nudge
                Expect.isLessThanOrEqual (Uncertainty.loss best losses) (Uncertainty.loss moved losses + 1e-12) "a minimum"

        test "bad inputs" {
            Expect.throwsT<ArgumentException> (fun () -> Uncertainty.loss [| 0.0 |] [| 1.0; 2.0 |] |> ignore) "lengths"
            Expect.throwsT<ArgumentException> (fun () -> Uncertainty.optimalLogVariances [| 0.0 |] |> ignore) "L = 0"
        }
    ]

[<Tests>]
let famo =
    testList "FAMO" [
        testPropertyWithConfig lossConfig "loss weights sum to 1 and are the objective's gradient with c held constant" <| fun () ->
            Prop.forAll (Arb.fromGen (genTaskArrays 0.01 3.0)) <| fun (losses, logits, mins) ->
                let mins = Array.map2 (fun m l -> min (0.5 * m) (0.5 * l)) mins losses
                let w = Famo.lossWeights logits losses mins
                Expect.floatClose Accuracy.veryHigh (Array.sum w) 1.0 "sum 1"
                let z = logits |> Array.map (fun x -> exp x) |> fun e -> Array.map (fun x -> x / Array.sum e) e
                let c = Array.map2 (fun zi d -> zi / d) z (Array.map2 (fun l m -> l - m + Famo.epsilon) losses mins) |> Array.sum
                let frozen (ls: float[]) = Array.fold2 (fun acc zi (l, m) -> acc + zi * log (l - m + Famo.epsilon) / c) 0.0 z (Array.zip ls mins)
                Expect.floatClose Accuracy.high (Famo.objective logits losses mins) (frozen losses) "objective value"
                w |> Array.iteri (fun i wi -> finiteDifferenceClose (partial frozen losses i) wi "d/dL")

        testPropertyWithConfig lossConfig "the logit gradient is softmax's vector-Jacobian product with the log-loss decrease" <| fun () ->
            Prop.forAll (Arb.fromGen (genTaskArrays 0.01 3.0)) <| fun (previous, logits, current) ->
                let mins = Array.zeroCreate previous.Length
                let d = Famo.logitGradient logits previous current mins
                let delta = Array.map2 (fun p c -> log (p + Famo.epsilon) - log (c + Famo.epsilon)) previous current
                let pulled (x: float[]) =
                    let e = Array.map exp x
                    Array.fold2 (fun acc ei di -> acc + ei / Array.sum e * di) 0.0 e delta
                d |> Array.iteri (fun i di -> finiteDifferenceClose (partial pulled logits i) di "d/dlogit")
                Expect.isLessThan (abs (Array.sum d)) 1e-12 "softmax is shift invariant"

        test "a loss below its minimum is rejected" {
            Expect.throwsT<ArgumentException> (fun () -> Famo.lossWeights [| 0.0 |] [| 0.5 |] [| 1.0 |] |> ignore) "L < min"
        }
    ]

[<Tests>]
let gradNorm =
    testList "GradNorm" [
        testPropertyWithConfig lossConfig "the weight gradient matches finite differences away from kinks" <| fun () ->
            Prop.forAll (Arb.fromGen (genTaskArrays 0.1 3.0)) <| fun (weights, norms, losses) ->
                let initial = Array.map (fun l -> l + 0.5) losses
                let g = GradNorm.weightGradient weights norms initial losses 1.5
                let ratios = Array.map2 (/) losses initial
                let targets = ratios |> Array.map (fun r -> Array.average (Array.map2 (*) weights norms) * (r / Array.average ratios) ** 1.5)
                let objective (w: float[]) = Array.fold2 (fun acc (wi, ni) t -> acc + abs (wi * ni - t)) 0.0 (Array.zip w norms) targets
                g |> Array.iteri (fun i gi ->
                    if abs (weights.[i] * norms.[i] - targets.[i]) > 1e-4 then
                        finiteDifferenceClose (partial objective weights i) gi "d/dw")

        test "renormalise makes the weights sum to k" {
            Expect.sequenceEqual (GradNorm.renormalise [| 1.0; 3.0 |]) [| 0.5; 1.5 |] "sum 2"
            Expect.throwsT<ArgumentException> (fun () -> GradNorm.renormalise [| 0.0; 0.0 |] |> ignore) "zero sum"
        }
    ]
