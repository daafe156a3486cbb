using DiffusionFunctional.Experiments.Demo;
using DiffusionFunctional.Models;

namespace DiffusionFunctional.Experiments.Reproduce;

/// <summary>
/// The budget of <c>dfn reproduce</c>: the convergence experiment (a <see cref="DemoProfile"/> every method trains under),
/// and the settings of the two observations measured on the trained models. Every method gets the same budget; any
/// setting chosen here applies to all of them (docs/reproduce.md says how the numbers were chosen).
/// </summary>
public sealed record ReproduceProfile
{
    /// <summary>"smoke", "quick" or "full".</summary>
    public required string Name { get; init; }
    /// <summary>Model, data split, optimiser, evaluation points and sample counts of the convergence runs.</summary>
    public required DemoProfile Convergence { get; init; }
    /// <summary>Seeds 0 .. Seeds-1 unless <c>--seeds</c> says otherwise.</summary>
    public int Seeds { get; init; } = 1;
    /// <summary>Task-affinity groups G (the issue asks for 20).</summary>
    public int AffinityGroups { get; init; } = 20;
    /// <summary>Fixed image batch the affinity gradients are measured on.</summary>
    public int AffinityImages { get; init; } = 64;
    /// <summary>Bins of the affinity decay curve over |delta log-SNR|.</summary>
    public int DecayBins { get; init; } = 8;
    /// <summary>Equal timestep intervals of the negative transfer gap, one specialist each (5 in the paper).</summary>
    public int NtgIntervals { get; init; } = 5;
    /// <summary>Training steps of each specialist (the shared models are the convergence runs' final models).</summary>
    public required int SpecialistSteps { get; init; }
    /// <summary>Generated images per NTG score (shared model and each hybrid).</summary>
    public required int NtgSamples { get; init; }
    /// <summary>Trailing evaluation points vanilla's FD must agree on for the plateau criterion.</summary>
    public int PlateauPoints { get; init; } = 3;
    /// <summary>Their largest relative difference allowed, in percent.</summary>
    public double PlateauPercent { get; init; } = 5;

    /// <summary>The four methods the paper's headline compares: vanilla, Min-SNR-5, ANT-UW (log-SNR, k = 5) and
    /// ANT-Nash (log-SNR, k = 5; Nash bargaining solved every 25 steps costs about 1.1x vanilla per step).</summary>
    public const string Methods = "vanilla,min-snr,uw:snr:5,nash:snr:5";

    /// <summary>Names accepted by <see cref="Named"/>.</summary>
    public static IReadOnlyList<string> Names { get; } = ["smoke", "quick", "full"];

    /// <summary>
    /// <c>smoke</c>: a tiny model, a few steps (the CI check that every output exists and parses; its numbers mean
    /// nothing). <c>quick</c>: 16x16 MNIST, the <c>mini</c> UNet trained long enough to approach its plateau, 1 seed,
    /// about 2 hours of one core (docs/benchmarks.md, "dfn reproduce: quick profile"). <c>full</c>: the same at 3 seeds with more samples (several hours; resumable).
    /// </summary>
    public static ReproduceProfile Named(string name) => (name ?? "").Trim().ToLowerInvariant() switch
    {
        "smoke" => Smoke,
        "quick" => Quick,
        "full" => Full,
        _ => throw new BadInputException($"unknown reproduce profile '{name}' (expected one of: {string.Join(", ", Names)})"),
    };

    static ReproduceProfile Smoke => new()
    {
        Name = "smoke",
        Convergence = DemoProfile.Named("smoke") with
        {
            Name = "reproduce-smoke", Steps = 20, EvaluationSteps = [2, 4, 6, 8, 10, 12, 14, 16, 18, 20], KeptCheckpoints = [4, 10, 20],
            EvaluationSamples = 12, FinalEvaluationSamples = 16, RealSamples = 32, HeldOutImages = 64, TrainImages = 256,
        },
        AffinityGroups = 4, AffinityImages = 8, DecayBins = 3, NtgIntervals = 2, SpecialistSteps = 6, NtgSamples = 12,
        Timesteps = 100,
    };

