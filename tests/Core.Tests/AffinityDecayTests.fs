module DiffusionFunctional.Core.Tests.AffinityDecayTests

open System
open DiffusionFunctional.Core
open DiffusionFunctional.Core.Tests.Generators
open Expecto
open FsCheck.FSharp

/// Equal, NaN counting as equal to NaN (structural equality on floats treats NaN as unequal to itself).
let sameSpearman (a: SpearmanResult) (b: SpearmanResult) =
    let same (u: float) (v: float) = u = v || (Double.IsNaN u && Double.IsNaN v)
    same a.Rho b.Rho && same a.PValue b.PValue && a.Count = b.Count && a.Method = b.Method

let genCase = gen {
    let! g = Gen.choose (2, 7)
    let! affinity = genSymmetric g
    let! logSnr = Gen.arrayOfLength g (genFinite -8.0 8.0)
    let! bins = Gen.choose (1, 4)
    return affinity, logSnr, bins }

[<Tests>]
let tests =
    testList "Affinity decay curve" [
        test "three groups by hand: bins [0, 1.5) and [1.5, 3], rho -1 with exact p = 2 / 3!" {
            // log-SNR 0, 1, 3: pair gaps (0,1) 1, (0,2) 3, (1,2) 2 with affinities 0.9, 0.1, 0.5.
            let affinity = array2D [ [ 1.0; 0.9; 0.1 ]; [ 0.9; 1.0; 0.5 ]; [ 0.1; 0.5; 1.0 ] ]
            let curve = AffinityDecay.compute affinity [| 0.0; 1.0; 3.0 |] [| 0.0; 1.5; 3.0 |]
            Expect.equal [ for b in curve.Bins -> b.Lower, b.Upper, b.Pairs ] [ 0.0, 1.5, 1; 1.5, 3.0, 2 ] "bins"
            Expect.floatClose Accuracy.veryHigh curve.Bins.[0].MeanAffinity 0.9 "near pairs"
            Expect.floatClose Accuracy.veryHigh curve.Bins.[1].MeanAffinity 0.3 "far pairs: (0.1 + 0.5) / 2"
            Expect.equal curve.Correlation.Rho -1.0 "affinity falls with the gap"
            Expect.floatClose Accuracy.veryHigh curve.Correlation.PValue (1.0 / 3.0) "exact p"
            Expect.equal curve.PairsOutsideBins 0 "all binned"
        }
        test "equal-width edges run from 0 to the widest gap; gaps beyond the last edge are counted outside" {
            Expect.equal (AffinityDecay.equalWidthEdges 2 [| 0.0; 1.0; 4.0 |]) [| 0.0; 2.0; 4.0 |] "edges"
            let affinity = array2D [ [ 1.0; 0.9; 0.1 ]; [ 0.9; 1.0; 0.5 ]; [ 0.1; 0.5; 1.0 ] ]
            let curve = AffinityDecay.compute affinity [| 0.0; 1.0; 3.0 |] [| 0.0; 1.5 |]
            Expect.equal (curve.Bins.Length, curve.PairsOutsideBins, curve.Correlation.Count) (1, 2, 3) "one bin, two outside, three in rho"
            let facade = ReproductionStatistics.AffinityDecay(affinity, [| 0.0; 1.0; 3.0 |], 2)
            Expect.equal facade (AffinityDecay.compute affinity [| 0.0; 1.0; 3.0 |] [| 0.0; 1.5; 3.0 |]) "facade with a bin count"
        }
        testPropertyWithConfig config "bins partition the pairs, their means are the pairs' means, rho is Spearman over the pairs" <| fun () ->
            Prop.forAll (Arb.fromGen genCase) <| fun (affinity, logSnr, bins) ->
                let widest = Array.max logSnr - Array.min logSnr
                if widest > 0.0 then
                    let edges = AffinityDecay.equalWidthEdges bins logSnr
                    let curve = AffinityDecay.compute affinity logSnr edges
                    let g = logSnr.Length
                    let pairs = [ for i in 0 .. g - 1 do for j in i + 1 .. g - 1 -> abs (logSnr.[i] - logSnr.[j]), affinity.[i, j] ]
                    Expect.equal (curve.Bins |> Array.sumBy (fun b -> b.Pairs)) pairs.Length "every pair in one bin"
                    Expect.equal curve.PairsOutsideBins 0 "none outside equal-width bins"
                    for k, bin in Array.indexed curve.Bins do
                        let inside = pairs |> List.filter (fun (gap, _) -> gap >= bin.Lower && (gap < bin.Upper || (k = bins - 1 && gap = bin.Upper)))
                        Expect.equal bin.Pairs inside.Length (sprintf "bin %d count" k)
                        if inside.IsEmpty then Expect.isTrue (Double.IsNaN bin.MeanAffinity) "empty bin"
                        else Expect.isTrue (close 1e-12 bin.MeanAffinity (List.averageBy snd inside)) (sprintf "bin %d mean" k)
                    let expected = RankCorrelation.test (pairs |> List.map fst |> Array.ofList) (pairs |> List.map snd |> Array.ofList)
                    Expect.isTrue (sameSpearman curve.Correlation expected) (sprintf "%A vs %A" curve.Correlation expected)

        test "bad input: size mismatch, non-increasing edges, a single log-SNR value for equal widths" {
            let affinity = array2D [ [ 1.0; 0.5 ]; [ 0.5; 1.0 ] ]
            Expect.throwsT<ArgumentException> (fun () -> AffinityDecay.compute affinity [| 0.0 |] [| 0.0; 1.0 |] |> ignore) "one log-SNR for two groups"
            Expect.throwsT<ArgumentException> (fun () -> AffinityDecay.compute affinity [| 0.0; 1.0 |] [| 1.0; 1.0 |] |> ignore) "edges"
            Expect.throwsT<ArgumentException> (fun () -> AffinityDecay.equalWidthEdges 3 [| 2.0; 2.0 |] |> ignore) "no gap"
        }
    ]
