module DiffusionFunctional.Api.Tests.TaskRoutingTests

open System.IO
open System.Text.Json
open System.Text.Json.Nodes
open Expecto
open TorchSharp
open DiffusionFunctional
open DiffusionFunctional.Core
open DiffusionFunctional.Interop
open DiffusionFunctional.Models
open DiffusionFunctional.Api.Tests.TestSupport

/// The tiny UNet's shape with DTR at the given share (8 base channels: share 0.5 leaves 4 active).
let routedTiny share =
    UNetConfig(ImageSize = 8, BaseChannels = 8, ChannelMultipliers = [| 1; 2 |], AttentionLevels = [| 1 |], NormGroups = 4,
               Routing = TaskRoutingKind.Dtr, RoutingShare = share)

/// Moves every weight off its (partly zero) initial value so residual branches matter.
let perturb (net: torch.nn.Module) (seed: int64) =
    torch.manual_seed seed |> ignore
    use _ = torch.no_grad()
    for p in net.parameters() do p.add_(torch.randn_like(p) * 0.1f) |> ignore

/// The Core mask of timestep t over `channels` for a config, as booleans.
let coreMask (config: DenoiserConfig) (t: int) (channels: int) =
    TaskRouting.mask t config.RoutingTimesteps channels config.RoutingShare config.RoutingSharpness

let conv1Widths (net: UNet) =
    net.state_dict() |> Seq.filter (fun kv -> kv.Key.EndsWith "conv1.weight") |> Seq.map (fun kv -> int kv.Value.shape.[1]) |> Seq.distinct |> Seq.sort |> List.ofSeq

[<Tests>]
let masks =
    testList "DTR in the UNet: masks" [
        test "one table per distinct residual-block input width, rows equal to Core's masks" {
            use net = new UNet(routedTiny 0.5)
            let router = net.Router
            Expect.isNotNull router "routing on"
            Expect.equal (List.ofSeq router.Widths) (conv1Widths net) "the widths of the blocks' inputs"
            use _scope = torch.NewDisposeScope()
            let ts = [| 0; 1; 400; 998; 999 |]
            let batch = router.ForBatch(torch.tensor(ts |> Array.map int64))
            for width in router.Widths do
                let rows = batch.For(width)
                Expect.sequenceEqual rows.shape [| int64 ts.Length; int64 width |] "[B, C]"
                let values = floats rows
                ts |> Array.iteri (fun b t ->
                    let expected = coreMask net.Config t width |> Array.map (fun on -> if on then 1.0f else 0.0f)
                    Expect.equal values.[b * width .. (b + 1) * width - 1] expected (sprintf "width %d, t = %d" width t))
        }

        test "masked channels are exactly zero and the others untouched, per sample's timestep" {
            use net = new UNet(routedTiny 0.5)
            use _scope = torch.NewDisposeScope()
            let ts = [| 0L; 500L; 999L |]
            let batch = net.Router.ForBatch(torch.tensor ts)
            let x = torch.randn([| 3L; 24L; 4L; 4L |]) + 5.0f
            let routed = batch.Apply(x)
            for b in 0 .. 2 do
                let mask = coreMask net.Config (int ts.[b]) 24
                for c in 0 .. 23 do
                    let got = floats (routed.[int64 b, int64 c])
                    if mask.[c] then Expect.equal got (floats (x.[int64 b, int64 c])) (sprintf "sample %d channel %d kept" b c)
                    else Expect.isTrue (got |> Array.forall ((=) 0.0f)) (sprintf "sample %d channel %d zero" b c)
        }

        test "a timestep outside [0, T) is bad input" {
            use net = new UNet(routedTiny 0.5)
            use x = torch.randn([| 1L; 1L; 8L; 8L |])
            Expect.throwsT<BadInputException> (fun () -> net.forward(x, torch.tensor([| 1000L |])) |> ignore) "t = T"
            Expect.throwsT<BadInputException> (fun () -> net.forward(x, torch.tensor([| -1L |])) |> ignore) "t < 0"
        }

        test "bad routing settings are bad input when the network is built" {
            let bad (config: UNetConfig) what = Expect.throwsT<BadInputException> (fun () -> (new UNet(config)).Dispose()) what
            bad (routedTiny 0.0) "share 0"
            bad (routedTiny 1.5) "share above 1"
            bad (routedTiny 0.1) "floor(0.1 * 8) = 0 channels"
            bad (UNetConfig(Routing = TaskRoutingKind.Dtr, RoutingSharpness = -1.0)) "negative sharpness"
            bad (UNetConfig(Routing = TaskRoutingKind.Dtr, RoutingTimesteps = 0)) "no timesteps"
        }
    ]

