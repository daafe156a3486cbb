/// The DiT backbone: patches, positions, the adaLN-Zero start, gradients, seeds, routing, training, checkpoints and
/// weights files through the same seams as the UNet (the PyTorch comparison is in TorchPeerTests).
module DiffusionFunctional.Api.Tests.DiTTests

open System
open System.IO
open System.Text.Json
open Expecto
open FsCheck
open TorchSharp
open DiffusionFunctional
open DiffusionFunctional.Diffusion
open DiffusionFunctional.Interop
open DiffusionFunctional.Models
open DiffusionFunctional.Training
open DiffusionFunctional.Api.Tests.TestSupport
open DiffusionFunctional.Api.Tests.TrainingTests

/// A DiT for the 8x8 test images: 16 tokens of width 16, two blocks of two heads.
let tinyDiT = DiTConfig(ImageSize = 8, PatchSize = 2, HiddenSize = 16, Depth = 2, Heads = 2)

/// A DiT of this configuration with every weight moved off its (partly zero) start.
let perturbedDiT (config: DiTConfig) (seed: int64) =
    torch.manual_seed seed |> ignore
    let net = new DiT(config)
    use _ = torch.no_grad()
    for p in net.parameters() do p.add_(torch.randn_like(p) * 0.1f) |> ignore
    net.eval() |> ignore
    net

let private outputOf (net: Denoiser) =
    use generator = new torch.Generator(3UL)
    let c = net.Config
    use x = torch.randn([| 3L; int64 c.ImageChannels; int64 c.ImageSize; int64 c.ImageSize |], generator = generator)
    use t = torch.tensor([| 0L; 400L; 999L |])
    use _ = torch.no_grad()
    net.forward(x, t)

