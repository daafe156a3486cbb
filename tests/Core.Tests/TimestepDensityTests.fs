module DiffusionFunctional.Core.Tests.TimestepDensityTests

open System
open DiffusionFunctional.Core
open DiffusionFunctional.Core.Tests.Generators
open Expecto
open FsCheck.FSharp

type private Normal = MathNet.Numerics.Distributions.Normal
type private ChiSquared = MathNet.Numerics.Distributions.ChiSquared
type private BetaDistribution = MathNet.Numerics.Distributions.Beta

let densityConfig = { config with maxTest = 150 }

let genDensity = Gen.oneof [
    Gen.constant Uniform
    Gen.map2 (fun m s -> LogitNormal(m, s)) (genFinite -2.0 2.0) (genFinite 0.3 2.5)
    Gen.map2 (fun a b -> Beta(a, b)) (genFinite 0.3 6.0) (genFinite 0.3 6.0)
    Gen.map2 (fun k th -> Speed(k, th)) (genFinite 1.0 10.0) (genFinite 0.02 2.0) ]

let genSchedule = gen {
    let! timesteps = Gen.oneof [ Gen.choose (1, 30); Gen.choose (31, 2000) ]
    let! kind = Gen.elements [ Linear; ScaledLinear; SquaredCosCapV2 ]
    return Schedule.create kind timesteps }

let sumsToOne (p: float[]) what =
    Expect.isTrue (p |> Array.forall (fun x -> x >= 0.0)) (sprintf "%s: non-negative" what)
    Expect.floatClose { absolute = 1e-12; relative = 0.0 } (Array.sum p) 1.0 (sprintf "%s: sums to one" what)

/// Pearson's chi-square of observed counts against probabilities, pooling adjacent bins until each expects >= 5.
let chiSquare (probabilities: float[]) (counts: int[]) =
    let total = float (Array.sum counts)
    let pooled = ResizeArray<float * float>()
    let mutable expected, observed = 0.0, 0.0
    for i in 0 .. probabilities.Length - 1 do
        expected <- expected + total * probabilities.[i]
        observed <- observed + float counts.[i]
        if expected >= 5.0 then
            pooled.Add((expected, observed))
            expected <- 0.0
            observed <- 0.0
    if expected > 0.0 || observed > 0.0 then
        let e, o = pooled.[pooled.Count - 1]
        pooled.[pooled.Count - 1] <- (e + expected, o + observed)
    let statistic = pooled |> Seq.sumBy (fun (e, o) -> (o - e) * (o - e) / e)
    statistic, pooled.Count - 1

/// Histogram of n inverse-CDF draws from a seeded System.Random (deterministic for a fixed seed).
let histogram (probabilities: float[]) (draws: int) (seed: int) =
    let sampler = InverseCdfSampler(probabilities)
    let random = Random(seed)
    let counts = Array.zeroCreate probabilities.Length
    for _ in 1 .. draws do
        let i = sampler.Sample(random.NextDouble())
        counts.[i] <- counts.[i] + 1
    counts

let linear200 = Schedule.create Linear 200
let allDefaults = [ Uniform; TimestepDensity.defaultLogitNormal; TimestepDensity.defaultBeta; TimestepDensity.defaultSpeed; LogitNormal(1.0, 0.6); Beta(0.7, 3.0) ]

