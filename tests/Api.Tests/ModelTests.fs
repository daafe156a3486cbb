module DiffusionFunctional.Api.Tests.ModelTests

open System
open Expecto
open TorchSharp
open DiffusionFunctional.Models
open DiffusionFunctional.Api.Tests.TestSupport

[<Tests>]
let tests =
    testList "UNet" [
        test "GroupNorm from Layers starts at weight 1, bias 0 and normalises each group" {
            oneThread ()
            // TorchSharp 0.107 leaves nn.GroupNorm's affine parameters uninitialised: this catches a regression of our fix.
            for _ in 1 .. 5 do
                use norm = Layers.GroupNorm(12, 4)
                Expect.isTrue (floats norm.weight |> Array.forall ((=) 1.0f)) "weight is all ones"
                Expect.isTrue (floats norm.bias |> Array.forall ((=) 0.0f)) "bias is all zeros"
                use x = torch.randn([| 2L; 12L; 5L; 5L |]) * 3.0f + 7.0f
                use y = norm.forward(x)
                use grouped = y.reshape(2L, 4L, -1L)
                let means = floats (grouped.mean([| 2L |]))
                let stds = floats (grouped.std(2L, false))
                Expect.isTrue (means |> Array.forall (fun m -> abs m < 1e-4f)) (sprintf "group means %A" means)
                Expect.isTrue (stds |> Array.forall (fun s -> abs (s - 1.0f) < 1e-3f)) (sprintf "group stds %A" stds)
        }

        test "tiny UNet maps [B,1,8,8] to the same shape and every GroupNorm is initialised" {
            oneThread ()
            torch.manual_seed 1L |> ignore
            use net = new UNet(tinyConfig)
            use x = torch.randn([| 3L; 1L; 8L; 8L |])
            use t = torch.tensor([| 0L; 10L; 999L |])
            use y = net.forward(x, t)
            Expect.sequenceEqual y.shape [| 3L; 1L; 8L; 8L |] "output shape"
            for KeyValue(name, p) in net.state_dict() do
                if name.Contains "norm" then
                    Expect.isFalse (floats p |> Array.exists Single.IsNaN) (sprintf "%s has NaN" name)
        }

        test "an odd-sized 28x28 network round-trips through 14 and 7" {
            oneThread ()
            torch.manual_seed 2L |> ignore
            let config = UNetConfig(ImageSize = 28, BaseChannels = 8, ChannelMultipliers = [| 1; 2; 2 |], AttentionLevels = [| 2 |])
            use net = new UNet(config)
            use x = torch.randn([| 2L; 1L; 28L; 28L |])
            use y = net.forward(x, torch.tensor([| 5L; 500L |]))
            Expect.sequenceEqual y.shape [| 2L; 1L; 28L; 28L |] "output shape"
        }

        test "state_dict keys read like diffusers' UNet2DModel" {
            use net = new UNet(tinyConfig)
            let keys = net.state_dict().Keys |> Set.ofSeq
            for expected in [ "conv_in.weight"; "time_embedding.linear_1.weight"; "time_embedding.linear_2.bias"
                              "down_blocks.0.resnets.0.norm1.weight"; "down_blocks.0.resnets.0.time_emb_proj.weight"
                              "down_blocks.0.downsampler.conv.weight"; "down_blocks.1.attentions.0.qkv.weight"
                              "mid_block.resnets.1.conv2.weight"; "mid_block.attentions.0.proj_out.bias"
                              "up_blocks.0.upsampler.conv.weight"; "up_blocks.1.resnets.1.conv_shortcut.weight"
                              "conv_norm_out.weight"; "conv_out.bias" ] do
                Expect.isTrue (keys.Contains expected) (sprintf "missing key %s in %A" expected keys)
        }

        test "the time embedding separates timesteps and the network output depends on t" {
            oneThread ()
            torch.manual_seed 3L |> ignore
            use net = new UNet(tinyConfig)
            // The output conv starts at zero (ADM); perturb it so the output is informative.
            use _ = torch.no_grad()
            for p in net.parameters() do p.add_(torch.randn_like(p) * 0.05f) |> ignore
            use x = torch.randn([| 1L; 1L; 8L; 8L |])
            use a = net.forward(x, torch.tensor([| 1L |]))
            use b = net.forward(x, torch.tensor([| 900L |]))
            Expect.isGreaterThan (maxAbsDiff a b) 1e-4 "output changes with t"
        }

        test "named configurations build and unknown names are bad input" {
            for name in UNetConfig.Names do
                let c = UNetConfig.Named(name)
                c.Validate()
            Expect.throwsT<DiffusionFunctional.BadInputException> (fun () -> UNetConfig.Named("huge") |> ignore) "unknown name"
        }
    ]
