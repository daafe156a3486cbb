using System.Diagnostics;
using System.Text.Json;
using DiffusionFunctional.Data;
using DiffusionFunctional.Experiments.Demo;
using DiffusionFunctional.Diffusion;
using DiffusionFunctional.Models;
using DiffusionFunctional.Training;
using DiffusionFunctional.Weighting;
using TorchSharp;

namespace DiffusionFunctional.Experiments.Bench;

/// <summary>
/// What every method of a weighting benchmark shares: training set, network, diffusion and optimisation settings.
/// Methods are written as in the demo (<c>weighting[:objective[:k]]</c>) and get the demo's clusters, and every run
/// is a <see cref="Trainer"/>, so stability and overhead are measured on the loop that trains for real.
/// </summary>
public sealed class WeightingBenchSetup : IDisposable
{
    private WeightingBenchSetup(ImageDataset data, DenoiserConfig model, GaussianDiffusion diffusion, TrainerOptions options, string description)
    {
        Data = data;
        Model = model;
        Diffusion = diffusion;
        Options = options;
        Description = description;
    }

    /// <summary>The training set (owned: disposed with the setup).</summary>
    public ImageDataset Data { get; }
    /// <summary>The network every run builds afresh (the same initial weights for a given seed).</summary>
    public DenoiserConfig Model { get; }
    /// <summary>The diffusion (linear schedule).</summary>
    public GaussianDiffusion Diffusion { get; }
    /// <summary>Optimisation settings shared by all runs (the method, plan and seed are set per run).</summary>
    public TrainerOptions Options { get; }
    /// <summary>One line naming the data, model and settings; a stored result counts only for the same line.</summary>
    public string Description { get; }

    /// <summary>A named network on synthetic blob images (no download): quick checks and overhead figures.</summary>
    public static WeightingBenchSetup Synthetic(string model, int timesteps, TrainerOptions options, int images = 256, long dataSeed = 1)
    {
        var config = Denoisers.Named(model, imageChannels: 1);
        var data = SyntheticImages.Blobs(images, config.ImageSize, dataSeed);
        return new WeightingBenchSetup(data, config, GaussianDiffusion.Create("linear", timesteps), options,
            Describe($"{model} {config.Kind}, {data.Description}, T = {timesteps}", options));
    }

    /// <summary>The demo's settings: the profile's network, optimiser, warm-up, clipping and EMA on its training split
    /// (<paramref name="options"/>: the profile's <see cref="DemoProfile.Training"/> settings, changed).</summary>
    public static WeightingBenchSetup FromDemo(DemoProfile profile, ImageDataset train, int timesteps = 1000, TrainerOptions? options = null)
    {
        options ??= profile.Training(0);
        return new WeightingBenchSetup(train, profile.Model, GaussianDiffusion.Create("linear", timesteps), options,
            Describe($"demo profile {profile.Name}, {train.Description}, T = {timesteps}", options));
    }

    private static string Describe(string what, TrainerOptions o) => FormattableString.Invariant(
        $"{what}; batch {o.BatchSize}, AdamW lr {o.LearningRate:G4}, warm-up {o.WarmupSteps}, clip {(o.GradientClipNorm is { } c ? c.ToString("G4", System.Globalization.CultureInfo.InvariantCulture) : "none")}, EMA {o.EmaDecay}{(o.EmaWarmup ? " (warm-up)" : "")}, divergence factor {o.DivergenceFactor?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "none"}");

    /// <summary>
    /// A trainer for one method and seed. The seed fixes the initial weights (the same for every method), data order,
    /// timesteps and noise; <paramref name="weighting"/> replaces the registered method (e.g. a baseline).
    /// </summary>
    public Trainer CreateTrainer(DemoMethod method, long seed, IWeighting? weighting = null)
    {
        var options = Options with { Seed = seed, Weighting = method.Weighting, Plan = method.Plan("linear", Diffusion.Timesteps), TimestepDensity = method.Density };
        return Trainer.Create(method.Model(Model, Diffusion.Timesteps), Diffusion, Data, options, weighting: weighting);
    }

    /// <inheritdoc/>
    public void Dispose() => Data.Dispose();
}

/// <summary>One stability run: how far it got and whether (and why) it diverged.</summary>
/// <param name="Method">The method as written (<c>uw:snr:5</c>).</param>
/// <param name="Seed">Seed of the initial weights, data order, timesteps and noise.</param>
/// <param name="Steps">Steps the run was asked for.</param>
/// <param name="StepsRun">Steps completed (fewer when it diverged).</param>
/// <param name="FinalMeanLoss">Plain mean per-sample loss over the last 20 steps run (comparable across methods).</param>
/// <param name="DivergedAt">The 1-based step that diverged, or null.</param>
/// <param name="Reason">What tripped the guard, or null.</param>
/// <param name="MedianStepSeconds">Median wall time of a step.</param>
/// <param name="Setup">The <see cref="WeightingBenchSetup.Description"/> it ran under.</param>
public sealed record StabilityResult(string Method, long Seed, long Steps, long StepsRun, double FinalMeanLoss,
    long? DivergedAt, string? Reason, double MedianStepSeconds, string Setup)
{
    /// <summary>Whether the run diverged.</summary>
    public bool Diverged => DivergedAt is not null;
}

