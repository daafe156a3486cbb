/// The examples in the weighting modules' XML docs, checked so that they stay true.
module DiffusionFunctional.Core.Tests.WeightingDocExampleTests

open System
open DiffusionFunctional.Core.Weighting
open Expecto

let closeArrays (expected: float[]) (actual: float[]) what =
    Expect.equal actual.Length expected.Length (what + ": length")
    Array.iter2 (fun e a -> Expect.floatClose Accuracy.veryHigh a e what) expected actual

[<Tests>]
let docExamples =
    testList "weighting doc examples" [
        test "DenseLinearAlgebra" {
            let l = (DenseLinearAlgebra.tryCholesky (array2D [ [ 4.0; 2.0 ]; [ 2.0; 2.0 ] ])).Value
            Expect.equal l (array2D [ [ 2.0; 0.0 ]; [ 1.0; 1.0 ] ]) "tryCholesky"
            Expect.isNone (DenseLinearAlgebra.tryCholesky (array2D [ [ 1.0; 2.0 ]; [ 2.0; 1.0 ] ])) "indefinite: no factor"
            closeArrays [| 1.0; 1.0 |] (DenseLinearAlgebra.choleskySolve l [| 6.0; 4.0 |]) "choleskySolve"
            closeArrays [| 2.0; 3.0 |] (DenseLinearAlgebra.trySolve 1e-12 (array2D [ [ 0.0; 1.0 ]; [ 2.0; 0.0 ] ]) [| 3.0; 4.0 |]).Value "trySolve"
            Expect.isNone (DenseLinearAlgebra.trySolve 1e-12 (array2D [ [ 1.0; 1.0 ]; [ 1.0; 1.0 ] ]) [| 1.0; 1.0 |]) "singular"
            closeArrays [| 1.0; 3.0 |] (fst (DenseLinearAlgebra.symmetricEigen (array2D [ [ 2.0; 1.0 ]; [ 1.0; 2.0 ] ]))) "symmetricEigen"
            closeArrays [| 1.0; 1.0 |] (DenseLinearAlgebra.minNormLeastSquares 1e-10 (array2D [ [ 1.0; 1.0 ]; [ 1.0; 1.0 ] ]) [| 2.0; 2.0 |]) "minNormLeastSquares"
            Expect.equal (DenseLinearAlgebra.multiply (array2D [ [ 1.0; 2.0 ]; [ 3.0; 4.0 ] ]) [| 1.0; 1.0 |]) [| 3.0; 7.0 |] "multiply"
            Expect.equal (DenseLinearAlgebra.quadraticForm (array2D [ [ 2.0; 0.0 ]; [ 0.0; 3.0 ] ]) [| 1.0; 1.0 |]) 5.0 "quadraticForm"
        }

        test "symmetricEigen reconstructs a random symmetric matrix" {
            let rng = Random 3
            for n in 1 .. 8 do
                let cells = Array.init (n * n) (fun _ -> rng.NextDouble() * 2.0 - 1.0)
                let a = Array2D.init n n (fun i j -> cells.[min i j * n + max i j])
                let values, v = DenseLinearAlgebra.symmetricEigen a
                for i in 0 .. n - 1 do
                    for j in 0 .. n - 1 do
                        let rebuilt = Seq.sum (seq { for e in 0 .. n - 1 -> v.[i, e] * values.[e] * v.[j, e] })
                        Expect.floatClose { absolute = 1e-12; relative = 1e-12 } rebuilt a.[i, j] (sprintf "n = %d entry (%d, %d)" n i j)
        }

        test "GramMatrix" {
            let g = array2D [ [ 1.0; 0.5 ]; [ 0.5; 2.0 ] ]
            Expect.equal (GramMatrix.validate g) g "validate"
            Expect.equal (GramMatrix.validatePositiveSemidefinite (Array2D.create 2 2 1.0)) (Array2D.create 2 2 1.0) "validatePositiveSemidefinite"
            Expect.equal (GramMatrix.ofVectors [| [| 1.0; 0.0 |]; [| 1.0; 1.0 |] |]) (array2D [ [ 1.0; 1.0 ]; [ 1.0; 2.0 ] ]) "ofVectors"
            Expect.equal (GramMatrix.combine [| 2.0; 1.0 |] [| [| 1.0; 0.0 |]; [| 0.0; 1.0 |] |]) [| 2.0; 1.0 |] "combine"
            Expect.equal (GramMatrix.frobeniusNorm (array2D [ [ 3.0; 0.0 ]; [ 0.0; 4.0 ] ])) 5.0 "frobeniusNorm"
        }

        test "gradient methods" {
            closeArrays [| 0.5; 0.5 |] (SimplexQp.minNormPoint (array2D [ [ 1.0; 0.0 ]; [ 0.0; 1.0 ] ])).Weights "minNormPoint"
            Expect.floatClose Accuracy.veryHigh (Cagrad.dualObjective (array2D [ [ 1.0; 0.0 ]; [ 0.0; 1.0 ] ]) 0.5 [| 0.5; 0.5 |]) 0.75 "dualObjective"
            closeArrays [| Math.Pow(2.0, 0.25); Math.Pow(2.0, 0.25) |] (NashMtl.solve (array2D [ [ 1.0; 0.0 ]; [ 0.0; 1.0 ] ])).Alpha "Nash on I"
            let pc = PcGrad.solve (array2D [ [ 1.0; -1.0 ]; [ -1.0; 2.0 ] ]) [| [| 1 |]; [| 0 |] |]
            closeArrays [| 2.0; 1.5 |] pc.Weights "PCGrad"
            Expect.equal pc.Coefficients (array2D [ [ 1.0; 0.5 ]; [ 1.0; 1.0 ] ]) "PCGrad coefficients"
            let orders = PcGrad.randomOrders (Random 1) 3
            orders |> Array.iteri (fun i o -> Expect.equal (Array.sort o) (Array.filter ((<>) i) [| 0; 1; 2 |]) "randomOrders: the other tasks")
        }

        test "loss weights" {
            Expect.equal (MinSnr.epsilonWeight 10.0 5.0) 0.5 "Min-SNR eps above gamma"
            Expect.equal (MinSnr.epsilonWeight 2.0 5.0) 1.0 "Min-SNR eps below gamma"
            Expect.floatClose Accuracy.veryHigh (MinSnr.vWeight 4.0 5.0) 0.8 "Min-SNR v"
            Expect.equal (P2.weight 3.0 1.0 0.5) 0.5 "P2"
            Expect.equal (Uncertainty.loss [| 0.0; 0.0 |] [| 2.0; 4.0 |]) 1.5 "UW loss"
            Expect.equal (Uncertainty.gradient [| 0.0 |] [| 3.0 |]) [| -1.0 |] "UW gradient"
            Expect.equal (Uncertainty.lossWeights [| 0.0; 0.0 |]) [| 0.25; 0.25 |] "UW loss weights"
            Expect.equal (Uncertainty.optimalLogVariances [| 2.0; 2.0 |]) [| 0.0; 0.0 |] "UW optimum"
            Array.iter2 (fun e a -> Expect.floatClose { absolute = 1e-8; relative = 0.0 } a e "FAMO weights (eps = 1e-8)")
                [| 0.75; 0.25 |] (Famo.lossWeights [| 0.0; 0.0 |] [| 1.0; 3.0 |] [| 0.0; 0.0 |])
            Expect.floatClose Accuracy.veryHigh (Famo.objective [| 0.0 |] [| 1.0 |] [| 0.0 |]) (log (1.0 + 1e-8) * (1.0 + 1e-8)) "FAMO objective"
            Expect.equal (Famo.logitGradient [| 0.0; 0.0 |] [| 1.0; 1.0 |] [| 1.0; 1.0 |] [| 0.0; 0.0 |]) [| 0.0; 0.0 |] "FAMO no change"
            Expect.equal (GradNorm.weightGradient [| 1.0; 1.0 |] [| 2.0; 1.0 |] [| 1.0; 1.0 |] [| 1.0; 1.0 |] 1.5) [| 2.0; -1.0 |] "GradNorm"
        }
    ]
