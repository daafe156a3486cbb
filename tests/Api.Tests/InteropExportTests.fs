/// Export for diffusers: the keys and shapes are UNet2DModel's (a table written from diffusers' source), config.json and
/// scheduler_config.json carry what our configuration implies, configurations diffusers cannot express are refused,
/// and every named model round-trips through both formats to identical outputs.
module DiffusionFunctional.Api.Tests.InteropExportTests

open System.IO
open System.Text.Json
open System.Text.Json.Nodes
open Expecto
open TorchSharp
open DiffusionFunctional
open DiffusionFunctional.Diffusion
open DiffusionFunctional.Interop
open DiffusionFunctional.Models
open DiffusionFunctional.Training
open DiffusionFunctional.Api.Tests.TestSupport
open DiffusionFunctional.Api.Tests.DiffusersKeyTable

/// A network whose every weight is moved off its initial value (conv_out starts at zero: outputs would be all zero).
let perturbed (config: UNetConfig) (seed: int64) =
    torch.manual_seed seed |> ignore
    let net = new UNet(config)
    use _ = torch.no_grad()
    for p in net.parameters() do p.add_(torch.randn_like(p) * 0.05f) |> ignore
    net.eval()
    net

/// The network's output on a fixed input: two images, an early and a late timestep.
let fixedOutput (net: Denoiser) =
    let c = net.Config
    use generator = new torch.Generator(7UL)
    use x = torch.randn([| 2L; int64 c.ImageChannels; int64 c.ImageSize; int64 c.ImageSize |], generator = generator)
    use t = torch.tensor([| 3L; 900L |])
    use _ = torch.no_grad()
    net.forward(x, t)

let private shapes (state: StateDict) =
    state |> Seq.map (fun kv -> kv.Key, List.ofArray kv.Value.shape) |> Map.ofSeq

/// Every argument of UNet2DModel.__init__ (diffusers models/unets/unet_2d.py).
let private unet2dArguments =
    [ "sample_size"; "in_channels"; "out_channels"; "center_input_sample"; "time_embedding_type"; "time_embedding_dim"
      "freq_shift"; "flip_sin_to_cos"; "down_block_types"; "mid_block_type"; "up_block_types"; "block_out_channels"
      "layers_per_block"; "mid_block_scale_factor"; "downsample_padding"; "downsample_type"; "upsample_type"; "dropout"
      "act_fn"; "attention_head_dim"; "norm_num_groups"; "attn_norm_num_groups"; "norm_eps"; "resnet_time_scale_shift"
      "add_attention"; "class_embed_type"; "num_class_embeds"; "num_train_timesteps" ]

/// Runs `action`, which must throw a BadInputException, and returns it.
let badInput (action: unit -> unit) (what: string) : BadInputException =
    try
        action ()
        failtestf "%s: expected a BadInputException" what
    with :? BadInputException as e -> e

let private text (node: JsonNode) = if isNull node then "null" else node.ToJsonString()

