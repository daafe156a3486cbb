module DiffusionFunctional.Api.Tests.InteropTests

open System.IO
open System.IO.Compression
open Expecto
open TorchSharp
open DiffusionFunctional
open DiffusionFunctional.Interop
open DiffusionFunctional.Models
open DiffusionFunctional.Api.Tests.TestSupport

[<Tests>]
let tests =
    testList "PyTorch weights" [
        test "export then import into a differently initialised UNet reproduces its outputs" {
            oneThread ()
            let dir, clean = tempDir "pybridge"
            use _ = clean
            let path = Path.Combine(dir, "unet.pt")
            torch.manual_seed 21L |> ignore
            use a = new UNet(tinyConfig)
            use _ = torch.no_grad()
            for p in a.parameters() do p.add_(torch.randn_like(p) * 0.1f) |> ignore
            PyTorchWeights.Export(a, path)
            torch.manual_seed 22L |> ignore
            use b = new UNet(tinyConfig)
            use x = torch.randn([| 2L; 1L; 8L; 8L |])
            use t = torch.tensor([| 3L; 700L |])
            use ya = a.forward(x, t)
            use before = b.forward(x, t)
            Expect.isGreaterThan (maxAbsDiff ya before) 1e-4 "different before import"
            PyTorchWeights.Import(b, path)
            use after = b.forward(x, t)
            Expect.equal (maxAbsDiff ya after) 0.0 "identical after import"
        }

        test "the file is PyTorch's zip format with diffusers' UNet2DModel keys" {
            let dir, clean = tempDir "pyformat"
            use _ = clean
            let path = Path.Combine(dir, "unet.pt")
            use net = new UNet(tinyConfig)
            PyTorchWeights.Export(net, path)
            use zip = ZipFile.OpenRead path
            let pickle = zip.Entries |> Seq.find (fun e -> e.FullName.EndsWith "data.pkl")
            use reader = new StreamReader(pickle.Open())
            let text = reader.ReadToEnd()
            for key in [ "conv_in.weight"; "time_embedding.linear_1.weight"; "down_blocks.0.resnets.0.conv1.weight"; "mid_block.attentions.0.to_q.weight"; "down_blocks.0.downsamplers.0.conv.weight"; "conv_out.bias" ] do
                Expect.stringContains text key (sprintf "key %s in data.pkl" key)
        }

        test "importing into a different shape is bad input" {
            let dir, clean = tempDir "pybad"
            use _ = clean
            let path = Path.Combine(dir, "unet.pt")
            use net = new UNet(tinyConfig)
            PyTorchWeights.Export(net, path)
            use other = new UNet(UNetConfig(ImageSize = 8, BaseChannels = 16, ChannelMultipliers = [| 1; 2 |], AttentionLevels = [| 1 |], NormGroups = 4))
            Expect.throwsT<BadInputException> (fun () -> PyTorchWeights.Import(other, path)) "shape mismatch"
        }
    ]
