module DiffusionFunctional.Api.Tests.AffinityTests

open System.IO
open Expecto
open TorchSharp
open DiffusionFunctional.Core
open DiffusionFunctional.Models
open DiffusionFunctional.Diffusion
open DiffusionFunctional.Analysis
open DiffusionFunctional.Api.Tests.TestSupport

[<Tests>]
let tests =
    testList "Task affinity" [
        test "the exact matrix is a symmetric cosine matrix with a unit diagonal, and deterministic" {
            oneThread ()
            let diffusion = GaussianDiffusion.Create("linear", 40)
            use model = perturbedTinyUNet 1L
            use x = randomImages ()
            let a = TaskAffinityAnalysis.Measure(model, diffusion, x, TaskAffinityOptions(Groups = 4))
            let b = TaskAffinityAnalysis.Measure(model, diffusion, x, TaskAffinityOptions(Groups = 4))
            Expect.isTrue (System.Double.IsNaN a.SketchMaxError) "exact: no sketch error"
            for i in 0 .. 3 do
                Expect.floatClose Accuracy.high a.Cosines.[i, i] 1.0 "unit diagonal"
                for j in 0 .. 3 do
                    Expect.equal a.Cosines.[i, j] a.Cosines.[j, i] "symmetric"
                    Expect.isTrue (abs a.Cosines.[i, j] <= 1.0) "a cosine"
                    Expect.equal a.Cosines.[i, j] b.Cosines.[i, j] "deterministic"
            Expect.isTrue (Seq.exists (fun (i, j) -> abs (a.Cosines.[i, j]) < 0.999) [ for i in 0 .. 3 do for j in 0 .. 3 -> i, j ]) "not trivially all ones"
            for p in model.parameters() do
                Expect.isTrue (isNull p.grad || p.grad.abs().max().item<float32>() = 0.0f) "gradients left clean"
        }

        test "a random-projection sketch approximates the exact cosines and reports its measured error" {
            oneThread ()
            let diffusion = GaussianDiffusion.Create("linear", 40)
            use model = perturbedTinyUNet 2L
            use x = randomImages ()
            let exact = TaskAffinityAnalysis.Measure(model, diffusion, x, TaskAffinityOptions(Groups = 4, Seed = 3L))
            let sketched = TaskAffinityAnalysis.Measure(model, diffusion, x, TaskAffinityOptions(Groups = 4, SketchDim = 2048, Seed = 3L))
            let worstVsExact = Seq.max [ for j in 1 .. 3 -> abs (sketched.Cosines.[0, j] - exact.Cosines.[0, j]) ]
            Expect.floatClose { absolute = 1e-9; relative = 1e-6 } sketched.SketchMaxError worstVsExact "reported error is the measured one"
            Expect.isLessThan sketched.SketchMaxError 0.15 "a 2048-dimensional sketch is close"
        }

        test "bad settings are refused with a message" {
            let diffusion = GaussianDiffusion.Create("linear", 40)
            use model = perturbedTinyUNet 5L
            use x = randomImages ()
            Expect.throwsT<DiffusionFunctional.BadInputException> (fun () -> TaskAffinityAnalysis.Measure(model, diffusion, x, TaskAffinityOptions(Groups = 3)) |> ignore) "3 does not divide 40"
            Expect.throwsT<DiffusionFunctional.BadInputException> (fun () -> TaskAffinityAnalysis.Measure(model, diffusion, x, TaskAffinityOptions(Groups = 1)) |> ignore) "one group"
        }
    ]

/// Returns a constant image per model so that routing is visible in the output.
type private ConstantModel(value: float32) =
    inherit torch.nn.Module<torch.Tensor, torch.Tensor, torch.Tensor>("constant")
    override _.forward(x, _t) = torch.full_like(x, (float value).ToScalar())

[<Tests>]
let hybridTests =
    testList "Hybrid denoiser" [
        test "the specialist handles exactly its interval, per sample" {
            use shared = new ConstantModel(1.0f)
            use specialist = new ConstantModel(2.0f)
            use hybrid = new HybridDenoiser(shared, specialist, 10, 20)
            use x = torch.zeros(5L, 1L, 2L, 2L)
            use t = torch.tensor([| 0L; 10L; 19L; 20L; 15L |])
            use out = hybrid.forward(x, t)
            let firstPixel = [| for i in 0L .. 4L -> out.[i].flatten().[0L].item<float32>() |]
            Expect.equal firstPixel [| 1.0f; 2.0f; 2.0f; 1.0f; 2.0f |] "routing by timestep"
            use all = hybrid.forward(x, torch.tensor([| 12L; 12L; 12L; 12L; 12L |]))
            Expect.equal (all.mean().item<float32>()) 2.0f "all inside"
        }
    ]
