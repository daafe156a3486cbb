using DiffusionFunctional.Diffusion;
using DiffusionFunctional.Models;
using DiffusionFunctional.Training;
using TorchSharp;

namespace DiffusionFunctional.Interop;

/// <summary>Choices an import cannot read from the files: each overrides what the files say, or fills in what they lack.</summary>
public sealed record ImportOptions
{
    /// <summary>A named model (<see cref="Denoisers.Names"/>) to use instead of config.json or the shapes.</summary>
    public string? Model { get; init; }
    /// <summary>The image size, when config.json has no sample_size (or to override it).</summary>
    public int? ImageSize { get; init; }
    /// <summary>A schedule name replacing scheduler_config.json's (or the default linear).</summary>
    public string? Schedule { get; init; }
    /// <summary>T replacing scheduler_config.json's (or the default 1000).</summary>
    public int? Timesteps { get; init; }
    /// <summary>eps or v, replacing scheduler_config.json's (or the default eps).</summary>
    public string? Prediction { get; init; }
}

/// <summary>Imported weights: the loaded network (eval mode), its diffusion, and where each part came from.</summary>
public sealed record ImportedWeights(Denoiser Model, GaussianDiffusion Diffusion, string WeightsFile, string ConfigOrigin, string KeyScheme, string DiffusionOrigin) : IDisposable
{
    /// <summary>Disposes the network.</summary>
    public void Dispose() => Model.Dispose();
}

/// <summary>
/// Reads weights as they come (a diffusers folder, safetensors, or any <c>torch.save</c> state_dict: zip or legacy,
/// any float dtype, views and strides) into a UNet or a DiT, and writes them as a weights-only checkpoint that
/// <c>dfn sample</c>, <c>dfn export</c> and <c>dfn evaluate</c> accept (<see cref="WeightsCheckpoint"/>).
/// </summary>
public static class WeightsImport
{
    /// <summary>
    /// Checks the output before any work: not the input itself, not an existing file unless <paramref name="force"/>,
    /// writable. An existing folder, or a path ending in a separator, is a run folder: the checkpoint goes to
    /// <c>FOLDER/checkpoint.dfn</c>.
    /// </summary>
    public static string PrepareOutput(string from, string output, bool force)
    {
        if (string.IsNullOrWhiteSpace(output)) throw new BadInputException("--out FILE is required");
        var folder = Directory.Exists(output) || output.EndsWith('/') || output.EndsWith(Path.DirectorySeparatorChar);
        var file = folder ? Path.Combine(output, Trainer.CheckpointName) : output;
        if (File.Exists(file) && !force && Path.GetFullPath(file) != Path.GetFullPath(from))
            throw new BadInputException($"--out '{file}' exists; pass --force to replace it");
        OutputLocation.CheckFile(file, "--out", File.Exists(from) ? [from] : []);
        return file;
    }

    /// <summary>Imports <paramref name="from"/> and writes a weights-only checkpoint to <paramref name="output"/>; returns what was read.</summary>
    public static (ImportedWeights Imported, string Checkpoint) Run(string from, string output, ImportOptions options, bool force = false)
    {
        var checkpoint = PrepareOutput(from, output, force);
        var imported = Load(from, options);
        try
        {
            WeightsCheckpoint.Write(checkpoint, imported.Model, imported.Diffusion, Path.GetFullPath(imported.WeightsFile));
            return (imported, checkpoint);
        }
        catch
        {
            imported.Dispose();
            throw;
        }
    }

    /// <summary>Loads the network and diffusion that <paramref name="from"/> (a folder or a file) describes.</summary>
    public static ImportedWeights Load(string from, ImportOptions options)
    {
        var source = WeightsSource.Locate(from);
        using var weights = source.ReadWeights();
        var (config, configOrigin) = ResolveConfig(source, weights, options);
        var (diffusion, diffusionOrigin) = ResolveDiffusion(source, options);
        var model = config.Build();
        try
        {
            var scheme = LoadInto(model, weights, source.WeightsFile);
            model.eval();
            return new ImportedWeights(model, diffusion, source.WeightsFile, configOrigin, scheme, diffusionOrigin);
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Copies a state_dict into <paramref name="model"/> after checking every key and shape: a UNet takes diffusers'
    /// UNet2DModel keys or dfn's own, a DiT (or any other backbone) dfn's own, which for a DiT are the DiT paper's
    /// code's names without the class embedding. Returns which key scheme it found.
    /// </summary>
    public static string LoadInto(Denoiser model, StateDict weights, string file)
    {
        var target = model.state_dict();
        var shapes = target.ToDictionary(kv => kv.Key, kv => kv.Value.shape);
        try
        {
            if (model is not UNet || DiffusersKeyMap.HasOwnKeys(weights.Keys))
            {
                DiffusersKeyMap.CheckOwnKeys(weights, shapes);
                Copy(target, weights);
                return "dfn";
            }
            using var mapped = DiffusersKeyMap.FromDiffusers(weights, shapes);
            Copy(target, mapped);
            return "diffusers";
        }
        catch (BadInputException e) { throw new BadInputException($"{file}: {e.Message}"); }
    }

    private static void Copy(Dictionary<string, torch.Tensor> target, IReadOnlyDictionary<string, torch.Tensor> source)
    {
        using var noGrad = torch.no_grad();
        foreach (var (key, tensor) in target) tensor.copy_(source[key]);
    }

    private static (DenoiserConfig Config, string Origin) ResolveConfig(WeightsSource source, StateDict weights, ImportOptions options)
    {
        if (options.Model is { } name)
        {
            var input = weights.TryGetValue("conv_in.weight", out var conv) ? conv : weights.GetValueOrDefault(DiTShapes.PatchWeight);
            return (Denoisers.Named(name, input is null ? null : (int)input.shape[1], options.ImageSize), $"model '{name}'");
        }
        if (DiTShapes.IsDiT(weights.Keys))
        {
            var (dit, preset) = DiTShapes.Infer(weights.Shapes(), source.WeightsFile, options.ImageSize);
            return (dit, $"the tensor shapes (the '{preset}' model's heads)");
        }
        if (source.ReadConfig() is { } json)
            return (DiffusersUNetConfig.FromJson(json, options.ImageSize, source.ConfigFile!), source.ConfigFile!);
        var (inferred, match) = WeightsSource.InferConfig(weights.Shapes(), source.WeightsFile, options.ImageSize);
        return (inferred, $"the tensor shapes (the '{match}' model)");
    }

    private static (GaussianDiffusion Diffusion, string Origin) ResolveDiffusion(WeightsSource source, ImportOptions options)
    {
        var json = source.ReadScheduler();
        var given = json is null ? GaussianDiffusion.Create() : DiffusersSchedulerConfig.FromJson(json, source.SchedulerFile!);
        var origin = json is null ? "the default (linear, 1000 steps, eps)" : source.SchedulerFile!;
        if (options.Schedule is null && options.Timesteps is null && options.Prediction is null) return (given, origin);
        var prediction = options.Prediction is { } p ? GaussianDiffusion.ParsePrediction(p) : given.Prediction;
        if (options.Schedule is null && given.ScheduleName == "custom")
        {
            if (options.Timesteps is { } t && t != given.Timesteps)
                throw new BadInputException($"{origin} gives {given.Timesteps} custom betas; --timesteps {t} needs --schedule too");
            return (new GaussianDiffusion(given.Schedule, prediction), origin + " with options");
        }
        var diffusion = GaussianDiffusion.Create(options.Schedule ?? given.ScheduleName, options.Timesteps ?? given.Timesteps, prediction);
        return (diffusion, json is null ? "the options" : origin + " with options");
    }
}
