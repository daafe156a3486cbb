using DiffusionFunctional.Models;

namespace DiffusionFunctional.Experiments.Demo;

/// <summary>
/// The budget of a <see cref="DemoRunner"/> run: model, data split, training schedule and evaluation size.
/// Every method of a demo trains under the same profile, so they differ only in their weighting and clusters.
/// </summary>
public sealed record DemoProfile
{
    /// <summary>"smoke", "quick" or "full".</summary>
    public required string Name { get; init; }
    /// <summary>The network every method trains (same shape and, per seed, the same initial weights).</summary>
    public required DenoiserConfig Model { get; init; }
    /// <summary>Optimisation steps per method and seed.</summary>
    public required int Steps { get; init; }
    /// <summary>Images per step.</summary>
    public int BatchSize { get; init; } = 64;
    /// <summary>AdamW learning rate after warm-up.</summary>
    public double LearningRate { get; init; } = 5e-4;
    /// <summary>Linear warm-up steps (keeps UW's early cluster weights from throwing the model off).</summary>
    public int WarmupSteps { get; init; } = 100;
    /// <summary>Global gradient-norm clip.</summary>
    public double GradientClipNorm { get; init; } = 1.0;
    /// <summary>The weightings that clip at <see cref="GradientClipNorm"/> (null: every one; empty: none).</summary>
    public IReadOnlyList<string>? ClippedWeightings { get; init; }
    /// <summary>Whether the EMA warms up (<see cref="DiffusionFunctional.Training.TrainerOptions.EmaWarmup"/>).</summary>
    public bool EmaWarmup { get; init; } = true;
    /// <summary>EMA decay; short runs need a short memory or early checkpoints are mostly the initial weights.</summary>
    public double EmaDecay { get; init; } = 0.995;
    /// <summary>Training steps after which the EMA model is sampled and scored (the last one equals <see cref="Steps"/>).</summary>
    public required int[] EvaluationSteps { get; init; }
    /// <summary>Generated images per evaluation point.</summary>
    public required int EvaluationSamples { get; init; }
    /// <summary>Generated images at the final evaluation point (null: <see cref="EvaluationSamples"/>); the headline
    /// numbers come from there, so it is worth more images than the points along the way.</summary>
    public int? FinalEvaluationSamples { get; init; }
    /// <summary>Steps at which a copy of each run's checkpoint is kept as <c>checkpoint-step-N.dfn</c> (for analyses of
    /// the model along training, such as task affinity at early, middle and final steps).</summary>
    public int[] KeptCheckpoints { get; init; } = [];

    /// <summary>Generated images scored at <paramref name="step"/>.</summary>
    public int SamplesAt(long step) => step == Steps ? FinalEvaluationSamples ?? EvaluationSamples : EvaluationSamples;
    /// <summary>Held-out real images the generated ones are compared with.</summary>
    public required int RealSamples { get; init; }
    /// <summary>Steps of the evaluation sampler.</summary>
    public int SamplerSteps { get; init; } = 25;
    /// <summary>The evaluation sampler. DPM-Solver++(2M) at 25 steps is the cheapest whose FD on a trained model's 1,000
    /// samples stayed within 2% of DDIM-50's (-1.9%; DDIM-25 +6.9%, DPM++ at 15 steps -10.5%: docs/benchmarks.md,
    /// "Samplers: FD against steps").</summary>
    public DiffusionFunctional.Diffusion.SamplerKind SamplerKind { get; init; } = DiffusionFunctional.Diffusion.SamplerKind.DpmSolver2M;
    /// <summary>DDIM's eta for evaluation (0 deterministic; 1 is DDPM over the chosen timesteps).</summary>
    public double SamplerEta { get; init; }
    /// <summary>Images in each method's sample grid.</summary>
    public int GridSamples { get; init; } = 64;
    /// <summary>Training images used (null: all that the split leaves for training).</summary>
    public int? TrainImages { get; init; }
    /// <summary>Images held out of training for the real reference set.</summary>
    public int HeldOutImages { get; init; } = 2000;
    /// <summary>Steps between checkpoints (beside the ones at evaluation points), so an interrupted run loses little.</summary>
    public int CheckpointEvery { get; init; } = 100;

    /// <summary>"fp32" (default) or "bf16" mixed precision (<see cref="DiffusionFunctional.Training.TrainerOptions.Precision"/>),
    /// so that a demo can compare bf16's final FD against fp32's seed spread.</summary>
    public string Precision { get; init; } = DiffusionFunctional.Training.TrainingPrecision.Fp32;

