module DiffusionFunctional.Core.Tests.WeightingTests

open System
open DiffusionFunctional.Core.Weighting
open DiffusionFunctional.Core.Tests.Generators
open DiffusionFunctional.Core.Tests.WeightingGenerators
open Expecto
open FsCheck.FSharp

let weightingConfig = { config with maxTest = 200 }

let forAllVectors (gen: FsCheck.Gen<float[][]>) property = Prop.forAll (Arb.fromGen gen) property

let normalised (g: float[,]) =
    let f = GramMatrix.frobeniusNorm g
    Array2D.map (fun x -> x / f) g

/// max_i |alpha_i (G alpha)_i - 1|, computed here independently of the solver.
let nashResidual (g: float[,]) (alpha: float[]) =
    let k = alpha.Length
    Seq.max (seq { for i in 0 .. k - 1 -> abs (alpha.[i] * Seq.sum (seq { for j in 0 .. k - 1 -> g.[i, j] * alpha.[j] }) - 1.0) })

[<Tests>]
let nash =
    testList "Nash-MTL" [
        testPropertyWithConfig weightingConfig "alpha_i (G alpha)_i = 1 to 1e-6 for random positive-definite G (k <= 10)" <| fun () ->
            forAllVectors (genIndependent 10) <| fun vectors ->
                let g = GramMatrix.ofVectors vectors
                let r = NashMtl.solve g
                Expect.equal r.RidgeUsed 0.0 "no ridge for independent gradients"
                Expect.isTrue (r.Alpha |> Array.forall (fun a -> a > 0.0)) "alpha > 0"
                Expect.isLessThan (nashResidual (normalised g) r.Alpha) 1e-6 "bargaining condition"
                Expect.isTrue r.Converged (sprintf "converged to 1e-10 (residual %g after %d iterations)" r.Residual r.Iterations)
                Expect.isLessThanOrEqual r.Iterations 60 "Newton is fast"

        testPropertyWithConfig weightingConfig "degenerate gradients: exact when the hull misses 0, otherwise a reported ridge" <| fun () ->
            forAllVectors (genAnyVectors 8) <| fun vectors ->
                let g = GramMatrix.ofVectors vectors
                if GramMatrix.frobeniusNorm g > 0.0 then
                    let r = NashMtl.solve g
                    let gn = normalised g
                    let k = vectors.Length
                    let ridged = Array2D.init k k (fun i j -> if i = j then gn.[i, j] + r.RidgeUsed else gn.[i, j])
                    Expect.isTrue r.Converged (sprintf "converged (residual %g)" r.Residual)
                    Expect.isLessThan (nashResidual ridged r.Alpha) 1e-6 "bargaining condition of the solved system"
                    Expect.isTrue (r.Alpha |> Array.forall (fun a -> a > 0.0 && Double.IsFinite a)) "alpha > 0 and finite"
                    if r.RidgeUsed > 0.0 then
                        Expect.isLessThan (Mgda.solve gn).SquaredNorm 1e-8 "a ridge only when 0 is (nearly) in the hull"
                    Expect.sequenceEqual r.Weights (Array.map (fun a -> a / float k) r.Alpha) "weights = alpha / k"

        testPropertyWithConfig weightingConfig "alpha does not depend on the scale of G" <| fun () ->
            forAllVectors (genIndependent 6) <| fun vectors ->
                let g = GramMatrix.ofVectors vectors
                let a, b = NashMtl.solve g, NashMtl.solve (Array2D.map (fun x -> 1e6 * x) g)
                Array.iter2 (fun x y -> Expect.isTrue (close 1e-8 x y) (sprintf "%g vs %g" x y)) a.Alpha b.Alpha

        test "k = 1, orthogonal and identical gradients have closed forms" {
            Expect.floatClose Accuracy.veryHigh (NashMtl.solve (array2D [ [ 7.0 ] ])).Alpha.[0] 1.0 "k = 1: alpha = 1"
            let diagonal = NashMtl.solve (array2D [ [ 4.0; 0.0 ]; [ 0.0; 1.0 ] ])
            Expect.floatClose Accuracy.veryHigh diagonal.Alpha.[0] (sqrt (sqrt 17.0 / 4.0)) "orthogonal 1"
            Expect.floatClose Accuracy.veryHigh diagonal.Alpha.[1] (sqrt (sqrt 17.0)) "orthogonal 2"
            // Three identical gradients: |G|_F = 3 |g|^2, alpha_i = 1 / sqrt(k * 1 / 3) = 1.
            let same = NashMtl.solve (Array2D.create 3 3 2.0)
            same.Alpha |> Array.iter (fun a -> Expect.floatClose Accuracy.veryHigh a 1.0 "identical")
            Expect.equal same.RidgeUsed 0.0 "identical gradients need no ridge"
        }

        test "a zero gradient or opposite gradients have no positive solution: the ridge is reported" {
            let zero = NashMtl.solve (array2D [ [ 1.0; 0.0 ]; [ 0.0; 0.0 ] ])
            Expect.equal zero.RidgeUsed NashMtl.defaultOptions.Ridge "zero gradient"
            Expect.isTrue zero.Converged "still converges on the ridged system"
            let opposite = NashMtl.solve (array2D [ [ 1.0; -1.0 ]; [ -1.0; 1.0 ] ])
            Expect.equal opposite.RidgeUsed NashMtl.defaultOptions.Ridge "opposite gradients"
        }
    ]

