using System.ComponentModel;
using System.Globalization;
using System.Runtime.InteropServices;
using DiffusionFunctional.Backend;
using DiffusionFunctional.Clustering;
using DiffusionFunctional.Core;
using DiffusionFunctional.Data;
using DiffusionFunctional.Diffusion;
using DiffusionFunctional.Models;
using DiffusionFunctional.Training;
using DiffusionFunctional.Weighting;
using Spectre.Console;
using Spectre.Console.Cli;

namespace DiffusionFunctional.Cli.Commands;

/// <summary><c>dfn train</c>: builds a data set, model, diffusion and <see cref="Trainer"/> from options and runs it.</summary>
public sealed class TrainCommand : Command<TrainCommand.Settings>
{
    public const int Interrupted = 130;

    public sealed class Settings : CommandSettings
    {
        [CommandOption("--data <SOURCE>"), Description("mnist, idx:PATH (IDX images, .gz or not) or folder:PATH (PNG/JPEG).")]
        public string Data { get; init; } = "mnist";
        [CommandOption("--out <DIR>"), Description("Output directory: checkpoint.dfn, metrics.jsonl, samples/.")]
        public string? Out { get; init; }
        [CommandOption("--steps <N>"), DefaultValue(1000)] public int Steps { get; init; } = 1000;
        [CommandOption("--batch <B>"), DefaultValue(64)] public int Batch { get; init; } = 64;
        [CommandOption("--lr <LR>"), DefaultValue(2e-4)] public double Lr { get; init; } = 2e-4;
        [CommandOption("--seed <S>"), DefaultValue(0L)] public long Seed { get; init; }
        [CommandOption("--resume"), Description("Continue from DIR/checkpoint.dfn when it exists.")]
        public bool Resume { get; init; }
        [CommandOption("--device <DEVICE>"), Description("cpu or cuda."), DefaultValue("cpu")]
        public string Device { get; init; } = "cpu";
        [CommandOption("--model <NAME>"), Description("UNet configuration: tiny, small, mnist, base32."), DefaultValue("small")]
        public string Model { get; init; } = "small";
        [CommandOption("--image-size <PX>"), Description("Train at this size (default: the model's).")]
        public int? ImageSize { get; init; }
        [CommandOption("--channels <C>"), Description("1 (grey) or 3 (RGB); default: the model's.")]
        public int? Channels { get; init; }
        [CommandOption("--schedule <NAME>"), DefaultValue("linear")] public string Schedule { get; init; } = "linear";
        [CommandOption("--timesteps <T>"), DefaultValue(1000)] public int Timesteps { get; init; } = 1000;
        [CommandOption("--prediction <KIND>"), Description("eps or v."), DefaultValue("eps")]
        public string Prediction { get; init; } = "eps";
        [CommandOption("--clusters <K>"), Description("Timestep clusters for stratified sampling (1: vanilla)."), DefaultValue(1)]
        public int Clusters { get; init; } = 1;
        [CommandOption("--cluster-objective <NAME>"), Description("timestep, snr (log-SNR) or affinity (with --affinity)."), DefaultValue("snr")]
        public string ClusterObjective { get; init; } = "snr";
        [CommandOption("--boundaries <LIST>"), Description("Explicit cluster boundaries instead of clustering, e.g. 0,153,394,624,823,1000 (from dfn cluster --json or a facade).")]
        public string? Boundaries { get; init; }
        [CommandOption("--affinity <FILE>"), Description("Affinity CSV (dfn affinity's output) for --cluster-objective affinity.")]
        public string? Affinity { get; init; }
        [CommandOption("--weighting <NAME>"), DefaultValue("vanilla"),
         Description("vanilla, min-snr, p2, edm2-uncertainty, importance, uw, uw-bounded, famo (loss-based); pcgrad, nash, imtl, cagrad, mgda (gradient-based, k backward passes). See docs/weightings.md.")]
        public string Weighting { get; init; } = "vanilla";
        [CommandOption("--snr-gamma <G>"), Description("min-snr: gamma."), DefaultValue(5.0)] public double SnrGamma { get; init; } = 5.0;
        [CommandOption("--p2-k <K>"), Description("p2: k."), DefaultValue(1.0)] public double P2K { get; init; } = 1.0;
        [CommandOption("--p2-gamma <G>"), Description("p2: gamma (0.5 or 1)."), DefaultValue(1.0)] public double P2Gamma { get; init; } = 1.0;
        [CommandOption("--uw-lr <LR>"), Description("uw, uw-bounded: learning rate of the log-variances."), DefaultValue(0.025)] public double UwLr { get; init; } = 0.025;
        [CommandOption("--nash-every <N>"), Description("nash: steps between Nash bargaining solves."), DefaultValue(25)] public int NashEvery { get; init; } = 25;
        [CommandOption("--cagrad-c <C>"), Description("cagrad: c in [[0, 1)."), DefaultValue(0.5)] public double CagradC { get; init; } = 0.5;
        [CommandOption("--ema-decay <D>"), DefaultValue(0.999)] public double EmaDecay { get; init; } = 0.999;
        [CommandOption("--warmup <STEPS>"), DefaultValue(0)] public int Warmup { get; init; }
        [CommandOption("--clip <NORM>"), Description("Gradient norm clip; 0 disables."), DefaultValue(1.0)]
        public double Clip { get; init; } = 1.0;
        [CommandOption("--divergence-factor <X>"),
         Description("Stop as diverged when a batch's plain loss exceeds X times the median of the last 50 (0: only NaN/inf stop the run)."), DefaultValue(20.0)]
        public double DivergenceFactor { get; init; } = 20.0;
        [CommandOption("--checkpoint-every <N>"), DefaultValue(500)] public int CheckpointEvery { get; init; } = 500;
        [CommandOption("--sample-every <N>"), Description("Sample grid interval (0: at the end only)."), DefaultValue(0)]
        public int SampleEvery { get; init; }
        [CommandOption("--sample-count <N>"), DefaultValue(16)] public int SampleCount { get; init; } = 16;
        [CommandOption("--threads <N>"), Description("libtorch CPU threads (results depend on it).")]
        public int? Threads { get; init; }
        [CommandOption("--log-every <N>"), Description("Plain-output line interval."), DefaultValue(10)]
        public int LogEvery { get; init; } = 10;
    }

