using DiffusionFunctional.Data;
using DiffusionFunctional.Diffusion;
using DiffusionFunctional.Training;
using static TorchSharp.torch;

namespace DiffusionFunctional.Evaluation;

/// <summary>
/// Turns what a user names on the command line into images to evaluate: a data specification (<c>mnist</c>,
/// <c>idx:PATH</c>, <c>folder:PATH</c>) or a plain folder for real images; a folder or a checkpoint (sampled with its
/// EMA weights) for generated ones.
/// </summary>
public static class EvaluationInputs
{
    /// <summary>Real images: <c>mnist</c> and <c>idx:PATH</c> at their native 28x28, folders as they are. At most <paramref name="count"/>.</summary>
    public static ImageBatch LoadReal(string spec, int? count, Action<string>? warn = null)
    {
        var text = (spec ?? "").Trim();
        if (text.StartsWith("folder:", StringComparison.OrdinalIgnoreCase)) return ImageFolderLoader.Load(text[7..], count);
        if (Directory.Exists(text)) return ImageFolderLoader.Load(text, count);
        if (text.Equals("mnist", StringComparison.OrdinalIgnoreCase) || text.StartsWith("idx:", StringComparison.OrdinalIgnoreCase))
        {
            using var data = DataSources.Load(text, 1, 28, warn);
            return FromDataset(data, count);
        }
        throw new BadInputException($"--real '{spec}' is neither a folder nor one of mnist, idx:PATH, folder:PATH");
    }

    /// <summary>Generated images: a folder of images, or a checkpoint file sampled with DDIM (EMA weights).</summary>
    public static ImageBatch LoadFake(string spec, int? count, SamplerOptions sampler, Action<string>? log = null)
    {
        var text = (spec ?? "").Trim();
        if (Directory.Exists(text)) return ImageFolderLoader.Load(text, count);
        if (!File.Exists(text)) throw new BadInputException($"--fake '{spec}' is neither a folder nor a checkpoint file");
        if (!CheckpointFile.IsValid(text)) throw new BadInputException($"--fake '{spec}' is not a complete DiffusionFunctional checkpoint");
        var n = count ?? 500;
        if (n < 2) throw new BadInputException($"--count must be at least 2 to sample from a checkpoint, got {n}");
        using var loaded = CheckpointModel.Load(text);
        {
            if (loaded.NoiseWarning() is { } warning) log?.Invoke($"warning: {warning}");
            log?.Invoke($"sampling {n} images from {text} (step {loaded.Step}, {sampler.Kind} {sampler.Steps} steps)");
            var config = loaded.Model.Config;
            using var images = Samplers.Sample(loaded.Diffusion, loaded.Model, [n, config.ImageChannels, config.ImageSize, config.ImageSize], sampler);
            using var unit = ((images + 1) / 2).clamp(0, 1);
            return ImageBatch.FromTensor(unit);
        }
    }

    static ImageBatch FromDataset(ImageDataset data, int? count)
    {
        var n = Math.Min(count ?? data.Count, data.Count);
        using var unit = ((data.Images.narrow(0, 0, n) + 1) / 2).clamp(0, 1);
        return ImageBatch.FromTensor(unit);
    }
}
