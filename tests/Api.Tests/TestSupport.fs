/// Small helpers shared by the API tests: tiny configurations, one thread, tensor readers.
module DiffusionFunctional.Api.Tests.TestSupport

open System
open System.IO
open TorchSharp
open DiffusionFunctional.Models
open DiffusionFunctional.Diffusion

/// Whether this CPU has native bfloat16: without it bf16 training is refused (`Bf16Support.Require`), so the bf16
/// tests run only where it holds and the others train in fp32 there.
let nativeBf16 = DiffusionFunctional.Training.Bf16Support.Detect().HasNativeBf16

/// Fixed thread count: results depend on it and the machine is shared.
let oneThread () = torch.set_num_threads 1

/// The tiny UNet on 8x8 grayscale images.
let tinyConfig = UNetConfig.Named("tiny")

let floats (t: torch.Tensor) : float32[] = t.detach().cpu().contiguous().data<float32>().ToArray()

let maxAbsDiff (a: torch.Tensor) (b: torch.Tensor) =
    use d = (a - b).abs().max()
    float (d.item<float32>())

/// A tiny UNet whose weights are all perturbed (the zero-initialised output layer would otherwise leave every
/// other gradient at zero, and every cosine trivial).
let perturbedTinyUNet seed =
    torch.manual_seed seed |> ignore
    let model = new UNet(tinyConfig)
    use _ = torch.no_grad()
    for p in model.parameters() do p.add_(torch.randn_like(p).mul_((0.05).ToScalar())) |> ignore
    model

/// Six random 8x8 grayscale images in [-1, 1] (seed 7).
let randomImages () =
    torch.manual_seed 7L |> ignore
    torch.rand(6L, 1L, 8L, 8L).mul_((2.0).ToScalar()).sub_((1.0).ToScalar())

/// The repository root: the folder above the test output holding the solution file.
let repoRoot () =
    let rec up (dir: DirectoryInfo) =
        if isNull dir then failwith "DiffusionFunctional.sln not found above the test output"
        elif File.Exists(Path.Combine(dir.FullName, "DiffusionFunctional.sln")) then dir.FullName
        else up dir.Parent
    up (DirectoryInfo AppContext.BaseDirectory)

/// A fresh temporary directory, deleted by the returned IDisposable.
let tempDir (name: string) =
    let dir = Path.Combine(Path.GetTempPath(), sprintf "dfn-test-%s-%s" name (Guid.NewGuid().ToString("N").Substring(0, 8)))
    Directory.CreateDirectory dir |> ignore
    dir, { new IDisposable with member _.Dispose() = try Directory.Delete(dir, true) with _ -> () }

/// Runs `file args` with redirected output; returns exit code, stdout, stderr. Kills it and fails after `seconds`.
let runProcess (seconds: int) (file: string) (args: string list) =
    let info = Diagnostics.ProcessStartInfo(file, RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false)
    for a in args do info.ArgumentList.Add a
    use p = Diagnostics.Process.Start info
    let out = p.StandardOutput.ReadToEndAsync()
    let err = p.StandardError.ReadToEndAsync()
    if not (p.WaitForExit(seconds * 1000)) then
        p.Kill true
        failwithf "%s %s did not finish within %d s" file (String.Join(" ", args)) seconds
    p.ExitCode, out.Result, err.Result

/// The exact eps-predictor for data that is one fixed image x0*: eps = (x_t - sqrt(abar) x0*) / sqrt(1 - abar).
type OracleModel(diffusion: GaussianDiffusion, target: torch.Tensor) =
    inherit torch.nn.Module<torch.Tensor, torch.Tensor, torch.Tensor>("oracle")
    override _.forward(x, t) =
        let ts = t.cpu().data<int64>().ToArray()
        let a = ts |> Array.map (fun i -> float32 (diffusion.AlphaBar(int i)))
        use abar = torch.tensor(a).reshape(-1L, 1L, 1L, 1L)
        let eps = (x - abar.sqrt() * target) / (1.0f - abar).sqrt()
        if diffusion.Prediction = PredictionType.Epsilon then eps
        else
            // v = sqrt(abar) eps - sqrt(1 - abar) x0
            abar.sqrt() * eps - (1.0f - abar).sqrt() * target.expand_as(x)

/// The exact eps-predictor for Gaussian data x0 ~ N(mean, std^2 I): the posterior mean is
/// x0 = mean + sqrt(abar) std^2 / (abar std^2 + 1 - abar) (x_t - sqrt(abar) mean), a smooth function of x_t, so the
/// probability-flow ODE carries every start noise to its own image (no snapping to data points).
type GaussianOracle(diffusion: GaussianDiffusion, mean: float, std: float) =
    inherit torch.nn.Module<torch.Tensor, torch.Tensor, torch.Tensor>("gaussian-oracle")
    override _.forward(x, t) =
        use scope = torch.NewDisposeScope()
        let ts = t.cpu().data<int64>().ToArray()
        let a = ts |> Array.map (fun i -> diffusion.AlphaBar(int i))
        let abar = torch.tensor(a, dtype = torch.float64).reshape(-1L, 1L, 1L, 1L)
        let xd = x.to_type(torch.float64)
        let gain = abar.sqrt() * (std * std) / (abar * (std * std) + (1.0 - abar))
        let x0 = gain * (xd - abar.sqrt() * mean) + mean
        ((xd - abar.sqrt() * x0) / (1.0 - abar).sqrt()).to_type(torch.float32).MoveToOuterDisposeScope()
