/// KID in the Evaluator's result (docs/statistics.md), next to FD-ResNet18 and precision/recall.
module DiffusionFunctional.Api.Tests.KidEvaluationTests

open System
open DiffusionFunctional
open DiffusionFunctional.Core
open DiffusionFunctional.Evaluation
open DiffusionFunctional.Api.Tests.EvaluationTests
open Expecto

/// count 16 x 16 grayscale images of independent uniform noise in [low, low + 0.6], from one seed.
let noiseBatch (seed: int) (count: int) (low: float32) =
    let random = Random(seed)
    ImageBatch(Array.init (count * 256) (fun _ -> low + 0.6f * float32 (random.NextDouble())), count, 1, 16, 16)

[<Tests>]
let tests =
    testList "Evaluator KID" [
        test "KID is reported: within its standard error of 0 for one distribution, many standard errors above for another" {
            use evaluator = new Evaluator(new CountingExtractor("counting-v1"), null, null, 3, { Subsets = 50; SubsetSize = 30; Seed = 0 })
            let real = noiseBatch 1 60 0.0f
            let same = evaluator.Evaluate(real, noiseBatch 2 60 0.0f)
            Expect.equal same.KidSubsetSize 30 "subset size"
            Expect.isGreaterThan same.KidStandardError 0.0 "spread over subsets"
            Expect.isLessThan (abs same.Kid) (3.0 * same.KidStandardError) (sprintf "one distribution: %g +- %g" same.Kid same.KidStandardError)
            let brighter = evaluator.Evaluate(real, noiseBatch 3 60 0.3f)
            Expect.isGreaterThan brighter.Kid (5.0 * brighter.KidStandardError) (sprintf "another: %g +- %g" brighter.Kid brighter.KidStandardError)
        }
        test "with the real ResNet-18: KID equals Core's estimate on the same features, subsets capped at the set size" {
            use evaluator = new Evaluator(resnet.Value, null, null, 3)
            let real, fake = grayBatch [ 1 .. 6 ] 28, grayBatch [ 11 .. 17 ] 28
            let result = evaluator.Evaluate(real, fake)
            let expected = KernelDistance.estimate KidSettings.Default (resnet.Value.Extract real) (resnet.Value.Extract fake)
            Expect.equal (result.Kid, result.KidStandardError, result.KidSubsetSize) (expected.Value, expected.StandardError, 6) "same estimate"
            Expect.isTrue (Double.IsFinite result.Kid) "finite"
        }
        test "KID settings out of range are a BadInputException" {
            let extractor = new CountingExtractor("c")
            Expect.throwsT<BadInputException> (fun () -> new Evaluator(extractor, null, null, 3, { KidSettings.Default with SubsetSize = 1 }) |> ignore) "size 1"
            Expect.throwsT<BadInputException> (fun () -> new Evaluator(extractor, null, null, 3, { KidSettings.Default with Subsets = 0 }) |> ignore) "0 subsets"
        }
    ]
