using DiffusionFunctional.Timesteps;
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
/// Trains a <see cref="Denoiser"/> (a UNet, a DiT, or a registered backbone) on an <see cref="ImageDataset"/> under a <see cref="GaussianDiffusion"/>:
/// cluster-stratified timesteps, a pluggable <see cref="IWeighting"/>, AdamW with warm-up and clipping, EMA,
/// metrics, sample grids and atomic checkpoints from which a run resumes exactly. It is the project's one training
/// loop: the CLI, the demo, the benchmarks and the analyses all train through <see cref="TrainUntil"/>.
/// <code>
/// using var trainer = Trainer.Create(UNetConfig.Named("small"), GaussianDiffusion.Create(), data,
///                                    new TrainerOptions { Steps = 2000, OutputDirectory = "results" });
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
    private readonly FlatParameters flatParameters;
    private readonly FlatAdamW optimizer;
    private readonly Parameter[] modelParameters;
    private readonly double[] baseLearningRates;
    private readonly Tensor snrTable;
    private readonly DivergenceGuard guard;
    private readonly RunDirectoryLock? runLock;
    private readonly bool ownsModel;
    private readonly Bf16WorkingCopy? bf16;
    private MetricsLog? metrics;

    /// <summary>The network being trained.</summary>
    public Denoiser Model { get; }
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
    public ITimestepDistribution TimestepDistribution { get; }
    /// <summary>Where tensors live.</summary>
    public Device Device { get; }
    /// <summary>Steps completed.</summary>
    public long Step { get; private set; }
    /// <summary>Where the steps' time went, per <see cref="StepPhase"/> (recorded always; reset it to time a stretch).</summary>
    public StepProfile Profile { get; } = new();
    /// <summary>Why the run stopped as diverged (null while it has not).</summary>
    public Divergence? Divergence { get; private set; }
    /// <summary>Path of the checkpoint in the output directory (null without one).</summary>
    public string? CheckpointPath => Options.OutputDirectory is { } dir ? Path.Combine(dir, CheckpointName) : null;

    /// <summary>
    /// Sets up training of <paramref name="model"/>, which stays the caller's to dispose; its initial weights are
    /// whatever it holds (<see cref="Create"/> builds, seeds and owns one). The weighting is built from
    /// <see cref="TrainerOptions.Weighting"/> and <see cref="TrainerOptions.WeightingSettings"/> unless
    /// <paramref name="weighting"/> replaces it (a benchmark baseline); <paramref name="timesteps"/> defaults
    /// to the weighting's own sampler or cluster-stratified uniform sampling. With an output directory the trainer
    /// holds that folder's <see cref="RunDirectoryLock"/> until disposed. The model's parameters and their gradients
    /// are moved into one buffer each (same values, same <c>Parameter</c> objects; <c>FlatParameters</c>), so that
    /// AdamW and the EMA update the whole model in a few operations; code that trains the model alongside must copy
    /// into a gradient, not replace it.
    /// </summary>
    public Trainer(Denoiser model, GaussianDiffusion diffusion, ImageDataset data, TrainerOptions? options = null,
                   IWeighting? weighting = null, ITimestepDistribution? timesteps = null)
        : this(model, ownsModel: false, diffusion, data, options, weighting, timesteps) { }

    private Trainer(Denoiser model, bool ownsModel, GaussianDiffusion diffusion, ImageDataset data, TrainerOptions? options,
                    IWeighting? weighting, ITimestepDistribution? timesteps)
    {
        Options = options ?? new TrainerOptions();
        Options.Validate(diffusion.Timesteps, data.Count);
        if (data.Channels != model.Config.ImageChannels || data.Size != model.Config.ImageSize)
            throw new BadInputException($"data are {data.Channels}x{data.Size}x{data.Size} but the model expects {model.Config.ImageChannels}x{model.Config.ImageSize}x{model.Config.ImageSize}");
        if (model.Config.Routing != TaskRoutingKind.None && model.Config.RoutingTimesteps != diffusion.Timesteps)
            throw new BadInputException($"the model routes {model.Config.RoutingTimesteps} timesteps but the diffusion has T = {diffusion.Timesteps}");
        if (Options.Threads is { } threads) TorchBackend.SetThreads(threads);
        Device = TorchBackend.Resolve(Options.Device);
        Bf16Support.Require(Options.Precision, Device);
        runLock = Options.OutputDirectory is { } dir ? RunDirectoryLock.Acquire(dir) : null;
        this.ownsModel = ownsModel;
        Model = model;
        Model.to(Device);
        Model.train();
        Model.ChannelsLast = Options.ChannelsLast;
        Diffusion = diffusion;
        Data = data;
        Plan = Options.Plan ?? ClusterPlan.Single(diffusion.Timesteps);
        Weighting = weighting ?? WeightingRegistry.Create(Options.Weighting, Plan.Count, Options.WeightingSettings, Options.Seed,
            diffusion.Prediction == PredictionType.V);
        if (Options.AnnealToUniformSteps is { } annealSteps) Weighting = new AnnealedWeighting(Weighting, annealSteps);
        TimestepDistribution = timesteps ?? DefaultSampler(Weighting, Options, diffusion);
        // Before anything takes hold of the weights: from here on they live in one buffer (FlatParameters).
        flatParameters = new FlatParameters(Model.parameters(), withGradients: true);
        Ema = new ExponentialMovingAverage(Model, flatParameters, Options.EmaDecay);
        Ema.Model.ChannelsLast = Options.ChannelsLast;
        bf16 = TrainingPrecision.Parse(Options.Precision) == TrainingPrecision.Bf16 ? new Bf16WorkingCopy(Model, flatParameters) : null;
        stream = new DataStream(data, Options.Seed);
        generator = new Generator((ulong)Options.Seed);
        snrTable = tensor(diffusion.Schedule.Snr, dtype: float64, device: Device);
        guard = new DivergenceGuard(Options.DivergenceFactor ?? double.PositiveInfinity);

        if (Weighting is IDeviceResidentWeighting resident) resident.MoveTo(Device);
        modelParameters = Model.parameters().ToArray();
        baseLearningRates = [Options.LearningRate, .. Weighting.ExtraParameterGroups.Select(g => g.LearningRate)];
        optimizer = new FlatAdamW(flatParameters, Options.LearningRate, Options.WeightDecay,
            Weighting.ExtraParameterGroups.Select(g => new AdamW.ParamGroup(g.Parameters, lr: g.LearningRate, weight_decay: g.WeightDecay)));
    }

    /// <summary>
    /// Builds the model from <paramref name="config"/> with weights drawn from <c>options.Seed</c> (the same initial
    /// weights for every method at a given seed), then the trainer, which owns and disposes the model.
    /// <paramref name="timesteps"/> and <paramref name="weighting"/> replace the defaults as in the constructor.
    /// </summary>
    public static Trainer Create(DenoiserConfig config, GaussianDiffusion diffusion, ImageDataset data, TrainerOptions? options = null,
                                 ITimestepDistribution? timesteps = null, IWeighting? weighting = null)
    {
        NativeThreading.Configure();
        options ??= new TrainerOptions();
        if (options.Threads is { } threads) TorchBackend.SetThreads(threads);
        config.Validate();
        random.manual_seed(options.Seed);
        var model = config.Build();
        try { return new Trainer(model, ownsModel: true, diffusion, data, options, weighting, timesteps); }
        catch
        {
            model.Dispose();
            throw;
        }
    }

    // A weighting that reweights by its own sampling probabilities (e.g. "importance") brings its sampler; otherwise the
    // options' density, or cluster-stratified uniform sampling.
    private static ITimestepDistribution DefaultSampler(IWeighting weighting, TrainerOptions options, GaussianDiffusion diffusion)
    {
        if (weighting is IWeightingWithTimesteps owner)
        {
            if (options.TimestepDensity is not null)
                throw new BadInputException($"the {weighting.Name} weighting draws its own timesteps: it cannot be combined with a timestep density ({options.TimestepDensity})");
            return owner.Timesteps;
        }
        return options.TimestepDensity is { } spec
            ? DensityTimesteps.Parse(spec, diffusion.Schedule, options.DensityImportanceWeights)
            : new StratifiedTimesteps();
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
        if (CheckpointPath is not { } path) return;
        // The metrics reach the disk first: a power loss must not leave a durable checkpoint ahead of its metrics.
        metrics?.FlushToDisk();
        SaveCheckpoint(path);
    }

    /// <summary>Raised with one line when the trainer notices something a user should know but that does not stop the
    /// run (for example, a metrics line lost when the previous run was cut short).</summary>
    public event Action<string>? Warning;

    /// <summary>Releases the optimiser, EMA, weighting, metrics file and run-folder lock, and the model when built by <see cref="Create"/>.</summary>
    public void Dispose()
    {
        metrics?.Dispose();
        optimizer.Dispose();
        flatParameters.Dispose();
        generator.Dispose();
        snrTable.Dispose();
        Ema.Dispose();
        bf16?.Dispose();
        Weighting.Dispose();
        if (ownsModel) Model.Dispose();
        runLock?.Dispose();
    }
}