[<Tests>]
let probabilityVectors =
    testList "timestep density pmf" [
        testPropertyWithConfig densityConfig "every density's pmf has T non-negative entries summing to one" <| fun () ->
            Prop.forAll (Arb.fromGen (Gen.zip genDensity genSchedule)) <| fun (density, schedule) ->
                let p = TimestepDensity.pmf density schedule
                Expect.equal p.Length schedule.Timesteps "one entry per timestep"
                sumsToOne p (TimestepDensity.format density)

        testPropertyWithConfig densityConfig "restriction to a cluster sums to one and keeps the ratios" <| fun () ->
            Prop.forAll (Arb.fromGen (Gen.zip3 genDensity genSchedule (Gen.zip (Gen.choose (0, 10000)) (Gen.choose (1, 10000))))) <| fun (density, schedule, (a, b)) ->
                let timesteps = schedule.Timesteps
                let start = a % timesteps
                let stop = start + 1 + b % (timesteps - start)
                let p = TimestepDensity.pmf density schedule
                let r = TimestepDensity.restrict p start stop
                Expect.equal r.Length (stop - start) "one entry per cluster timestep"
                sumsToOne r "restricted"
                let mass = Array.sum p.[start .. stop - 1]
                r |> Array.iteri (fun i q -> Expect.floatClose Accuracy.high (q * mass) p.[start + i] "proportional to p")

        test "uniform is 1/T; Beta(1, 1) is uniform; logit-normal(0, s) is symmetric in t" {
            let s = Schedule.create Linear 1000
            Expect.allEqual (TimestepDensity.pmf Uniform s) (1.0 / 1000.0) "1/T"
            TimestepDensity.pmf (Beta(1.0, 1.0)) s |> Array.iter (fun p -> Expect.floatClose Accuracy.veryHigh p 1e-3 "Beta(1,1)")
            let ln = TimestepDensity.pmf (LogitNormal(0.0, 1.3)) s
            for t in 0 .. 499 do Expect.floatClose Accuracy.veryHigh ln.[t] ln.[999 - t] (sprintf "bins %d and %d" t (999 - t))
        }

        testPropertyWithConfig densityConfig "bins are exact CDF differences: the first half holds Phi(-m/s) and I_0.5(a, b)" <| fun () ->
            Prop.forAll (Arb.fromGen (Gen.zip3 (genFinite -2.0 2.0) (genFinite 0.3 2.5) (Gen.choose (1, 500)))) <| fun (m, s, half) ->
                let schedule = Schedule.create Linear (2 * half)
                let firstHalf (p: float[]) = Array.sum p.[0 .. half - 1]
                let ln = TimestepDensity.pmf (LogitNormal(m, s)) schedule
                Expect.floatClose Accuracy.high (firstHalf ln) (Normal.CDF(0.0, 1.0, -m / s)) "logit(1/2) = 0"
                let a, b = 0.5 + abs m, 0.5 + s
                let beta = TimestepDensity.pmf (Beta(a, b)) schedule
                Expect.floatClose Accuracy.high (firstHalf beta) (BetaDistribution.CDF(a, b, 0.5)) "Beta CDF at 1/2"

        test "SpeeD on the linear schedule at T = 1000: weight 5 on t < 641, 1 after (numpy's gradient threshold)" {
            // 641 = numpy.argmax(numpy.gradient(sqrt(1 - abar)) < 1e-4) for linspace(1e-4, 0.02, 1000) betas.
            let p = TimestepDensity.pmf TimestepDensity.defaultSpeed (Schedule.create Linear 1000)
            let high, low = p.[0], p.[999]
            Expect.floatClose Accuracy.veryHigh (high / low) 5.0 "ratio k"
            Expect.isTrue (p.[.. 640] |> Array.forall ((=) high)) "acceleration area"
            Expect.isTrue (p.[641 ..] |> Array.forall ((=) low)) "convergence area"
            Expect.floatClose Accuracy.veryHigh high (5.0 / (5.0 * 641.0 + 359.0)) "k / (k tau + T - tau)"
        }

        test "SpeeD's area is a fixed fraction of T on the cosine schedule (the threshold is per unit of t/T)" {
            // The cosine schedule's abar is a function of t/T, so its acceleration area must not move with T;
            // diffusers' linear schedule keeps its beta range at every T and so is a different process per T.
            let areaFraction timesteps =
                let p = TimestepDensity.pmf TimestepDensity.defaultSpeed (Schedule.create SquaredCosCapV2 timesteps)
                float (p |> Array.filter ((=) p.[0]) |> Array.length) / float timesteps
            Expect.floatClose { absolute = 0.01; relative = 0.0 } (areaFraction 250) (areaFraction 1000) "same fraction of T"
            Expect.isTrue (areaFraction 1000 > 0.5 && areaFraction 1000 < 0.99) "both areas are present (about 96% and 4%)"
        }
    ]

