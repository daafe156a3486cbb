module DiffusionFunctional.Core.Tests.TaskRoutingTests

open System
open DiffusionFunctional.Core
open DiffusionFunctional.Core.Tests.Generators
open Expecto
open FsCheck.FSharp

/// T, C, share (with floor(share * C) >= 1) and sharpness, sometimes the DTR defaults.
let genRouting = gen {
    let! timesteps = Gen.oneof [ Gen.choose (1, 40); Gen.choose (2, 1200) ]
    let! channels = Gen.oneof [ Gen.choose (1, 16); Gen.choose (17, 320) ]
    let! share = Gen.oneof [ Gen.constant TaskRouting.DefaultShare; genFinite 0.01 1.0 ]
    let share = max share (min 1.0 ((1.0 + 1e-9) / float channels))
    let! sharpness = Gen.oneof [ Gen.constant TaskRouting.DefaultSharpness; genFinite 0.25 8.0 ]
    return timesteps, channels, share, sharpness }

let genRoutingWithTimestep = gen {
    let! (timesteps, _, _, _) as settings = genRouting
    let! t = Gen.choose (0, timesteps - 1)
    return settings, t }

let routingConfig = { config with maxTest = 300 }

[<Tests>]
let maskShape =
    testList "DTR mask shape" [
        testPropertyWithConfig routingConfig "the active count is floor(share * C), so the active fraction lies in (share - 1/C, share]" <| fun () ->
            Prop.forAll (Arb.fromGen genRoutingWithTimestep) <| fun ((timesteps, channels, share, sharpness), t) ->
                let mask = TaskRouting.mask t timesteps channels share sharpness
                let active = mask |> Array.filter id |> Array.length
                Expect.equal active (int (Math.Floor(share * float channels))) "floor(share * C) channels"
                let fraction = float active / float channels
                Expect.isTrue (fraction <= share && fraction > share - 1.0 / float channels) (sprintf "fraction %g vs share %g" fraction share)

        testPropertyWithConfig routingConfig "the active channels are one contiguous window inside [0, C)" <| fun () ->
            Prop.forAll (Arb.fromGen genRoutingWithTimestep) <| fun ((timesteps, channels, share, sharpness), t) ->
                let w = TaskRouting.window t timesteps channels share sharpness
                Expect.isTrue (w.Start >= 0 && w.End <= channels) "inside the channels"
                let expected = Array.init channels (fun c -> c >= w.Start && c < w.End)
                Expect.equal (TaskRouting.mask t timesteps channels share sharpness) expected "mask = window"
                let values = TaskRouting.maskValues t timesteps channels share sharpness
                Expect.equal values (expected |> Array.map (fun on -> if on then 1.0 else 0.0)) "0/1 values"

        testPropertyWithConfig routingConfig "t = 0 and t = T - 1 are the windows at the two ends" <| fun () ->
            Prop.forAll (Arb.fromGen genRouting) <| fun (timesteps, channels, share, sharpness) ->
                let width = int (Math.Floor(share * float channels))
                let first = TaskRouting.window 0 timesteps channels share sharpness
                let last = TaskRouting.window (timesteps - 1) timesteps channels share sharpness
                Expect.equal (first.Start, first.Width) (0, width) "t = 0 starts at channel 0"
                let lastStart = if timesteps = 1 then 0 else channels - width
                Expect.equal (last.Start, last.End) (lastStart, lastStart + width) "t = T - 1 ends at channel C"

        testPropertyWithConfig routingConfig "the table's row t is the mask of t" <| fun () ->
            Prop.forAll (Arb.fromGen genRouting) <| fun (timesteps, channels, share, sharpness) ->
                let timesteps = min timesteps 60
                let table = TaskRouting.table timesteps channels share sharpness
                Expect.equal table.Length (timesteps * channels) "T x C entries"
                for t in 0 .. timesteps - 1 do
                    let row = table.[t * channels .. (t + 1) * channels - 1] |> Array.map float
                    Expect.equal row (TaskRouting.maskValues t timesteps channels share sharpness) (sprintf "row %d" t)

        test "windows agree with the reference formula evaluated in numpy" {
            // Starts at t = 0, 1, T/4, T/2, 3T/4, T-2, T-1 from numpy: round(linspace(0, 1, T)**alpha * (C - int(C*beta))),
            // evaluated independently while writing this test.
            let cases =
                [ (1000, 64, 0.8, 4.0), [ 0; 0; 0; 1; 4; 13; 13 ]
                  (1000, 128, 0.8, 4.0), [ 0; 0; 0; 2; 8; 26; 26 ]
                  (50, 10, 0.5, 2.0), [ 0; 0; 0; 1; 3; 5; 5 ] ]
            for (timesteps, channels, share, sharpness), expected in cases do
                let ts = [ 0; 1; timesteps / 4; timesteps / 2; 3 * timesteps / 4; timesteps - 2; timesteps - 1 ]
                let starts = ts |> List.map (fun t -> (TaskRouting.window t timesteps channels share sharpness).Start)
                Expect.equal starts expected (sprintf "T=%d C=%d" timesteps channels)
        }
    ]

