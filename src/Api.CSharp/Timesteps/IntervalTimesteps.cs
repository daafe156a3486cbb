using DiffusionFunctional.Core;
using static TorchSharp.torch;

namespace DiffusionFunctional.Timesteps;

/// <summary>
/// A specialist's timesteps (ANT section 3.3, observation O2; docs/analysis.md): every sample draws t uniformly in [Start, End) only; all samples
/// belong to cluster 0 of the trainer's single-cluster plan. Stateless; draws only from the trainer's generator.
/// </summary>
public sealed class IntervalTimesteps : ITimestepDistribution
{
    /// <summary>First timestep of the interval.</summary>
    public int Start { get; }
    /// <summary>One past the last timestep of the interval.</summary>
    public int End { get; }

    /// <summary>Draws every timestep uniformly in [start, end).</summary>
    public IntervalTimesteps(int start, int end)
    {
        if (start < 0 || end <= start) throw new BadInputException($"the specialist's interval [{start}, {end}) is empty");
        Start = start;
        End = end;
    }

    /// <inheritdoc/>
    public string Name => $"interval[{Start},{End})";

    /// <inheritdoc/>
    public TimestepDraw Sample(int batchSize, ClusterPlan plan, Generator generator, Device device)
    {
        if (End > plan.Timesteps) throw new BadInputException($"interval end {End} exceeds T = {plan.Timesteps}");
        var t = randint(Start, End, [batchSize], dtype: int64, generator: generator).to(device);
        var c = zeros(batchSize, dtype: int64, device: device);
        return new TimestepDraw(t, c);
    }

    /// <inheritdoc/>
    public void Observe(TimestepDraw draw, Tensor perSampleLoss) { }
    /// <inheritdoc/>
    public void Save(BinaryWriter writer) { }
    /// <inheritdoc/>
    public void Load(BinaryReader reader) { }
}
