/// The reproduce report's statistics and verdicts, from records whose answers are known.
module DiffusionFunctional.Experiments.Tests.ReproduceAnalysisTests

open System
open System.IO
open Expecto
open DiffusionFunctional.Experiments.Demo
open DiffusionFunctional.Experiments.Reproduce
open DiffusionFunctional.Api.Tests.TestSupport

let private profile = ReproduceProfile.Named "quick"
let private steps = profile.Convergence.EvaluationSteps

/// Records of one method: FD = scale * a falling curve that flattens at 50, per seed with a little seed noise.
let private curve (id: string) (scale: float) (seeds: int) =
    [ for seed in 0 .. seeds - 1 do
        for step in steps ->
            let fd = scale * (50.0 + 400.0 * exp (-float step / 1000.0)) * (1.0 + 0.01 * float seed)
            DemoRecord(id, int64 seed, int64 step, fd, 0.5, 0.5, 0.1, 1.0, Kid = fd / 100.0, KidStandardError = 0.01, Samples = 250) ]

let private summarise (records: DemoRecord list) seeds =
    let dir, clean = tempDir "reproduce-analysis"
    use _ = clean
    let options = ReproduceOptions(profile, seeds, dir)
    let methods = options.Methods
    let demo = DemoReport.Summarise(records |> Array.ofList, methods, profile.Convergence, seeds)
    ReproduceAnalysis.Summarise(options, demo, records |> Array.ofList, ReproduceStore(Path.Combine(dir, "measurements.json")))

let private verdict (s: ReproduceSummary) (startsWith: string) =
    (s.Claims |> Seq.find (fun c -> c.Claim.StartsWith startsWith)).Verdict

