using DiffusionFunctional.Weighting;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DiffusionFunctional.Experiments.Bench;

/// <summary>
/// Not a training method: the inherent cost of per-cluster gradients, one forward and k backward passes (the
/// graph retained on all but the last) with nothing else, against which the overhead benchmark judges the
/// gradient methods (target: at most 1.1x this). Its update is the plain sum of the cluster gradients.
/// </summary>
internal sealed class SequentialBackwardBaseline(int clusters) : IWeighting
{
    /// <inheritdoc/>
    public string Name => "k-backward";

    /// <inheritdoc/>
    public IReadOnlyList<ParameterGroupSpec> ExtraParameterGroups { get; } = [];

    /// <inheritdoc/>
    public double Backward(WeightingBatch batch, IReadOnlyList<Parameter> modelParameters)
    {
        using var scope = NewDisposeScope();
        var losses = batch.ClusterLosses();
        for (var i = 0; i < clusters; i++) losses[i].backward(null, i < clusters - 1, false, null);
        return batch.PerSampleLoss.detach().mean().item<float>();
    }

    /// <inheritdoc/>
    public void Save(BinaryWriter writer) { }
    /// <inheritdoc/>
    public void Load(BinaryReader reader) { }
    /// <inheritdoc/>
    public void Dispose() { }
}