[<Tests>]
let sampling =
    testList "inverse-CDF sampling" [
        testPropertyWithConfig densityConfig "evenly spaced draws hit each index round(N p_i) times, up to one, never one without mass" <| fun () ->
            Prop.forAll (Arb.fromGen (Gen.arrayOfLength 12 (Gen.oneof [ Gen.constant 0.0; genFinite 0.0 1.0 ]))) <| fun weights ->
                let weights = if Array.sum weights = 0.0 then Array.append weights [| 1.0 |] else weights
                let p = weights |> Array.map (fun w -> w / Array.sum weights)
                let sampler = InverseCdfSampler(p)
                let n = 20000
                let counts = Array.zeroCreate p.Length
                for j in 0 .. n - 1 do
                    let i = sampler.Sample((float j + 0.5) / float n)
                    counts.[i] <- counts.[i] + 1
                p |> Array.iteri (fun i pi ->
                    if pi = 0.0 then Expect.equal counts.[i] 0 "never drawn"
                    else Expect.isLessThanOrEqual (abs (float counts.[i] - float n * pi)) 1.5 (sprintf "index %d" i))

        test "100k seeded draws pass a chi-square test at significance 0.001, whole range and per cluster" {
            for density in allDefaults do
                let p = TimestepDensity.pmf density linear200
                for start, stop in [ 0, 200; 0, 37; 37, 120; 120, 200 ] do
                    let r = TimestepDensity.restrict p start stop
                    let statistic, dof = chiSquare r (histogram r 100_000 (17 + start))
                    let critical = ChiSquared.InvCDF(float dof, 0.999)
                    Expect.isLessThan statistic critical (sprintf "%s on [%d, %d): chi2 %.1f, dof %d" (TimestepDensity.format density) start stop statistic dof)
        }

        test "the chi-square check rejects uniform draws scored against the logit-normal pmf" {
            let p = TimestepDensity.pmf TimestepDensity.defaultLogitNormal linear200
            let statistic, dof = chiSquare p (histogram (TimestepDensity.pmf Uniform linear200) 100_000 5)
            Expect.isGreaterThan statistic (ChiSquared.InvCDF(float dof, 0.999)) "a wrong density is detected"
        }

        test "bad inputs are rejected" {
            Expect.throwsT<ArgumentException> (fun () -> InverseCdfSampler([| 0.5; 0.4 |]) |> ignore) "does not sum to one"
            Expect.throwsT<ArgumentException> (fun () -> InverseCdfSampler([| 1.5; -0.5 |]) |> ignore) "negative"
            Expect.throwsT<ArgumentException> (fun () -> InverseCdfSampler([| 1.0 |]).Sample 1.0 |> ignore) "u = 1"
            Expect.throwsT<ArgumentException> (fun () -> TimestepDensity.restrict [| 1.0; 0.0 |] 1 2 |> ignore) "cluster without mass"
            Expect.throwsT<ArgumentException> (fun () -> TimestepDensity.restrict [| 1.0; 0.0 |] 1 1 |> ignore) "empty cluster"
            let narrow = TimestepDensity.pmf (LogitNormal(0.0, 0.05)) (Schedule.create Linear 1000)
            Expect.equal narrow.[0] 0.0 "the far tail underflows to zero"
            Expect.throwsT<ArgumentException> (fun () -> TimestepDensity.importanceWeights narrow |> ignore) "no unbiased weights"
            Expect.throwsT<ArgumentException> (fun () -> TimestepDensity.pmf (Beta(0.0, 1.0)) linear200 |> ignore) "a = 0"
        }
    ]