    public override int Execute(CommandContext context, Settings s, CancellationToken cancellationToken)
    {
        if (string.IsNullOrWhiteSpace(s.Out)) throw new BadInputException("--out DIR is required");
        if (s.Steps <= 0) throw new BadInputException($"--steps must be positive, got {s.Steps}");
        if (!(s.Lr > 0)) throw new BadInputException($"--lr must be positive, got {s.Lr}");
        if (s.Batch < s.Clusters) throw new BadInputException($"--batch {s.Batch} is smaller than --clusters {s.Clusters}");
        if (s.Boundaries is not null && s.Clusters > 1) throw new BadInputException("give either --boundaries or --clusters, not both");
        try { TorchBackend.Resolve(s.Device); }
        catch (TorchBackend.DeviceUnavailableException e) { throw new BadInputException(e.Message); }

        var config = UNetConfig.Named(s.Model, s.Channels, s.ImageSize);
        var diffusion = GaussianDiffusion.Create(s.Schedule, s.Timesteps, GaussianDiffusion.ParsePrediction(s.Prediction));
        var plan = s.Boundaries is { } given
            ? ParseBoundaries(given, s.Timesteps)
            : s.Clusters <= 1
            ? ClusterPlan.Single(s.Timesteps)
            : ClusterPlan.Create(s.Timesteps, TimestepClustering.Run(new ClusterRequest(s.Schedule, s.Timesteps, s.Clusters, s.ClusterObjective, AffinityFile: s.Affinity)).Boundaries,
                $"{s.ClusterObjective} k={s.Clusters}");
        var checkpoint = Path.Combine(s.Out, Trainer.CheckpointName);
        if (!s.Resume && File.Exists(checkpoint))
            throw new BadInputException($"{s.Out} already holds a checkpoint: pass --resume to continue it or choose another --out");

        using var data = DataSources.Load(s.Data, config.ImageChannels, config.ImageSize, w => Console.Error.WriteLine($"dfn: warning: {w}"));
        if (data.Skipped > 0) Console.Error.WriteLine($"dfn: warning: skipped {data.Skipped} unreadable image(s), using {data.Count}");
        var options = new TrainerOptions
        {
            Steps = s.Steps, BatchSize = s.Batch, LearningRate = s.Lr, Seed = s.Seed, Device = s.Device, Plan = plan,
            Weighting = s.Weighting,
            WeightingSettings = new WeightingOptions
            {
                MinSnrGamma = s.SnrGamma, P2K = s.P2K, P2Gamma = s.P2Gamma, UncertaintyLearningRate = s.UwLr,
                NashSolveEvery = s.NashEvery, CagradC = s.CagradC,
            },
            EmaDecay = s.EmaDecay, WarmupSteps = s.Warmup, GradientClipNorm = s.Clip > 0 ? s.Clip : null,
            OutputDirectory = s.Out, CheckpointEvery = s.CheckpointEvery, SampleEvery = s.SampleEvery, SampleCount = s.SampleCount,
            Threads = s.Threads, DivergenceFactor = s.DivergenceFactor == 0 ? null : s.DivergenceFactor,
        };
        using var trainer = Trainer.Create(config, diffusion, data, options);
        if (s.Resume && trainer.TryResume())
            Console.Error.WriteLine($"dfn: resuming {checkpoint} at step {trainer.Step}");
        Console.Error.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"dfn: {data.Count} images from {data.Description}, model {s.Model} ({trainer.Model.ParameterCount:N0} parameters), {plan}, device {trainer.Device.type}, {TorchSharp.torch.get_num_threads()} threads"));

        using var interrupt = new CancellationTokenSource();
        using var onInt = PosixSignalRegistration.Create(PosixSignal.SIGINT, c => { c.Cancel = true; interrupt.Cancel(); });
        using var onTerm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, c => { c.Cancel = true; interrupt.Cancel(); });
        var outcome = ProgressReporter.IsInteractive
            ? ProgressReporter.RunWithBar(trainer, interrupt.Token)
            : ProgressReporter.RunWithLines(trainer, interrupt.Token, Math.Max(1, s.LogEvery));
        if (outcome == TrainingOutcome.Diverged)
        {
            var kept = File.Exists(checkpoint) ? $"last good checkpoint kept: {checkpoint}" : "no checkpoint had been written yet";
            return DfnApp.Fail(DfnApp.Failure, $"training diverged at step {trainer.Divergence!.Step} ({trainer.Divergence.Reason}); {kept}");
        }
        if (outcome == TrainingOutcome.Interrupted)
        {
            Console.Error.WriteLine($"dfn: interrupted; checkpoint of step {trainer.Step} written to {checkpoint}");
            return Interrupted;
        }
        Console.Error.WriteLine($"dfn: done, {trainer.Step} steps; checkpoint {checkpoint}, metrics {Path.Combine(s.Out, "metrics.jsonl")}");
        return DfnApp.Ok;
    }

    static ClusterPlan ParseBoundaries(string text, int timesteps)
    {
        var parts = text.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
        var bounds = new int[parts.Length];
        for (var i = 0; i < parts.Length; i++)
            if (!int.TryParse(parts[i], NumberStyles.Integer, CultureInfo.InvariantCulture, out bounds[i]))
                throw new BadInputException($"--boundaries: '{parts[i]}' is not an integer");
        try { return ClusterPlan.Create(timesteps, bounds, "boundaries given"); }
        catch (ArgumentException e) { throw new BadInputException($"--boundaries: {e.Message.Split(" (Parameter")[0]}"); }
    }
}