[<Tests>]
let blocks =
    testList "DTR in the UNet: residual blocks" [
        test "the residual branch ignores the masked input channels; the skip carries them" {
            oneThread ()
            torch.manual_seed 5L |> ignore
            use block = new ResBlock(8, 8, 32, 0.0, 4)
            perturb block 6L
            use router = new TaskRouter(1000, 0.5, 4.0, [ 8 ])
            use _scope = torch.NewDisposeScope()
            let ts = [| 0; 999 |]
            let batch = router.ForBatch(torch.tensor(ts |> Array.map int64))
            let x = torch.randn([| 2L; 8L; 4L; 4L |])
            let emb = torch.randn([| 2L; 32L |])
            let outsideValues = ts |> Array.collect (fun t -> TaskRouting.mask t 1000 8 0.5 4.0 |> Array.map (fun on -> if on then 0.0f else 1.0f))
            let outside = torch.tensor(outsideValues).reshape(2L, 8L, 1L, 1L)
            let nudged = x + outside * torch.randn_like(x)
            let before, after = block.forward(x, emb, batch), block.forward(nudged, emb, batch)
            let keep = 1.0f - outside
            Expect.equal (maxAbsDiff (before * keep) (after * keep)) 0.0 "active channels bit-identical"
            Expect.isGreaterThan (maxAbsDiff (before * outside) (after * outside)) 1e-3 "masked channels pass through the skip"
            // Control: without routing the nudge reaches the active channels through the branch.
            let plain, plainNudged = block.forward(x, emb), block.forward(nudged, emb)
            Expect.isGreaterThan (maxAbsDiff (plain * keep) (plainNudged * keep)) 1e-4 "unrouted block mixes channels"
        }

        test "gradients: masked input channels get only the skip's gradient; every weight gets a finite one" {
            oneThread ()
            torch.manual_seed 8L |> ignore
            use block = new ResBlock(8, 8, 32, 0.0, 4)
            perturb block 9L
            use router = new TaskRouter(1000, 0.5, 4.0, [ 8 ])
            use _scope = torch.NewDisposeScope()
            let x = torch.randn([| 2L; 8L; 4L; 4L |]).requires_grad_(true)
            let r = torch.randn([| 2L; 8L; 4L; 4L |])
            (block.forward(x, torch.randn([| 2L; 32L |]), router.ForBatch(torch.tensor([| 999L; 999L |]))) * r).sum().backward()
            let mask = TaskRouting.mask 999 1000 8 0.5 4.0
            for c in 0 .. 7 do
                let g, skip = x.grad.[torch.TensorIndex.Colon, torch.TensorIndex.Single(int64 c)], r.[torch.TensorIndex.Colon, torch.TensorIndex.Single(int64 c)]
                if mask.[c] then Expect.isGreaterThan (maxAbsDiff g skip) 1e-6 (sprintf "channel %d feeds the branch" c)
                else Expect.equal (maxAbsDiff g skip) 0.0 (sprintf "channel %d reaches the output through the skip only" c)

            torch.manual_seed 10L |> ignore
            use net = new UNet(routedTiny 0.5)
            perturb net 11L
            net.zero_grad()
            (net.forward(torch.randn([| 3L; 1L; 8L; 8L |]), torch.tensor([| 0L; 500L; 999L |])).square().sum()).backward()
            for struct (name, p) in net.named_parameters() do
                Expect.isFalse (isNull p.grad) (sprintf "%s has a gradient" name)
                Expect.isTrue (floats p.grad |> Array.forall System.Single.IsFinite) (sprintf "%s finite" name)
                Expect.isGreaterThan (float (p.grad.abs().sum().item<float32>())) 0.0 (sprintf "%s non-zero" name)
        }
    ]