[<Tests>]
let overlaps =
    testList "DTR mask overlap" [
        testPropertyWithConfig routingConfig "overlap counts the channels both masks activate" <| fun () ->
            Prop.forAll (Arb.fromGen (Gen.zip genRoutingWithTimestep (Gen.choose (0, 1_000_000)))) <| fun (((timesteps, channels, share, sharpness), t1), r) ->
                let t2 = r % timesteps
                let a = TaskRouting.mask t1 timesteps channels share sharpness
                let b = TaskRouting.mask t2 timesteps channels share sharpness
                let both = Array.map2 (&&) a b |> Array.filter id |> Array.length
                Expect.equal (TaskRouting.overlap t1 t2 timesteps channels share sharpness) both "brute-force intersection"

        testPropertyWithConfig routingConfig "the overlap never grows as t2 moves away from t1 (windows slide one way)" <| fun () ->
            Prop.forAll (Arb.fromGen genRoutingWithTimestep) <| fun ((timesteps, channels, share, sharpness), t1) ->
                let timesteps = min timesteps 300
                let t1 = min t1 (timesteps - 1)
                let o t2 = TaskRouting.overlap t1 t2 timesteps channels share sharpness
                for t2 in t1 .. timesteps - 2 do
                    Expect.isLessThanOrEqual (o (t2 + 1)) (o t2) (sprintf "later: t1=%d t2=%d" t1 t2)
                for t2 in t1 .. -1 .. 1 do
                    Expect.isLessThanOrEqual (o (t2 - 1)) (o t2) (sprintf "earlier: t1=%d t2=%d" t1 t2)
                let starts = [| for t in 0 .. timesteps - 1 -> (TaskRouting.window t timesteps channels share sharpness).Start |]
                Expect.isTrue (starts |> Array.pairwise |> Array.forall (fun (x, y) -> x <= y)) "starts never decrease"

        testPropertyWithConfig routingConfig "adjacent timesteps share all but at most K alpha/(T-1) + 1 channels (alpha >= 1)" <| fun () ->
            Prop.forAll (Arb.fromGen genRoutingWithTimestep) <| fun ((timesteps, channels, share, sharpness), t) ->
                let sharpness = max 1.0 sharpness
                if timesteps >= 2 then
                    let t = min t (timesteps - 2)
                    let width = int (Math.Floor(share * float channels))
                    let slack = float (channels - width) * sharpness / float (timesteps - 1) + 1.0
                    let o = TaskRouting.overlap t (t + 1) timesteps channels share sharpness
                    Expect.isTrue (float o >= float width - slack) (sprintf "overlap %d of %d, slack %g" o width slack)

        test "with the defaults at T = 1000 adjacent masks of 128 channels share at least 101 of 102, the ends share none" {
            let o t1 t2 = TaskRouting.overlap t1 t2 1000 128 TaskRouting.DefaultShare TaskRouting.DefaultSharpness
            for t in 0 .. 998 do Expect.isGreaterThanOrEqual (o t (t + 1)) 101 (sprintf "t = %d" t)
            Expect.equal (o 0 0) 102 "a mask with itself"
            Expect.equal (o 0 999) 76 "102 - 26: the window slid by C - C_beta = 26"
            Expect.isLessThan (o 0 999) (o 0 500) "distant tasks share fewer channels than nearer ones"
        }
    ]

[<Tests>]
let routingValidation =
    testList "DTR settings validation" [
        test "bad settings are rejected with ArgumentException" {
            let bad f what = Expect.throwsT<ArgumentException> (fun () -> f () |> ignore) what
            bad (fun () -> TaskRouting.window 0 10 8 0.0 4.0) "share 0"
            bad (fun () -> TaskRouting.window 0 10 8 1.5 4.0) "share > 1"
            bad (fun () -> TaskRouting.window 0 10 8 nan 4.0) "share NaN"
            bad (fun () -> TaskRouting.window 0 10 8 0.8 0.0) "sharpness 0"
            bad (fun () -> TaskRouting.window 0 10 8 0.8 infinity) "sharpness infinite"
            bad (fun () -> TaskRouting.window 0 0 8 0.8 4.0) "T = 0"
            bad (fun () -> TaskRouting.window 0 10 0 0.8 4.0) "C = 0"
            bad (fun () -> TaskRouting.window 10 10 8 0.8 4.0) "t = T"
            bad (fun () -> TaskRouting.window -1 10 8 0.8 4.0) "t < 0"
            bad (fun () -> TaskRouting.table 10 4 0.2 4.0) "floor(0.2 * 4) = 0 active channels"
            bad (fun () -> TaskRouting.activeChannels 4 0.2) "activeChannels with no channel"
        }

        test "the message names the value" {
            let e = Expect.throwsC (fun () -> TaskRouting.window 0 10 8 1.5 4.0 |> ignore) id
            Expect.stringContains e.Message "routing share must lie in (0, 1], got 1.5" "message"
        }
    ]
