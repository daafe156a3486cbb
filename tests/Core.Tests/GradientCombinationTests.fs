module DiffusionFunctional.Core.Tests.GradientCombinationTests

open System
open DiffusionFunctional.Core.Weighting
open DiffusionFunctional.Core.Tests.Generators
open DiffusionFunctional.Core.Tests.WeightingGenerators
open Expecto
open FsCheck.FSharp

let combinationConfig = { config with maxTest = 200 }

/// Random gradients with random per-task orders, sometimes listing the task itself (which must be skipped).
let genPcGradCase = gen {
    let! vectors = genAnyVectors 6
    let k = vectors.Length
    let! seed = Gen.choose (0, Int32.MaxValue - 1)
    let! withSelf = Gen.elements [ false; true ]
    let orders = PcGrad.randomOrders (Random seed) k
    let orders = if withSelf then orders |> Array.mapi (fun i o -> Array.append [| i |] o) else orders
    return vectors, orders }

let closeVectors (tolerance: float) (expected: float[]) (actual: float[]) what =
    Array.iteri2 (fun i e a -> Expect.isTrue (abs (e - a) <= tolerance) (sprintf "%s[%d]: %g vs %g" what i a e)) expected actual

[<Tests>]
let pcgrad =
    testList "PCGrad" [
        testPropertyWithConfig combinationConfig "coefficients reproduce the explicit vector projections" <| fun () ->
            Prop.forAll (Arb.fromGen genPcGradCase) <| fun (vectors, orders) ->
                let r = PcGrad.solve (GramMatrix.ofVectors vectors) orders
                let expected = naivePcGrad vectors orders
                let tolerance = 1e-9 * (1.0 + (vectors |> Array.map norm |> Array.max))
                expected |> Array.iteri (fun i e ->
                    let row = Array.init vectors.Length (fun j -> r.Coefficients.[i, j])
                    closeVectors tolerance e (GramMatrix.combine row vectors) (sprintf "g_%d'" i))
                let update = expected |> Array.reduce (Array.map2 (+))
                closeVectors (float vectors.Length * tolerance) update (GramMatrix.combine r.Weights vectors) "sum of projected gradients"

        testPropertyWithConfig combinationConfig "no conflict, no change: non-negative Gram entries give weights of 1" <| fun () ->
            Prop.forAll (Arb.fromGen (genAnyVectors 6)) <| fun vectors ->
                let positive = vectors |> Array.map (Array.map abs)
                let r = PcGrad.solve (GramMatrix.ofVectors positive) (PcGrad.randomOrders (Random 7) positive.Length)
                Expect.sequenceEqual r.Weights (Array.create positive.Length 1.0) "plain sum"

        test "k = 1, a zero gradient and opposite gradients" {
            Expect.sequenceEqual (PcGrad.solve (array2D [ [ 2.0 ] ]) [| [||] |]).Weights [| 1.0 |] "k = 1"
            let zero = PcGrad.solve (array2D [ [ 1.0; 0.0 ]; [ 0.0; 0.0 ] ]) [| [| 1 |]; [| 0 |] |]
            Expect.sequenceEqual zero.Weights [| 1.0; 1.0 |] "a zero gradient is never projected against"
            // g_2 = -g_1: g_1' = g_1 + g_2 and g_2' = g_2 + g_1, both the zero vector.
            let opposite = PcGrad.solve (array2D [ [ 1.0; -1.0 ]; [ -1.0; 1.0 ] ]) [| [| 1 |]; [| 0 |] |]
            Expect.sequenceEqual opposite.Weights [| 2.0; 2.0 |] "2 g_1 + 2 g_2 = 0: opposite gradients cancel"
        }

        test "bad orders are rejected with a clear message" {
            let g = Array2D.init 3 3 (fun i j -> if i = j then 1.0 else 0.0)
            Expect.throwsT<ArgumentException> (fun () -> PcGrad.solve g [| [| 1; 2 |]; [| 0; 2 |] |] |> ignore) "one order per task"
            Expect.throwsT<ArgumentException> (fun () -> PcGrad.solve g [| [| 1; 1 |]; [| 0; 2 |]; [| 0; 1 |] |] |> ignore) "repeat"
            Expect.throwsT<ArgumentException> (fun () -> PcGrad.solve g [| [| 1; 3 |]; [| 0; 2 |]; [| 0; 1 |] |] |> ignore) "out of range"
        }
    ]

let projections (vectors: float[][]) (update: float[]) =
    vectors |> Array.choose (fun v -> let n = norm v in if n > 0.0 then Some(dot update v / n) else None)

