using DiffusionFunctional.Timesteps;
using System.Text.Json;
using DiffusionFunctional.Analysis;
using DiffusionFunctional.Clustering;
using DiffusionFunctional.Core;
using DiffusionFunctional.Data;
using DiffusionFunctional.Diffusion;
using DiffusionFunctional.Evaluation;
using DiffusionFunctional.Models;
using DiffusionFunctional.Training;
using static TorchSharp.torch;

namespace DiffusionFunctional.Experiments.Analysis;

/// <summary>Settings of a negative-transfer-gap experiment (ANT section 3.3, observation O2; docs/analysis.md), as <c>dfn ntg</c> takes them.</summary>
/// <param name="Data">Training and held-out images (<c>mnist</c>, <c>idx:PATH</c>, <c>folder:PATH</c>).</param>
/// <param name="OutputDirectory">Where the runs, ntg.json and ntg.png go.</param>
/// <param name="Intervals">Equal timestep intervals, one specialist each (5 in the paper).</param>
/// <param name="Steps">Training steps of the shared model and of every specialist.</param>
/// <param name="BatchSize">Images per step.</param>
/// <param name="LearningRate">AdamW learning rate after warm-up.</param>
/// <param name="WarmupSteps">Linear learning-rate warm-up.</param>
/// <param name="Model">Named network (<see cref="Denoisers.Names"/>).</param>
/// <param name="ImageSize">Images are resized to this side.</param>
/// <param name="Schedule">Noise schedule name.</param>
/// <param name="Timesteps">T (the intervals must divide it).</param>
/// <param name="Seed">Seed of weights, data order, noise; also the held-out split.</param>
/// <param name="Weighting">Weighting of the shared model ("vanilla", or an ANT method to measure its effect on NTG).</param>
/// <param name="Clusters">Clusters of the shared model's plan when its weighting uses them.</param>
/// <param name="ClusterObjective">Their objective (snr, timestep).</param>
/// <param name="EvalSamples">Generated images per FD (same sampler seed for the shared and every hybrid model).</param>
/// <param name="RealImages">Held-out real images for FD (never trained on).</param>
/// <param name="SamplerSteps">DDIM steps of the evaluation sampler.</param>
/// <param name="Threads">libtorch CPU threads.</param>
/// <param name="CheckpointEvery">Steps between checkpoints of every run.</param>
public sealed record NtgRequest(
    string Data, string OutputDirectory,
    int Intervals = 5, int Steps = 2000, int BatchSize = 64, double LearningRate = 1e-3, int WarmupSteps = 100,
    string Model = "small", int ImageSize = 16, string Schedule = "linear", int Timesteps = 1000, long Seed = 0,
    string Weighting = "vanilla", int Clusters = 5, string ClusterObjective = "snr",
    int EvalSamples = 256, int RealImages = 1000, int SamplerSteps = 50, int Threads = 2, int CheckpointEvery = 250);

/// <summary>FD (and KID) of one hybrid sampler and its gap to the shared model: NTG = FD(hybrid) - FD(shared); negative
/// means negative transfer (the specialist does its interval better than the shared model).</summary>
/// <param name="Index">Interval index, 0 = least noisy.</param>
/// <param name="Start">First timestep of the interval.</param>
/// <param name="End">One past its last timestep.</param>
/// <param name="FdHybrid">FD-ResNet18 of the hybrid sampler.</param>
/// <param name="Gap">FD(hybrid) - FD(shared).</param>
/// <param name="KidHybrid">KID of the hybrid sampler.</param>
public sealed record NtgInterval(int Index, int Start, int End, double FdHybrid, double Gap, double KidHybrid = double.NaN);

/// <summary>The scores of one shared model against the specialists.</summary>
/// <param name="FdShared">FD-ResNet18 of the shared model alone.</param>
/// <param name="KidShared">KID of the shared model alone.</param>
/// <param name="Intervals">One hybrid per interval.</param>
public sealed record NtgScores(double FdShared, double KidShared, IReadOnlyList<NtgInterval> Intervals);

/// <summary>The whole experiment's outcome and where it was written.</summary>
/// <param name="FdShared">FD-ResNet18 of the shared model.</param>
/// <param name="Intervals">One hybrid per interval.</param>
/// <param name="JsonPath">ntg.json.</param>
/// <param name="ChartPath">ntg.png.</param>
public sealed record NtgResult(double FdShared, IReadOnlyList<NtgInterval> Intervals, string JsonPath, string ChartPath);

