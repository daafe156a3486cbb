/// Recipes as data (docs/fidelity.md): what the named recipes hold, how changes apply, what a profile becomes, and the
/// margins of the report's verdicts.
module DiffusionFunctional.Experiments.Tests.RecipeTests

open System
open Expecto
open DiffusionFunctional
open DiffusionFunctional.Core
open DiffusionFunctional.Diffusion
open DiffusionFunctional.Experiments.Demo
open DiffusionFunctional.Experiments.Reproduce

let private quick = ReproduceProfile.Named "quick"

let private badInput (f: unit -> 'a) =
    try f () |> ignore; "" with :? BadInputException as e -> e.Message

[<Tests>]
let tests =
    testList "recipes" [
        test "official: cosine, equal timestep clusters, Nash-only clipping, lr 1e-4 constant, EMA 0.9999 from step 0, DDPM 250" {
            let r = Recipe.Parse "official"
            Expect.equal (r.Schedule, r.Objective, r.Clusters, r.Clip) ("squaredcos_cap_v2", "timestep", 5, "nash") "schedule, clusters, clip"
            let p = r.Apply(quick.Convergence, 1000)
            Expect.equal (p.LearningRate, p.WarmupSteps, p.EmaDecay, p.EmaWarmup) (1e-4, 0, 0.9999, false) "optimiser and EMA"
            Expect.equal (p.SamplerKind, p.SamplerSteps, p.SamplerEta) (SamplerKind.Ddim, 250, 1.0) "DDPM over 250 timesteps is DDIM with eta 1"
            Expect.equal r.Methods "vanilla,min-snr,uw:timestep:5,nash:timestep:5" "the four methods on its clusters"
            Expect.isFalse (p.Training(0L, "uw").GradientClipNorm.HasValue) "UW not clipped"
            Expect.equal (p.Training(0L, "nash").GradientClipNorm |> Option.ofNullable) (Some 1.0) "Nash clipped at 1"
            Expect.isNonEmpty r.NotFollowed "says what our models cannot follow"
        }
        test "ours keeps the profile's settings and clips every method" {
            let p = Recipe.Ours.Apply(quick.Convergence, 1000)
            Expect.equal (p.LearningRate, p.WarmupSteps, p.EmaDecay, p.SamplerSteps) (quick.Convergence.LearningRate, quick.Convergence.WarmupSteps, quick.Convergence.EmaDecay, quick.Convergence.SamplerSteps) "profile's"
            for w in [ "vanilla"; "uw"; "nash" ] do
                Expect.equal (p.Training(0L, w).GradientClipNorm |> Option.ofNullable) (Some 1.0) w
        }
        test "ours samples with the profile's sampler (DPM-Solver++(2M), 25 steps); sampler=ddim brings back the earlier runs' DDIM" {
            for profile in [ quick; ReproduceProfile.Named "full" ] do
                let p = Recipe.Ours.Apply(profile.Convergence, 1000)
                Expect.equal (p.SamplerKind, p.SamplerSteps, p.SamplerEta) (SamplerKind.DpmSolver2M, 25, 0.0) profile.Name
                Expect.equal (p.Sampler(0L).Description) "DPM-Solver++(2M), 25 steps" "said so in the report"
            let ddim = (Recipe.Parse "ours:sampler=ddim").Apply(quick.Convergence, 1000)
            Expect.equal (ddim.SamplerKind, ddim.SamplerSteps, ddim.SamplerEta) (SamplerKind.Ddim, 25, 0.0) "DDIM at the profile's steps"
            Expect.equal (ddim.Sampler(0L).Description) "DDIM, 25 steps, eta 0" "described"
            let official = (Recipe.Parse "official").Apply(quick.Convergence, 1000)
            Expect.equal (official.Sampler(0L).Description) "DDPM over 250 evenly spaced timesteps (DDIM with eta 1)" "official described"
            for name in [ "quick"; "full" ] do
                let d = DemoProfile.Named name
                Expect.equal (d.SamplerKind, d.SamplerSteps) (SamplerKind.DpmSolver2M, 25) ("demo " + name)
        }
        test "single changes apply on top of a named recipe, and the sampler is capped at T" {
            let r = Recipe.Parse "official:schedule=linear,clip=all,objective=snr,sampler=ddim:50,ema-warmup=on"
            Expect.equal (r.Schedule, r.Clip, r.Objective, r.Sampler, r.SamplerSteps, r.EmaWarmup) ("linear", "all", "snr", Nullable SamplerKind.Ddim, Nullable 50, true) "changed"
            Expect.equal r.LearningRate (Nullable 1e-4) "the rest stays official"
            Expect.equal ((Recipe.Parse "official").Apply(quick.Convergence, 100).SamplerSteps) 100 "capped at T = 100"
        }
        test "unknown recipes, keys and values are bad input naming them" {
            Expect.stringContains (badInput (fun () -> Recipe.Parse "paper")) "unknown recipe 'paper'" "name"
            Expect.stringContains (badInput (fun () -> Recipe.Parse "ours:speed=2")) "unknown recipe key 'speed'" "key"
            Expect.stringContains (badInput (fun () -> Recipe.Parse "ours:clip=some")) "recipe clip 'some'" "value"
            Expect.stringContains (badInput (fun () -> Recipe.Parse "ours:schedule=wavy")) "recipe schedule" "schedule"
            Expect.stringContains (badInput (fun () -> Recipe.Parse "ours:lr")) "is not key=value" "form"
        }
        test "a longer budget keeps the profile's points and continues at the given spacing; the final checkpoint is kept" {
            let p = quick.WithSteps(12000, 2000).Convergence
            Expect.equal p.Steps 12000 "steps"
            Expect.equal (Array.toList p.EvaluationSteps) [ 250; 500; 1000; 2000; 3000; 4000; 5000; 6000; 7000; 8000; 10000; 12000 ] "points"
            Expect.equal (Array.last p.KeptCheckpoints) 12000 "final kept"
            let shorter = quick.WithSteps(2500).Convergence
            Expect.equal (Array.toList shorter.EvaluationSteps) [ 250; 500; 1000; 2000; 2500 ] "a shorter budget ends at its step"
        }
        test "methods parse +anneal:N into the anneal steps, in their name and folder" {
            let m = DemoMethod.Parse "uw:snr:5+anneal:4000"
            Expect.equal m.Anneal (Nullable 4000L) "steps"
            Expect.equal m.Id "uw-snr-k5+anneal-4000" "folder"
            Expect.equal (string m) "uw:snr:5+anneal:4000" "spec"
            Expect.stringContains (badInput (fun () -> DemoMethod.Parse "uw+anneal:0")) "anneal:N" "zero steps refused"
        }
        test "verdict margins: a change below 1% or an interval over seeds that includes zero is no difference" {
            let summary (changes: float[]) =
                ReproductionStatistics.ComparePaired(changes |> Array.map (fun c -> 100.0 * (1.0 + c / 100.0)), changes |> Array.map (fun _ -> 100.0))
            Expect.stringStarts (ReproduceClaims.NoDifference(summary [| -0.5 |])) "no difference" "0.5% of one seed"
            Expect.stringStarts (ReproduceClaims.NoDifference(summary [| -8.0; 6.0; -4.0 |])) "no difference beyond the seed spread" "interval spans 0"
            Expect.isNull (ReproduceClaims.NoDifference(summary [| -8.0; -9.0; -10.0 |])) "a clear difference"
            Expect.isNull (ReproduceClaims.NoDifference(summary [| -5.0 |])) "one seed, 5%: judged"
        }
    ]
