/// The IWeighting contract as a second engineer will use it: extra parameters in their own optimiser group,
/// state saved in the checkpoint, exact resume.
module DiffusionFunctional.Api.Tests.WeightingTests

open System
open System.IO
open Expecto
open TorchSharp
open DiffusionFunctional
open DiffusionFunctional.Core
open DiffusionFunctional.Diffusion
open DiffusionFunctional.Models
open DiffusionFunctional.Training
open DiffusionFunctional.Weighting
open DiffusionFunctional.Api.Tests.TestSupport

/// UW-like test method: learnable s in R^k, loss = sum_i 0.5 (exp(-s_i) L_i / k + s_i), s in its own AdamW group.
type LearnedClusterWeights(k: int, lr: float) =
    let s = new TorchSharp.Modules.Parameter(torch.zeros([| int64 k |]))
    member _.Values = floats s
    interface IWeighting with
        member _.Name = "test-uw"
        member _.ExtraParameterGroups = [| ParameterGroupSpec([| s |], lr, 0.0) |]
        member _.Backward(batch, _) =
            use losses = batch.ClusterLosses()
            let sv = s :> torch.Tensor
            use total = ((torch.exp(-sv) * losses / float32 k + sv) * 0.5f).sum()
            total.backward()
            float (total.item<float32>())
        member _.Save w =
            for v in floats s do w.Write v
        member _.Load r =
            use loaded = torch.tensor(Array.init k (fun _ -> r.ReadSingle()))
            use _ = torch.no_grad()
            s.copy_(loaded) |> ignore
        member _.Dispose() = s.Dispose()

[<Tests>]
let tests =
    testList "Weighting interface" [
        test "a weighting's own parameters are trained in their own group and resume exactly from a checkpoint" {
            oneThread ()
            use data = TrainingTests.syntheticBars ()
            let plan = ClusterPlan.Create(1000, [| 0; 200; 600; 1000 |], "test")
            let run dir steps (resume: bool) =
                let opts = TrainingTests.Opts.Make(dir = dir, steps = steps, plan = plan, checkpointEvery = 5)
                torch.manual_seed 5L |> ignore
                let weighting = new LearnedClusterWeights(3, 0.05)
                use trainer = new Trainer(new UNet(tinyConfig), GaussianDiffusion.Create(), data, opts, weighting)
                if resume then Expect.isTrue (trainer.TryResume()) "resumed"
                let losses = Collections.Generic.List<float>()
                trainer.Train(progress = InlineProgress<StepMetrics>(fun m -> losses.Add m.Loss)) |> ignore
                List.ofSeq losses, weighting.Values
            let dirA, cleanA = tempDir "uwA"
            use _ = cleanA
            let full, sFull = run dirA 10 false
            Expect.isTrue (sFull |> Array.forall (fun v -> abs v > 1e-3f)) (sprintf "s moved: %A" sFull)
            let dirB, cleanB = tempDir "uwB"
            use _ = cleanB
            let first, _ = run dirB 5 false
            let second, sResumed = run dirB 10 true
            for a, b in List.zip (first @ second) full do
                Expect.floatClose { absolute = 0.0; relative = 1e-6 } a b "loss sequence"
            Expect.sequenceEqual sResumed sFull "the weighting's parameters end where the uninterrupted run's did"
        }
    ]
