using System.Collections.Specialized;
using System.Text.Json;
using DiffusionFunctional.Diffusion;
using DiffusionFunctional.Models;
using DiffusionFunctional.Training;
using TorchSharp.PyBridge;

namespace DiffusionFunctional.Interop;

/// <summary>What <c>dfn export</c> writes.</summary>
public enum WeightsFormat
{
    /// <summary>A folder diffusers loads as it is: config.json, scheduler_config.json, diffusion_pytorch_model.safetensors.</summary>
    Diffusers,
    /// <summary>One <c>torch.save</c> state_dict file: a UNet with diffusers' UNet2DModel keys, a DiT with the DiT code's keys.</summary>
    PyTorch,
}

/// <summary>What an export wrote: the checkpoint read, its step, the files written, warnings about the weights, and the key scheme.</summary>
public sealed record ExportResult(string Checkpoint, long Step, IReadOnlyList<string> Files, IReadOnlyList<string> Warnings, string Keys);

/// <summary>
/// Writes a checkpoint's weights for diffusers and PyTorch users: keys and layouts of diffusers' <c>UNet2DModel</c>
/// (<see cref="DiffusersKeyMap"/>), its <c>config.json</c> (<see cref="DiffusersUNetConfig"/>) and the matching
/// <c>DDPMScheduler</c>'s <c>scheduler_config.json</c> (<see cref="DiffusersSchedulerConfig"/>). Tensors are detached
/// float32 copies (never <c>requires_grad</c>). Layout: docs/interop.md.
/// </summary>
public static class WeightsExport
{
    /// <summary>The weights file name diffusers' <c>from_pretrained</c> looks for first.</summary>
    public const string SafetensorsName = "diffusion_pytorch_model.safetensors";

    private static readonly JsonSerializerOptions Indented = new() { WriteIndented = true };

    /// <summary>Extensions of weights files: an output so named is a file, never the diffusers folder.</summary>
    private static readonly string[] FileExtensions = [".pt", ".pth", ".bin", ".ckpt", ".safetensors"];

    /// <summary>Parses <c>diffusers</c> or <c>pytorch</c>.</summary>
    public static WeightsFormat ParseFormat(string? text) => (text ?? "").Trim().ToLowerInvariant() switch
    {
        "diffusers" => WeightsFormat.Diffusers,
        "pytorch" or "torch" or "pt" => WeightsFormat.PyTorch,
        _ => throw new BadInputException($"unknown export format '{text}' (expected diffusers or pytorch)"),
    };

    /// <summary>
    /// Checks the checkpoint and the output location before any work: the output may not be the checkpoint itself,
    /// a file where a folder is written or a folder where a file is written, or unwritable. Returns the checkpoint file.
    /// </summary>
    public static string Prepare(string checkpoint, string output, WeightsFormat format)
    {
        var file = CheckpointFile.Resolve(checkpoint);
        if (format == WeightsFormat.PyTorch)
        {
            OutputLocation.CheckFile(output, "--out", file);
            return file;
        }
        if (string.IsNullOrWhiteSpace(output)) throw new BadInputException("--out DIR is required");
        if (Path.GetFullPath(output) == Path.GetFullPath(file))
            throw new BadInputException($"--out '{output}' is the input file itself; choose another output so that the input is not overwritten");
        var namedLikeFile = FileExtensions.Contains(Path.GetExtension(output).ToLowerInvariant());
        if (namedLikeFile && !Directory.Exists(output) && !File.Exists(output))
            throw new BadInputException($"--out '{output}' names a file; the diffusers format writes a folder (pass --format pytorch for one file)");
        OutputLocation.CheckDirectory(output);
        return file;
    }

    /// <summary>Exports the EMA (or live) weights of a checkpoint (a file or a run folder) to <paramref name="output"/>.</summary>
    public static ExportResult Run(string checkpoint, string output, WeightsFormat format, bool useEma = true)
    {
        var file = Prepare(checkpoint, output, format);
        using var loaded = CheckpointModel.Load(file, useEma);
        var warnings = new List<string>();
        if (loaded.NoiseWarning() is { } noise) warnings.Add(noise);
        if (format == WeightsFormat.PyTorch && loaded.Model.Config is UNetConfig unet && DiffusersMismatch(unet) is { } mismatch)
            warnings.Add($"the state_dict has UNet2DModel's keys, but no UNet2DModel config computes this network: {mismatch}");
        var written = format == WeightsFormat.Diffusers ? WriteDiffusers(loaded.Model, loaded.Diffusion, output) : [WritePyTorch(loaded.Model, output)];
        var keys = loaded.Model is UNet ? "diffusers keys" : $"{loaded.Model.Config.Kind} keys as in its reference code";
        return new ExportResult(file, loaded.Step, written, warnings, keys);
    }

    /// <summary>Why no UNet2DModel config.json describes <paramref name="config"/>, or null when one does.</summary>
    public static string? DiffusersMismatch(UNetConfig config)
    {
        try
        {
            DiffusersUNetConfig.ToJson(config);
            return null;
        }
        catch (BadInputException e) { return e.Message; }
    }

    /// <summary>Writes the diffusers folder; refuses (before writing anything) a configuration diffusers cannot express.</summary>
    public static IReadOnlyList<string> WriteDiffusers(Denoiser model, GaussianDiffusion diffusion, string folder)
    {
        if (model is not UNet unet)
            throw new BadInputException($"a {model.Config.Kind} has no diffusers folder (diffusers' DiT is class-conditional and latent); export it with --format pytorch");
        var config = DiffusersUNetConfig.ToJson(unet.Shape);
        var scheduler = DiffusersSchedulerConfig.ToJson(diffusion);
        using var ours = StateDict.Of(model);
        using var theirs = DiffusersKeyMap.ToDiffusers(ours);
        Directory.CreateDirectory(folder);
        var files = new[] { SafetensorsName, DiffusersUNetConfig.FileName, DiffusersSchedulerConfig.FileName }.Select(n => Path.Combine(folder, n)).ToArray();
        SafetensorsFile.Write(files[0], theirs);
        AtomicFile.WriteAllText(files[1], config.ToJsonString(Indented) + "\n");
        AtomicFile.WriteAllText(files[2], scheduler.ToJsonString(Indented) + "\n");
        return files;
    }

    /// <summary>
    /// Writes a <c>torch.save</c> state_dict (zip format, TorchSharp.PyBridge): a UNet's with diffusers' UNet2DModel keys,
    /// a DiT's with the DiT paper's code's keys (docs/interop.md). Unlike the diffusers folder it is written for any
    /// configuration (e.g. a DTR model, whose masks a user recomputes: docs/routing-and-densities.md);
    /// <see cref="DiffusersMismatch"/> says when no UNet2DModel config fits a UNet.
    /// </summary>
    public static string WritePyTorch(Denoiser model, string path)
    {
        using var ours = StateDict.Of(model);
        using var mapped = model is UNet ? DiffusersKeyMap.ToDiffusers(ours) : null;
        var theirs = mapped ?? ours;
        // An OrderedDictionary keeps the module order in the pickle, as torch.save of a state_dict would.
        var ordered = new OrderedDictionary();
        foreach (var (key, tensor) in theirs) ordered.Add(key, tensor);
        AtomicFile.Write(path, temp =>
        {
            using var stream = new FileStream(temp, FileMode.Create, FileAccess.Write);
            PyTorchPickler.PickleStateDict(stream, ordered, leaveOpen: true);
        });
        return path;
    }
}