[<Tests>]
let imtl =
    testList "IMTL-G" [
        testPropertyWithConfig combinationConfig "equal projections on every unit gradient for independent gradients" <| fun () ->
            Prop.forAll (Arb.fromGen (genIndependent 8)) <| fun vectors ->
                let r = ImtlG.solve (GramMatrix.ofVectors vectors)
                Expect.isFalse r.LeastSquares "an exact solve"
                Expect.floatClose Accuracy.veryHigh (Array.sum r.Weights) 1.0 "weights sum to 1"
                let update = GramMatrix.combine r.Weights vectors
                let p = projections vectors update
                let tolerance = 1e-8 * (1.0 + Array.sum (Array.map2 (fun w v -> abs w * norm v) r.Weights vectors))
                p |> Array.iter (fun x -> Expect.isTrue (abs (x - p.[0]) <= tolerance) (sprintf "projection %g vs %g" x p.[0]))

        testPropertyWithConfig combinationConfig "degenerate gradients: zero ones get weight 0, exact solves stay exact" <| fun () ->
            Prop.forAll (Arb.fromGen (genAnyVectors 6)) <| fun vectors ->
                let r = ImtlG.solve (GramMatrix.ofVectors vectors)
                Expect.isTrue (r.Weights |> Array.forall Double.IsFinite) "finite weights"
                vectors |> Array.iteri (fun i v -> if norm v = 0.0 && Array.exists (fun u -> norm u > 0.0) vectors then
                                                      Expect.equal r.Weights.[i] 0.0 "zero gradient")
                if not r.LeastSquares then
                    Expect.floatClose Accuracy.high (Array.sum r.Weights) 1.0 "weights sum to 1"
                    let update = GramMatrix.combine r.Weights vectors
                    let p = projections vectors update
                    let tolerance = 1e-7 * (1.0 + Array.sum (Array.map2 (fun w v -> abs w * norm v) r.Weights vectors))
                    p |> Array.iter (fun x -> Expect.isTrue (abs (x - p.[0]) <= tolerance) (sprintf "projection %g vs %g" x p.[0]))

        test "closed forms: k = 1, orthogonal, identical and zero gradients" {
            Expect.sequenceEqual (ImtlG.solve (array2D [ [ 5.0 ] ])).Weights [| 1.0 |] "k = 1"
            let orthogonal = ImtlG.solve (array2D [ [ 4.0; 0.0 ]; [ 0.0; 1.0 ] ])
            Expect.floatClose Accuracy.veryHigh orthogonal.Weights.[0] (1.0 / 3.0) "weights proportional to 1 / |g_i|"
            Expect.floatClose Accuracy.veryHigh orthogonal.Weights.[1] (2.0 / 3.0) "weights proportional to 1 / |g_i|"
            let identical = ImtlG.solve (Array2D.create 3 3 2.0)
            Expect.isTrue identical.LeastSquares "identical gradients: every split is valid"
            identical.Weights |> Array.iter (fun w -> Expect.floatClose Accuracy.high w (1.0 / 3.0) "min-norm split is uniform")
            let zero = ImtlG.solve (array2D [ [ 0.0; 0.0 ]; [ 0.0; 1.0 ] ])
            Expect.sequenceEqual zero.Weights [| 0.0; 1.0 |] "zero gradient gets weight 0"
            Expect.sequenceEqual (ImtlG.solve (Array2D.zeroCreate 2 2)).Weights [| 0.5; 0.5 |] "all zero: uniform"
        }
    ]

[<Tests>]
let badGram =
    let square = array2D [ [ 1.0; 0.0 ]; [ 0.0; 1.0 ] ]
    let cases : (string * float[,]) list =
        [ "non-square", Array2D.zeroCreate 2 3
          "empty", Array2D.zeroCreate 0 0
          "NaN", array2D [ [ 1.0; nan ]; [ nan; 1.0 ] ]
          "infinite", array2D [ [ infinity; 0.0 ]; [ 0.0; 1.0 ] ]
          "asymmetric", array2D [ [ 1.0; 0.5 ]; [ -0.5; 1.0 ] ]
          "negative diagonal", array2D [ [ -1.0; 0.0 ]; [ 0.0; 1.0 ] ] ]
    testList "bad Gram matrices" [
        for name, g in cases do
            test name {
                Expect.throwsT<ArgumentException> (fun () -> NashMtl.solve g |> ignore) "Nash"
                Expect.throwsT<ArgumentException> (fun () -> Mgda.solve g |> ignore) "MGDA"
                Expect.throwsT<ArgumentException> (fun () -> Cagrad.solve g 0.5 CagradRescale.None |> ignore) "CAGrad"
                Expect.throwsT<ArgumentException> (fun () -> ImtlG.solve g |> ignore) "IMTL-G"
                Expect.throwsT<ArgumentException> (fun () -> PcGrad.solve g [| [| 1 |]; [| 0 |] |] |> ignore) "PCGrad"
            }
        test "an indefinite matrix is rejected by the methods that need a semi-definite one" {
            let indefinite = array2D [ [ 1.0; 2.0 ]; [ 2.0; 1.0 ] ]
            Expect.throwsT<ArgumentException> (fun () -> NashMtl.solve indefinite |> ignore) "Nash"
            Expect.throwsT<ArgumentException> (fun () -> Mgda.solve indefinite |> ignore) "MGDA"
        }
        test "float32 rounding (tiny asymmetry and negative eigenvalue) is tolerated" {
            let g = array2D [ [ 1.0; 1.0 + 1e-7 ]; [ 1.0; 1.0 - 1e-7 ] ]
            Expect.isTrue (NashMtl.solve g).Converged "Nash"
            Expect.isTrue (onSimplexLoose (Mgda.solve g).Weights) "MGDA"
        }
        test "CAGrad's c must lie in [0, 1)" {
            Expect.throwsT<ArgumentException> (fun () -> Cagrad.solve square 1.0 CagradRescale.None |> ignore) "c = 1"
            Expect.throwsT<ArgumentException> (fun () -> Cagrad.solve square -0.1 CagradRescale.None |> ignore) "c < 0"
        }
    ]
