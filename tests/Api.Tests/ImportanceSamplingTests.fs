/// iDDPM importance sampling: warm-up, probabilities, draws, reweighting, state.
module DiffusionFunctional.Api.Tests.ImportanceSamplingTests

open Expecto
open TorchSharp
open DiffusionFunctional.Timesteps
open DiffusionFunctional.Core
open DiffusionFunctional.Training
open DiffusionFunctional.Weighting
open DiffusionFunctional.Api.Tests.TestSupport
open DiffusionFunctional.Api.Tests.WeightingSupport

let private plan = ClusterPlan.Create(12, [| 0; 4; 12 |], "test k=2")

/// A fixed loss per timestep: L_t = 0.1 + t / 4.
let private lossOf (t: int64) = 0.1 + float t / 4.0

let private feed (s: ImportanceTimesteps) (draw: TimestepDraw) =
    let losses = draw.Timesteps.data<int64>().ToArray() |> Array.map (lossOf >> float32)
    s.Observe(draw, torch.tensor losses)

/// Draws and observes until every timestep has 10 losses.
let private warmUp (s: ImportanceTimesteps) (gen: torch.Generator) =
    let mutable steps = 0
    while not s.WarmedUp do
        use draw = s.Sample(8, plan, gen, torch.CPU)
        feed s draw
        steps <- steps + 1
    steps

[<Tests>]
let tests =
    testList "Importance sampling" [
        test "during warm-up it draws exactly what the stratified sampler draws, and the weights are 1" {
            oneThread ()
            let s = ImportanceTimesteps()
            use g1 = new torch.Generator(5UL)
            use g2 = new torch.Generator(5UL)
            let reference = StratifiedTimesteps()
            for _ in 1 .. 5 do
                use a = s.Sample(8, plan, g1, torch.CPU)
                use b = reference.Sample(8, plan, g2, torch.CPU)
                Expect.sequenceEqual (a.Timesteps.data<int64>().ToArray()) (b.Timesteps.data<int64>().ToArray()) "same draws"
                Expect.sequenceEqual (s.ImportanceWeights(a.Timesteps).data<float>().ToArray()) (Array.create 8 1.0) "unit weights"
                feed s a
            Expect.isFalse s.WarmedUp "5 batches cannot fill 12 x 10 losses"
        }

        test "after warm-up p_t = 0.999 sqrt(E[L_t^2]) / sum + 0.001 / T_c within each cluster, draws follow p, chunks stay in their cluster" {
            oneThread ()
            let s = ImportanceTimesteps()
            use gen = new torch.Generator(9UL)
            warmUp s gen |> ignore
            let p = s.Probabilities plan
            for c in 0 .. 1 do
                let ts = [ plan.Start c .. plan.End c - 1 ]
                let total = ts |> List.sumBy (fun t -> lossOf (int64 t))
                for t in ts do
                    let expected = 0.999 * lossOf (int64 t) / total + 0.001 / float (plan.Size c)
                    Expect.floatClose Accuracy.high p.[t] expected (sprintf "p_%d" t)
            let counts = Array.zeroCreate 12
            for _ in 1 .. 400 do
                use draw = s.Sample(8, plan, gen, torch.CPU)
                let ts = draw.Timesteps.data<int64>().ToArray()
                let cs = draw.Clusters.data<int64>().ToArray()
                for b in 0 .. 7 do
                    Expect.equal (int64 (plan.ClusterOf(int ts.[b]))) cs.[b] "sample in its chunk's cluster"
                    counts.[int ts.[b]] <- counts.[int ts.[b]] + 1
            for t in 0 .. 11 do
                let c = plan.ClusterOf t
                let expected = p.[t] * 1600.0
                Expect.isLessThan (abs (float counts.[t] - expected)) (5.0 * sqrt expected + 5.0) (sprintf "frequency of t = %d" t)
        }

        test "the 1 / (T_c p_t) reweighting makes the expected weighted loss the uniform mean within each cluster" {
            oneThread ()
            let s = ImportanceTimesteps()
            use gen = new torch.Generator(11UL)
            warmUp s gen |> ignore
            use draw = s.Sample(8, plan, gen, torch.CPU)
            let p = s.LastProbabilities
            let all = torch.arange(12L, dtype = torch.int64)
            let w = s.ImportanceWeights(all).data<float>().ToArray()
            for c in 0 .. 1 do
                let ts = [ plan.Start c .. plan.End c - 1 ]
                let expectation = ts |> List.sumBy (fun t -> p.[t] * w.[t] * lossOf (int64 t))
                let uniformMean = (ts |> List.sumBy (fun t -> lossOf (int64 t))) / float ts.Length
                Expect.floatClose Accuracy.high expectation uniformMean (sprintf "cluster %d" c)
        }

        test "the importance weighting applies those weights to the per-sample losses and owns the sampler" {
            let model = tinyMlp 3L
            let data = tinyData 103L 4
            use w = new ImportanceWeighting()
            Expect.isTrue (obj.ReferenceEquals(w.Timesteps, w.Importance)) "the trainer draws with this sampler"
            let s = w.Importance
            use gen = new torch.Generator(3UL)
            let mutable filled = false
            while not s.WarmedUp do
                use draw = s.Sample(12, plan3, gen, torch.CPU)
                s.Observe(draw, torch.rand([| 12L |], generator = gen) + 0.1)
            use draw = s.Sample(12, plan3, gen, torch.CPU)
            let d = { data with Timesteps = draw.Timesteps; Clusters = draw.Clusters }
            let _, applied = appliedUpdate w model d 0L
            let weights = s.ImportanceWeights(draw.Timesteps).data<float>().ToArray()
            let ps = parametersOf model
            zeroGrads ps
            let c = tensorOf(weights |> Array.map (fun x -> x / 12.0)).to_type(torch.float32)
            (perSampleLoss model d * c).sum().backward()
            Expect.isLessThan (relativeError applied (flatGrad ps)) 1e-5 "weighted gradient"
            Expect.isTrue (weights |> Array.exists (fun x -> abs (x - 1.0) > 1e-3)) "weights are not all 1 after warm-up"
        }

        test "the loss history survives a save and load: the restored sampler draws what the original does" {
            oneThread ()
            let s = ImportanceTimesteps()
            use gen = new torch.Generator(13UL)
            warmUp s gen |> ignore
            let bytes =
                use ms = new System.IO.MemoryStream()
                use bw = new System.IO.BinaryWriter(ms)
                s.Save bw
                ms.ToArray()
            let r = ImportanceTimesteps()
            use br = new System.IO.BinaryReader(new System.IO.MemoryStream(bytes))
            r.Load br
            Expect.isTrue r.WarmedUp "restored warm"
            use g1 = new torch.Generator(21UL)
            use g2 = new torch.Generator(21UL)
            use a = s.Sample(8, plan, g1, torch.CPU)
            use b = r.Sample(8, plan, g2, torch.CPU)
            Expect.sequenceEqual (a.Timesteps.data<int64>().ToArray()) (b.Timesteps.data<int64>().ToArray()) "same draws"
        }
    ]
