using DiffusionFunctional.Analysis;
using System.Text.Json;
using DiffusionFunctional.Clustering;
using DiffusionFunctional.Core;
using DiffusionFunctional.Data;
using DiffusionFunctional.Diffusion;
using DiffusionFunctional.Evaluation;
using DiffusionFunctional.Models;
using DiffusionFunctional.Training;
using static TorchSharp.torch;

namespace DiffusionFunctional.Experiments.Analysis;

/// <summary>Settings of a negative-transfer-gap experiment (method.md section 5).</summary>
/// <param name="Intervals">Equal timestep intervals, one specialist each (5 in the paper).</param>
/// <param name="Weighting">Weighting of the shared model ("vanilla", or an ANT method to measure its effect on NTG).</param>
/// <param name="Clusters">Clusters of the shared model's plan when its weighting uses them.</param>
/// <param name="EvalSamples">Generated images per FD (same sampler seed for the shared and every hybrid model).</param>
/// <param name="RealImages">Held-out real images for FD (never trained on).</param>
public sealed record NtgRequest(
    string Data, string OutputDirectory,
    int Intervals = 5, int Steps = 2000, int BatchSize = 64, double LearningRate = 1e-3, int WarmupSteps = 100,
    string Model = "small", int ImageSize = 16, string Schedule = "linear", int Timesteps = 1000, long Seed = 0,
    string Weighting = "vanilla", int Clusters = 5, string ClusterObjective = "snr",
    int EvalSamples = 256, int RealImages = 1000, int SamplerSteps = 50, int Threads = 2, int CheckpointEvery = 250);

/// <summary>FD of one hybrid sampler and its gap to the shared model: NTG = FD(hybrid) - FD(shared); negative means negative transfer.</summary>
public sealed record NtgInterval(int Index, int Start, int End, double FdHybrid, double Gap);

/// <summary>The whole experiment's outcome.</summary>
public sealed record NtgResult(double FdShared, IReadOnlyList<NtgInterval> Intervals, string JsonPath, string ChartPath);

/// <summary>
/// Trains the shared model and one specialist per interval (each resumable from its checkpoint), then scores each
/// hybrid sampler (specialist inside its interval, shared model elsewhere) by FD-ResNet18 against held-out real data.
/// Finished evaluations are kept in ntg-evaluations.json, so an interrupted run redoes nothing.
/// </summary>
public static class NegativeTransferGap
{
    public static NtgResult Run(NtgRequest r, CancellationToken cancellation = default, Action<string>? log = null, Action<string, StepMetrics>? onStep = null)
    {
        Validate(r);
        var config = UNetConfig.Named(r.Model, imageChannels: 1, imageSize: r.ImageSize);
        OutputLocation.CheckDirectory(r.OutputDirectory);
        using var all = DataSources.Load(r.Data, config.ImageChannels, config.ImageSize, log);
        if (all.Count <= r.RealImages) throw new BadInputException($"the data set has {all.Count} images; --real-images {r.RealImages} leaves none to train on");
        var (train, real) = Split(all, r.RealImages, r.Seed);
        using (train)
        using (real)
        {
            var diffusion = GaussianDiffusion.Create(r.Schedule, r.Timesteps);
            var sharedPlan = SharedPlan(r, diffusion);
            var width = r.Timesteps / r.Intervals;

            using var shared = TrainOne(r, config, diffusion, train, "shared", sharedPlan, r.Weighting, null, cancellation, log, onStep);
            var specialists = new List<Trainer>();
            try
            {
                for (var i = 0; i < r.Intervals; i++)
                    specialists.Add(TrainOne(r, config, diffusion, train, $"specialist-{i}", null, "vanilla",
                        new IntervalTimestepSampler(i * width, (i + 1) * width), cancellation, log, onStep));
                cancellation.ThrowIfCancellationRequested();
                return Evaluate(r, config, diffusion, real, shared, specialists, log);
            }
            finally
            {
                foreach (var s in specialists) s.Dispose();
            }
        }
    }

    static void Validate(NtgRequest r)
    {
        if (r.Intervals < 1) throw new BadInputException($"--intervals must be at least 1, got {r.Intervals}");
        if (r.Timesteps % r.Intervals != 0) throw new BadInputException($"--intervals {r.Intervals} does not divide T = {r.Timesteps}");
        if (r.EvalSamples < 2) throw new BadInputException($"--samples must be at least 2, got {r.EvalSamples}");
        if (r.RealImages < 2) throw new BadInputException($"--real-images must be at least 2, got {r.RealImages}");
        if (r.SamplerSteps < 1 || r.SamplerSteps > r.Timesteps) throw new BadInputException($"--sampler-steps must lie in 1..{r.Timesteps}, got {r.SamplerSteps}");
    }