[<Tests>]
let tests =
    testList "DiT" [
        testProperty "unpatchify inverts patchify for any batch, channels, patch and grid" <| fun (b: int) (rgb: bool) (p: int) (g: int) ->
            let b, c, p, g = 1 + abs b % 3, (if rgb then 3 else 1), 1 + abs p % 4, 1 + abs g % 4
            use images = torch.randn(int64 b, int64 c, int64 (g * p), int64 (g * p))
            use tokens = Patches.Patchify(images, p)
            use back = Patches.Unpatchify(tokens, p, c)
            tokens.shape = [| int64 b; int64 (g * g); int64 (p * p * c) |] && maxAbsDiff images back = 0.0

        test "a patch's values run over its rows, then its columns, then the channels" {
            use images = torch.arange(32, dtype = torch.float32).reshape(1L, 2L, 4L, 4L)
            use tokens = Patches.Patchify(images, 2)
            // Token 1 is the patch at row 0, columns 2-3; its first values are pixel (0,2) of channel 0 then of channel 1.
            let values = floats (tokens.select(1, 1L))
            Expect.sequenceEqual values.[0..3] [| 2.0f; 18.0f; 3.0f; 19.0f |] "(row 0, col 2) for both channels, then (row 0, col 3)"
        }

        test "positions: column then row, sin then cos, frequencies 10000^(-k/(d/4))" {
            use table = Patches.SinCosPositions(3, 8)
            let row = floats (table.select(0, 5L)) // token 5 = row 1, column 2
            let expect = [| sin 2.0; sin 0.02; cos 2.0; cos 0.02; sin 1.0; sin 0.01; cos 1.0; cos 0.01 |] |> Array.map float32
            for i in 0 .. 7 do Expect.floatClose Accuracy.high (float row.[i]) (float expect.[i]) (sprintf "feature %d" i)
        }

        test "a fresh DiT predicts exactly zero (adaLN-Zero and the zero final layer), with the input's shape" {
            oneThread ()
            torch.manual_seed 1L |> ignore
            use net = new DiT(tinyDiT)
            use y = outputOf net
            Expect.equal y.shape [| 3L; 1L; 8L; 8L |] "the input's shape"
            Expect.equal (maxAbsDiff y (torch.zeros_like y)) 0.0 "all zero"
            Expect.isGreaterThan net.ParameterCount 0L "it has parameters"
            Expect.isTrue (net.state_dict().ContainsKey "pos_embed") "the positions are saved with the weights"
            Expect.isFalse (net.parameters() |> Seq.exists (fun p -> p.shape = [| 1L; 16L; 16L |])) "but are not trained"
        }

        test "every parameter gets a finite, non-zero gradient once the weights move off their start" {
            oneThread ()
            use net = perturbedDiT tinyDiT 2L
            net.train() |> ignore
            use x = torch.randn(3L, 1L, 8L, 8L)
            use y = net.forward(x, torch.tensor([| 0L; 400L; 999L |]))
            use loss = y.square().mean()
            loss.backward()
            for struct (name, p) in net.named_parameters() do
                use norm = p.grad.abs().sum()
                let n = float (norm.item<float32>())
                Expect.isTrue (Double.IsFinite n && n > 0.0) (sprintf "%s: |grad| = %g" name n)
        }

        test "the same seed builds the same weights and outputs; another seed, others" {
            oneThread ()
            use a = perturbedDiT tinyDiT 5L
            use b = perturbedDiT tinyDiT 5L
            use c = perturbedDiT tinyDiT 6L
            use ya = outputOf a
            use yb = outputOf b
            use yc = outputOf c
            Expect.equal (maxAbsDiff ya yb) 0.0 "same seed"
            Expect.isGreaterThan (maxAbsDiff ya yc) 1e-3 "another seed"
        }

        test "DTR on a DiT: one table over the token width; routing changes the output, share 1 does not" {
            oneThread ()
            let routed share = tinyDiT.WithRouting("dtr", share = share)
            use plain = perturbedDiT tinyDiT 8L
            use half = perturbedDiT (routed 0.5 :?> DiTConfig) 8L
            use full = perturbedDiT (routed 1.0 :?> DiTConfig) 8L
            Expect.sequenceEqual half.Router.Widths [ 16 ] "the blocks' width"
            use y0 = outputOf plain
            use y1 = outputOf half
            use y2 = outputOf full
            Expect.isGreaterThan (maxAbsDiff y0 y1) 1e-4 "half the features routed: another output"
            Expect.isLessThan (maxAbsDiff y0 y2) 1e-6 "every feature active: the plain block"
        }

        test "trains through the trainer (fp32, and bf16 where the CPU has it), checkpoints, resumes and loads like a UNet" {
            oneThread ()
            use data = syntheticBars ()
            let dir, clean = tempDir "dit-train"
            use _ = clean
            let options precision out =
                TrainerOptions(Steps = 6, BatchSize = 8, Seed = 3L, Threads = Nullable 1, CheckpointEvery = 0, SampleCount = 0,
                               OutputDirectory = out, Precision = precision)
            let precisions = if nativeBf16 then [ "fp32"; "bf16" ] else [ "fp32" ]
            for precision in precisions do
                let out = Path.Combine(dir, precision)
                do
                    use trainer = Trainer.Create(tinyDiT, GaussianDiffusion.Create(), data, options precision out)
                    let m = trainer.TrainStep()
                    Expect.isTrue (Double.IsFinite m.Loss && m.Loss > 0.0) (sprintf "%s: a finite loss" precision)
                    Expect.equal (trainer.TrainUntil 3L) TrainingOutcome.Completed (sprintf "%s: three steps" precision)
                do
                    use resumed = Trainer.Create(tinyDiT, GaussianDiffusion.Create(), data, options precision out)
                    Expect.isTrue (resumed.TryResume()) (sprintf "%s: a checkpoint to resume" precision)
                    Expect.equal resumed.Step 3L (sprintf "%s: resumed at step 3" precision)
                    resumed.TrainUntil 6L |> ignore
                    use loaded = CheckpointModel.Load out
                    Expect.isTrue (loaded.Model :? DiT) "the checkpoint holds a DiT"
                    Expect.equal (JsonSerializer.Serialize(loaded.Model.Config, loaded.Model.Config.GetType())) (JsonSerializer.Serialize tinyDiT) "its configuration"
                    use ema = outputOf resumed.Ema.Model
                    use back = outputOf loaded.Model
                    Expect.equal (maxAbsDiff ema back) 0.0 (sprintf "%s: the EMA network, exactly" precision)
            let other = UNetConfig.Named("tiny")
            Expect.throwsT<BadInputException> (fun () ->
                use t = Trainer.Create(other, GaussianDiffusion.Create(), data, options "fp32" (Path.Combine(dir, "fp32")))
                t.TryResume() |> ignore) "a UNet does not resume a DiT's run"
        }

        test "a PyTorch export imports back to the same network; a diffusers folder is refused before anything is written" {
            oneThread ()
            let dir, clean = tempDir "dit-io"
            use _ = clean
            use net = perturbedDiT (Denoisers.Named "dit-mini" :?> DiTConfig) 9L
            let pt = WeightsExport.WritePyTorch(net, Path.Combine(dir, "dit.pt"))
            use imported = WeightsImport.Load(pt, ImportOptions())
            Expect.stringContains imported.ConfigOrigin "dit-mini" "heads from the matching preset"
            use a = outputOf net
            use b = outputOf imported.Model
            Expect.equal (maxAbsDiff a b) 0.0 "identical outputs"
            let folder = Path.Combine(dir, "diffusers")
            Expect.throwsT<BadInputException> (fun () -> WeightsExport.WriteDiffusers(net, GaussianDiffusion.Create(), folder) |> ignore) "refused"
            Expect.isFalse (Directory.Exists folder) "nothing written"
        }

        test "a header written before backbones had kinds is a UNet's; an unknown kind is named" {
            let old = Nodes.JsonNode.Parse("""{"ImageChannels":1,"ImageSize":8,"BaseChannels":8,"ChannelMultipliers":[1,2],"AttentionLevels":[1],"NormGroups":4}""")
            let config = Denoisers.FromJson(old, "old.dfn")
            Expect.isTrue (config :? UNetConfig) "a UNet"
            Expect.equal (config :?> UNetConfig).BaseChannels 8 "its fields"
            let alien = Nodes.JsonNode.Parse("""{"Kind":"mamba","ImageSize":8}""")
            let message = try Denoisers.FromJson(alien, "new.dfn") |> ignore; "" with :? BadInputException as e -> e.Message
            Expect.stringContains message "'mamba'" "the unknown kind is named"
        }

        test "presets: dit-mini and dit-small cost about what the UNets beside them cost" {
            let ratio a b = (Denoisers.Named a).ForwardFlopsPerImage() / (Denoisers.Named b).ForwardFlopsPerImage()
            Expect.floatClose { absolute = 0.0; relative = 0.15 } (ratio "dit-mini" "mini") 1.0 "dit-mini vs mini"
            Expect.floatClose { absolute = 0.0; relative = 0.15 } (ratio "dit-small" "small") 1.0 "dit-small vs small"
            Expect.throwsT<BadInputException> (fun () -> Denoisers.Named("dit-mini", imageSize = 15) |> ignore) "15 is no multiple of the patch"
        }
    ]
