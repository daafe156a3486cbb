/// Each gradient method's update against a direct tensor implementation of its rule, on per-cluster gradients
/// computed independently (one fresh forward and backward per cluster).
module DiffusionFunctional.Api.Tests.GradientWeightingTests

open Expecto
open TorchSharp
open DiffusionFunctional.Core.Weighting
open DiffusionFunctional.Weighting
open DiffusionFunctional.Api.Tests.TestSupport
open DiffusionFunctional.Api.Tests.WeightingSupport

let private setup seed =
    oneThread ()
    let model = tinyMlp seed
    let data = tinyData (seed + 100L) 4
    model, data, directClusterGradients model data

/// Euclidean projection onto the probability simplex (sort-based), float64 tensor [k].
let private projectSimplex (v: torch.Tensor) =
    let k = v.shape.[0]
    let struct (sorted, _) = v.sort(descending = true)
    let cssv = sorted.cumsum(0L) - 1.0
    let ind = torch.arange(1L, k + 1L, dtype = torch.float64)
    let cond = (sorted - cssv / ind).gt(torch.tensor 0.0)
    let rho = cond.nonzero().max().item<int64>()
    let theta = cssv.[rho] / float (rho + 1L)
    (v - theta).clamp_min(0.0)

[<Tests>]
let tests =
    testList "Gradient weightings" [
        test "the gradient buffer's Gram matrix equals g_i . g_j of the direct gradients" {
            let model, data, g = setup 1L
            use w = new MgdaWeighting(3)
            appliedUpdate w model data 0L |> ignore
            let direct = g.matmul(g.t())
            for i in 0 .. 2 do
                for j in 0 .. 2 do
                    Expect.floatClose { absolute = 1e-6; relative = 1e-4 } w.LastGram.[i, j] (direct.[i, j].item<float>()) (sprintf "G[%d,%d]" i j)
        }

        test "pcgrad: update equals a direct tensor projection over the same random orders" {
            for seed in [ 1L; 2L; 3L ] do
                let model, data, g = setup seed
                use w = new PcGradWeighting(3, seed = 42L)
                let _, applied = appliedUpdate w model data 0L
                let orders = PcGrad.randomOrders (SeededRandom 42L) 3
                Expect.equal w.LastOrders orders "the method drew its orders from its own seeded generator"
                let mutable total = torch.zeros_like(g.[0])
                for i in 0 .. 2 do
                    let mutable gi = g.[i].clone()
                    for j in orders.[i] do
                        let gj = g.[j]
                        let dot = gi.dot(gj).item<float>()
                        if dot < 0.0 then gi <- gi - gj * (dot / gj.dot(gj).item<float>())
                    total <- total + gi
                Expect.isLessThan (relativeError applied total) 1e-4 (sprintf "seed %d" seed)
        }

        test "pcgrad projects: the data has conflicting clusters and the update differs from the plain sum" {
            let model, data, g = setup 1L
            let gram = g.matmul(g.t())
            Expect.isLessThan (gram.min().item<float>()) 0.0 "some cluster gradients conflict"
            use w = new PcGradWeighting(3)
            let _, applied = appliedUpdate w model data 0L
            Expect.isGreaterThan (relativeError applied (g.sum(0L))) 1e-3 "projection changed the update"
        }

        test "mgda: update is the min-norm point of the hull (KKT: d . (g_i - d) >= 0 for every i)" {
            for seed in [ 1L; 4L; 5L ] do
                let model, data, g = setup seed
                use w = new MgdaWeighting(3)
                let _, applied = appliedUpdate w model data 0L
                let weights = w.LastWeights
                Expect.isTrue (weights |> Array.forall (fun x -> x >= -1e-12)) "weights are non-negative"
                Expect.floatClose Accuracy.high (Array.sum weights) 1.0 "weights sum to 1"
                Expect.isLessThan (relativeError applied (tensorOf(weights).matmul(g))) 1e-4 "applied = sum_j w_j g_j"
                let d = applied
                let dd = d.dot(d).item<float>()
                for i in 0 .. 2 do
                    let margin = d.dot(g.[i]).item<float>() - dd
                    Expect.isGreaterThanOrEqual margin (-1e-4 * dd) (sprintf "seed %d, cluster %d" seed i)
        }

        test "imtl: update equals the paper's closed form alpha = g_1 U' (D U')^-1 in tensors" {
            for seed in [ 1L; 2L; 6L ] do
                let model, data, g = setup seed
                use w = new ImtlWeighting(3)
                let _, applied = appliedUpdate w model data 0L
                let u = g / g.norm(1, true)
                let dmat = g.[0].unsqueeze(0L) - g.[torch.TensorIndex.Slice(1L)]
                let umat = u.[0].unsqueeze(0L) - u.[torch.TensorIndex.Slice(1L)]
                let rest = g.[0].unsqueeze(0L).matmul(umat.t()).matmul(torch.linalg.inv(dmat.matmul(umat.t()))).squeeze(0L)
                let alpha = torch.cat([| (1.0 - rest.sum()).unsqueeze(0L); rest |], 0L)
                let expected = alpha.matmul(g)
                Expect.isLessThan (relativeError applied expected) 1e-4 (sprintf "seed %d" seed)
                // The defining property: equal projections on every unit gradient.
                let projections = u.matmul(applied)
                Expect.isLessThan ((projections - projections.[0]).abs().max().item<float>()) (1e-4 * projections.abs().max().item<float>()) "equal projections"
        }

        test "cagrad: update equals a direct projected-gradient solve of the dual in tensors (c = 0.5)" {
            for seed in [ 1L; 3L ] do
                let model, data, g = setup seed
                use w = new CagradWeighting(3)
                let _, applied = appliedUpdate w model data 0L
                let c = 0.5
                let g0 = g.mean([| 0L |])
                let radius = c * g0.norm().item<float>()
                let gram = g.matmul(g.t())
                let mutable x = torch.ones([| 3L |], dtype = torch.float64) / 3.0
                let step = 0.5 / gram.abs().sum().item<float>()
                for _ in 1 .. 1500 do
                    let gw = x.matmul(g)
                    // dF/dw = G b + radius * G w / |g_w|
                    let grad = g.matmul(g0) + g.matmul(gw) * (radius / gw.norm().item<float>())
                    x <- projectSimplex (x - grad * step)
                let gw = x.matmul(g)
                let expected = (g0 + gw * (radius / gw.norm().item<float>())) / (1.0 + c * c)
                Expect.isLessThan (relativeError applied expected) 2e-3 (sprintf "seed %d" seed)
        }

        test "nash: solves alpha_i (G alpha / |G|_F)_i = 1 on the direct gradients, updates with sum alpha_i g_i / k, re-solves every N" {
            let model, data, g = setup 2L
            use w = new NashWeighting(3, solveEvery = 3)
            let _, applied = appliedUpdate w model data 0L
            Expect.isTrue w.LastStepSolved "step 0 solves"
            let alpha = tensorOf w.Alpha
            let gram = g.matmul(g.t())
            let normalised = gram / gram.norm().item<float>()
            let condition = alpha * normalised.matmul(alpha)
            Expect.isLessThan ((condition - 1.0).abs().max().item<float>()) 1e-4 "Nash bargaining condition"
            Expect.isLessThan (relativeError applied (alpha.matmul(g) / 3.0)) 1e-4 "update = sum alpha_i g_i / k"
            // Steps 1 and 2 reuse alpha with one backward; step 3 solves again.
            for step in [ 1L; 2L ] do
                let _, reused = appliedUpdate w model data step
                Expect.isFalse w.LastStepSolved (sprintf "step %d reuses alpha" step)
                Expect.isLessThan (relativeError reused (alpha.matmul(g) / 3.0)) 1e-4 (sprintf "step %d update" step)
            appliedUpdate w model data 3L |> ignore
            Expect.isTrue w.LastStepSolved "step 3 solves again"
        }

        test "a method built for k clusters rejects a batch with another k" {
            let model, data, _ = setup 1L
            use w = new MgdaWeighting(2)
            Expect.throwsT<DiffusionFunctional.BadInputException> (fun () -> appliedUpdate w model data 0L |> ignore) "k mismatch"
        }
    ]
