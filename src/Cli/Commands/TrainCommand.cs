using System.ComponentModel;
using System.Globalization;
using DiffusionFunctional.Clustering;
using DiffusionFunctional.Core;
using DiffusionFunctional.Data;
using DiffusionFunctional.Diffusion;
using DiffusionFunctional.Experiments.Data;
using DiffusionFunctional.Models;
using DiffusionFunctional.Training;
using DiffusionFunctional.Weighting;
using Spectre.Console;
using Spectre.Console.Cli;

namespace DiffusionFunctional.Cli.Commands;

/// <summary><c>dfn train</c>: builds a data set, model, diffusion and <see cref="Trainer"/> from options and runs it.</summary>
public sealed class TrainCommand : Command<TrainSettings>
{
    /// <inheritdoc/>
    public override int Execute(CommandContext context, TrainSettings s, CancellationToken stop)
    {
        var config = Denoisers.Named(s.Model, s.Channels, s.ImageSize).WithRouting(s.Routing, s.RoutingShare, s.RoutingSharpness, s.Timesteps);
        var diffusion = GaussianDiffusion.Create(s.Schedule, s.Timesteps, GaussianDiffusion.ParsePrediction(s.Prediction));
        var plan = s.Boundaries is { } given ? ClusterPlans.FromBoundaries(given, s.Timesteps)
            : ClusterPlans.FromObjective(s.Schedule, s.Timesteps, s.Clusters, s.ClusterObjective, s.Affinity);
        var checkpoint = Path.Combine(s.Out!, Trainer.CheckpointName);
        Bf16Support.Require(s.Precision, Backend.TorchBackend.Resolve(s.Device)); // before any data is fetched
        OutputLocation.CheckDirectory(s.Out!);
        RunDirectoryLock.Acquire(s.Out!).Dispose(); // a second run on this folder stops here, before loading data

        MnistFetch.EnsureAvailable(s.Data, Messages.Info);
        using var data = DataSources.Load(s.Data, config.ImageChannels, config.ImageSize, Messages.Warn);
        if (data.Skipped > 0) Messages.Warn($"skipped {data.Skipped} unreadable image(s), using {data.Count}");
        using var trainer = Trainer.Create(config, diffusion, data, s.ToTrainerOptions(plan));
        trainer.Warning += Messages.Warn;
        if (s.Resume && trainer.TryResume()) Messages.Info($"resuming {checkpoint} at step {trainer.Step}");
        Messages.Info(string.Create(CultureInfo.InvariantCulture,
            $"{data.Count} images from {data.Description}, model {s.Model} ({trainer.Model.ParameterCount:N0} parameters), {plan}, weighting {trainer.Weighting.Name}, device {trainer.Device.type}, {TorchSharp.torch.get_num_threads()} threads"));

        var outcome = Messages.IsInteractive ? TrainingProgress.WithBar(trainer, stop) : TrainingProgress.WithLines(trainer, stop, s.LogEvery);
        switch (outcome)
        {
            case TrainingOutcome.Diverged:
                var kept = File.Exists(checkpoint) ? $"last good checkpoint kept: {checkpoint}" : "no checkpoint had been written yet";
                return DfnApp.Fail(DfnApp.Failure, $"training diverged at step {trainer.Divergence!.Step} ({trainer.Divergence.Reason}); {kept}");
            case TrainingOutcome.Interrupted:
                Messages.Info($"interrupted; checkpoint of step {trainer.Step} written to {checkpoint}; add --resume to continue");
                return DfnApp.Interrupted;
            default:
                Messages.Info($"done, {trainer.Step} steps; checkpoint {checkpoint}, metrics {Path.Combine(s.Out!, "metrics.jsonl")}");
                return DfnApp.Ok;
        }
    }
}