[<Tests>]
let mgda =
    testList "MGDA" [
        testPropertyWithConfig weightingConfig "the min-norm point beats every point of a simplex grid (k <= 3)" <| fun () ->
            forAllVectors (genAnyVectors 3) <| fun vectors ->
                let g = GramMatrix.ofVectors vectors
                let k = vectors.Length
                let r = Mgda.solve g
                let n = 120
                let gridBest = simplexGrid k n |> List.map (quadratic g) |> List.min
                let scale = maxAbs g
                Expect.isTrue (onSimplex r.Weights) "weights on the simplex"
                Expect.floatClose Accuracy.veryHigh r.SquaredNorm (quadratic g r.Weights) "reported norm"
                Expect.isLessThanOrEqual r.SquaredNorm (gridBest + 1e-12 * scale) "no grid point is better"
                let gap = float k * (2.0 * float k / float n) ** 2.0 * scale
                Expect.isLessThanOrEqual gridBest (r.SquaredNorm + gap) "the grid approaches it"

        testPropertyWithConfig weightingConfig "KKT conditions hold for k <= 10: (G w)_j >= w'Gw for all j" <| fun () ->
            forAllVectors (genAnyVectors 10) <| fun vectors ->
                let g = GramMatrix.ofVectors vectors
                let r = Mgda.solve g
                let gw = DenseLinearAlgebra.multiply g r.Weights
                let scale = max 1e-300 (maxAbs g)
                Expect.isTrue (onSimplex r.Weights) "weights on the simplex"
                gw |> Array.iteri (fun j v ->
                    Expect.isGreaterThanOrEqual v (r.SquaredNorm - 1e-10 * scale) (sprintf "stationarity at vertex %d" j))

        test "edge cases: k = 1, orthogonal, identical and zero gradients" {
            Expect.sequenceEqual (Mgda.solve (array2D [ [ 3.0 ] ])).Weights [| 1.0 |] "k = 1"
            let orthogonal = Mgda.solve (array2D [ [ 4.0; 0.0 ]; [ 0.0; 1.0 ] ])
            Expect.floatClose Accuracy.veryHigh orthogonal.Weights.[0] 0.2 "w_1 = 1/4 / (1/4 + 1)"
            Expect.floatClose Accuracy.veryHigh orthogonal.SquaredNorm 0.8 "norm^2 = 1 / (1/4 + 1)"
            Expect.floatClose Accuracy.veryHigh (Mgda.solve (Array2D.create 3 3 2.0)).SquaredNorm 2.0 "identical"
            let withZero = Mgda.solve (array2D [ [ 1.0; 0.0 ]; [ 0.0; 0.0 ] ])
            Expect.sequenceEqual withZero.Weights [| 0.0; 1.0 |] "all weight on the zero gradient"
        }
    ]

