using DiffusionFunctional.Core;
using DiffusionFunctional.Training;
using static TorchSharp.torch;

namespace DiffusionFunctional.Analysis;

/// <summary>
/// A specialist's timesteps (method.md section 5): every sample draws t uniformly in [Start, End) only; all samples
/// belong to cluster 0 of the trainer's single-cluster plan. Stateless; draws only from the trainer's generator.
/// </summary>
public sealed class IntervalTimestepSampler : ITimestepSampler
{
    public int Start { get; }
    public int End { get; }

    public IntervalTimestepSampler(int start, int end)
    {
        if (start < 0 || end <= start) throw new BadInputException($"the specialist's interval [{start}, {end}) is empty");
        Start = start;
        End = end;
    }

    public string Name => $"interval[{Start},{End})";

    public TimestepDraw Sample(int batchSize, ClusterPlan plan, Generator generator, Device device)
    {
        if (End > plan.Timesteps) throw new BadInputException($"interval end {End} exceeds T = {plan.Timesteps}");
        var t = randint(Start, End, [batchSize], dtype: int64, generator: generator).to(device);
        var c = zeros(batchSize, dtype: int64, device: device);
        return new TimestepDraw(t, c);
    }

    public void Observe(TimestepDraw draw, Tensor perSampleLoss) { }
    public void Save(BinaryWriter writer) { }
    public void Load(BinaryReader reader) { }
}