[<Tests>]
let tests =
    testList "Reproduce analysis" [
        test "a run stopped after one evaluation point summarises without failing, every claim 'not measured yet' where nothing is" {
            let records = [ DemoRecord("vanilla", 0L, 250L, 700.0, 0.0, 0.1, 0.3, 176.0, Kid = 19.0, Samples = 250) ]
            let s = summarise records 1
            Expect.isFalse s.Complete "incomplete"
            Expect.equal (verdict s "O1") "not measured yet" "no affinity yet"
            Expect.equal (verdict s "uw:snr:5 trains") "not measured yet" "no ANT-UW point yet"
        }

        test "ANT-UW 25% lower on 3 seeds is reproduced with an interval; Nash 5% higher is not; speed-up from log-linear interpolation" {
            let records = curve "vanilla" 1.0 3 @ curve "min-snr" 1.0 3 @ curve "uw-snr-k5" 0.75 3 @ curve "nash-snr-k5" 1.05 3
            let s = summarise records 3
            let uw = s.Methods |> Seq.find (fun m -> m.Id = "uw-snr-k5")
            Expect.floatClose Accuracy.medium uw.FdVersusVanilla.MeanRelativeChangePercent -25.0 "25% lower"
            Expect.isTrue uw.FdVersusVanilla.HasInterval "three seeds give an interval"
            Expect.stringStarts (verdict s "uw:snr:5 trains") "reproduced" "clearly better"
            Expect.stringStarts (verdict s "nash:snr:5 trains") "not reproduced" "not better"
            // Vanilla's final FD (about 50.7 per seed) is reached by ANT-UW's curve 0.75 * (50 + 400 e^(-s/1000)) well before 8000.
            Expect.equal uw.StepsToVanillaSummary.Reached 3 "every seed reaches vanilla's final FD"
            Expect.isLessThan uw.StepsToVanillaSummary.Mean 8000.0 "sooner than vanilla"
            Expect.isTrue s.Plateau.Held "vanilla's curve flattens at 50: the last three points lie within 5%"
        }

        test "the plateau is judged on points scored with one sample count: a final point with more samples (a lower, less biased FD) is left out" {
            let final = int64 profile.Convergence.Steps
            let moreSamples (r: DemoRecord) =
                if r.Step = final then DemoRecord(r.Method, r.Seed, r.Step, r.Fd * 0.6, 0.5, 0.5, 0.1, 1.0, Kid = r.Kid, KidStandardError = 0.01, Samples = 1000) else r
            let records = (curve "vanilla" 1.0 1 |> List.map moreSamples) @ curve "min-snr" 1.0 1 @ curve "uw-snr-k5" 0.9 1 @ curve "nash-snr-k5" 0.9 1
            let s = summarise records 1
            Expect.isTrue s.Plateau.Held "the 250-sample points at 5000, 6000, 7000 lie within 5% (50 + 400 e^(-s/1000))"
            let steep = records |> List.map (fun r -> if r.Method = "vanilla" && r.Step = 7000L then DemoRecord(r.Method, r.Seed, r.Step, r.Fd * 0.8, 0.5, 0.5, 0.1, 1.0, Kid = r.Kid, Samples = 250) else r)
            Expect.isFalse (summarise steep 1).Plateau.Held "a 20% drop between 250-sample points is no plateau"
            // With the FD of its first 250 images the final point joins the check: a 20% drop there is no plateau.
            let withFirst fraction =
                records |> List.map (fun r ->
                    if r.Step = final then DemoRecord(r.Method, r.Seed, r.Step, r.Fd, 0.5, 0.5, 0.1, 1.0, Kid = r.Kid, Samples = 1000, FdOfFirst = r.Fd / 0.6 * fraction) else r)
            Expect.isTrue (summarise (withFirst 1.0) 1).Plateau.Held "the final point on the curve's count lies on the flat curve"
            Expect.isFalse (summarise (withFirst 0.8) 1).Plateau.Held "its 20% drop on the curve's count is no plateau"
        }

        test "steps to vanilla's final FD compare points of one sample count: the target is the final point's FD on its first images" {
            let final = int64 profile.Convergence.Steps
            // The final point scored on 1,000 images sits 40% lower than the same model on the curve's 250 (FD's bias);
            // the record also carries the FD of its first 250 images, which lies on the curve.
            let moreSamples (r: DemoRecord) =
                if r.Step = final then DemoRecord(r.Method, r.Seed, r.Step, r.Fd * 0.6, 0.5, 0.5, 0.1, 1.0, Kid = r.Kid, KidStandardError = 0.01, Samples = 1000, FdOfFirst = r.Fd) else r
            let records = [ for id, scale in [ "vanilla", 1.0; "min-snr", 1.0; "uw-snr-k5", 0.97; "nash-snr-k5", 1.1 ] do yield! curve id scale 1 ] |> List.map moreSamples
            let s = summarise records 1
            let vanillaFinal = records |> List.find (fun r -> r.Method = "vanilla" && r.Step = final)
            let uw = s.Methods |> Seq.find (fun m -> m.Id = "uw-snr-k5")
            Expect.equal s.Methods[0].FinalFdOnCurveSamples[0] vanillaFinal.FdOfFirst "vanilla's target is its final FD on the first 250"
            // 0.97 (50 + 400 e^(-s/1000)) = 50 + 400 e^(-8) first near s = 1000 ln(400 / 1.68) = 5470, between the 5000 and 6000 points
            Expect.equal uw.StepsToVanillaSummary.Reached 1 "reached on the 250-sample curve"
            Expect.isGreaterThan uw.StepsToVanillaFinal[0] 5000.0 "not before the bracketing points"
            Expect.isLessThan uw.StepsToVanillaFinal[0] 6000.0 "log-linear between 5000 and 6000"
            Expect.isTrue (Double.IsNaN (s.Methods |> Seq.find (fun m -> m.Id = "nash-snr-k5")).StepsToVanillaFinal[0]) "10% worse never reaches it"
            // Were the target the 1,000-sample final FD (40% lower), no 250-sample point could ever get there.
            let lowered = records |> List.map (fun r -> if r.Method = "vanilla" && r.Step = final then DemoRecord(r.Method, r.Seed, r.Step, r.Fd, 0.5, 0.5, 0.1, 1.0, Kid = r.Kid, Samples = 1000, FdOfFirst = r.Fd) else r)
            Expect.equal ((summarise lowered 1).Methods |> Seq.find (fun m -> m.Id = "uw-snr-k5")).StepsToVanillaSummary.Reached 0 "a target 40% lower is out of reach"
        }

        test "one seed: no interval, and the verdict says so" {
            let records = curve "vanilla" 1.0 1 @ curve "min-snr" 1.0 1 @ curve "uw-snr-k5" 0.95 1 @ curve "nash-snr-k5" 0.8 1
            let s = summarise records 1
            Expect.stringContains (verdict s "uw:snr:5 trains") "one seed" "no interval with one seed"
            Expect.stringStarts (verdict s "uw:snr:5 trains") "partly" "5% lower is partly"
            Expect.stringStarts (verdict s "nash:snr:5 trains") "reproduced" "20% lower is reproduced"
        }
    ]
