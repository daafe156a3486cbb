using DiffusionFunctional.Data;
using DiffusionFunctional.Diffusion;
using DiffusionFunctional.Training;
using static TorchSharp.torch;

namespace DiffusionFunctional.Evaluation;

/// <summary>One side of an evaluation: the images and how they were chosen (for the report and the JSON).</summary>
/// <param name="Images">The images, values in [0, 1].</param>
/// <param name="Selection">How they were chosen, e.g. "random 500 of 10,000 (seed 0)" or "all 64" or "500 samples of step 3000".</param>
/// <param name="Skipped">Files left out because they did not decode completely.</param>
public sealed record EvaluationSet(ImageBatch Images, string Selection, int Skipped);

/// <summary>
/// Turns what a user names on the command line into images to evaluate: for generated images, a folder, or a
/// checkpoint (file or run folder) sampled with its EMA weights; for real images, a data specification (<c>mnist</c>,
/// <c>idx:PATH</c>, <c>folder:PATH</c>) or a plain folder. Real images are brought to the generated images' size and
/// channels the way training data are (antialiased resize), and a count takes a seeded random subset, never the
/// first N (MNIST is stored class by class: its first 500 digits are all zeros).
/// </summary>
public static class EvaluationInputs
{
    /// <summary>Generated images: a folder of images, or a checkpoint file or run folder sampled with DDIM (EMA weights).</summary>
    public static EvaluationSet LoadFake(string spec, int? count, SamplerOptions sampler, Action<string>? log = null)
    {
        var text = (spec ?? "").Trim();
        var isRunFolder = Directory.Exists(text) && File.Exists(Path.Combine(text, Trainer.CheckpointName));
        if (Directory.Exists(text) && !isRunFolder)
        {
            var (images, skipped) = ImageFolderLoader.Load(text, count, sampler.Seed, line => log?.Invoke($"warning: {line}"));
            return new EvaluationSet(images, Selection(images.Count, count, sampler.Seed), skipped);
        }
        if (!isRunFolder && !File.Exists(text)) throw new BadInputException($"--fake '{spec}' is neither a folder of images nor a checkpoint (file or run folder)");
        var n = count ?? 500;
        if (n < 2) throw new BadInputException($"--count must be at least 2 to sample from a checkpoint, got {n}");
        using var loaded = CheckpointModel.Load(text);
        if (loaded.NoiseWarning() is { } warning) log?.Invoke($"warning: {warning}");
        log?.Invoke($"sampling {n} images from {loaded.Path} (step {loaded.Step}, {sampler.Kind} {sampler.Steps} steps)");
        var config = loaded.Model.Config;
        if (sampler.Kind != SamplerKind.Ddpm && sampler.Steps > loaded.Diffusion.Timesteps)
            throw new BadInputException($"--sampler-steps {sampler.Steps} exceeds the model's T = {loaded.Diffusion.Timesteps}");
        using var generated = Samplers.Sample(loaded.Diffusion, loaded.Model, [n, config.ImageChannels, config.ImageSize, config.ImageSize], sampler);
        return new EvaluationSet(ImageBatch.FromSigned(generated), $"{n} samples of step {loaded.Step} ({sampler.Kind}, {sampler.Steps} steps, seed {sampler.Seed})", 0);
    }

    /// <summary>
    /// Real images to compare with <paramref name="fake"/>: a data set resized to its size and channels, or a folder of
    /// images of its size; at most <paramref name="count"/>, a random subset drawn with <paramref name="seed"/>.
    /// </summary>
    /// <exception cref="BadInputException">An unknown source, or a folder whose size or channels differ from the generated images'.</exception>
    public static EvaluationSet LoadReal(string spec, int? count, long seed, ImageBatch fake, Action<string>? log = null)
    {
        var text = (spec ?? "").Trim();
        var folder = text.StartsWith("folder:", StringComparison.OrdinalIgnoreCase) ? text[7..] : Directory.Exists(text) ? text : null;
        if (folder is not null)
        {
            var (images, skipped) = ImageFolderLoader.Load(folder, count, seed, line => log?.Invoke($"warning: {line}"));
            if (images.Height != fake.Height || images.Width != fake.Width)
                throw new BadInputException($"the real images are {images.Width}x{images.Height} but the generated ones are {fake.Width}x{fake.Height}; give real images of the generated size, or a data set (mnist, idx:PATH) to resize");
            if (images.Channels != fake.Channels)
                throw new BadInputException($"the real images have {images.Channels} channel(s) but the generated ones {fake.Channels}");
            return new EvaluationSet(images, Selection(images.Count, count, seed), skipped);
        }
        if (text.Equals("mnist", StringComparison.OrdinalIgnoreCase) || text.StartsWith("idx:", StringComparison.OrdinalIgnoreCase))
        {
            if (fake.Height != fake.Width)
                throw new BadInputException($"the generated images are {fake.Width}x{fake.Height}, not square: {spec} cannot be resized to them");
            using var data = DataSources.Load(text, fake.Channels, fake.Height, log);
            log?.Invoke($"real images: {data.Description} resized to {fake.Channels}x{fake.Height}x{fake.Width} like the training data");
            return Subset(data, count, seed);
        }
        throw new BadInputException($"--real '{spec}' is neither a folder nor one of mnist, idx:PATH, folder:PATH");
    }

    /// <summary>
    /// Refuses a <paramref name="count"/> larger than the real source holds, before anything is sampled: the image files
    /// of a folder, the images an IDX header declares, MNIST's digits.
    /// </summary>
    /// <exception cref="BadInputException">Fewer real images than <paramref name="count"/>, naming both numbers.</exception>
    public static void RequireRealCount(string spec, int count)
    {
        var text = (spec ?? "").Trim();
        var folder = text.StartsWith("folder:", StringComparison.OrdinalIgnoreCase) ? text[7..] : Directory.Exists(text) ? text : null;
        int available;
        if (folder is not null)
            available = Directory.Exists(folder) ? Directory.EnumerateFiles(folder).Count(f => Path.GetExtension(f).ToLowerInvariant() is ".png" or ".jpg" or ".jpeg") : int.MaxValue;
        else if (text.StartsWith("idx:", StringComparison.OrdinalIgnoreCase)) available = IdxFile.CountImages(text[4..]);
        else if (text.Equals("mnist", StringComparison.OrdinalIgnoreCase)) available = Mnist.Count;
        else return; // an unknown source is refused by LoadReal, with its own message
        if (count > available)
            throw new BadInputException($"--count {count} is more than the {available:N0} real images in {spec}");
    }

    static EvaluationSet Subset(ImageDataset data, int? count, long seed)
    {
        if (count > data.Count) throw new BadInputException($"--count {count} is more than the {data.Count:N0} real images in {data.Description}");
        var n = Math.Min(count ?? data.Count, data.Count);
        var order = DataStream.Permutation(data.Count, (ulong)seed, 0);
        using var index = tensor(order.Take(n).Select(i => (long)i).ToArray(), dtype: int64);
        using var chosen = data.Images.index_select(0, index);
        return new EvaluationSet(ImageBatch.FromSigned(chosen), Selection(n, data.Count, count, seed), data.Skipped);
    }

    static string Selection(int used, int? count, long seed) => count is null ? $"all {used:N0}" : $"random {used:N0} (seed {seed})";

    static string Selection(int used, int available, int? count, long seed) =>
        count is null || used == available ? $"all {available:N0}" : $"random {used:N0} of {available:N0} (seed {seed})";
}
