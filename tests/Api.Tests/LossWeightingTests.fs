/// Loss-based weightings (Min-SNR, P2, UW, uw-bounded, EDM2 uncertainty, FAMO, importance sampling) against
/// direct computations with the Core formulas.
module DiffusionFunctional.Api.Tests.LossWeightingTests

open Expecto
open TorchSharp
open TorchSharp.Modules
open DiffusionFunctional.Core
open DiffusionFunctional.Core.Weighting
open DiffusionFunctional.Training
open DiffusionFunctional.Weighting
open DiffusionFunctional.Api.Tests.TestSupport
open DiffusionFunctional.Api.Tests.WeightingSupport

let private setup seed =
    oneThread ()
    tinyMlp seed, tinyData (seed + 100L) 4

/// The gradient of sum_b c_b L_b for per-sample coefficients c (a direct reference).
let private gradientOfWeighted (model: Sequential) (d: TinyData) (coefficients: float[]) =
    let ps = parametersOf model
    zeroGrads ps
    let c = tensorOf(coefficients).to_type(torch.float32)
    (perSampleLoss model d * c).sum().backward()
    let g = flatGrad ps
    zeroGrads ps
    g

/// A batch whose per-sample losses are fixed constants (no model), for methods that only learn their own weights.
let private fixedLossBatch (clusterLosses: float[]) (step: int64) =
    let perCluster = 2
    let clusters = torch.arange(int64 clusterLosses.Length, dtype = torch.int64).repeat_interleave(int64 perCluster)
    let losses = torch.tensor([| for l in clusterLosses do for _ in 1 .. perCluster -> float32 l |]).requires_grad_(true)
    let plan = ClusterPlan.Create(10 * clusterLosses.Length, Array.init (clusterLosses.Length + 1) (fun i -> 10 * i), "fixed")
    WeightingBatch(losses, clusters * 10L, clusters, plan, step, torch.ones([| losses.shape.[0] |], dtype = torch.float64))

let private runOwnGroups (w: IWeighting) (losses: float[]) (steps: int) =
    let groups = w.ExtraParameterGroups |> Seq.map (fun g -> AdamW.ParamGroup(g.Parameters, g.LearningRate, 0.9, 0.999, 1e-8, g.WeightDecay, false, false))
    use opt = torch.optim.AdamW(groups, 0.025)
    for s in 0 .. steps - 1 do
        opt.zero_grad()
        w.Backward(fixedLossBatch losses (int64 s), [||]) |> ignore
        opt.step() |> ignore

/// Trains only the method's own log-variances on fixed losses for 800 steps; each s_i must reach log(L_i / k).
let private expectLogVariancesConverge (w: LearnedLogVarianceWeighting) (losses: float[]) =
    runOwnGroups w losses 800
    let s = w.LogVariances.data<float32>().ToArray()
    let expected = Uncertainty.optimalLogVariances losses
    for i in 0 .. losses.Length - 1 do
        Expect.floatClose { absolute = 0.02; relative = 0.0 } (float s.[i]) expected.[i] (sprintf "s_%d" i)

