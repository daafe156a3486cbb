using System.Diagnostics;
using DiffusionFunctional.Backend;
using DiffusionFunctional.Core;
using DiffusionFunctional.Data;
using DiffusionFunctional.Diffusion;
using DiffusionFunctional.Imaging;
using DiffusionFunctional.Models;
using DiffusionFunctional.Weighting;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DiffusionFunctional.Training;

/// <summary>
/// Trains a <see cref="UNet"/> on an <see cref="ImageDataset"/> under a <see cref="GaussianDiffusion"/>:
/// cluster-stratified timesteps, a pluggable <see cref="IWeighting"/>, AdamW with warm-up and clipping, EMA,
/// metrics, sample grids and atomic checkpoints from which a run resumes exactly.
/// <code>
/// var trainer = new Trainer(new UNet(UNetConfig.Named("small")), GaussianDiffusion.Create(), data,
///                           new TrainerOptions { Steps = 2000, OutputDirectory = "results" });
/// trainer.Train();
/// using var images = trainer.Sample(16);
/// </code>
/// </summary>
public sealed partial class Trainer : IDisposable
{
    /// <summary>File name of the checkpoint inside the output directory.</summary>
    public const string CheckpointName = "checkpoint.dfn";

    private DataStream stream;
    private readonly Generator generator;
    private readonly AdamW optimizer;
    private readonly Parameter[] modelParameters;
    private readonly double[] baseLearningRates;
    private readonly Tensor snrTable;
    private MetricsLog? metrics;
    private readonly DivergenceGuard guard;

    /// <summary>The network being trained.</summary>
    public UNet Model { get; }
    /// <summary>The weight average used for sampling.</summary>
    public ExponentialMovingAverage Ema { get; }
    /// <summary>Schedule and prediction type.</summary>
    public GaussianDiffusion Diffusion { get; }
    /// <summary>The training set.</summary>
    public ImageDataset Data { get; }
    /// <summary>Options in force.</summary>
    public TrainerOptions Options { get; }
    /// <summary>The timestep clusters (one cluster unless options gave a plan).</summary>
    public ClusterPlan Plan { get; }
    /// <summary>The weighting method.</summary>
    public IWeighting Weighting { get; }
    /// <summary>How timesteps are drawn.</summary>
    public ITimestepSampler TimestepSampler { get; }
    /// <summary>Where tensors live.</summary>
    public Device Device { get; }
    /// <summary>Steps completed.</summary>
    public long Step { get; private set; }
    /// <summary>Why the run stopped as diverged (null while it has not).</summary>
    public Divergence? Divergence { get; private set; }
    /// <summary>Path of the checkpoint in the output directory (null without one).</summary>
    public string? CheckpointPath => Options.OutputDirectory is { } dir ? Path.Combine(dir, CheckpointName) : null;