[<Tests>]
let network =
    testList "DTR in the UNet: network" [
        test "routing builds the same weights from a seed and changes the outputs; off is deterministic" {
            oneThread ()
            let build (config: UNetConfig) =
                torch.manual_seed 3L |> ignore
                let net = new UNet(config)
                perturb net 4L
                net
            use off = build tinyConfig
            use offAgain = build tinyConfig
            use on = build (routedTiny TaskRouting.DefaultShare)
            for KeyValue(name, w) in off.state_dict() do
                Expect.equal (maxAbsDiff w (on.state_dict().[name])) 0.0 (sprintf "%s identical" name)
            use x = torch.randn([| 3L; 1L; 8L; 8L |])
            use t = torch.tensor([| 2L; 300L; 900L |])
            use yOff = off.forward(x, t)
            Expect.equal (maxAbsDiff yOff (offAgain.forward(x, t))) 0.0 "off: same seed, bit-identical output"
            Expect.isGreaterThan (maxAbsDiff yOff (on.forward(x, t))) 1e-4 "routing changes the output"
        }

        test "share 1 activates every channel: the routed path equals the plain one bit for bit" {
            oneThread ()
            torch.manual_seed 12L |> ignore
            use off = new UNet(tinyConfig)
            perturb off 13L
            use full = new UNet(routedTiny 1.0)
            full.load_state_dict(off.state_dict()) |> ignore
            use x = torch.randn([| 2L; 1L; 8L; 8L |])
            use t = torch.tensor([| 10L; 990L |])
            Expect.equal (maxAbsDiff (off.forward(x, t)) (full.forward(x, t))) 0.0 "x * 1 = x"
        }

        test "the masks are not weights: same state_dict keys, and exported weights load into a plain UNet" {
            oneThread ()
            let dir, clean = tempDir "dtr-export"
            use _ = clean
            torch.manual_seed 14L |> ignore
            use routed = new UNet(routedTiny 0.5)
            perturb routed 15L
            use plain = new UNet(tinyConfig)
            Expect.equal (Set.ofSeq (routed.state_dict().Keys)) (Set.ofSeq (plain.state_dict().Keys)) "same keys"
            Expect.isEmpty (routed.buffers() |> List.ofSeq) "no buffers"
            let path = Path.Combine(dir, "unet.pt")
            PyTorchWeights.Export(routed, path)
            PyTorchWeights.Import(plain, path)
            use again = new UNet(routedTiny 0.5)
            PyTorchWeights.Import(again, path)
            use x = torch.randn([| 2L; 1L; 8L; 8L |])
            use t = torch.tensor([| 50L; 950L |])
            use y = routed.forward(x, t)
            Expect.equal (maxAbsDiff y (again.forward(x, t))) 0.0 "weights + routing settings reproduce the outputs"
            Expect.isGreaterThan (maxAbsDiff y (plain.forward(x, t))) 1e-4 "the plain network lacks the masks"
        }

        test "masks take the activations' element type" {
            use net = new UNet(routedTiny 0.5)
            use _scope = torch.NewDisposeScope()
            let batch = net.Router.ForBatch(torch.tensor([| 1L; 2L |]), torch.ScalarType.Float64)
            let x = torch.randn([| 2L; 8L; 3L; 3L |], dtype = torch.ScalarType.Float64)
            Expect.equal (batch.Apply(x).dtype) torch.ScalarType.Float64 "float64 stays float64"
        }

        test "the config's JSON carries routing, and JSON without it (older checkpoints) means none" {
            let config = routedTiny 0.6
            let json = JsonSerializer.Serialize config
            Expect.stringContains json "\"Routing\":\"dtr\"" "routing by name"
            let back = JsonSerializer.Deserialize<UNetConfig> json
            Expect.equal (back.Routing, back.RoutingShare, back.RoutingSharpness, back.RoutingTimesteps) (TaskRoutingKind.Dtr, 0.6, 4.0, 1000) "round trip"
            let old = JsonNode.Parse(JsonSerializer.Serialize tinyConfig).AsObject()
            for name in [ "Routing"; "RoutingShare"; "RoutingSharpness"; "RoutingTimesteps" ] do old.Remove name |> ignore
            let legacy = JsonSerializer.Deserialize<UNetConfig>(old.ToJsonString())
            Expect.equal legacy.Routing TaskRoutingKind.None "no routing"
            use net = new UNet(legacy)
            Expect.isNull net.Router "no router, no extra work"
        }
    ]