/// <summary>
/// The negative transfer gap (ANT section 3.3, observation O2; docs/analysis.md): one specialist per equal timestep interval, and each hybrid
/// sampler (the specialist inside its interval, the shared model elsewhere) scored by FD-ResNet18 against held-out
/// real data. Training and scoring are separate steps, so <c>dfn reproduce</c> scores its own shared models against one
/// set of specialists; every part is resumable (checkpoints, and scores kept in a JSON file).
/// </summary>
public static class NegativeTransferGap
{
    /// <summary><c>dfn ntg</c>: trains the shared model and the specialists, scores the hybrids, writes ntg.json and ntg.png.</summary>
    public static NtgResult Run(NtgRequest r, CancellationToken cancellation = default, Action<string>? log = null, Action<string, StepMetrics>? onStep = null)
    {
        Validate(r);
        var config = Denoisers.Named(r.Model, imageChannels: 1, imageSize: r.ImageSize);
        OutputLocation.CheckDirectory(r.OutputDirectory);
        using var all = DataSources.Load(r.Data, config.ImageChannels, config.ImageSize, log);
        if (all.Count <= r.RealImages) throw new BadInputException($"the data set has {all.Count} images; --real-images {r.RealImages} leaves none to train on");
        var (train, real) = Split(all, r.RealImages, r.Seed);
        using (train)
        using (real)
        {
            var diffusion = GaussianDiffusion.Create(r.Schedule, r.Timesteps);
            var options = new TrainerOptions
            {
                Steps = r.Steps, BatchSize = r.BatchSize, LearningRate = r.LearningRate, WarmupSteps = r.WarmupSteps,
                Seed = r.Seed, Threads = r.Threads, CheckpointEvery = r.CheckpointEvery, SampleCount = 0,
            };
            var sharedPlan = r.Weighting.Trim().Equals("vanilla", StringComparison.OrdinalIgnoreCase) || r.Clusters <= 1
                ? null : ClusterPlans.FromObjective(r.Schedule, r.Timesteps, r.Clusters, r.ClusterObjective);
            var sharedPath = TrainShared(config, diffusion, train, options with { Plan = sharedPlan, Weighting = r.Weighting, OutputDirectory = Path.Combine(r.OutputDirectory, "shared") },
                cancellation, log, onStep);
            var specialists = TrainSpecialists(config, diffusion, train, options, r.Intervals, r.OutputDirectory, cancellation, log, onStep);
            using var evaluator = new Evaluator();

            var sampler = new SamplerOptions { Kind = SamplerKind.Ddim, Steps = r.SamplerSteps, Seed = r.Seed + 1 };
            var scores = Score(sharedPath, specialists, ImageBatch.FromSigned(real.Images), evaluator, r.EvalSamples, sampler,
                Path.Combine(r.OutputDirectory, "ntg-evaluations.json"), "", log);
            var (json, chart) = NtgReport.Write(r, scores.FdShared, scores.Intervals);
            return new NtgResult(scores.FdShared, scores.Intervals, json, chart);
        }
    }

    static void Validate(NtgRequest r)
    {
        if (r.Intervals < 1) throw new BadInputException($"--specialists must be at least 1, got {r.Intervals}");
        if (r.Timesteps % r.Intervals != 0) throw new BadInputException($"--specialists {r.Intervals} does not divide T = {r.Timesteps}");
        if (r.EvalSamples < 2) throw new BadInputException($"--samples must be at least 2, got {r.EvalSamples}");
        if (r.RealImages < 2) throw new BadInputException($"--real-images must be at least 2, got {r.RealImages}");
        if (r.SamplerSteps < 1 || r.SamplerSteps > r.Timesteps) throw new BadInputException($"--sampler-steps must lie in 1..{r.Timesteps}, got {r.SamplerSteps}");
    }

    static (ImageDataset Train, ImageDataset Real) Split(ImageDataset all, int realCount, long seed)
    {
        var order = DataStream.Permutation(all.Count, (ulong)seed, ulong.MaxValue); // a permutation the training stream never uses
        using var realIdx = tensor(order.Take(realCount).Select(i => (long)i).ToArray(), dtype: int64);
        using var trainIdx = tensor(order.Skip(realCount).Select(i => (long)i).ToArray(), dtype: int64);
        return (new ImageDataset(all.Images.index_select(0, trainIdx), all.Description + " (train split)", 0, all.ContentIdentity + " (train split)"),
                new ImageDataset(all.Images.index_select(0, realIdx), all.Description + " (held out)"));
    }

    /// <summary>Trains (or resumes) the shared model into <c>options.OutputDirectory</c>; returns its checkpoint.</summary>
    public static string TrainShared(DenoiserConfig config, GaussianDiffusion diffusion, ImageDataset train, TrainerOptions options,
        CancellationToken cancellation, Action<string>? log, Action<string, StepMetrics>? onStep) =>
        TrainOne(config, diffusion, train, options, null, "shared", cancellation, log, onStep);