    /// <summary>The optimisation settings every method of this profile trains with (no plan, method or output yet);
    /// <paramref name="weighting"/> decides whether the gradient is clipped (<see cref="ClippedWeightings"/>).</summary>
    public DiffusionFunctional.Training.TrainerOptions Training(long seed, string? weighting = null) => new()
    {
        Steps = Steps, BatchSize = BatchSize, LearningRate = LearningRate, WarmupSteps = WarmupSteps,
        GradientClipNorm = ClippedWeightings is null || (weighting is not null && ClippedWeightings.Contains(weighting)) ? GradientClipNorm : null,
        EmaDecay = EmaDecay, EmaWarmup = EmaWarmup, Seed = seed, Precision = Precision,
    };

    /// <summary>The evaluation sampler of this profile with the given noise seed.</summary>
    public DiffusionFunctional.Diffusion.SamplerOptions Sampler(long seed) =>
        new() { Kind = SamplerKind, Steps = SamplerSteps, Eta = SamplerEta, Seed = seed };

    /// <summary>Names accepted by <see cref="Named"/>.</summary>
    public static IReadOnlyList<string> Names { get; } = ["smoke", "quick", "full"];

    /// <summary>Size of the model of the quick profile: MNIST at 16x16, about 0.8M parameters.</summary>
    static UNetConfig Small16 => new()
    {
        ImageChannels = 1, ImageSize = 16, BaseChannels = 32, ChannelMultipliers = [1, 2, 2], AttentionLevels = [2],
    };

    /// <summary>
    /// <c>smoke</c>: a tiny model, a few steps and samples (the CI check that the pipeline runs end to end; its numbers
    /// mean nothing). <c>quick</c>: 16x16 MNIST, about 7.5 minutes for three methods on 2 idle CPU cores (see
    /// docs/benchmarks.md, "Quick demo"). <c>full</c>: 28x28 MNIST, longer training, more samples.
    /// </summary>
    public static DemoProfile Named(string name) => (name ?? "").Trim().ToLowerInvariant() switch
    {
        "smoke" => new DemoProfile
        {
            Name = "smoke",
            Model = new UNetConfig { ImageChannels = 1, ImageSize = 16, BaseChannels = 8, ChannelMultipliers = [1, 2], AttentionLevels = [1], NormGroups = 4 },
            Steps = 16, BatchSize = 16, WarmupSteps = 4, EmaDecay = 0.9, EvaluationSteps = [8, 16],
            EvaluationSamples = 16, RealSamples = 32, SamplerSteps = 5, GridSamples = 16,
            TrainImages = 512, HeldOutImages = 64, CheckpointEvery = 4,
        },
        "quick" => new DemoProfile
        {
            Name = "quick",
            Model = Small16,
            Steps = 800, EvaluationSteps = [100, 200, 400, 600, 800],
            EvaluationSamples = 200, RealSamples = 1000, SamplerSteps = 25,
        },
        "full" => new DemoProfile
        {
            Name = "full",
            Model = UNetConfig.Named("small"),
            Steps = 6000, LearningRate = 5e-4, WarmupSteps = 200, EmaDecay = 0.999,
            EvaluationSteps = [500, 1000, 1500, 2000, 3000, 4000, 5000, 6000],
            EvaluationSamples = 1000, RealSamples = 2000, SamplerSteps = 25, CheckpointEvery = 250,
        },
        _ => throw new BadInputException($"unknown demo profile '{name}' (expected one of: {string.Join(", ", Names)})"),
    };

    /// <summary>This profile with another training length and evaluation points (for callers without C#'s <c>with</c>).</summary>
    public DemoProfile WithBudget(int steps, int[] evaluationSteps) => this with { Steps = steps, EvaluationSteps = evaluationSteps };

    /// <summary>Throws <see cref="BadInputException"/> for a profile no run can use.</summary>
    public void Validate()
    {
        Model.Validate();
        if (Steps <= 0) throw new BadInputException($"demo steps must be positive, got {Steps}");
        if (EvaluationSteps.Length == 0 || EvaluationSteps.Any(s => s <= 0 || s > Steps) || !EvaluationSteps.SequenceEqual(EvaluationSteps.Distinct().Order()))
            throw new BadInputException($"evaluation steps must increase within (0, {Steps}], got [{string.Join(", ", EvaluationSteps)}]");
        if (EvaluationSteps[^1] != Steps) throw new BadInputException($"the last evaluation step must be the final step {Steps}");
        if (EvaluationSamples < 4 || RealSamples < 4 || FinalEvaluationSamples is < 4) throw new BadInputException("evaluation needs at least 4 generated and 4 real images");
        if (KeptCheckpoints.Any(s => !EvaluationSteps.Contains(s))) throw new BadInputException($"kept checkpoints must be evaluation steps, got [{string.Join(", ", KeptCheckpoints)}]");
        if (RealSamples > HeldOutImages) throw new BadInputException($"{RealSamples} real samples requested but only {HeldOutImages} images are held out");
        if (SamplerSteps < 1) throw new BadInputException($"sampler steps must be positive, got {SamplerSteps}");
    }
}