    static ReproduceProfile Quick => new()
    {
        Name = "quick",
        Convergence = new DemoProfile
        {
            Name = "reproduce-quick", Model = UNetConfig.Named("mini"),
            Steps = 8000, LearningRate = 5e-4, WarmupSteps = 200, EmaDecay = 0.999,
            EvaluationSteps = [250, 500, 1000, 2000, 3000, 4000, 5000, 6000, 7000, 8000], KeptCheckpoints = [500, 2000, 8000],
            EvaluationSamples = 250, FinalEvaluationSamples = 1000, RealSamples = 2000, HeldOutImages = 3000,
            SamplerSteps = 25, CheckpointEvery = 250,
        },
        SpecialistSteps = 2000, NtgSamples = 500,
    };

    static ReproduceProfile Full => Quick with
    {
        Name = "full",
        Convergence = Quick.Convergence with
        {
            Name = "reproduce-full", Steps = 16000,
            EvaluationSteps = [500, 1000, 2000, 3000, 4000, 6000, 8000, 10000, 12000, 14000, 16000], KeptCheckpoints = [1000, 4000, 16000],
            EvaluationSamples = 500, FinalEvaluationSamples = 1000,
        },
        Seeds = 3, SpecialistSteps = 4000, NtgSamples = 1000,
    };

    /// <summary>
    /// This profile trained for <paramref name="steps"/> instead: its evaluation points below that, continued every
    /// <paramref name="spacing"/> steps (default: the spacing of its last two points), and <paramref name="steps"/>
    /// itself; the final checkpoint is kept. A longer budget resumes a finished run of the same folder (the trainer
    /// continues to the new total).
    /// </summary>
    public ReproduceProfile WithSteps(int steps, int? spacing = null)
    {
        var c = Convergence;
        if (steps < 2) throw new BadInputException($"--steps must be at least 2, got {steps}");
        var every = spacing ?? c.EvaluationSteps[^1] - c.EvaluationSteps[^2];
        if (every < 1) throw new BadInputException($"the evaluation spacing must be at least 1 step, got {every}");
        var points = c.EvaluationSteps.Where(s => s < steps).ToList();
        if (steps > c.Steps)
            for (var s = c.Steps; s < steps; s += every)
                if (!points.Contains(s)) points.Add(s);
        points.Add(steps);
        if (points.Count < 2) points.Insert(0, steps / 2);
        int[] kept = [.. c.KeptCheckpoints.Where(s => s < steps && points.Contains(s)), steps];
        return this with { Convergence = c with { Steps = steps, EvaluationSteps = [.. points], KeptCheckpoints = kept } };
    }

    /// <summary>This profile with another network (a preset of <see cref="Denoisers.Named"/>, at its own image size).</summary>
    public ReproduceProfile WithModel(string name) => this with { Convergence = Convergence with { Model = Denoisers.Named(name) } };

    /// <summary>Diffusion timesteps T.</summary>
    public int Timesteps { get; init; } = 1000;

    /// <summary>Throws <see cref="BadInputException"/> for a profile no run can use.</summary>
    public void Validate()
    {
        Convergence.Validate();
        if (Convergence.EvaluationSteps.Length < 2) throw new BadInputException("reproduce needs at least two evaluation points");
        if (!Convergence.KeptCheckpoints.Contains(Convergence.Steps)) throw new BadInputException("reproduce keeps the final checkpoint of every run (the NTG's shared models)");
        if (AffinityGroups < 2 || Timesteps % AffinityGroups != 0) throw new BadInputException($"affinity groups {AffinityGroups} must be at least 2 and divide T = {Timesteps}");
        if (NtgIntervals < 1 || Timesteps % NtgIntervals != 0) throw new BadInputException($"NTG intervals {NtgIntervals} must divide T = {Timesteps}");
        if (SpecialistSteps < 1 || NtgSamples < 4) throw new BadInputException("NTG needs specialist steps and at least 4 samples");
        var floorSamples = Math.Max(Convergence.EvaluationSamples, Convergence.FinalEvaluationSamples ?? 0);
        if (Convergence.HeldOutImages - Convergence.RealSamples < floorSamples)
            throw new BadInputException($"the real-vs-real floor needs {floorSamples} held-out images beyond the {Convergence.RealSamples} of the reference set");
    }
}