/// <summary>The options of <c>dfn train</c>, validated before anything is built.</summary>
public sealed class TrainSettings : Options.ModelSettings
{
    /// <summary>Output folder.</summary>
    [CommandOption("--out <DIR>"), Description("Output folder: checkpoint.dfn, metrics.jsonl, samples/ (required).")]
    public string? Out { get; init; }
    /// <summary>Total steps.</summary>
    [CommandOption("--steps <N>"), Description(Options.OptionText.Steps + " A resumed run continues to this count."), DefaultValue(1000)]
    public int Steps { get; init; } = 1000;
    /// <summary>Batch size.</summary>
    [CommandOption("--batch <B>"), Description(Options.OptionText.Batch + " At most the data set's size."), DefaultValue(64)]
    public int Batch { get; init; } = 64;
    /// <summary>Learning rate.</summary>
    [CommandOption("--lr <LR>"), Description(Options.OptionText.Lr), DefaultValue(2e-4)]
    public double Lr { get; init; } = 2e-4;
    /// <summary>Seed.</summary>
    [CommandOption("--seed <S>"), Description(Options.OptionText.Seed), DefaultValue(0L)]
    public long Seed { get; init; }
    /// <summary>Device.</summary>
    [CommandOption("--device <DEVICE>"), Description(Options.OptionText.Device), DefaultValue("cpu")]
    public string Device { get; init; } = "cpu";
    /// <summary>Resume.</summary>
    [CommandOption("--resume"), Description("Continue from DIR/checkpoint.dfn when it exists (every setting that changes what is trained must match it).")]
    public bool Resume { get; init; }
    /// <summary>Image size.</summary>
    [CommandOption("--image-size <PX>"), Description(Options.OptionText.ImageSize + " A multiple of 2^(levels-1) for a UNet, of the patch for a DiT, up to 512 (default: the model's).")]
    public int? ImageSize { get; init; }
    /// <summary>Channels.</summary>
    [CommandOption("--channels <C>"), Description("1 (grey) or 3 (RGB); default: the model's.")]
    public int? Channels { get; init; }
    /// <summary>Schedule.</summary>
    [CommandOption("--schedule <NAME>"), Description(Options.OptionText.Schedule), DefaultValue("linear")]
    public string Schedule { get; init; } = "linear";
    /// <summary>T.</summary>
    [CommandOption("--timesteps <T>"), Description(Options.OptionText.Timesteps), DefaultValue(1000)] public int Timesteps { get; init; } = 1000;
    /// <summary>Prediction type.</summary>
    [CommandOption("--prediction <KIND>"), Description(Options.OptionText.Prediction), DefaultValue("eps")]
    public string Prediction { get; init; } = "eps";
    /// <summary>k.</summary>
    [CommandOption("--clusters <K>"), Description(Options.OptionText.Clusters), DefaultValue(1)]
    public int Clusters { get; init; } = 1;
    /// <summary>Clustering objective.</summary>
    [CommandOption("--cluster-objective <NAME>"), Options.ListedDescription(Options.Listing.Objectives, "Clustering objective: {0} (affinity needs --affinity)."), DefaultValue("snr")]
    public string ClusterObjective { get; init; } = "snr";
    /// <summary>Explicit boundaries.</summary>
    [CommandOption("--boundaries <LIST>"), Description("Explicit cluster boundaries instead of clustering, e.g. 0,153,394,624,823,1000 (from dfn cluster --json or a facade).")]
    public string? Boundaries { get; init; }
    /// <summary>Affinity CSV.</summary>
    [CommandOption("--affinity <FILE>"), Description(Options.OptionText.Affinity)]
    public string? Affinity { get; init; }
    /// <summary>Task routing.</summary>
    [CommandOption("--routing <KIND>"), Description("none, or dtr: denoising task routing, a sliding channel window per timestep in every residual block (docs/routing-and-densities.md)."), DefaultValue("none")]
    public string Routing { get; init; } = "none";
    /// <summary>DTR share.</summary>
    [CommandOption("--routing-share <BETA>"), Description("dtr: fraction of channels each timestep activates, in (0, 1]]."), DefaultValue(Core.TaskRouting.DefaultShare)]
    public double RoutingShare { get; init; } = Core.TaskRouting.DefaultShare;
    /// <summary>DTR sharpness.</summary>
    [CommandOption("--routing-sharpness <ALPHA>"), Description("dtr: how the window slides with t (start ~ (t/(T-1))^alpha; above 1: slower for the least noisy steps)."), DefaultValue(Core.TaskRouting.DefaultSharpness)]
    public double RoutingSharpness { get; init; } = Core.TaskRouting.DefaultSharpness;
    /// <summary>Timestep density.</summary>
    [CommandOption("--timestep-density <SPEC>"), Description("uniform, logit-normal[[:m,s]], beta[[:a,b]] or speed[[:k,threshold]]: how timesteps are drawn within each cluster (default uniform).")]
    public string? TimestepDensity { get; init; }
    /// <summary>Importance weights for the density.</summary>
    [CommandOption("--density-importance"), Description("Reweight samples by 1/(T_c p(t|c)) so the density keeps the plain loss unbiased (see docs/routing-and-densities.md for when it is practical).")]
    public bool DensityImportance { get; init; }
    /// <summary>Weighting.</summary>
    [CommandOption("--weighting <NAME>"), DefaultValue("vanilla"), Options.ListedDescription(Options.Listing.Weightings, "Weighting method: {0} (docs/weightings.md).")]
    public string Weighting { get; init; } = "vanilla";
    /// <summary>Min-SNR gamma.</summary>
    [CommandOption("--snr-gamma <G>"), Description("min-snr: gamma."), DefaultValue(5.0)] public double SnrGamma { get; init; } = 5.0;
    /// <summary>P2 k.</summary>
    [CommandOption("--p2-k <K>"), Description("p2: k."), DefaultValue(1.0)] public double P2K { get; init; } = 1.0;
    /// <summary>P2 gamma.</summary>
    [CommandOption("--p2-gamma <G>"), Description("p2: gamma (0.5 or 1)."), DefaultValue(1.0)] public double P2Gamma { get; init; } = 1.0;
    /// <summary>UW learning rate.</summary>
    [CommandOption("--uw-lr <LR>"), Description("uw, uw-bounded: learning rate of the log-variances."), DefaultValue(0.025)] public double UwLr { get; init; } = 0.025;
    /// <summary>Nash interval.</summary>
    [CommandOption("--nash-every <N>"), Description("nash: steps between Nash bargaining solves."), DefaultValue(25)] public int NashEvery { get; init; } = 25;
    /// <summary>CAGrad c.</summary>
    [CommandOption("--cagrad-c <C>"), Description("cagrad: c in [[0, 1)."), DefaultValue(0.5)] public double CagradC { get; init; } = 0.5;
    /// <summary>EMA decay.</summary>
    [CommandOption("--ema-decay <D>"), Description("EMA decay per step, in [[0, 1)."), DefaultValue(0.999)] public double EmaDecay { get; init; } = 0.999;
    /// <summary>No EMA warm-up.</summary>
    [CommandOption("--no-ema-warmup"), Description("Apply --ema-decay from the first step (by default the decay warms up as min(decay, (1+t)/(10+t)))).")]
    public bool NoEmaWarmup { get; init; }
    /// <summary>Learning-rate warm-up.</summary>
    [CommandOption("--warmup <STEPS>"), Description(Options.OptionText.Warmup), DefaultValue(0)] public int Warmup { get; init; }
    /// <summary>Gradient clip.</summary>
    [CommandOption("--clip <NORM>"), Description(Options.OptionText.Clip), DefaultValue(1.0)]
    public double Clip { get; init; } = 1.0;
    /// <summary>Divergence factor.</summary>
    [CommandOption("--divergence-factor <X>"),
     Description("Stop as diverged when a batch's plain loss exceeds X times the median of the last 50 (0: only NaN/inf stop the run)."), DefaultValue(TrainerOptions.DefaultDivergenceFactor)]
    public double DivergenceFactor { get; init; } = TrainerOptions.DefaultDivergenceFactor;
    /// <summary>Checkpoint interval.</summary>
    [CommandOption("--checkpoint-every <N>"), Description("Steps between checkpoints (0: only at the end and on interruption)."), DefaultValue(500)]
    public int CheckpointEvery { get; init; } = 500;
    /// <summary>Sample-grid interval.</summary>
    [CommandOption("--sample-every <N>"), Description("Sample grid interval (0: at the end only)."), DefaultValue(0)]
    public int SampleEvery { get; init; }
    /// <summary>Sample-grid size.</summary>
    [CommandOption("--sample-count <N>"), Description("Images per sample grid (0: no grids)."), DefaultValue(16)] public int SampleCount { get; init; } = 16;
    /// <summary>Precision.</summary>
    [CommandOption("--precision <P>"), Description(Options.OptionText.Precision), DefaultValue("fp32")]
    public string Precision { get; init; } = "fp32";
    /// <summary>Plain-output interval.</summary>
    [CommandOption("--log-every <N>"), Description(Options.OptionText.LogEvery), DefaultValue(10)]
    public int LogEvery { get; init; } = 10;

