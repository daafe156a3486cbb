module DiffusionFunctional.Experiments.Tests.DemoTests

open System
open System.IO
open Expecto
open DiffusionFunctional
open DiffusionFunctional.Experiments.Demo
open DiffusionFunctional.Models
open DiffusionFunctional.Api.Tests.TestSupport

let private profile = (DemoProfile.Named "smoke").WithBudget(300, [| 100; 200; 300 |])

let private methods = DemoMethod.ParseList "vanilla,min-snr,uw:snr:5"

let private point methodId seed step fd =
    DemoRecord(methodId, seed, step, fd, 0.5, 0.5, 0.2, 10.0)

[<Tests>]
let tests =
    testList "Demo" [
        test "method specs: defaults, explicit objective and k, ids" {
            let uw = DemoMethod.Parse "uw"
            Expect.equal (uw.Weighting, uw.Objective, uw.Clusters) ("uw", "snr", 5) "multi-task methods default to log-SNR k = 5"
            Expect.equal uw.Id "uw-snr-k5" "id"
            let minSnr = DemoMethod.Parse "min-snr"
            Expect.equal (minSnr.Objective, minSnr.Clusters) (null, 1) "loss weightings default to one cluster"
            let pc = DemoMethod.Parse " PCGrad:timestep:3 "
            Expect.equal (pc.ToString()) "pcgrad:timestep:3" "normalised spec"
            Expect.equal (pc.Plan("linear", 1000).Boundaries) [| 0; 333; 666; 1000 |] "timestep objective: equal widths"
            let snr = (DemoMethod.Parse "uw:snr:5").Plan("linear", 1000)
            Expect.equal snr.Count 5 "five log-SNR clusters"
            Expect.equal ((DemoMethod.Parse "vanilla").Plan("linear", 1000).Count) 1 "vanilla: one cluster"
        }

        test "routing and density modifiers combine with any weighting, in lists with commas inside densities" {
            let methods = DemoMethod.ParseList "uw:snr:5+dtr,vanilla+logit-normal:0,1,min-snr+beta:2,2+dtr,vanilla"
            Expect.equal [ for m in methods -> m.ToString() ] [ "uw:snr:5+dtr"; "vanilla+logit-normal:0,1"; "min-snr+dtr+beta:2,2"; "vanilla" ] "parsed in order"
            let uw = methods.[0]
            Expect.equal (uw.Routing, uw.Density, uw.Clusters) ("dtr", null, 5) "uw with routing"
            Expect.equal uw.Id "uw-snr-k5+dtr" "id"
            Expect.equal methods.[1].Id "vanilla+logit-normal-0-1" "a folder-safe id"
            Expect.equal (uw.Model(UNetConfig.Named "tiny", 1000).Routing) TaskRoutingKind.Dtr "the method's network routes"
            Expect.equal (methods.[3].Model(UNetConfig.Named "tiny", 1000).Routing) TaskRoutingKind.None "vanilla does not"
            for spec, mention in [ "vanilla+nope", "nope"; "uw+dtr+dtr", "dtr"; "vanilla+beta:0,1", "beta" ] do
                let message =
                    try DemoMethod.Parse spec |> ignore; failtestf "%s was accepted" spec
                    with :? BadInputException as e -> e.Message
                Expect.stringContains message mention spec
        }

        test "bad specs are BadInputException naming the problem" {
            for spec, mention in [ "nope", "nope"; "uw:bogus", "bogus"; "uw:snr:x", "x"; "uw:snr:0", "0"; "uw:snr:5:1", "too many" ] do
                let message =
                    try DemoMethod.Parse spec |> ignore; failtestf "%s was accepted" spec
                    with :? BadInputException as e -> e.Message
                Expect.stringContains message mention spec
            Expect.throwsT<BadInputException> (fun () -> DemoMethod.ParseList "uw,uw:snr:5" |> ignore) "same id twice"
            Expect.throwsT<BadInputException> (fun () -> DemoMethod.ParseList " , " |> ignore) "empty list"
        }

        test "summary: final FD, change vs vanilla and steps to reach vanilla's final FD" {
            let records = [ point "vanilla" 0L 100L 300.0; point "vanilla" 0L 200L 200.0; point "vanilla" 0L 300L 150.0
                            point "min-snr" 0L 100L 310.0; point "min-snr" 0L 200L 210.0; point "min-snr" 0L 300L 160.0
                            point "uw-snr-k5" 0L 100L 250.0; point "uw-snr-k5" 0L 200L 140.0; point "uw-snr-k5" 0L 300L 120.0 ]
            let s = DemoReport.Summarise(records, methods, profile, 1)
            Expect.isTrue s.Complete "complete"
            Expect.equal s.ComparedStep 300L "compares at the final step"
            let byId = s.Methods |> Seq.map (fun m -> m.Id, m) |> Map.ofSeq
            Expect.equal byId.["uw-snr-k5"].StepsToReachBaseline (Nullable 200L) "UW beats vanilla's 150 at step 200"
            Expect.equal byId.["vanilla"].StepsToReachBaseline (Nullable 300L) "vanilla reaches itself at the end"
            Expect.isFalse byId.["min-snr"].StepsToReachBaseline.HasValue "min-snr never gets to 150"
            Expect.floatClose Accuracy.veryHigh byId.["uw-snr-k5"].FinalFdChangePercent -20.0 "120 vs 150 is -20%"
            Expect.equal (DemoReport.StepsToReach(byId.["uw-snr-k5"], s)) "200 (1.5x fewer)" "cell text"
            Expect.equal (DemoReport.StepsToReach(byId.["vanilla"], s)) "300 (baseline)" "baseline cell"
            Expect.equal (DemoReport.StepsToReach(byId.["min-snr"], s)) "not reached" "never reached"
        }

        test "summary over seeds: mean and sample standard deviation; a diverged seed is counted, not averaged" {
            let records = [ for seed, fd in [ 0L, 100.0; 1L, 140.0 ] do
                              for step in [ 100L; 200L; 300L ] do yield point "vanilla" seed step (fd + float (300L - step))
                            yield! [ point "min-snr" 0L 300L 90.0; point "min-snr" 1L 300L 110.0; point "uw-snr-k5" 0L 300L 80.0
                                     DemoRecord("uw-snr-k5", 1L, 150L, nan, nan, nan, nan, 0.0, true) ] ]
            let s = DemoReport.Summarise(records, methods, profile, 2)
            Expect.isTrue s.Complete "a diverged run is finished"
            let vanilla = s.Methods |> Seq.find (fun m -> m.Id = "vanilla")
            Expect.floatClose Accuracy.veryHigh vanilla.FinalFdMean 120.0 "mean of 100 and 140"
            Expect.floatClose Accuracy.veryHigh vanilla.FinalFdStd (sqrt 800.0) "sample std of 100 and 140"
            let uw = s.Methods |> Seq.find (fun m -> m.Id = "uw-snr-k5")
            Expect.equal (List.ofSeq uw.DivergedSeeds) [ 1L ] "seed 1 diverged"
            Expect.equal uw.FinalSeeds 1 "one seed finished"
            Expect.equal (DiffusionFunctional.Experiments.SeedSpread.MeanStd(120.0, sqrt 800.0, 2)) "120.0 ± 28.3" "mean ± std text"
            let spread = DiffusionFunctional.Experiments.SeedSpread.Std
            Expect.floatClose Accuracy.veryHigh (spread [ 100.0; nan; 140.0 ]) (sqrt 800.0) "a non-finite seed is left out"
            Expect.equal (spread [ 100.0; infinity ]) 0.0 "one finite seed has no spread"
        }

        test "an unfinished demo compares at the last step every method reached" {
            let records = [ point "vanilla" 0L 100L 300.0; point "vanilla" 0L 200L 200.0
                            point "min-snr" 0L 100L 310.0; point "min-snr" 0L 200L 190.0
                            point "uw-snr-k5" 0L 100L 250.0 ]
            let s = DemoReport.Summarise(records, methods, profile, 1)
            Expect.isFalse s.Complete "not complete"
            Expect.equal s.ComparedStep 100L "UW has only step 100"
            let vanilla = s.Methods |> Seq.find (fun m -> m.Id = "vanilla")
            Expect.floatClose Accuracy.veryHigh vanilla.FinalFdMean 300.0 "vanilla at step 100"
        }

        test "with a second seed under way, the comparison waits for every seed" {
            let records = [ for m in [ "vanilla"; "min-snr"; "uw-snr-k5" ] do
                              for step in [ 100L; 200L; 300L ] do yield point m 0L step (float (1000L - step))
                            yield! [ point "vanilla" 1L 100L 950.0; point "min-snr" 1L 100L 900.0; point "uw-snr-k5" 1L 100L 800.0
                                     point "vanilla" 1L 200L 700.0 ] ]
            let s = DemoReport.Summarise(records, methods, profile, 2)
            Expect.isFalse s.Complete "seed 1 unfinished"
            Expect.equal s.ComparedStep 100L "the last step every method reached with both seeds"
            let vanilla = s.Methods |> Seq.find (fun m -> m.Id = "vanilla")
            Expect.equal vanilla.FinalSeeds 2 "both seeds in the headline"
            Expect.floatClose Accuracy.veryHigh vanilla.FinalFdMean 925.0 "mean of 900 and 950"
        }

        test "result store: atomic rewrite, replace on the same key, unreadable lines skipped" {
            let dir, cleanup = tempDir "demo-store"
            use _ = cleanup
            let path = Path.Combine(dir, "results.jsonl")
            let store = DemoResultStore(path)
            store.Add(point "vanilla" 0L 100L 300.0)
            store.Add(point "vanilla" 0L 200L 200.0)
            store.Add(point "vanilla" 0L 100L 299.0)
            store.Add(DemoRecord("uw-snr-k5", 0L, 150L, nan, nan, nan, nan, 0.0, true))
            File.AppendAllText(path, "{ not json\n")
            let reread = DemoResultStore(path)
            Expect.equal reread.Records.Count 3 "three records, the broken line ignored"
            Expect.equal (reread.Find("vanilla", 0L, 100L).Fd) 299.0 "replaced"
            Expect.isNotNull (reread.Divergence("uw-snr-k5", 0L)) "divergence kept (NaN round-trips)"
            Expect.isTrue (Double.IsNaN (reread.Divergence("uw-snr-k5", 0L).Fd)) "NaN FD"
            Expect.isEmpty (Directory.GetFiles(dir, "*.tmp")) "no temporary file left"
        }

        test "EMA warm-up: average of recent weights early, the configured decay later" {
            let decay steps = DiffusionFunctional.Training.ExponentialMovingAverage.WarmupDecay(0.995, steps)
            Expect.floatClose Accuracy.veryHigh (decay 0L) 0.1 "first update keeps 90% of the live weights"
            Expect.floatClose Accuracy.veryHigh (decay 90L) (91.0 / 100.0) "(1 + t) / (10 + t)"
            Expect.equal (decay 5000L) 0.995 "capped at the configured decay"
            let values = [ for t in 0L .. 3000L -> decay t ]
            Expect.isTrue (List.pairwise values |> List.forall (fun (a, b) -> b >= a)) "never decreases"
            // Weight of the initial network in the average after n updates: prod of the decays, tiny even at n = 200.
            let initialShare = [ 0L .. 199L ] |> List.fold (fun acc t -> acc * decay t) 1.0
            Expect.isLessThan initialShare 1e-3 "the random initial weights are forgotten early"
        }

        test "profiles validate; unknown profile is BadInputException" {
            for name in DemoProfile.Names do (DemoProfile.Named name).Validate()
            Expect.throwsT<BadInputException> (fun () -> DemoProfile.Named "huge" |> ignore) "unknown"
            Expect.throwsT<BadInputException> (fun () -> profile.WithBudget(300, [| 100; 200 |]).Validate()) "last point must be the final step"
        }
    ]
