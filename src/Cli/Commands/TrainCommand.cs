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
        [CommandOption("--cluster-objective <NAME>"), Description("timestep or snr."), DefaultValue("snr")]
        public string ClusterObjective { get; init; } = "snr";
        [CommandOption("--weighting <NAME>"), DefaultValue("vanilla")] public string Weighting { get; init; } = "vanilla";
        [CommandOption("--ema-decay <D>"), DefaultValue(0.999)] public double EmaDecay { get; init; } = 0.999;
        [CommandOption("--warmup <STEPS>"), DefaultValue(0)] public int Warmup { get; init; }
        [CommandOption("--clip <NORM>"), Description("Gradient norm clip; 0 disables."), DefaultValue(1.0)]
        public double Clip { get; init; } = 1.0;
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
        try { TorchBackend.Resolve(s.Device); }
        catch (TorchBackend.DeviceUnavailableException e) { throw new BadInputException(e.Message); }

        var config = UNetConfig.Named(s.Model, s.Channels, s.ImageSize);
        var diffusion = GaussianDiffusion.Create(s.Schedule, s.Timesteps, GaussianDiffusion.ParsePrediction(s.Prediction));
        var plan = s.Clusters <= 1
            ? ClusterPlan.Single(s.Timesteps)
            : ClusterPlan.Create(s.Timesteps, TimestepClustering.Run(new ClusterRequest(s.Schedule, s.Timesteps, s.Clusters, s.ClusterObjective)).Boundaries,
                $"{s.ClusterObjective} k={s.Clusters}");
        var checkpoint = Path.Combine(s.Out, Trainer.CheckpointName);
        if (!s.Resume && File.Exists(checkpoint))
            throw new BadInputException($"{s.Out} already holds a checkpoint: pass --resume to continue it or choose another --out");

        using var data = DataSources.Load(s.Data, config.ImageChannels, config.ImageSize, w => Console.Error.WriteLine($"dfn: warning: {w}"));
        if (data.Skipped > 0) Console.Error.WriteLine($"dfn: warning: skipped {data.Skipped} unreadable image(s), using {data.Count}");
        var options = new TrainerOptions
        {
            Steps = s.Steps, BatchSize = s.Batch, LearningRate = s.Lr, Seed = s.Seed, Device = s.Device, Plan = plan,
            Weighting = s.Weighting, EmaDecay = s.EmaDecay, WarmupSteps = s.Warmup, GradientClipNorm = s.Clip > 0 ? s.Clip : null,
            OutputDirectory = s.Out, CheckpointEvery = s.CheckpointEvery, SampleEvery = s.SampleEvery, SampleCount = s.SampleCount,
            Threads = s.Threads,
        };
        using var trainer = Trainer.Create(config, diffusion, data, options);
        if (s.Resume && trainer.TryResume())
            Console.Error.WriteLine($"dfn: resuming {checkpoint} at step {trainer.Step}");
        Console.Error.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"dfn: {data.Count} images from {data.Description}, model {s.Model} ({trainer.Model.ParameterCount:N0} parameters), {plan}, device {trainer.Device.type}, {TorchSharp.torch.get_num_threads()} threads"));

        using var interrupt = new CancellationTokenSource();
        using var onInt = PosixSignalRegistration.Create(PosixSignal.SIGINT, c => { c.Cancel = true; interrupt.Cancel(); });
        using var onTerm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, c => { c.Cancel = true; interrupt.Cancel(); });
        TrainingOutcome outcome;
        try
        {
            outcome = ProgressReporter.IsInteractive
                ? ProgressReporter.RunWithBar(trainer, interrupt.Token)
                : ProgressReporter.RunWithLines(trainer, interrupt.Token, Math.Max(1, s.LogEvery));
        }
        catch (NonFiniteLossException e)
        {
            var kept = File.Exists(checkpoint) ? $"last good checkpoint kept: {checkpoint}" : "no checkpoint had been written yet";
            return DfnApp.Fail(DfnApp.Failure, $"loss became non-finite at step {e.Step}; training stopped; {kept}");
        }
        if (outcome == TrainingOutcome.Interrupted)
        {
            Console.Error.WriteLine($"dfn: interrupted; checkpoint of step {trainer.Step} written to {checkpoint}");
            return Interrupted;
        }
        Console.Error.WriteLine($"dfn: done, {trainer.Step} steps; checkpoint {checkpoint}, metrics {Path.Combine(s.Out, "metrics.jsonl")}");
        return DfnApp.Ok;
    }
}