[<Tests>]
let tests =
    testList "diffusers export" [
        test "the spelled-out tiny table agrees with the table built from diffusers' constructors" {
            Expect.equal tinyLiteral.Count 144 "144 keys (the issue counted 100 shared + 44 missing)"
            Expect.equal tinyLiteral (expected (named |> List.find (fst >> (=) "tiny") |> snd)) "same keys and shapes"
        }

        test "the exported keys and shapes are UNet2DModel's, for every named model" {
            for name, args in named do
                use net = new UNet(UNetConfig.Named name)
                use ours = StateDict.Of net
                use theirs = DiffusersKeyMap.ToDiffusers ours
                let actual = shapes theirs
                let table = expected args
                let missing = table |> Map.filter (fun k _ -> not (actual.ContainsKey k)) |> Map.keys |> List.ofSeq
                let extra = actual |> Map.filter (fun k _ -> not (table.ContainsKey k)) |> Map.keys |> List.ofSeq
                Expect.isEmpty missing (sprintf "%s: keys UNet2DModel has and the export lacks" name)
                Expect.isEmpty extra (sprintf "%s: keys the export has and UNet2DModel lacks" name)
                Expect.equal actual table (sprintf "%s: every shape" name)
        }

        test "an attention block computes diffusers' Attention with the exported to_q, to_k, to_v, to_out.0 (2 heads)" {
            // AttnProcessor2_0 (attention_processor.py): group_norm over channels, tokens [B, HW, C], linear q/k/v split
            // into heads as view(B, -1, heads, d), softmax(q k^T / sqrt(d)) v, heads merged, to_out.0, residual added.
            torch.manual_seed 4L |> ignore
            use block = new AttentionBlock(16, 2, 4)
            use _ = torch.no_grad()
            for p in block.parameters() do p.add_(torch.randn_like(p) * 0.3f) |> ignore
            let prefixed = [ for kv in block.state_dict() -> System.Collections.Generic.KeyValuePair("mid_block.attentions.0." + kv.Key, kv.Value) ]
            use w = DiffusersKeyMap.ToDiffusers prefixed
            let p (name: string) = w.["mid_block.attentions.0." + name]
            use x = torch.randn([| 2L; 16L; 3L; 5L |])
            let heads, d = 2L, 8L
            let normed = torch.nn.functional.group_norm(x, 4L, p "group_norm.weight", p "group_norm.bias", 1e-5)
            let tokens = normed.view(2L, 16L, 15L).transpose(1L, 2L)
            let split (name: string) = torch.nn.functional.linear(tokens, p (name + ".weight"), p (name + ".bias")).view(2L, -1L, heads, d).transpose(1L, 2L)
            let q, k, v = split "to_q", split "to_k", split "to_v"
            let weights = torch.softmax(q.matmul(k.transpose(-1L, -2L)) * (1.0 / sqrt (float d)), -1)
            let merged = weights.matmul(v).transpose(1L, 2L).reshape(2L, -1L, heads * d)
            let out = torch.nn.functional.linear(merged, p "to_out.0.weight", p "to_out.0.bias")
            use reference = out.transpose(-1L, -2L).reshape(2L, 16L, 3L, 5L) + x
            use ours = block.forward(x)
            Expect.isLessThan (maxAbsDiff ours reference) 1e-5 "same attention"
        }

        test "our timestep features are diffusers' get_timestep_embedding with flip_sin_to_cos and freq_shift 0" {
            // embeddings.py: exponent = -ln(10000) * arange(half) / (half - shift); emb = t * exp(exponent);
            // cat(sin, cos), flipped to cat(cos, sin); zero-padded when the dimension is odd.
            for dim in [ 8; 32; 7 ] do
                use t = torch.tensor([| 0L; 1L; 17L; 999L |])
                let half = dim / 2
                let expectedRow (ti: int64) =
                    let args = Array.init half (fun i -> float ti * exp (-(log 10000.0) * float i / float (half - 0)))
                    Array.concat [ Array.map cos args; Array.map sin args; (if dim % 2 = 1 then [| 0.0 |] else [||]) ]
                use ours = Layers.TimestepFeatures(t, dim)
                let actual = floats ours
                let wanted = [| 0L; 1L; 17L; 999L |] |> Array.collect expectedRow
                Array.iter2 (fun (a: float32) b -> Expect.floatClose { absolute = 2e-4; relative = 1e-5 } (float a) b (sprintf "dim %d" dim)) actual wanted
        }

        test "config.json carries every UNet2DModel argument, with the values each named model implies" {
            let headDims = Map [ "tiny", 16; "small", 64; "mnist", 128; "base32", 64 ]
            for name, args in named do
                let config = UNetConfig.Named name
                let json = DiffusersUNetConfig.ToJson config
                let keys = json |> Seq.map (fun kv -> kv.Key) |> Set.ofSeq
                Expect.equal keys (Set.ofList ("_class_name" :: unet2dArguments)) (sprintf "%s: the fields" name)
                let expectJson (field: string) value = Expect.equal (text json.[field]) value (sprintf "%s: %s" name field)
                expectJson "block_out_channels" (JsonSerializer.Serialize args.Widths)
                expectJson "down_block_types" (JsonSerializer.Serialize [ for a in args.Attention -> if a then "AttnDownBlock2D" else "DownBlock2D" ])
                expectJson "up_block_types" (JsonSerializer.Serialize [ for a in List.rev args.Attention -> if a then "AttnUpBlock2D" else "UpBlock2D" ])
                expectJson "layers_per_block" (string args.Layers)
                expectJson "in_channels" (string args.InChannels)
                expectJson "out_channels" (string args.InChannels)
                expectJson "sample_size" (string config.ImageSize)
                expectJson "attention_head_dim" (string headDims.[name])
                expectJson "norm_num_groups" (if name = "tiny" then "4" else "32")
                Expect.equal (json.["dropout"].GetValue<double>()) config.Dropout "dropout"
                Expect.equal (json.["norm_eps"].GetValue<double>()) 1e-5 "GroupNorm eps (Layers.GroupNorm)"
                for field, value in [ "flip_sin_to_cos", "true"; "freq_shift", "0"; "act_fn", "\"silu\""; "time_embedding_type", "\"positional\""
                                      "time_embedding_dim", "null"; "downsample_padding", "1"; "downsample_type", "\"conv\""; "upsample_type", "\"conv\""
                                      "mid_block_type", "\"UNetMidBlock2D\""; "add_attention", "true"; "resnet_time_scale_shift", "\"default\""
                                      "center_input_sample", "false"; "mid_block_scale_factor", "1"; "class_embed_type", "null" ] do
                    expectJson field value
        }

        test "config.json reads back to the same configuration, for every named model" {
            for name in UNetConfig.Names do
                let config = UNetConfig.Named name
                let back = DiffusersUNetConfig.FromJson(DiffusersUNetConfig.ToJson config)
                Expect.equal (JsonSerializer.Serialize back) (JsonSerializer.Serialize config) name
        }

        test "config.json fields take diffusers' defaults when absent: attention_head_dim 8, null meaning one head" {
            let json = DiffusersUNetConfig.ToJson(UNetConfig.Named "small")
            json.Remove "attention_head_dim" |> ignore
            Expect.equal (DiffusersUNetConfig.FromJson(json).AttentionHeads) 8 "64 channels / default head size 8"
            json.["attention_head_dim"] <- null
            Expect.equal (DiffusersUNetConfig.FromJson(json).AttentionHeads) 1 "null: head size = layer width"
            json.Remove "sample_size" |> ignore
            Expect.equal (DiffusersUNetConfig.FromJson(json, 20).ImageSize) 20 "the given size stands in"
            let e = badInput (fun () -> DiffusersUNetConfig.FromJson json |> ignore) "no size"
            Expect.stringContains e.Message "sample_size" "names the field"
        }

        test "config.json asking for what dfn's network cannot do is refused, naming the field" {
            let cases =
                [ "norm_eps", "1e-6"; "act_fn", "\"gelu\""; "time_embedding_type", "\"fourier\""; "flip_sin_to_cos", "false"
                  "freq_shift", "1"; "resnet_time_scale_shift", "\"scale_shift\""; "add_attention", "false"
                  "class_embed_type", "\"timestep\""; "downsample_padding", "0"; "center_input_sample", "true"; "attention_head_dim", "6"
                  "down_block_types", """["CrossAttnDownBlock2D","AttnDownBlock2D"]"""; "up_block_types", """["UpBlock2D","UpBlock2D"]"""
                  "block_out_channels", "[8, 12]"; "out_channels", "3" ]
            for field, value in cases do
                let json = DiffusersUNetConfig.ToJson(UNetConfig.Named "tiny")
                json.[field] <- JsonNode.Parse value
                let e = badInput (fun () -> DiffusersUNetConfig.FromJson json |> ignore) field
                Expect.stringContains e.Message field (sprintf "the message names %s" field)
        }

        test "a configuration diffusers cannot express is refused naming the field, before anything is written (the pytorch format warns)" {
            let tiny (groups: int) (attention: int[]) =
                UNetConfig(ImageSize = 8, BaseChannels = 8, ChannelMultipliers = [| 1; 2 |], AttentionLevels = attention, NormGroups = groups)
            let cases =
                [ "NormGroups", tiny 3 [| 1 |]
                  "AttentionHeads", tiny 4 [| 0 |]
                  "Routing", UNetConfig(ImageSize = 8, BaseChannels = 8, ChannelMultipliers = [| 1; 2 |], AttentionLevels = [| 1 |], NormGroups = 4,
                                        Routing = TaskRoutingKind.Dtr, RoutingTimesteps = 40) ]
            for field, config in cases do
                let dir, clean = tempDir "refuse"
                use _ = clean
                use net = new UNet(config)
                let out = Path.Combine(dir, "out")
                let e = badInput (fun () -> WeightsExport.WriteDiffusers(net, GaussianDiffusion.Create(), out) |> ignore) field
                Expect.stringContains e.Message field (sprintf "names %s" field)
                Expect.isFalse (Directory.Exists out) "nothing written"
                Expect.stringContains (WeightsExport.DiffusersMismatch config) field "the pytorch format's warning names it too"
                let pt = WeightsExport.WritePyTorch(net, Path.Combine(dir, "unet.pt"))
                use read = TorchFile.Read pt
                Expect.isGreaterThan read.Count 0 (sprintf "%s: the pytorch format still writes the state_dict" field)
            Expect.isNull (WeightsExport.DiffusersMismatch(UNetConfig.Named "small")) "a named model fits UNet2DModel"
        }

        test "scheduler_config.json names each schedule as DDPMScheduler does and reads back to the same betas" {
            for schedule in [ "linear"; "scaled_linear"; "squaredcos_cap_v2"; "sigmoid" ] do
                for prediction in [ PredictionType.Epsilon; PredictionType.V ] do
                    let d = GaussianDiffusion.Create(schedule, 100, prediction)
                    let json = DiffusersSchedulerConfig.ToJson d
                    Expect.equal (json.["beta_schedule"].GetValue<string>()) schedule "diffusers' name"
                    Expect.equal (json.["prediction_type"].GetValue<string>()) (if prediction = PredictionType.V then "v_prediction" else "epsilon") "prediction"
                    Expect.equal (json.["num_train_timesteps"].GetValue<int>()) 100 "T"
                    Expect.equal (json.["variance_type"].GetValue<string>()) "fixed_small" "posterior variance, as our DDPM sampler"
                    let back = DiffusersSchedulerConfig.FromJson json
                    Expect.equal back.ScheduleName schedule "schedule back"
                    Expect.equal back.Schedule.Betas d.Schedule.Betas "betas back"
                    Expect.equal back.Prediction prediction "prediction back"
            let scaled = DiffusersSchedulerConfig.ToJson(GaussianDiffusion.Create("scaled_linear", 10))
            Expect.equal (scaled.["beta_start"].GetValue<double>(), scaled.["beta_end"].GetValue<double>()) (0.00085, 0.012) "scaled_linear's own range (Schedule.fs)"
        }

        test "custom betas become trained_betas, and another beta range becomes the betas diffusers computes" {
            let betas = Array.init 20 (fun i -> 0.001 + 0.01 * float i)
            let d = GaussianDiffusion(DiffusionFunctional.Core.Schedule.create (DiffusionFunctional.Core.ScheduleKind.CustomBetas betas) 20)
            let back = DiffusersSchedulerConfig.FromJson(DiffusersSchedulerConfig.ToJson d)
            Expect.equal back.Schedule.Betas betas "trained_betas round trip"
            let json = JsonNode.Parse("""{"beta_schedule": "linear", "num_train_timesteps": 5, "beta_start": 0.001, "beta_end": 0.009}""").AsObject()
            let read = DiffusersSchedulerConfig.FromJson(json).Schedule.Betas
            Array.iter2 (fun a b -> Expect.floatClose Accuracy.veryHigh a b "torch.linspace(0.001, 0.009, 5)") read [| 0.001; 0.003; 0.005; 0.007; 0.009 |]
            json.["prediction_type"] <- JsonValue.Create "sample"
            let e = badInput (fun () -> DiffusersSchedulerConfig.FromJson json |> ignore) "x0 prediction"
            Expect.stringContains e.Message "prediction_type" "names the field"
        }

        test "exported tensors never require grad; the pytorch file is a plain state_dict of UNet2DModel's keys" {
            let dir, clean = tempDir "nograd"
            use _ = clean
            use net = perturbed (UNetConfig.Named "tiny") 3L
            Expect.isTrue (net.parameters() |> Seq.forall (fun p -> p.requires_grad)) "the live parameters require grad"
            let path = WeightsExport.WritePyTorch(net, Path.Combine(dir, "unet.pt"))
            use read = TorchFile.Read path
            Expect.isEmpty read.StoredWithGrad "no tensor stored with requires_grad=True"
            Expect.equal (shapes read) (expected (named |> List.find (fst >> (=) "tiny") |> snd)) "UNet2DModel's keys"
        }

        test "round trip: every named model through both formats gives identical outputs" {
            oneThread ()
            for name in UNetConfig.Names do
                use net = perturbed (UNetConfig.Named name) 11L
                use original = fixedOutput net
                let diffusion = GaussianDiffusion.Create("squaredcos_cap_v2", 1000, PredictionType.V)
                for format in [ WeightsFormat.Diffusers; WeightsFormat.PyTorch ] do
                    let dir, clean = tempDir "roundtrip"
                    use _ = clean
                    let target = Path.Combine(dir, if format = WeightsFormat.Diffusers then "export" else "unet.pt")
                    if format = WeightsFormat.Diffusers then WeightsExport.WriteDiffusers(net, diffusion, target) |> ignore
                    else WeightsExport.WritePyTorch(net, target) |> ignore
                    use imported = WeightsImport.Load(target, ImportOptions())
                    use output = fixedOutput imported.Model
                    Expect.equal (maxAbsDiff original output) 0.0 (sprintf "%s via %A: identical outputs" name format)
                    Expect.equal (JsonSerializer.Serialize imported.Model.Config) (JsonSerializer.Serialize net.Config) (sprintf "%s via %A: same configuration" name format)
                    if format = WeightsFormat.Diffusers then
                        Expect.equal imported.Diffusion.Schedule.Betas diffusion.Schedule.Betas "schedule from scheduler_config.json"
                        Expect.equal imported.Diffusion.Prediction PredictionType.V "prediction from scheduler_config.json"
        }

        test "an imported checkpoint is a weights-only checkpoint that loads for sampling with the same outputs" {
            let dir, clean = tempDir "weightsckpt"
            use _ = clean
            use net = perturbed (UNetConfig.Named "tiny") 5L
            use original = fixedOutput net
            WeightsExport.WriteDiffusers(net, GaussianDiffusion.Create("linear", 40), Path.Combine(dir, "export")) |> ignore
            let struct (imported, checkpoint) = WeightsImport.Run(Path.Combine(dir, "export"), dir, ImportOptions())
            imported.Dispose()
            Expect.equal checkpoint (Path.Combine(dir, Trainer.CheckpointName)) "a folder gets checkpoint.dfn"
            use loaded = CheckpointModel.Load checkpoint
            use output = fixedOutput loaded.Model
            Expect.equal (maxAbsDiff original output) 0.0 "same outputs from the checkpoint"
            Expect.equal (loaded.Diffusion.Timesteps, loaded.Step) (40, 0L) "diffusion and step"
            Expect.isNone (Option.ofObj (loaded.NoiseWarning())) "imported weights are not 'mostly random initial weights'"
            let struct (header, sections) = CheckpointFile.Read checkpoint
            sections.Dispose()
            Expect.isTrue (WeightsCheckpoint.IsWeightsOnly header) "kind: weights"
            let e = badInput (fun () -> WeightsImport.Run(Path.Combine(dir, "export"), dir, ImportOptions()) |> ignore) "exists"
            Expect.stringContains e.Message "--force" "an existing checkpoint is kept unless forced"
        }
    ]
