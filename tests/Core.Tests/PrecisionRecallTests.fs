module DiffusionFunctional.Core.Tests.PrecisionRecallTests

open System
open DiffusionFunctional.Core
open DiffusionFunctional.Core.Tests.Generators
open Expecto
open FsCheck.FSharp

/// Integer coordinates (with many repeats): every squared distance is exact, so ties on a ball's edge are real ties.
let genPoints minRows = gen {
    let! n = Gen.choose (minRows, minRows + 9)
    let! d = Gen.choose (1, 3)
    let! cells = Gen.arrayOfLength (n * d) (Gen.choose (-4, 4) |> Gen.map float)
    return Array2D.init n d (fun i j -> cells.[i * d + j]) }

let rows (a: float[,]) = [ for i in 0 .. Array2D.length1 a - 1 -> [ for j in 0 .. Array2D.length2 a - 1 -> a.[i, j] ] ]
let euclid (a: float list) (b: float list) = sqrt (List.sum (List.map2 (fun x y -> (x - y) ** 2.0) a b))

/// The paper's definition, written naively: the k-NN radius of each manifold point, then membership of each query.
let naiveCoverage k (manifold: float[,]) (queries: float[,]) =
    let m = rows manifold
    let radii = m |> List.mapi (fun i p -> m |> List.indexed |> List.filter (fun (j, _) -> j <> i) |> List.map (snd >> euclid p) |> List.sort |> List.item (k - 1))
    let inside q = List.exists2 (fun p r -> euclid q p <= r) m radii
    let qs = rows queries
    float (qs |> List.filter inside |> List.length) / float qs.Length

let points (coordinates: float list list) = array2D coordinates

[<Tests>]
let properties =
    testList "Precision and recall properties" [
        testPropertyWithConfig config "precision and recall equal the naive k-NN manifold definition" <| fun () ->
            let genCase = gen {
                let! k = Gen.choose (1, 4)
                let! real = genPoints (k + 1)
                let! fake = genPoints (k + 1)
                return k, real, fake }
            Prop.forAll (Arb.fromGen genCase) <| fun (k, real, fake) ->
                if Array2D.length2 real = Array2D.length2 fake then
                    let result = PrecisionRecall.compute k real fake
                    Expect.equal result.Precision (naiveCoverage k real fake) "precision"
                    Expect.equal result.Recall (naiveCoverage k fake real) "recall"

        testPropertyWithConfig config "a set compared with itself has precision 1 and recall 1" <| fun () ->
            Prop.forAll (Arb.fromGen (genPoints 4)) <| fun x ->
                let result = PrecisionRecall.compute 3 x x
                Expect.equal (result.Precision, result.Recall) (1.0, 1.0) "self"
    ]

[<Tests>]
let examples =
    testList "Precision and recall examples" [
        test "k-NN radii on a line: rows 0, 1, 3 with k = 1 give 1, 1, 2; with k = 2 give 3, 2, 3" {
            let x = points [ [ 0.0 ]; [ 1.0 ]; [ 3.0 ] ]
            Expect.equal (PrecisionRecall.kthNeighbourRadii 1 x) [| 1.0; 1.0; 2.0 |] "k = 1"
            Expect.equal (PrecisionRecall.kthNeighbourRadii 2 x) [| 3.0; 2.0; 3.0 |] "k = 2"
        }
        test "coverage counts a query on the ball's edge as inside" {
            let manifold = points [ [ 0.0; 0.0 ]; [ 10.0; 0.0 ] ]
            Expect.equal (PrecisionRecall.coverage manifold [| 1.0; 1.0 |] (points [ [ 0.0; 1.0 ]; [ 10.0; 0.0 ]; [ 5.0; 0.0 ] ])) (2.0 / 3.0) "two of three"
        }
        test "generated set = real set plus a far cluster of equal size: precision 1/2, recall 1" {
            let real = points [ for i in 0 .. 9 -> [ float (i % 4); float (i / 4) ] ]
            let far = points [ for i in 0 .. 9 -> [ 1000.0 + float (i % 4); float (i / 4) ] ]
            let fake = Array2D.init 20 2 (fun i j -> if i < 10 then real.[i, j] else far.[i - 10, j])
            let result = PrecisionRecall.compute 3 real fake
            Expect.equal result.Precision 0.5 "half the generated samples are off the real manifold"
            Expect.equal result.Recall 1.0 "every real sample is covered"
        }
        test "mode collapse: generated samples all at one real point give precision 1, recall low" {
            let real = points [ for i in 0 .. 19 -> [ float i; 0.0 ] ]
            let fake = points [ for _ in 0 .. 9 -> [ 0.0; 0.0 ] ]
            let result = PrecisionRecall.compute 3 real fake
            Expect.equal result.Precision 1.0 "every generated sample is a real one"
            Expect.equal result.Recall (1.0 / 20.0) "only the collapsed point is recalled"
        }
        test "disjoint sets have precision 0 and recall 0" {
            let real = points [ for i in 0 .. 5 -> [ float i ] ]
            let fake = points [ for i in 0 .. 5 -> [ 100.0 + float i ] ]
            let result = PrecisionRecall.compute 3 real fake
            Expect.equal (result.Precision, result.Recall) (0.0, 0.0) "disjoint"
        }
        test "too few rows for k and mismatched dimensions are rejected" {
            Expect.throwsT<ArgumentException> (fun () -> PrecisionRecall.compute 3 (points [ [ 0.0 ]; [ 1.0 ]; [ 2.0 ] ]) (points [ for i in 0 .. 5 -> [ float i ] ]) |> ignore) "k = 3 with 3 rows"
            Expect.throwsT<ArgumentException> (fun () -> PrecisionRecall.compute 1 (points [ [ 0.0 ]; [ 1.0 ] ]) (points [ [ 0.0; 0.0 ]; [ 1.0; 1.0 ] ]) |> ignore) "dimensions"
        }
    ]