    /// <summary>
    /// Trains (or resumes) one vanilla specialist per equal interval of the T timesteps, each drawing t only inside its
    /// interval, into <c>DIRECTORY/specialist-i</c>; returns their checkpoints in interval order.
    /// </summary>
    /// <exception cref="OperationCanceledException">Cancelled (checkpoints written).</exception>
    /// <exception cref="TrainingDivergedException">A specialist diverged (its FD would measure that, not transfer).</exception>
    public static IReadOnlyList<string> TrainSpecialists(DenoiserConfig config, GaussianDiffusion diffusion, ImageDataset train, TrainerOptions options,
        int intervals, string directory, CancellationToken cancellation, Action<string>? log, Action<string, StepMetrics>? onStep)
    {
        var width = diffusion.Timesteps / intervals;
        return Enumerable.Range(0, intervals).Select(i => TrainOne(config, diffusion, train,
            options with { Plan = null, Weighting = "vanilla", TimestepDensity = null, OutputDirectory = Path.Combine(directory, $"specialist-{i}") },
            new IntervalTimesteps(i * width, (i + 1) * width), $"specialist-{i}", cancellation, log, onStep)).ToList();
    }

    static string TrainOne(DenoiserConfig config, GaussianDiffusion diffusion, ImageDataset train, TrainerOptions options, ITimestepDistribution? sampler,
        string name, CancellationToken cancellation, Action<string>? log, Action<string, StepMetrics>? onStep)
    {
        using var trainer = Trainer.Create(config, diffusion, train, options, sampler);
        if (trainer.TryResume()) log?.Invoke($"{name}: resumed at step {trainer.Step}");
        if (trainer.Step < options.Steps)
        {
            log?.Invoke($"{name}: training steps {trainer.Step + 1}..{options.Steps}");
            var outcome = trainer.Train(cancellation, new InlineProgress<StepMetrics>(m => onStep?.Invoke(name, m)));
            if (outcome == TrainingOutcome.Interrupted) throw new OperationCanceledException(cancellation);
            if (outcome == TrainingOutcome.Diverged) throw new TrainingDivergedException(trainer.Divergence!);
        }
        return trainer.CheckpointPath!;
    }

    /// <summary>
    /// Scores the shared model (EMA weights of <paramref name="sharedCheckpoint"/>) and each hybrid with one specialist
    /// per interval, on <paramref name="samples"/> images drawn with the same sampler noise. Scores already in
    /// <paramref name="storePath"/> (under keys prefixed by <paramref name="keyPrefix"/>) are not redone.
    /// </summary>
    public static NtgScores Score(string sharedCheckpoint, IReadOnlyList<string> specialistCheckpoints, ImageBatch real, Evaluator evaluator,
        int samples, SamplerOptions sampler, string storePath, string keyPrefix, Action<string>? log)
    {
        var done = File.Exists(storePath) ? JsonSerializer.Deserialize<Dictionary<string, double[]>>(File.ReadAllText(storePath)) ?? [] : [];
        using var shared = CheckpointModel.Load(sharedCheckpoint);
        var loaded = specialistCheckpoints.Select(p => CheckpointModel.Load(p)).ToList();
        try
        {
            foreach (var model in loaded.Prepend(shared))
                if (model.NoiseWarning() is { } warning) log?.Invoke($"warning: {warning}");
            var config = shared.Model.Config;
            long[] shape = [samples, config.ImageChannels, config.ImageSize, config.ImageSize];
            (double Fd, double Kid) Measure(string key, nn.Module<Tensor, Tensor, Tensor> model)
            {
                if (done.TryGetValue(keyPrefix + key, out var cached)) return (cached[0], cached[1]);
                log?.Invoke($"evaluating {keyPrefix}{key}: {samples} samples");
                using var images = Samplers.Sample(shared.Diffusion, model, shape, sampler);
                var scored = evaluator.Evaluate(real, ImageBatch.FromSigned(images));
                done[keyPrefix + key] = [scored.FdResNet18, scored.Kid];
                AtomicFile.WriteAllText(storePath, JsonSerializer.Serialize(done));
                return (scored.FdResNet18, scored.Kid);
            }
            var (fdShared, kidShared) = Measure("shared", shared.Model);
            var width = shared.Diffusion.Timesteps / loaded.Count;
            var intervals = new List<NtgInterval>();
            for (var i = 0; i < loaded.Count; i++)
            {
                using var hybrid = new HybridDenoiser(shared.Model, loaded[i].Model, i * width, (i + 1) * width);
                var (fd, kid) = Measure($"hybrid-{i}", hybrid);
                intervals.Add(new NtgInterval(i, i * width, (i + 1) * width, fd, fd - fdShared, kid));
            }
            return new NtgScores(fdShared, kidShared, intervals);
        }
        finally
        {
            foreach (var m in loaded) m.Dispose();
        }
    }
}
