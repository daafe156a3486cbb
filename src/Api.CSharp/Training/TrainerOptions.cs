using DiffusionFunctional.Core;
using DiffusionFunctional.Diffusion;

namespace DiffusionFunctional.Training;

/// <summary>How a <see cref="Trainer"/> trains. Defaults suit a small MNIST run; every field can be set with an initializer.</summary>
public sealed record TrainerOptions
{
    /// <summary>Optimisation steps in total (a resumed run continues to this count).</summary>
    public int Steps { get; init; } = 1000;
    /// <summary>Images per step.</summary>
    public int BatchSize { get; init; } = 64;
    /// <summary>AdamW learning rate of the model's parameters (after warm-up).</summary>
    public double LearningRate { get; init; } = 2e-4;
    /// <summary>AdamW weight decay of the model's parameters.</summary>
    public double WeightDecay { get; init; }
    /// <summary>Linear learning-rate warm-up over this many steps (0: none).</summary>
    public int WarmupSteps { get; init; }
    /// <summary>Clip the model gradient's global L2 norm to this value; null: no clipping.</summary>
    public double? GradientClipNorm { get; init; } = 1.0;
    /// <summary>EMA decay per step.</summary>
    public double EmaDecay { get; init; } = 0.999;
    /// <summary>Warm the EMA up: decay min(EmaDecay, (1 + step) / (10 + step)), as diffusers' <c>use_ema_warmup</c>, so
    /// that a short run's average is of recent weights rather than mostly the random initial ones (default on).</summary>
    public bool EmaWarmup { get; init; } = true;
    /// <summary>Seed of the weights, the data order, timesteps and noise.</summary>
    public long Seed { get; init; }
    /// <summary>Timestep clusters; null: one cluster (vanilla). Batch must be at least the number of clusters.</summary>
    public ClusterPlan? Plan { get; init; }
    /// <summary>Name of the weighting method (see <see cref="DiffusionFunctional.Weighting.WeightingRegistry"/>).</summary>
    public string Weighting { get; init; } = "vanilla";
    /// <summary>The methods' hyper-parameters, keyed by method (Min-SNR's gamma, Nash's interval, CAGrad's c, ...);
    /// only the chosen method's are read, its defaults fill the rest. The prediction type and the seed come from the
    /// diffusion and <see cref="Seed"/>.</summary>
    public DiffusionFunctional.Weighting.WeightingSettings WeightingSettings { get; init; } = DiffusionFunctional.Weighting.WeightingSettings.Defaults;
    /// <summary>Move the method's cluster weights linearly to uniform over this many steps
    /// (<see cref="DiffusionFunctional.Weighting.AnnealedWeighting"/>); null: the method as it is. Part of the run's
    /// identity (the weighting's name carries it).</summary>
    public long? AnnealToUniformSteps { get; init; }
    /// <summary>
    /// The density timesteps are drawn from within each cluster (<c>uniform</c>, <c>logit-normal[:m,s]</c>,
    /// <c>beta[:a,b]</c>, <c>speed[:k,threshold]</c>; docs/routing-and-densities.md); null: uniform.
    /// </summary>
    public string? TimestepDensity { get; init; }
    /// <summary>Reweight each sample by 1 / (T_c p(t|c)) so that the density changes where the steps are spent but not
    /// the objective (unbiased for the plain loss); off by default, as in SD3 and SpeeD.</summary>
    public bool DensityImportanceWeights { get; init; }
    /// <summary>Where checkpoints, metrics.jsonl and sample grids go; null: keep nothing on disk.</summary>
    public string? OutputDirectory { get; init; }
    /// <summary>Write a checkpoint every this many steps (0: only at the end and on interruption).</summary>
    public int CheckpointEvery { get; init; } = 500;
    /// <summary>Write a sample grid every this many steps (0: only at the end).</summary>
    public int SampleEvery { get; init; }
    /// <summary>Images in each sample grid (0: no grids).</summary>
    public int SampleCount { get; init; } = 16;
    /// <summary>How grids are sampled (DDIM 50 steps by default, fixed seed).</summary>
    public SamplerOptions Sampler { get; init; } = new();
    /// <summary>libtorch CPU threads (null: leave as is). Results depend on the thread count.</summary>
    public int? Threads { get; init; }
    /// <summary>"cpu", "cuda" or "cuda:N".</summary>
    public string Device { get; init; } = "cpu";
    /// <summary>
    /// "fp32" (default) or "bf16": mixed precision with bf16 forward and backward passes and fp32 master weights,
    /// optimiser, EMA and loss reductions (see <see cref="Bf16WorkingCopy"/>), on CPUs with native bfloat16 only
    /// (<see cref="Bf16Support"/>). Part of the run's identity: a resume cannot change it.
    /// </summary>
    public string Precision { get; init; } = TrainingPrecision.Fp32;
    /// <summary>Run the network's feature maps channels-last (<see cref="Models.Denoiser.ChannelsLast"/>): the same results to
    /// float rounding, faster where oneDNN prefers NHWC (docs/benchmarks-history.md, "What was tried, kept or not").</summary>
    public bool ChannelsLast { get; init; }
    /// <summary>
    /// The run counts as diverged when a step's plain mean per-sample loss exceeds this multiple of the median of the
    /// last 50 (see <see cref="DivergenceGuard"/>); null: only a non-finite loss or gradient does. The plain loss, not
    /// the method's objective, because some objectives (UW's) are legitimately negative or change scale as they learn.
    /// </summary>
    public double? DivergenceFactor { get; init; } = DefaultDivergenceFactor;