    static (ImageDataset Train, ImageDataset Real) Split(ImageDataset all, int realCount, long seed)
    {
        var order = DataStream.Permutation(all.Count, (ulong)seed, ulong.MaxValue); // a permutation the training stream never uses
        using var realIdx = tensor(order.Take(realCount).Select(i => (long)i).ToArray(), dtype: int64);
        using var trainIdx = tensor(order.Skip(realCount).Select(i => (long)i).ToArray(), dtype: int64);
        return (new ImageDataset(all.Images.index_select(0, trainIdx), all.Description + " (train split)"),
                new ImageDataset(all.Images.index_select(0, realIdx), all.Description + " (held out)"));
    }

    static ClusterPlan? SharedPlan(NtgRequest r, GaussianDiffusion diffusion)
    {
        if (r.Weighting.Trim().Equals("vanilla", StringComparison.OrdinalIgnoreCase) || r.Clusters <= 1) return null;
        return ClusterPlans.FromObjective(r.Schedule, r.Timesteps, r.Clusters, r.ClusterObjective);
    }

    static Trainer TrainOne(NtgRequest r, UNetConfig config, GaussianDiffusion diffusion, ImageDataset train, string name,
        ClusterPlan? plan, string weighting, ITimestepSampler? sampler, CancellationToken cancellation, Action<string>? log, Action<string, StepMetrics>? onStep)
    {
        var options = new TrainerOptions
        {
            Steps = r.Steps, BatchSize = r.BatchSize, LearningRate = r.LearningRate, WarmupSteps = r.WarmupSteps,
            Seed = r.Seed, Plan = plan, Weighting = weighting, Threads = r.Threads,
            OutputDirectory = Path.Combine(r.OutputDirectory, name), CheckpointEvery = r.CheckpointEvery, SampleCount = 0,
        };
        var trainer = Trainer.Create(config, diffusion, train, options, sampler);
        try
        {
            if (trainer.TryResume()) log?.Invoke($"{name}: resumed at step {trainer.Step}");
            if (trainer.Step < r.Steps)
            {
                log?.Invoke($"{name}: training steps {trainer.Step + 1}..{r.Steps}");
                var outcome = trainer.Train(cancellation, new InlineProgress<StepMetrics>(m => onStep?.Invoke(name, m)));
                if (outcome == TrainingOutcome.Interrupted) throw new OperationCanceledException(cancellation);
                // A diverged model's FD would measure the divergence, not transfer between tasks.
                if (outcome == TrainingOutcome.Diverged) throw new TrainingDivergedException(trainer.Divergence!);
            }
            return trainer;
        }
        catch
        {
            trainer.Dispose();
            throw;
        }
    }

    static NtgResult Evaluate(NtgRequest r, UNetConfig config, GaussianDiffusion diffusion, ImageDataset real,
        Trainer shared, IReadOnlyList<Trainer> specialists, Action<string>? log)
    {
        var store = Path.Combine(r.OutputDirectory, "ntg-evaluations.json");
        var done = File.Exists(store) ? JsonSerializer.Deserialize<Dictionary<string, double>>(File.ReadAllText(store)) ?? [] : [];
        using var evaluator = new Evaluator();
        using var realUnit = ((real.Images + 1) / 2).clamp(0, 1);
        var realBatch = ImageBatch.FromTensor(realUnit);
        var sampler = new SamplerOptions { Kind = SamplerKind.Ddim, Steps = r.SamplerSteps, Seed = r.Seed + 1 };
        long[] shape = [r.EvalSamples, config.ImageChannels, config.ImageSize, config.ImageSize];

        double Fd(string key, nn.Module<Tensor, Tensor, Tensor> model)
        {
            if (done.TryGetValue(key, out var cached)) return cached;
            log?.Invoke($"evaluating {key}: {r.EvalSamples} samples");
            using var images = Samplers.Sample(diffusion, model, shape, sampler);
            using var unit = ((images + 1) / 2).clamp(0, 1);
            var fd = evaluator.Evaluate(realBatch, ImageBatch.FromTensor(unit)).FdResNet18;
            done[key] = fd;
            AtomicFile.WriteAllText(store, JsonSerializer.Serialize(done));
            return fd;
        }

        foreach (var (name, trainer) in specialists.Select((t, i) => ($"specialist-{i}", t)).Prepend(("shared", shared)))
            if (trainer.Ema.InitialWeightShare > CheckpointModel.NoisyInitialShare)
                log?.Invoke(FormattableString.Invariant($"warning: the {name} model's EMA weights still hold {trainer.Ema.InitialWeightShare:P0} of the random initial weights: its samples are mostly noise and the NTG values measure that; train longer (--steps)"));
        var fdShared = Fd("shared", shared.Ema.Model);
        var width = r.Timesteps / r.Intervals;
        var intervals = new List<NtgInterval>();
        for (var i = 0; i < specialists.Count; i++)
        {
            using var hybrid = new HybridDenoiser(shared.Ema.Model, specialists[i].Ema.Model, i * width, (i + 1) * width);
            var fd = Fd($"hybrid-{i}", hybrid);
            intervals.Add(new NtgInterval(i, i * width, (i + 1) * width, fd, fd - fdShared));
        }
        var (json, chart) = NtgReport.Write(r, fdShared, intervals);
        return new NtgResult(fdShared, intervals, json, chart);
    }
}
