using System.Text.Json;
using System.Text.Json.Nodes;
using DiffusionFunctional.Data;
using DiffusionFunctional.Diffusion;
using DiffusionFunctional.Evaluation;
using DiffusionFunctional.Experiments.Data;
using static TorchSharp.torch;

namespace DiffusionFunctional.Experiments.Demo;

// The demo's data split and the folder manifest that ties a folder to one profile, data set and recipe.
public sealed partial class DemoRunner
{
    /// <summary>The profile's training set and held-out real images (fetching MNIST on first use), split by <see cref="DemoOptions.SplitSeed"/>.</summary>
    public (ImageDataset Train, ImageBatch Real) LoadData()
    {
        var data = LoadSplit();
        return (data.Train, data.Real);
    }

    /// <summary>
    /// The profile's split: the training set, the held-out real reference images, and the rest of the held-out images
    /// (<see cref="DemoData.Spare"/>: neither trained on nor in the reference, for real-vs-real floors).
    /// </summary>
    public DemoData LoadSplit()
    {
        var profile = options.Profile;
        MnistFetch.EnsureAvailable(options.Data, log);
        using var all = DataSources.Load(options.Data, profile.Model.ImageChannels, profile.Model.ImageSize, w => log($"warning: {w}"));
        var n = all.Count;
        if (n < profile.HeldOutImages + profile.BatchSize)
            throw new BadInputException($"{options.Data} has {n} images; the {profile.Name} profile holds out {profile.HeldOutImages} and trains on the rest (at least {profile.BatchSize} needed)");
        var order = DataStream.Permutation(n, (ulong)options.SplitSeed, 0);
        var trainCount = Math.Min(n - profile.HeldOutImages, profile.TrainImages ?? int.MaxValue);
        using var realIndex = tensor(order.Take(profile.RealSamples).Select(i => (long)i).ToArray(), dtype: int64);
        using var spareIndex = tensor(order.Skip(profile.RealSamples).Take(profile.HeldOutImages - profile.RealSamples).Select(i => (long)i).ToArray(), dtype: int64);
        using var trainIndex = tensor(order.Skip(profile.HeldOutImages).Take(trainCount).Select(i => (long)i).ToArray(), dtype: int64);
        ImageBatch real;
        using (var chosen = all.Images.index_select(0, realIndex)) real = ImageBatch.FromSigned(chosen);
        ImageBatch? spare = null;
        if (spareIndex.shape[0] > 0)
            using (var chosen = all.Images.index_select(0, spareIndex)) spare = ImageBatch.FromSigned(chosen);
        var train = new ImageDataset(all.Images.index_select(0, trainIndex), $"{all.Description}, {trainCount} training images", 0,
            $"{all.ContentIdentity}; {trainCount} training images, split seed {options.SplitSeed}");
        log($"output: {options.OutputDirectory}; data: {all.Description}, {n} images at {profile.Model.ImageSize}x{profile.Model.ImageSize}: {trainCount} for training, {profile.RealSamples} held-out real images for FD; training precision {profile.Precision}");
        return new DemoData(train, real, spare);
    }

    // Relaxed escaping: the manifest is read by people too, and "DPM-Solver++" should not read "DPM-Solver\u002B\u002B".
    static readonly JsonSerializerOptions ManifestJson = new() { WriteIndented = true, Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    static string Unrecorded(string key) => key == "sampler" ? "DDIM or DDPM" : "unset";

    /// <summary>Results of one profile and data set only: a re-run with another profile must choose another folder.
    /// Compares with the folder's <c>demo.json</c>, and writes it when missing and <paramref name="write"/> is set.</summary>
    void CheckOrWriteManifest(bool write)
    {
        var path = Path.Combine(options.OutputDirectory, "demo.json");
        var manifest = new JsonObject
        {
            ["format"] = 2, ["profile"] = options.Profile.Name, ["data"] = options.Data, ["schedule"] = options.Schedule,
            ["timesteps"] = options.Timesteps, ["split_seed"] = options.SplitSeed,
        };
        // Recorded only when they differ from what older folders implied, so those folders keep resuming.
        if (options.Prediction != PredictionType.Epsilon) manifest["prediction"] = "v";
        // ours:sampler=ddim is what ours was before DPM-Solver++ became the profiles' sampler: its folders resume with it.
        if (options.Recipe is { } recipe && recipe is not ("ours" or "ours:sampler=ddim")) manifest["recipe"] = recipe;
        if (options.Model is { } model) manifest["model"] = model;
        // Folders from before DPM-Solver++(2M) became the profiles' sampler were scored with DDIM or DDPM: a resumed run
        // must not change sampler between evaluation points.
        if (options.Profile.SamplerKind == SamplerKind.DpmSolver2M) manifest["sampler"] = options.Profile.Sampler(0).Description;
        if (File.Exists(path))
        {
            var existing = JsonNode.Parse(File.ReadAllText(path))?.AsObject();
            foreach (var key in manifest.Select(p => p.Key).Union(existing?.Select(p => p.Key) ?? []))
                if (existing?[key]?.ToJsonString() != manifest[key]?.ToJsonString() && manifest[key] is var value)
                    throw new BadInputException($"{options.OutputDirectory} holds a demo with {key} {existing?[key]?.ToJsonString(ManifestJson) ?? Unrecorded(key)}, not {value?.ToJsonString(ManifestJson) ?? Unrecorded(key)}: choose another --out");
            return;
        }
        // Atomic: shards of one grid starting together may both write it (the same text).
        if (write) AtomicFile.Write(path, temp => File.WriteAllText(temp, manifest.ToJsonString(ManifestJson)), uniqueTemporary: true);
    }
}
