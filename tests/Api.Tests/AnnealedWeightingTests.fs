/// Annealing a method's cluster weights to uniform (AnnealedWeighting): the update is exactly the mix of the method's
/// and vanilla's, the method's own state evolves as without the anneal, and the logged weights follow the mix.
module DiffusionFunctional.Api.Tests.AnnealedWeightingTests

open Expecto
open TorchSharp
open DiffusionFunctional.Weighting
open DiffusionFunctional.Api.Tests.WeightingSupport

/// The model gradient `weighting` leaves for one batch at `step`, as float64, from a fresh copy of the same model.
let private gradientOf (weighting: IWeighting) (step: int64) : torch.Tensor =
    let model = tinyMlp 3L
    let ps = parametersOf model
    zeroGrads ps
    weighting.Backward(batchOf model (tinyData 5L 4) step, ps) |> ignore
    flatGrad ps

[<Tests>]
let tests =
    testList "annealed weighting" [
        test "halfway, UW's update is exactly half UW's and half vanilla's, and UW's log-variances get the same gradient" {
            use uw = new UncertaintyWeighting(3)
            uw.LogVariances.detach().copy_(torch.tensor([| 0.5f; -1.0f; 2.0f |])) |> ignore
            let alone = gradientOf uw 0L
            let sAlone = uw.LogVariances.grad.clone()
            uw.LogVariances.grad.zero_() |> ignore
            use vanilla = new VanillaWeighting()
            let uniform = gradientOf vanilla 0L
            use annealed = new AnnealedWeighting(uw, 100L)
            let mixed = gradientOf annealed 50L
            let expected = alone * 0.5 + uniform * 0.5
            Expect.isLessThan ((mixed - expected).abs().max().item<float>()) 1e-6 "(1 - 0.5) g_UW + 0.5 g_vanilla"
            Expect.isLessThan ((uw.LogVariances.grad - sAlone).abs().max().item<float32>() |> float) 1e-6 "s learns as without the anneal"
        }
        test "lambda rises linearly from 0 to 1 over the steps and stays; at 0 the method is unchanged, from the end it is vanilla" {
            use uw = new UncertaintyWeighting(3)
            use annealed = new AnnealedWeighting(uw, 40L)
            Expect.equal [ for s in [ 0L; 10L; 20L; 40L; 80L ] -> annealed.Lambda s ] [ 0.0; 0.25; 0.5; 1.0; 1.0 ] "schedule"
            let start = gradientOf annealed 0L
            let alone = gradientOf uw 0L
            Expect.isLessThan ((start - alone).abs().max().item<float>()) 1e-7 "step 0: UW"
            use vanilla = new VanillaWeighting()
            Expect.isLessThan ((gradientOf annealed 40L - gradientOf vanilla 0L).abs().max().item<float>()) 1e-6 "from step 40: vanilla"
        }
        test "the logged cluster weights move from UW's 0.5 e^-s / k to 1/k" {
            use uw = new UncertaintyWeighting(3)
            use annealed = new AnnealedWeighting(uw, 10L)
            gradientOf annealed 5L |> ignore
            let own = [ for s in [ 0.0; 0.0; 0.0 ] -> 0.5 * exp (-s) / 3.0 ]
            let expected = own |> List.map (fun w -> 0.5 * w + 0.5 / 3.0)
            let logged = (annealed :> IReportsClusterWeights).LastClusterWeights |> List.ofSeq
            for e, l in List.zip expected logged do Expect.floatClose Accuracy.high l e "weight"
            Expect.equal annealed.Name "uw~anneal:10" "its name carries the anneal (checkpoint identity)"
        }
        test "a method with its own timestep sampler cannot be annealed, and zero steps are refused" {
            use importance = new ImportanceWeighting()
            Expect.throwsT<DiffusionFunctional.BadInputException> (fun () -> new AnnealedWeighting(importance, 10L) |> ignore) "importance"
            use vanilla = new VanillaWeighting()
            Expect.throwsT<DiffusionFunctional.BadInputException> (fun () -> new AnnealedWeighting(vanilla, 0L) |> ignore) "0 steps"
        }
    ]