[<Tests>]
let importance =
    testList "importance weights" [
        testPropertyWithConfig densityConfig "sum_t p_t w_t f_t is the uniform mean of f, and E_p[w] = 1" <| fun () ->
            Prop.forAll (Arb.fromGen (Gen.zip genDensity (Gen.choose (1, 400)))) <| fun (density, timesteps) ->
                let p = TimestepDensity.pmf density (Schedule.create Linear timesteps)
                let w = TimestepDensity.importanceWeights p
                let f = Array.init timesteps (fun t -> sin (float t) + float (t % 7))
                let weighted = Array.map3 (fun pt wt ft -> pt * wt * ft) p w f |> Array.sum
                Expect.floatClose Accuracy.high weighted (Array.average f) "uniform mean"
                Expect.floatClose Accuracy.high (Array.map2 (*) p w |> Array.sum) 1.0 "mean weight one"

        test "on 100k draws the weighted mean of f matches the uniform mean within 4 standard errors" {
            // Densities whose smallest bin is not tiny: with logit-normal(0, 1) at T = 200 the end bins have p ~ 6e-8,
            // weights ~ 1e5, and 100k draws neither see them nor estimate the standard error (docs/routing-and-densities.md).
            for density in [ Uniform; TimestepDensity.defaultBeta; TimestepDensity.defaultSpeed; LogitNormal(0.3, 2.5) ] do
                let p = TimestepDensity.pmf density linear200
                let w = TimestepDensity.importanceWeights p
                let f t = 1.0 + float t / 50.0 + cos (float t / 9.0)
                let sampler = InverseCdfSampler(p)
                let random = Random(11)
                let values = Array.init 100_000 (fun _ -> let t = sampler.Sample(random.NextDouble()) in w.[t] * f t)
                let mean = Array.average values
                let se = sqrt ((values |> Array.averageBy (fun v -> (v - mean) * (v - mean))) / float values.Length)
                let uniformMean = Array.init 200 f |> Array.average
                Expect.isLessThan (abs (mean - uniformMean)) (4.0 * se + 1e-12) (sprintf "%s: %g vs %g (se %g)" (TimestepDensity.format density) mean uniformMean se)
        }
    ]

[<Tests>]
let parsing =
    testList "timestep density spec" [
        test "names and defaults" {
            let ok text expected = Expect.equal (TimestepDensity.tryParse text) (Ok expected) text
            ok "uniform" Uniform
            ok " Logit-Normal " (LogitNormal(0.0, 1.0))
            ok "logit_normal:0.5,1.2" (LogitNormal(0.5, 1.2))
            ok "beta" (Beta(2.0, 2.0))
            ok "beta:1.5,1" (Beta(1.5, 1.0))
            ok "speed" (Speed(5.0, 0.1))
            ok "speed:3,0.2" (Speed(3.0, 0.2))
        }

        testPropertyWithConfig densityConfig "format then parse gives the same density" <| fun () ->
            Prop.forAll (Arb.fromGen genDensity) <| fun density ->
                Expect.equal (TimestepDensity.tryParse (TimestepDensity.format density)) (Ok density) "round trip"

        test "errors are one line naming the problem" {
            let error text fragment =
                match TimestepDensity.tryParse text with
                | Ok d -> failtestf "'%s' parsed as %A" text d
                | Error message ->
                    Expect.stringContains message fragment text
                    Expect.isFalse (message.Contains "\n") "one line"
            error "gamma" "unknown timestep density 'gamma'"
            error "logit-normal:1" "logit-normal takes two numbers"
            error "beta:a,b" "beta takes two numbers"
            error "logit-normal:0,0" "scale s must be positive, got 0"
            error "beta:-1,2" "must be positive, got -1,2"
            error "speed:0,0.1" "suppression k must be positive"
            error "speed:5,-1" "threshold must be positive"
            error "uniform:3" "uniform takes no parameters"
            error "" "unknown timestep density"
        }
    ]