[<Tests>]
let cagrad =
    let c = 0.5
    testList "CAGrad" [
        testPropertyWithConfig weightingConfig "the dual solution beats every point of a simplex grid (k <= 3)" <| fun () ->
            forAllVectors (genAnyVectors 3) <| fun vectors ->
                let g = GramMatrix.ofVectors vectors
                let r = Cagrad.solve g c CagradRescale.None
                let best = simplexGrid vectors.Length 120 |> List.map (Cagrad.dualObjective g c) |> List.min
                let ours = Cagrad.dualObjective g c r.SimplexWeights
                Expect.isTrue (onSimplex r.SimplexWeights) "dual weights on the simplex"
                Expect.isLessThanOrEqual ours (best + 1e-9 * max 1e-300 (maxAbs g)) "no grid point is better"

        testPropertyWithConfig weightingConfig "primal feasibility and zero duality gap on explicit vectors (k <= 6)" <| fun () ->
            forAllVectors (genAnyVectors 6) <| fun vectors ->
                let g = GramMatrix.ofVectors vectors
                let k = vectors.Length
                let r = Cagrad.solve g c CagradRescale.None
                let d = GramMatrix.combine r.Weights vectors
                let g0 = GramMatrix.combine (Array.create k (1.0 / float k)) vectors
                let scale = max 1e-300 (maxAbs g)
                if r.Degenerate then
                    let hull = (Mgda.solve g).SquaredNorm
                    Expect.isTrue (hull <= 1e-8 * scale || dot g0 g0 <= 1e-12 * scale) "degenerate only when 0 is (nearly) in the hull or g0 = 0"
                    Expect.sequenceEqual r.Weights (Array.create k (1.0 / float k)) "falls back to g0"
                else
                    let primal = vectors |> Array.map (dot d) |> Array.min
                    let dual = Cagrad.dualObjective g c r.SimplexWeights
                    Expect.floatClose { absolute = 1e-9 * scale; relative = 1e-7 } (norm (axpy -1.0 g0 d)) (c * norm g0) "d on the ball's boundary"
                    Expect.floatClose { absolute = 1e-8 * scale; relative = 1e-7 } primal dual "primal value = dual value"

        testPropertyWithConfig weightingConfig "rescale modes divide by 1 + c^2 and 1 + c" <| fun () ->
            forAllVectors (genIndependent 5) <| fun vectors ->
                let g = GramMatrix.ofVectors vectors
                let plain = (Cagrad.solve g c CagradRescale.None).Weights
                let squared = (Cagrad.solve g c CagradRescale.OnePlusCSquared).Weights
                let linear = (Cagrad.solve g c CagradRescale.OnePlusC).Weights
                for j in 0 .. plain.Length - 1 do
                    Expect.floatClose Accuracy.veryHigh squared.[j] (plain.[j] / 1.25) "1 + c^2"
                    Expect.floatClose Accuracy.veryHigh linear.[j] (plain.[j] / 1.5) "1 + c"

        test "closed forms: k = 1, orthogonal unit gradients, c = 0" {
            let single = Cagrad.solve (array2D [ [ 2.0 ] ]) c CagradRescale.None
            Expect.floatClose Accuracy.veryHigh single.Weights.[0] 1.5 "k = 1: d = (1 + c) g"
            let orthogonal = Cagrad.solve (array2D [ [ 1.0; 0.0 ]; [ 0.0; 1.0 ] ]) c CagradRescale.None
            orthogonal.Weights |> Array.iter (fun w -> Expect.floatClose Accuracy.veryHigh w 0.75 "d = 1.5 g0")
            let zeroC = Cagrad.solve (array2D [ [ 1.0; 0.2 ]; [ 0.2; 3.0 ] ]) 0.0 CagradRescale.None
            Expect.sequenceEqual zeroC.Weights [| 0.5; 0.5 |] "c = 0 gives the average gradient"
            let opposite = Cagrad.solve (array2D [ [ 1.0; -1.0 ]; [ -1.0; 1.0 ] ]) c CagradRescale.None
            Expect.isTrue opposite.Degenerate "opposite gradients: g0 = 0"
        }
    ]

[<Tests>]
let float32Input =
    testList "float32 Gram matrices" [
        testPropertyWithConfig { weightingConfig with maxTest = 100 } "every solver accepts them and Nash still converges" <| fun () ->
            Prop.forAll (Arb.fromGen genFloat32Gram) <| fun g ->
                let k = Array2D.length1 g
                let nash = NashMtl.solve g
                Expect.isTrue nash.Converged (sprintf "Nash converged (residual %g, ridge %g)" nash.Residual nash.RidgeUsed)
                Expect.isTrue (onSimplexLoose (Mgda.solve g).Weights) "MGDA on the simplex"
                Expect.isTrue ((Cagrad.solve g 0.5 CagradRescale.OnePlusCSquared).Weights |> Array.forall Double.IsFinite) "CAGrad finite"
                Expect.isTrue ((ImtlG.solve g).Weights |> Array.forall Double.IsFinite) "IMTL-G finite"
                Expect.isTrue ((PcGrad.solve g (PcGrad.randomOrders (Random k) k)).Weights |> Array.forall Double.IsFinite) "PCGrad finite"
    ]
