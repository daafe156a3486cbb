module DiffusionFunctional.Core.Tests.TaskAffinityTests

open DiffusionFunctional.Core
open DiffusionFunctional.Core.Tests.Generators
open Expecto
open FsCheck.FSharp

let private genVectors = gen {
    let! k = Gen.choose (1, 6)
    let! d = Gen.choose (1, 8)
    return! Gen.arrayOfLength k (Gen.arrayOfLength d (genFinite -5.0 5.0)) }

let private dot (a: float[]) (b: float[]) = Array.fold2 (fun s x y -> s + x * y) 0.0 a b

[<Tests>]
let tests =
    testList "Task affinity statistics" [
        testPropertyWithConfig config "cosines from the Gram matrix equal direct vector cosines" <| fun () ->
            Prop.forAll (Arb.fromGen genVectors) <| fun vs ->
                let k = vs.Length
                let c = TaskAffinity.cosines (Array2D.init k k (fun i j -> dot vs.[i] vs.[j]))
                for i in 0 .. k - 1 do
                    for j in 0 .. k - 1 do
                        let ni, nj = sqrt (dot vs.[i] vs.[i]), sqrt (dot vs.[j] vs.[j])
                        let expected = if i = j then 1.0 elif ni = 0.0 || nj = 0.0 then 0.0 else dot vs.[i] vs.[j] / (ni * nj)
                        Expect.isTrue (close 1e-9 c.[i, j] expected) (sprintf "cos(%d,%d)" i j)

        testPropertyWithConfig config "Spearman is +1 / -1 for monotone relations and symmetric" <| fun () ->
            let cases = Gen.choose (2, 30) |> Gen.bind (fun n -> Gen.arrayOfLength n (genFinite -10.0 10.0))
            Prop.forAll (Arb.fromGen cases) <| fun x ->
                if (Array.distinct x).Length = x.Length then
                    Expect.floatClose Accuracy.high (TaskAffinity.spearman x (x |> Array.map (fun v -> v * v * v))) 1.0 "increasing"
                    Expect.floatClose Accuracy.high (TaskAffinity.spearman x (x |> Array.map (fun v -> -exp v))) -1.0 "decreasing"
                let y = Array.rev x
                let a, b = TaskAffinity.spearman x y, TaskAffinity.spearman y x
                Expect.isTrue ((System.Double.IsNaN a && System.Double.IsNaN b) || close 1e-12 a b) "symmetric"

        test "ranks average ties" {
            Expect.equal (TaskAffinity.ranks [| 10.0; 20.0; 20.0; 5.0 |]) [| 2.0; 3.5; 3.5; 1.0 |] "average ranks"
        }

        test "affinity that decays with the log-SNR gap has negative rho" {
            let s = Schedule.create Linear 100
            let lg = TaskAffinity.groupLogSnr s 10
            let a = Array2D.init 10 10 (fun i j -> exp (-abs (lg.[i] - lg.[j])))
            let pairs, rho = TaskAffinity.versusLogSnrGap a lg
            Expect.equal pairs.Length 45 "pairs i < j"
            Expect.floatClose Accuracy.high rho -1.0 "perfectly decreasing"
        }

        test "average of checkpoints is element-wise" {
            let m = TaskAffinity.average [ array2D [ [ 1.0; 0.0 ]; [ 0.0; 1.0 ] ]; array2D [ [ 1.0; 0.5 ]; [ 0.5; 1.0 ] ] ]
            Expect.equal m (array2D [ [ 1.0; 0.25 ]; [ 0.25; 1.0 ] ]) "mean"
        }
    ]
