using System.Diagnostics;
using DiffusionFunctional.Core;
using DiffusionFunctional.Diffusion;
using DiffusionFunctional.Models;
using DiffusionFunctional.Training;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DiffusionFunctional.Weighting;

/// <summary>Settings of a <see cref="WeightingHarness"/> run.</summary>
public sealed record HarnessOptions
{
    /// <summary>The weighting method's registered name.</summary>
    public string Weighting { get; init; } = "vanilla";
    /// <summary>Number of equal-width timestep clusters k.</summary>
    public int Clusters { get; init; } = 5;
    /// <summary>Diffusion timesteps T (linear schedule).</summary>
    public int Timesteps { get; init; } = 1000;
    /// <summary>Model size name (<see cref="UNetConfig.Named"/>).</summary>
    public string Model { get; init; } = "tiny";
    /// <summary>Images per step.</summary>
    public int BatchSize { get; init; } = 32;
    /// <summary>Steps per run.</summary>
    public int Steps { get; init; } = 200;
    /// <summary>AdamW learning rate of the model after warm-up.</summary>
    public double LearningRate { get; init; } = 1e-3;
    /// <summary>Linear warm-up steps of the model's learning rate.</summary>
    public int WarmupSteps { get; init; }
    /// <summary>Global gradient-norm clip of the model's parameters; null: none.</summary>
    public double? GradientClipNorm { get; init; } = 1.0;
    /// <summary>EMA decay.</summary>
    public double EmaDecay { get; init; } = 0.99;
    /// <summary>Seed of the weights, the data, the timesteps and the noise.</summary>
    public long Seed { get; init; }
    /// <summary>Size of the fixed synthetic data set.</summary>
    public int DataCount { get; init; } = 256;
    /// <summary>Divergence guard's jump factor over the running median.</summary>
    public double DivergenceFactor { get; init; } = 10.0;
    /// <summary>Stop at the first divergence (else keep training and only record it).</summary>
    public bool StopOnDivergence { get; init; } = true;
}

/// <summary>What a harness run measured.</summary>
public sealed record HarnessResult(string Weighting, long Seed, int StepsRun, double FinalLoss, Divergence? Divergence, double MedianStepSeconds);

/// <summary>
/// A minimal training loop for checking and timing weighting methods on a small model, independent of the full
/// trainer: synthetic 1-channel images (one Gaussian blob each, fixed per seed), equal-width clusters, the
/// tiny UNet, per-sample eps loss, <see cref="IWeighting.Backward"/>, gradient clipping, AdamW with linear warm-up
/// (the model group; the method's extra groups at their own settings), EMA, and a <see cref="DivergenceGuard"/>.
/// It follows the <see cref="IWeighting"/> contract exactly as the trainer must (zero, Backward, Observe, clip,
/// step, EMA), so it is also what the stability check and the overhead benchmark run.
/// </summary>
public sealed class WeightingHarness : IDisposable
{
    private readonly HarnessOptions options;
    private readonly GaussianDiffusion diffusion;
    private readonly Tensor data, snrTable;
    private readonly Generator generator;
    private readonly ITimestepSampler sampler;
    private readonly Parameter[] modelParameters;
    private readonly AdamW optimizer;
    private long step;

    public WeightingHarness(HarnessOptions options)
    {
        this.options = options;
        diffusion = GaussianDiffusion.Create("linear", options.Timesteps);
        var k = options.Clusters;
        Plan = ClusterPlan.Create(options.Timesteps, Enumerable.Range(0, k + 1).Select(i => (int)((long)i * options.Timesteps / k)).ToArray(), $"equal k={k}");
        torch.manual_seed(options.Seed);
        Model = new UNet(UNetConfig.Named(options.Model));
        Ema = new ExponentialMovingAverage(Model, options.EmaDecay);
        generator = new Generator((ulong)options.Seed + 1);
        data = SyntheticBlobs(options.DataCount, Model.Config.ImageSize, generator);
        snrTable = tensor(diffusion.Schedule.Snr, dtype: float64);
        Weighting = Weightings.Create(options.Weighting, k, new WeightingOptions { Seed = options.Seed });
        sampler = Weighting is IWeightingWithSampler owner ? owner.Sampler : new StratifiedTimestepSampler();
        modelParameters = Model.parameters().ToArray();
        var groups = new List<AdamW.ParamGroup> { new(modelParameters, options.LearningRate, 0.9, 0.999, 1e-8, 0.0, false, false) };
        groups.AddRange(Weighting.ExtraParameterGroups.Select(g => new AdamW.ParamGroup(g.Parameters, g.LearningRate, 0.9, 0.999, 1e-8, g.WeightDecay, false, false)));
        optimizer = optim.AdamW(groups, options.LearningRate);
        Guard = new DivergenceGuard(options.DivergenceFactor);
    }