    /// <inheritdoc/>
    protected override IEnumerable<ValidationResult?> OwnChecks() =>
    [
        Checks.Required(Out, "--out DIR"), Checks.Device(Device),
        Out is { } dir && !Resume && File.Exists(Path.Combine(dir, Trainer.CheckpointName))
            ? Checks.Error($"{dir} already holds a checkpoint: pass --resume to continue it or choose another --out") : null,
        WeightingRegistry.Find(Weighting) is { } method ? Checks.Library(() => WeightingRegistry.Validate(method, Settings()), "--weighting " + method.Name)
            : Checks.Error($"--weighting '{Weighting}' is unknown (expected one of: {string.Join(", ", WeightingRegistry.Names)})"),
        Prediction.Trim().ToLowerInvariant() is "eps" or "epsilon" or "v" or "v_prediction" ? null : Checks.Error($"unknown prediction type '{Prediction}' (expected eps or v)"),
        Routing.Trim().ToLowerInvariant() is "none" or "dtr" ? null : Checks.Error($"unknown routing '{Routing}' (expected none or dtr)"),
        TimestepDensity is null || Core.TimestepDensities.TryParse(TimestepDensity, out _, out _) ? null : Checks.Error($"unknown timestep density '{TimestepDensity}' (expected uniform, logit-normal[:m,s], beta[:a,b] or speed)"),
        Checks.Positive(Steps, "--steps"), Checks.Positive(Batch, "--batch"), Checks.PositiveFinite(Lr, "--lr"),
        Checks.Positive(Timesteps, "--timesteps"),
        Checks.Library(() => TrainerOptions.CheckClusterCount(Clusters, Batch, Timesteps), "--clusters"),
        Boundaries is not null && Clusters > 1 ? Checks.Error("give either --boundaries or --clusters, not both") : null,
        Checks.Fraction(EmaDecay, "--ema-decay"), Checks.NotNegative(Warmup, "--warmup"), Checks.NotNegativeFinite(Clip, "--clip"),
        DivergenceFactor != 0 && !(DivergenceFactor > 1 && double.IsFinite(DivergenceFactor)) ? Checks.Error($"--divergence-factor must be 0 or a finite number above 1, got {DivergenceFactor}") : null,
        Checks.NotNegative(CheckpointEvery, "--checkpoint-every"), Checks.NotNegative(SampleEvery, "--sample-every"),
        Checks.NotNegative(SampleCount, "--sample-count"), Checks.Positive(LogEvery, "--log-every"), Checks.Precision(Precision),
        WeightingOptionError(),
    ];