    /// <summary>
    /// Sets up training. The model's initial weights are whatever it holds (seed TorchSharp before building it, or
    /// use <see cref="Create"/>). <paramref name="weighting"/> defaults to <c>Weightings.Create(options.Weighting)</c>,
    /// <paramref name="timestepSampler"/> to cluster-stratified uniform sampling.
    /// </summary>
    public Trainer(UNet model, GaussianDiffusion diffusion, ImageDataset data, TrainerOptions? options = null,
                   IWeighting? weighting = null, ITimestepSampler? timestepSampler = null)
    {
        Options = options ?? new TrainerOptions();
        Options.Validate(diffusion.Timesteps);
        if (data.Channels != model.Config.ImageChannels || data.Size != model.Config.ImageSize)
            throw new BadInputException($"data are {data.Channels}x{data.Size}x{data.Size} but the model expects {model.Config.ImageChannels}x{model.Config.ImageSize}x{model.Config.ImageSize}");
        if (Options.Threads is { } threads) TorchBackend.SetThreads(threads);
        Device = TorchBackend.Resolve(Options.Device);
        if (Options.OutputDirectory is { } dir) EnsureWritable(dir);

        Model = model;
        Model.to(Device);
        Model.train();
        Diffusion = diffusion;
        Data = data;
        Plan = Options.Plan ?? ClusterPlan.Single(diffusion.Timesteps);
        Weighting = weighting ?? Weightings.Create(Options.Weighting, Plan.Count,
            Options.WeightingSettings with { Seed = Options.Seed, VPrediction = diffusion.Prediction == PredictionType.V });
        // A weighting that reweights by its own sampling probabilities (e.g. "importance") brings its sampler.
        TimestepSampler = timestepSampler ?? (Weighting is IWeightingWithSampler owner ? owner.Sampler : new StratifiedTimestepSampler());
        Ema = new ExponentialMovingAverage(Model, Options.EmaDecay);
        stream = new DataStream(data, Options.Seed);
        generator = new Generator((ulong)Options.Seed);
        snrTable = tensor(diffusion.Schedule.Snr, dtype: float64, device: Device);
        guard = new DivergenceGuard(Options.DivergenceFactor ?? double.PositiveInfinity);

        modelParameters = Model.parameters().ToArray();
        var groups = new List<AdamW.ParamGroup>
        {
            new(modelParameters, lr: Options.LearningRate, weight_decay: Options.WeightDecay),
        };
        groups.AddRange(Weighting.ExtraParameterGroups.Select(g => new AdamW.ParamGroup(g.Parameters, lr: g.LearningRate, weight_decay: g.WeightDecay)));
        baseLearningRates = [Options.LearningRate, .. Weighting.ExtraParameterGroups.Select(g => g.LearningRate)];
        optimizer = optim.AdamW(groups, lr: Options.LearningRate, weight_decay: Options.WeightDecay);
    }

    /// <summary>Builds the model from <paramref name="config"/> with weights drawn from <c>options.Seed</c>, then the trainer.</summary>
    public static Trainer Create(UNetConfig config, GaussianDiffusion diffusion, ImageDataset data, TrainerOptions? options = null)
    {
        options ??= new TrainerOptions();
        if (options.Threads is { } threads) TorchBackend.SetThreads(threads);
        random.manual_seed(options.Seed);
        return new Trainer(new UNet(config), diffusion, data, options);
    }

    /// <summary>
    /// Runs steps until <see cref="TrainerOptions.Steps"/> are done or <paramref name="cancellation"/> fires (the step in
    /// progress finishes, then a checkpoint is written). A diverging step (see <see cref="TrainStep"/>) ends the run with
    /// <see cref="TrainingOutcome.Diverged"/> and <see cref="Divergence"/> set, without writing a checkpoint, so the last
    /// good one stays on disk; metrics.jsonl gets one line saying so.
    /// </summary>
    public TrainingOutcome Train(CancellationToken cancellation = default, Action<StepMetrics>? onStep = null)
    {
        metrics ??= Options.OutputDirectory is { } dir ? MetricsLog.Open(Path.Combine(dir, "metrics.jsonl"), Step) : null;
        while (Step < Options.Steps)
        {
            if (cancellation.IsCancellationRequested)
            {
                SaveCheckpointIfConfigured();
                return TrainingOutcome.Interrupted;
            }
            StepMetrics m;
            try { m = TrainStep(); }
            catch (TrainingDivergedException e)
            {
                metrics?.WriteDivergence(e.Divergence);
                return TrainingOutcome.Diverged;
            }
            metrics?.Write(m);
            onStep?.Invoke(m);
            if (Options.CheckpointEvery > 0 && Step % Options.CheckpointEvery == 0 && Step < Options.Steps) SaveCheckpointIfConfigured();
            if (Options.SampleEvery > 0 && Step % Options.SampleEvery == 0 && Step < Options.Steps) SaveSampleGrid();
        }
        SaveCheckpointIfConfigured();
        SaveSampleGrid();
        return TrainingOutcome.Completed;
    }