    /// <summary>The model being trained.</summary>
    public UNet Model { get; }
    /// <summary>Its EMA.</summary>
    public ExponentialMovingAverage Ema { get; }
    /// <summary>The method under test.</summary>
    public IWeighting Weighting { get; }
    /// <summary>The equal-width cluster plan.</summary>
    public ClusterPlan Plan { get; }
    /// <summary>The divergence guard fed with every step's loss.</summary>
    public DivergenceGuard Guard { get; }

    /// <summary>One training step; returns the logged loss and its wall time.</summary>
    public (double Loss, double Seconds) Step()
    {
        var clock = Stopwatch.StartNew();
        using var scope = NewDisposeScope();
        var index = randint(0, data.shape[0], [options.BatchSize], dtype: int64, generator: generator);
        var x0 = data.index_select(0, index);
        using var draw = sampler.Sample(options.BatchSize, Plan, generator, CPU);
        var noise = randn(x0.shape, generator: generator);
        var perSample = diffusion.PerSampleLoss(Model, x0, draw.Timesteps, noise);
        var batch = new WeightingBatch(perSample, draw.Timesteps, draw.Clusters, Plan, step, snrTable.index_select(0, draw.Timesteps));
        optimizer.zero_grad();
        var loss = Weighting.Backward(batch, modelParameters);
        sampler.Observe(draw, perSample.detach());
        if (options.GradientClipNorm is { } clip) nn.utils.clip_grad_norm_(modelParameters, clip);
        var warm = options.WarmupSteps > 0 ? Math.Min(1.0, (step + 1.0) / options.WarmupSteps) : 1.0;
        optimizer.ParamGroups.First().LearningRate = options.LearningRate * warm;
        optimizer.step();
        Ema.Update();
        step++;
        return (loss, clock.Elapsed.TotalSeconds);
    }

    /// <summary>Runs <see cref="HarnessOptions.Steps"/> steps (stopping at divergence when asked).</summary>
    public HarnessResult Run()
    {
        var losses = new List<double>();
        var times = new List<double>();
        for (var i = 0; i < options.Steps; i++)
        {
            var (loss, seconds) = Step();
            losses.Add(loss);
            times.Add(seconds);
            if (Guard.Observe(i, loss) is not null && options.StopOnDivergence) break;
        }
        var tail = losses.Skip(Math.Max(0, losses.Count - 20)).ToArray();
        var timed = times.Skip(Math.Min(3, times.Count - 1)).OrderBy(x => x).ToArray();
        return new HarnessResult(options.Weighting, options.Seed, losses.Count, tail.Average(), Guard.Diverged, timed[timed.Length / 2]);
    }

    /// <summary>A fixed set of 1-channel images in [-1, 1], each one Gaussian blob of random centre and width.</summary>
    public static Tensor SyntheticBlobs(int count, int size, Generator generator)
    {
        using var scope = NewDisposeScope();
        var centres = rand([count, 2, 1, 1], generator: generator) * (size - 3) + 1.5;
        var widths = rand([count, 1, 1], generator: generator) * 0.15 * size + 0.1 * size;
        var grid = arange(size, dtype: float32);
        var dy = (grid.view(1, size, 1) - centres[.., 0]).square();
        var dx = (grid.view(1, 1, size) - centres[.., 1]).square();
        var image = (-(dx + dy) / (2 * widths.square())).exp() * 2 - 1;
        return image.unsqueeze(1).MoveToOuterDisposeScope();
    }

    public void Dispose()
    {
        optimizer.Dispose();
        Weighting.Dispose();
        Ema.Dispose();
        Model.Dispose();
        data.Dispose();
        snrTable.Dispose();
        generator.Dispose();
    }
}
