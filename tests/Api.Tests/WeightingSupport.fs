/// A tiny regression model with per-cluster conflicting targets, batches for weightings, and direct per-cluster
/// gradients computed independently of the methods under test.
module DiffusionFunctional.Api.Tests.WeightingSupport

open System.IO
open TorchSharp
open TorchSharp.Modules
open DiffusionFunctional.Core
open DiffusionFunctional.Weighting

/// k = 3 clusters over T = 30 timesteps: [0, 10), [10, 20), [20, 30).
let plan3 = ClusterPlan.Create(30, [| 0; 10; 20; 30 |], "test k=3")

/// A 2-layer MLP (3 -> 6 -> 1), seeded.
let tinyMlp (seed: int64) =
    torch.manual_seed seed |> ignore
    let layer (name: string) (m: torch.nn.Module<torch.Tensor, torch.Tensor>) = (name, m)
    let m = torch.nn.Sequential([| layer "fc1" (torch.nn.Linear(3L, 6L)); layer "act" (torch.nn.Tanh()); layer "fc2" (torch.nn.Linear(6L, 1L)) |])
    m.``to``(torch.float32) |> ignore
    m

/// Fixed inputs, targets whose sign depends on the cluster (so cluster gradients conflict), timesteps, clusters.
type TinyData =
    { X: torch.Tensor; Y: torch.Tensor; Timesteps: torch.Tensor; Clusters: torch.Tensor; Snr: torch.Tensor }

let tinyData (seed: int64) (perCluster: int) =
    use gen = new torch.Generator(uint64 seed)
    let k = plan3.Count
    let n = int64 (k * perCluster)
    let clusters = torch.arange(int64 k, dtype = torch.int64).repeat_interleave(int64 perCluster)
    let timesteps = clusters * 10L + torch.randint(0L, 10L, [| n |], dtype = torch.int64, generator = gen)
    let x = torch.randn([| n; 3L |], generator = gen)
    let direction = torch.tensor([| 1.0f; -1.5f; 0.7f |])
    let signs = torch.tensor([| 1.0f; -1.0f; 0.5f |]).index_select(0L, clusters)
    let y = (x.sum(1L) * signs + direction.index_select(0L, clusters)).unsqueeze(1L)
    let snr = torch.linspace(20.0, 0.01, 30L, dtype = torch.float64).index_select(0L, timesteps)
    { X = x; Y = y; Timesteps = timesteps; Clusters = clusters; Snr = snr }

/// Per-sample squared error [B] with the graph attached.
let perSampleLoss (model: Sequential) (d: TinyData) = (model.forward(d.X) - d.Y).square().flatten(1L).mean([| 1L |])

let batchOf (model: Sequential) (d: TinyData) (step: int64) =
    WeightingBatch(perSampleLoss model d, d.Timesteps, d.Clusters, plan3, step, d.Snr)

let parametersOf (model: Sequential) : Parameter[] = model.parameters() |> Seq.toArray

let zeroGrads (ps: Parameter[]) =
    for p in ps do
        let g = p.grad
        if not (isNull g) then g.zero_() |> ignore

/// The model's current gradient as one float64 vector.
let flatGrad (ps: Parameter[]) =
    torch.cat([| for p in ps -> (if isNull p.grad then torch.zeros_like(p) else p.grad).detach().flatten().to_type(torch.float64) |], 0L)

/// g_i for each cluster, each from its own fresh forward and backward: [k, P] float64.
let directClusterGradients (model: Sequential) (d: TinyData) =
    let ps = parametersOf model
    let rows =
        [| for i in 0 .. plan3.Count - 1 do
            zeroGrads ps
            let mask = d.Clusters.eq(torch.tensor(int64 i))
            let li = (perSampleLoss model d).masked_select(mask).mean()
            li.backward()
            yield flatGrad ps |]
    zeroGrads ps
    torch.stack(rows, 0L)

/// Runs Backward from zeroed gradients and returns (logged loss, resulting flat gradient).
let appliedUpdate (w: IWeighting) (model: Sequential) (d: TinyData) (step: int64) =
    let ps = parametersOf model
    zeroGrads ps
    let loss = w.Backward(batchOf model d step, ps)
    loss, flatGrad ps

let relativeError (a: torch.Tensor) (b: torch.Tensor) =
    (a - b).norm().item<float>() / max 1e-30 (b.norm().item<float>())

let tensorOf (values: float[]) = torch.tensor(values, dtype = torch.float64)

let saveBytes (w: IWeighting) =
    use ms = new MemoryStream()
    use bw = new BinaryWriter(ms)
    w.Save bw
    bw.Flush()
    ms.ToArray()

let load (w: IWeighting) (bytes: byte[]) =
    use ms = new MemoryStream(bytes)
    use br = new BinaryReader(ms)
    w.Load br