    /// <summary>Every method's options are checked, not only the chosen one's: a bad value is a mistake whichever
    /// method runs. The registry holds each setting's check.</summary>
    ValidationResult? WeightingOptionError() => WeightingRegistry.All.SelectMany(m => m.Settings)
        .Where(s => s.Option is not null && OptionValues.ContainsKey(s.Option))
        .Select(s => s.Check(OptionValues[s.Option!]) is { } problem ? Checks.Error($"{s.Option} {problem}") : null)
        .FirstOrDefault(r => r is not null);

    /// <summary>The values of the weighting options this command declares, by option name (the registry says which
    /// method and setting each one sets).</summary>
    Dictionary<string, double> OptionValues => new()
    {
        ["--snr-gamma"] = SnrGamma, ["--p2-k"] = P2K, ["--p2-gamma"] = P2Gamma, ["--uw-lr"] = UwLr, ["--nash-every"] = NashEvery, ["--cagrad-c"] = CagradC,
    };

    /// <summary>The chosen method's settings from its options.</summary>
    WeightingSettings Settings() => WeightingRegistry.Find(Weighting) is { } method
        ? method.Settings.Where(s => s.Option is not null && OptionValues.ContainsKey(s.Option))
            .Aggregate(WeightingSettings.Defaults, (settings, s) => settings.With(method.Name, s.Key, OptionValues[s.Option!]))
        : WeightingSettings.Defaults;

    /// <summary>The trainer's options for these settings and <paramref name="plan"/>.</summary>
    public TrainerOptions ToTrainerOptions(ClusterPlan plan) => new()
    {
        Steps = Steps, BatchSize = Batch, LearningRate = Lr, Seed = Seed, Device = Device, Plan = plan, Weighting = Weighting,
        WeightingSettings = Settings(),
        TimestepDensity = TimestepDensity, DensityImportanceWeights = DensityImportance,
        EmaDecay = EmaDecay, EmaWarmup = !NoEmaWarmup, WarmupSteps = Warmup, GradientClipNorm = Clip > 0 ? Clip : null,
        OutputDirectory = Out, CheckpointEvery = CheckpointEvery, SampleEvery = SampleEvery, SampleCount = SampleCount,
        Threads = Threads, DivergenceFactor = DivergenceFactor == 0 ? null : DivergenceFactor, Precision = TrainingPrecision.Parse(Precision),
    };
}