/// <summary>
/// Trains each method over several seeds with the trainer's own divergence guard and reports every run. Results are
/// appended to a JSON-lines file as each run ends, and a re-run skips the runs already there (same method, seed, steps
/// and setup), so a long check can be interrupted and resumed.
/// </summary>
public static class WeightingStability
{
    /// <summary>Trains one method and seed to the setup's step count; null when cancelled.</summary>
    public static StabilityResult? Run(WeightingBenchSetup setup, DemoMethod method, long seed, CancellationToken cancellation = default,
        IProgress<StepMetrics>? progress = null)
    {
        using var trainer = setup.CreateTrainer(method, seed);
        var losses = new List<double>();
        var seconds = new List<double>();
        var outcome = trainer.Train(cancellation, new InlineProgress<StepMetrics>(m =>
        {
            losses.Add(m.MeanLoss);
            seconds.Add(m.Seconds);
            progress?.Report(m);
        }));
        if (outcome == TrainingOutcome.Interrupted) return null;
        var tail = losses.Skip(Math.Max(0, losses.Count - 20)).DefaultIfEmpty(double.NaN).Average();
        return new StabilityResult(method.ToString(), seed, setup.Options.Steps, losses.Count, tail, trainer.Divergence?.Step,
            trainer.Divergence?.Reason, WeightingOverhead.Median(seconds), setup.Description);
    }

    /// <summary>The results stored in <paramref name="path"/> (none when it does not exist; torn lines skipped).</summary>
    public static List<StabilityResult> Load(string path)
    {
        var results = new List<StabilityResult>();
        if (!File.Exists(path)) return results;
        foreach (var line in File.ReadLines(path))
        {
            try { if (JsonSerializer.Deserialize<StabilityResult>(line) is { } r) results.Add(r); }
            catch (JsonException) { }
        }
        return results;
    }

    /// <summary>Appends one result as a line, flushed before returning.</summary>
    public static void Append(string path, StabilityResult result)
    {
        if (Path.GetDirectoryName(Path.GetFullPath(path)) is { } dir) Directory.CreateDirectory(dir);
        using var stream = new FileStream(path, FileMode.Append, FileAccess.Write, FileShare.Read);
        using var writer = new StreamWriter(stream);
        writer.WriteLine(JsonSerializer.Serialize(result));
        writer.Flush();
        stream.Flush(flushToDisk: true);
    }
}

/// <summary>Step time of one method in an overhead run.</summary>
/// <param name="Method">The method as written, or <see cref="WeightingOverhead.KBackward"/>.</param>
/// <param name="CpuSeconds">Mean process CPU time per timed step (amortised costs such as Nash's periodic solve count).</param>
/// <param name="WallSeconds">Median wall time per timed step.</param>
public sealed record OverheadResult(string Method, double CpuSeconds, double WallSeconds);

/// <summary>
/// Step time of every method relative to vanilla: all trainers live at once and take their steps in turn, so a shared
/// machine's changing load falls on every method alike.
/// </summary>
public static class WeightingOverhead
{
    /// <summary>Name of the baseline row: one forward and k backward passes, nothing else.</summary>
    public const string KBackward = "k-backward";

    /// <summary>Times <paramref name="steps"/> steps of each method (the first <paramref name="untimed"/> not counted);
    /// adds a <see cref="KBackward"/> row with k clusters from <paramref name="baselineClusters"/>.</summary>
    public static IReadOnlyList<OverheadResult> Run(WeightingBenchSetup setup, IReadOnlyList<DemoMethod> methods, DemoMethod baselineClusters,
        int steps, int untimed = 3, CancellationToken cancellation = default)
    {
        var names = methods.Select(m => m.ToString()).Append(KBackward).ToList();
        var trainers = methods.Select(m => setup.CreateTrainer(m, 0))
            .Append(setup.CreateTrainer(baselineClusters, 0, new SequentialBackwardBaseline(baselineClusters.Clusters))).ToList();
        var cpu = names.Select(_ => new List<double>()).ToList();
        var wall = names.Select(_ => new List<double>()).ToList();
        try
        {
            for (var round = 0; round < steps && !cancellation.IsCancellationRequested; round++)
                for (var i = 0; i < trainers.Count; i++)
                {
                    var before = Process.GetCurrentProcess().TotalProcessorTime;
                    var seconds = double.NaN;
                    var trainer = trainers[i];
                    trainer.TrainUntil(trainer.Step + 1, progress: new InlineProgress<StepMetrics>(m => seconds = m.Seconds));
                    var used = (Process.GetCurrentProcess().TotalProcessorTime - before).TotalSeconds;
                    if (round < untimed) continue;
                    cpu[i].Add(used);
                    wall[i].Add(seconds);
                }
        }
        finally
        {
            foreach (var t in trainers) t.Dispose();
        }
        return names.Select((n, i) => new OverheadResult(n, cpu[i].DefaultIfEmpty(double.NaN).Average(), Median(wall[i]))).ToList();
    }

    /// <summary>The upper median (NaN for none): step times, where one slow step must not move the figure.</summary>
    internal static double Median(List<double> xs)
    {
        var a = xs.Order().ToArray();
        return a.Length == 0 ? double.NaN : a[a.Length / 2];
    }
}