[<Tests>]
let tests =
    testList "Loss weightings" [
        test "min-snr: gradient equals that of mean(w_t L_t) with Core's Min-SNR weights (eps and v)" {
            let model, data = setup 1L
            let snr = data.Snr.data<float>().ToArray()
            let n = float snr.Length
            for vPred in [ false; true ] do
                use w = new MinSnrWeighting(5.0, vPred)
                let _, applied = appliedUpdate w model data 0L
                let coeff = snr |> Array.map (fun s -> (if vPred then MinSnr.vWeight s 5.0 else MinSnr.epsilonWeight s 5.0) / n)
                Expect.isLessThan (relativeError applied (gradientOfWeighted model data coeff)) 1e-5 (sprintf "v = %b" vPred)
            Expect.isTrue (snr |> Array.exists (fun s -> s > 5.0) && snr |> Array.exists (fun s -> s < 5.0)) "the cap is exercised"
        }

        test "p2: gradient equals that of mean(w_t L_t) with Core's P2 weights" {
            let model, data = setup 2L
            let snr = data.Snr.data<float>().ToArray()
            use w = new P2Weighting(1.0, 0.5)
            let _, applied = appliedUpdate w model data 0L
            let coeff = snr |> Array.map (fun s -> P2.weight s 1.0 0.5 / float snr.Length)
            Expect.isLessThan (relativeError applied (gradientOfWeighted model data coeff)) 1e-5 "P2"
        }

        test "uw: model gradient weights L_i by 0.5 exp(-s_i) / k (Core's lossWeights), s in its own group (lr 0.025, wd 0)" {
            let model, data = setup 3L
            use w = new UncertaintyWeighting(3)
            let group = Seq.exactlyOne w.ExtraParameterGroups
            Expect.equal (group.LearningRate, group.WeightDecay) (0.025, 0.0) "reference optimiser settings"
            use noGrad = torch.no_grad()
            w.LogVariances.copy_(torch.tensor([| 0.3f; -0.2f; 1.0f |])) |> ignore
            noGrad.Dispose()
            let _, applied = appliedUpdate w model data 0L
            let lw = Uncertainty.lossWeights [| 0.3; -0.2; 1.0 |]
            let coeff = data.Clusters.data<int64>().ToArray() |> Array.map (fun c -> lw.[int c] / 4.0)
            Expect.isLessThan (relativeError applied (gradientOfWeighted model data coeff)) 1e-5 "UW model gradient"
        }

        test "uw: s converges to log(L_i / k) on fixed losses" {
            oneThread ()
            let losses = [| 0.05; 0.6; 3.0 |]
            use w = new UncertaintyWeighting(3)
            expectLogVariancesConverge w losses
        }

        test "uw-bounded: s converges to log(L_i / k) as in uw, and the weights are k softmax(-s), mean 1, proportional to 1 / L_i" {
            oneThread ()
            let losses = [| 0.05; 0.6; 3.0 |]
            use w = new BoundedUncertaintyWeighting(3)
            expectLogVariancesConverge w losses
            let lambda = w.ClusterWeights()
            Expect.floatClose Accuracy.high (Array.average lambda) 1.0 "mean 1"
            let inverse = losses |> Array.map (fun l -> 1.0 / l)
            let scale = 3.0 / Array.sum inverse
            for i in 0 .. 2 do
                Expect.floatClose { absolute = 0.0; relative = 0.05 } lambda.[i] (inverse.[i] * scale) (sprintf "lambda_%d" i)
        }

        test "uw-bounded: the model gradient weights L_i by lambda_i / k with lambda held constant" {
            let model, data = setup 4L
            use w = new BoundedUncertaintyWeighting(3)
            use noGrad = torch.no_grad()
            w.LogVariances.copy_(torch.tensor([| 0.5f; -1.0f; 2.0f |])) |> ignore
            noGrad.Dispose()
            let lambda = w.ClusterWeights()
            let _, applied = appliedUpdate w model data 0L
            let coeff = data.Clusters.data<int64>().ToArray() |> Array.map (fun c -> lambda.[int c] / 3.0 / 4.0)
            Expect.isLessThan (relativeError applied (gradientOfWeighted model data coeff)) 1e-5 "model gradient"
        }

        test "edm2-uncertainty: starts as vanilla (u = 0) and u's output bias gets gradient mean(1 - L)" {
            let model, data = setup 5L
            use w = new Edm2UncertaintyWeighting()
            let _, applied = appliedUpdate w model data 0L
            let n = int data.Snr.shape.[0]
            Expect.isLessThan (relativeError applied (gradientOfWeighted model data (Array.create n (1.0 / float n)))) 1e-5 "vanilla gradient at u = 0"
            let ps = (Seq.exactlyOne w.ExtraParameterGroups).Parameters
            let bias = ps |> Seq.last
            let losses = (perSampleLoss model data).detach().to_type(torch.float64)
            let expected = (1.0 - losses).mean().item<float>()
            Expect.floatClose { absolute = 1e-5; relative = 1e-4 } (float (bias.grad.item<float32>())) expected "d loss / d bias"
            use noGrad = torch.no_grad()
            let u = w.LogUncertainty(data.Snr)
            Expect.equal u.shape [| int64 n |] "one u per sample"
        }

        test "famo: weights are Core's lossWeights and the logits take the reference's Adam step on the next step's losses" {
            oneThread ()
            use w = new FamoWeighting(3)
            let first = [| 1.0; 2.0; 0.5 |]
            w.Backward(fixedLossBatch first 0L, [||]) |> ignore
            Expect.sequenceEqual w.LastWeights (Famo.lossWeights [| 0.0; 0.0; 0.0 |] first [| 0.0; 0.0; 0.0 |]) "step 0 weights from zero logits"
            Expect.sequenceEqual w.Logits [| 0.0; 0.0; 0.0 |] "no logit update before a second loss is seen"
            let second = [| 0.5; 1.9; 0.5 |]
            w.Backward(fixedLossBatch second 1L, [||]) |> ignore
            let g = Famo.logitGradient [| 0.0; 0.0; 0.0 |] first second [| 0.0; 0.0; 0.0 |]
            // Adam's first step is -lr * g / (|g| + eps') for each coordinate.
            let expectedLogits = g |> Array.map (fun gi -> -0.025 * gi / (abs gi + 1e-8))
            for i in 0 .. 2 do
                Expect.floatClose { absolute = 1e-7; relative = 1e-5 } w.Logits.[i] expectedLogits.[i] (sprintf "logit %d" i)
            let expectedWeights = Famo.lossWeights w.Logits second [| 0.0; 0.0; 0.0 |]
            for i in 0 .. 2 do
                // The batch's losses went through float32, hence the tolerance.
                Expect.floatClose { absolute = 0.0; relative = 1e-6 } w.LastWeights.[i] expectedWeights.[i] (sprintf "step 1 weight %d from the updated logits" i)
        }
    ]
