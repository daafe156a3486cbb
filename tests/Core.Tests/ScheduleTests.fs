module DiffusionFunctional.Core.Tests.ScheduleTests

open System
open DiffusionFunctional.Core
open DiffusionFunctional.Core.Tests.Generators
open Expecto
open FsCheck.FSharp

// References computed independently with 50-digit decimal arithmetic (Python's decimal module),
// from the definitions in the schedules as diffusers names and defines them (docs/clustering.md).
let references =
    [ Linear, [ 0, 9.21024036697585; 499, -2.461698715810472; 999, -10.117673183301033 ]
      ScaledLinear, [ 0, 7.069423847025073; 999, -5.364047700298502 ]
      SquaredCosCapV2, [ 0, 10.094988811457432; 500, -0.030861759490443817; 999, -19.83588215162398 ]
      Sigmoid, [ 0, 8.810038796446117; 999, -10.1345777294424 ] ]

[<Tests>]
let tests =
    testList "Schedule" [
        for kind, points in references do
            test (sprintf "%s log-SNR matches high-precision references" (Schedule.name kind)) {
                let s = Schedule.create kind 1000
                for t, expected in points do
                    Expect.floatClose { absolute = 1e-9; relative = 1e-10 } s.LogSnr.[t] expected (sprintf "ln SNR(%d)" t)
            }

        test "linear betas are linspace(1e-4, 0.02, T)" {
            let s = Schedule.create Linear 1000
            Expect.equal s.Betas.[0] 1e-4 "first beta"
            Expect.equal s.Betas.[999] 0.02 "last beta"
            Expect.floatClose Accuracy.veryHigh s.Betas.[500] (1e-4 + (0.02 - 1e-4) * 500.0 / 999.0) "middle beta"
        }

        test "squaredcos_cap_v2 caps beta at 0.999" {
            let s = Schedule.create SquaredCosCapV2 1000
            Expect.equal s.Betas.[999] 0.999 "the last beta is capped"
            Expect.isTrue (s.Betas |> Array.forall (fun b -> b > 0.0 && b <= 0.999)) "betas in (0, 0.999]"
        }

        test "T = 1 gives the first value of every linspace" {
            Expect.equal (Schedule.betas Linear 1) [| 1e-4 |] "linear"
            Expect.floatClose Accuracy.veryHigh (Schedule.betas Sigmoid 1).[0] (1.0 / (1.0 + exp 6.0) * (0.02 - 1e-4) + 1e-4) "sigmoid"
        }

        test "bad inputs are reported, not thrown past the API" {
            Expect.isError (Schedule.tryCreate "linear" 0) "T = 0"
            Expect.isError (Schedule.tryCreate "quadratic" 10) "unknown name"
            Expect.isError (Schedule.tryCreateCustom [| 0.1; 1.0 |]) "beta = 1"
            Expect.isError (Schedule.tryCreateCustom [| 0.1; nan |]) "NaN beta"
            Expect.isError (Schedule.tryCreateCustom [||]) "no betas"
            Expect.throwsT<ArgumentException> (fun () -> Schedule.create Linear -3 |> ignore) "create throws on T < 1"
        }

        test "names parse case-insensitively and round-trip" {
            for name in Schedule.knownNames do
                match Schedule.tryParseKind (name.ToUpperInvariant()) with
                | Ok kind -> Expect.equal (Schedule.name kind) name "round trip"
                | Error e -> failtest e
        }

        testPropertyWithConfig config "custom schedules: abar, SNR and log-SNR agree with their definitions" <| fun () ->
            Prop.forAll (Gen.choose (1, 60) |> Gen.bind genBetas |> Arb.fromGen) <| fun betas ->
                let s = Schedule.create (CustomBetas betas) betas.Length
                let mutable abar = 1.0
                for t in 0 .. betas.Length - 1 do
                    abar <- abar * (1.0 - betas.[t])
                    Expect.floatClose Accuracy.high s.AlphasCumprod.[t] abar "alphas_cumprod"
                    Expect.floatClose Accuracy.high s.Snr.[t] (abar / (1.0 - abar)) "SNR"
                    Expect.floatClose Accuracy.high s.LogSnr.[t] (log (abar / (1.0 - abar))) "log-SNR"
                    Expect.floatClose Accuracy.veryHigh s.Alphas.[t] (1.0 - betas.[t]) "alphas"

        testPropertyWithConfig config "log-SNR strictly decreases for every named schedule" <| fun () ->
            let cases = Gen.zip (Gen.elements [ Linear; ScaledLinear; SquaredCosCapV2; Sigmoid ]) (Gen.choose (2, 3000))
            Prop.forAll (Arb.fromGen cases) <| fun (kind, t) ->
                let s = Schedule.create kind t
                Expect.isTrue (s.LogSnr |> Array.pairwise |> Array.forall (fun (a, b) -> b < a)) "strictly decreasing"
    ]