    /// <summary>
    /// One optimisation step; returns what it measured. Throws <see cref="TrainingDivergedException"/> (and sets
    /// <see cref="Divergence"/>) before touching the weights when the batch's plain loss is not finite or jumps past
    /// <see cref="TrainerOptions.DivergenceFactor"/> times its running median, or the method's loss or the gradient
    /// norm is not finite.
    /// </summary>
    public StepMetrics TrainStep()
    {
        var clock = Stopwatch.StartNew();
        using var scope = NewDisposeScope();
        var batchSize = Options.BatchSize;
        var x0 = stream.NextBatch(batchSize, Device);
        var draw = TimestepSampler.Sample(batchSize, Plan, generator, Device);
        var noise = randn(x0.shape, dtype: float32, generator: generator).to(Device);
        optimizer.zero_grad();
        var perSample = Diffusion.PerSampleLoss(Model, x0, draw.Timesteps, noise);
        var meanLoss = perSample.detach().mean().to_type(float64).item<double>();
        if (guard.Observe(Step + 1, meanLoss) is { } jump) Diverge(jump);
        var batch = new WeightingBatch(perSample, draw.Timesteps, draw.Clusters, Plan, Step, snrTable.index_select(0, draw.Timesteps));
        var loss = Weighting.Backward(batch, modelParameters);
        if (!double.IsFinite(loss)) Diverge(new Divergence(Step + 1, loss, $"the {Weighting.Name} loss is {loss}"));

        var gradientNorm = nn.utils.clip_grad_norm_(modelParameters, Options.GradientClipNorm ?? double.PositiveInfinity);
        // A finite loss can still overflow the gradient; stepping on it would poison every weight.
        if (!double.IsFinite(gradientNorm)) Diverge(new Divergence(Step + 1, meanLoss, $"the gradient norm is {gradientNorm}"));
        var warmup = Options.WarmupSteps > 0 ? Math.Min(1.0, (Step + 1.0) / Options.WarmupSteps) : 1.0;
        var groupIndex = 0;
        foreach (var group in optimizer.ParamGroups) group.LearningRate = baseLearningRates[groupIndex++] * warmup;
        optimizer.step();
        if (Options.EmaWarmup) Ema.Update(ExponentialMovingAverage.WarmupDecay(Options.EmaDecay, Step));
        else Ema.Update();
        using (no_grad())
        {
            var detached = perSample.detach();
            TimestepSampler.Observe(draw, detached);
        }
        double[] clusterLosses;
        using (no_grad()) clusterLosses = batch.ClusterLosses().detach().cpu().to_type(float64).data<double>().ToArray();
        Step++;
        return new StepMetrics(Step, loss, meanLoss, Options.LearningRate * warmup, gradientNorm, clusterLosses, clock.Elapsed.TotalSeconds);
    }

    private void Diverge(Divergence divergence)
    {
        Divergence = divergence;
        throw new TrainingDivergedException(divergence);
    }

    /// <summary>Generates <paramref name="count"/> images in [-1, 1] with the EMA weights (or the live ones).</summary>
    public Tensor Sample(int count, SamplerOptions? options = null, bool useEma = true) =>
        Samplers.Sample(Diffusion, useEma ? Ema.Model : Model,
            [count, Model.Config.ImageChannels, Model.Config.ImageSize, Model.Config.ImageSize], options ?? Options.Sampler, Device);

    private void SaveSampleGrid()
    {
        if (Options.OutputDirectory is not { } dir || Options.SampleCount == 0) return;
        using var images = Sample(Options.SampleCount);
        ImageWriter.SaveGrid(images, Path.Combine(dir, "samples", $"step-{Step:D7}.png"));
    }

    private void SaveCheckpointIfConfigured()
    {
        if (CheckpointPath is { } path) SaveCheckpoint(path);
    }

    private static void EnsureWritable(string dir)
    {
        try
        {
            Directory.CreateDirectory(dir);
            var probe = Path.Combine(dir, $".write-test-{Environment.ProcessId}");
            File.WriteAllText(probe, "");
            File.Delete(probe);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new BadInputException($"output directory '{dir}' is not writable: {e.Message}");
        }
    }

    public void Dispose()
    {
        metrics?.Dispose();
        optimizer.Dispose();
        generator.Dispose();
        snrTable.Dispose();
        Ema.Dispose();
        Weighting.Dispose();
    }
}