    /// <summary>The default of <see cref="DivergenceFactor"/> (every command uses it).</summary>
    public const double DefaultDivergenceFactor = 20.0;

    /// <summary>Throws <see cref="BadInputException"/> for values no run can use with a diffusion of
    /// <paramref name="timesteps"/> steps and a data set of <paramref name="imageCount"/> images.</summary>
    public void Validate(int timesteps, int imageCount)
    {
        Validate(timesteps);
        if (BatchSize > imageCount)
            throw new BadInputException($"batch size {BatchSize} is larger than the data set ({imageCount} images)");
    }

    /// <summary>Throws <see cref="BadInputException"/> for values no run can use with a diffusion of <paramref name="timesteps"/> steps.</summary>
    public void Validate(int timesteps)
    {
        if (Steps <= 0) throw new BadInputException($"steps must be positive, got {Steps}");
        if (BatchSize <= 0) throw new BadInputException($"batch size must be positive, got {BatchSize}");
        if (!(LearningRate > 0) || double.IsInfinity(LearningRate)) throw new BadInputException($"learning rate must be positive, got {LearningRate}");
        if (WeightDecay < 0) throw new BadInputException($"weight decay must not be negative, got {WeightDecay}");
        if (WarmupSteps < 0) throw new BadInputException($"warm-up steps must not be negative, got {WarmupSteps}");
        if (GradientClipNorm is { } clip && !(clip > 0)) throw new BadInputException($"gradient clip norm must be positive, got {clip}");
        if (EmaDecay < 0 || EmaDecay >= 1) throw new BadInputException($"EMA decay must lie in [0, 1), got {EmaDecay}");
        if (DivergenceFactor is { } factor && (!(factor > 1) || double.IsInfinity(factor)))
            throw new BadInputException($"divergence factor must be a finite number above 1, got {factor}");
        if (CheckpointEvery < 0 || SampleEvery < 0 || SampleCount < 0) throw new BadInputException("checkpoint and sample intervals must not be negative");
        if (Threads is { } threads) Backend.TorchBackend.ValidateThreads(threads);
        TrainingPrecision.Parse(Precision);
        if (Plan is { } plan)
        {
            if (plan.Timesteps != timesteps) throw new BadInputException($"the cluster plan has T = {plan.Timesteps} but the diffusion has T = {timesteps}");
            CheckClusterCount(plan.Count, BatchSize, timesteps);
        }
    }

    /// <summary>
    /// The one check of a cluster count: k must be at least 1, at most T, and at most the batch size (every cluster
    /// draws at least one sample per step, ANT section 4.2; docs/weightings.md).
    /// </summary>
    public static void CheckClusterCount(int clusters, int batchSize, int timesteps)
    {
        if (clusters < 1) throw new BadInputException($"the number of clusters must be at least 1, got {clusters}");
        if (clusters > timesteps) throw new BadInputException($"{clusters} clusters cannot split T = {timesteps} timesteps");
        if (batchSize < clusters) throw new BadInputException($"batch size {batchSize} is smaller than the number of clusters {clusters}");
    }
}

/// <summary>How a call to <see cref="Trainer.Train"/> ended.</summary>
public enum TrainingOutcome
{
    /// <summary>All steps done; final checkpoint written.</summary>
    Completed,
    /// <summary>Cancelled between steps; a checkpoint of the last finished step was written.</summary>
    Interrupted,
    /// <summary>The divergence guard stopped the run before a bad update (see <see cref="Trainer.Divergence"/>); the last
    /// checkpoint on disk is the last one written before it, never overwritten by the diverged state.</summary>
    Diverged,
}

/// <summary>What one step measured.</summary>
/// <param name="Step">Steps completed (1 after the first).</param>
/// <param name="Loss">The loss the weighting returned (its own objective: UW's can be negative).</param>
/// <param name="MeanLoss">The plain mean per-sample loss of the batch, comparable across methods; the divergence guard watches it.</param>
/// <param name="LearningRate">Model learning rate used.</param>
/// <param name="GradientNorm">Global L2 norm of the model gradient before clipping.</param>
/// <param name="ClusterLosses">Mean loss per cluster (k values).</param>
/// <param name="Seconds">Wall time of the step.</param>
/// <param name="ClusterWeights">The weight of each cluster's loss in the update, for methods that report it
/// (<see cref="Weighting.IReportsClusterWeights"/>); null otherwise.</param>
public sealed record StepMetrics(long Step, double Loss, double MeanLoss, double LearningRate, double GradientNorm, double[] ClusterLosses, double Seconds,
    IReadOnlyList<double>? ClusterWeights = null);

/// <summary>
/// Raised by <see cref="Trainer.TrainStep"/> when a step diverges: the loss or the gradient norm is NaN or infinite,
/// or the plain loss jumped past the <see cref="DivergenceGuard"/>. The optimiser step was not taken and no checkpoint
/// was written, so the weights and the last checkpoint on disk are the last good ones.
/// </summary>
public sealed class TrainingDivergedException(Divergence divergence)
    : Exception($"training diverged at step {divergence.Step} ({divergence.Reason}); stopped before updating the weights")
{
    /// <summary>What tripped, and at which 1-based step.</summary>
    public Divergence Divergence { get; } = divergence;
    /// <summary>The 1-based step that diverged.</summary>
    public long Step => Divergence.Step;
}
