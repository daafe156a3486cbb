using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DiffusionFunctional.Weighting;

/// <summary>
/// A fixed per-sample loss weight that depends only on SNR(t) (Min-SNR, P2): the mean of w_t L_t, one backward,
/// no state. Subclasses say only how w_t follows from SNR_t.
/// </summary>
public abstract class SnrWeighting : IWeighting
{
    /// <inheritdoc/>
    public abstract string Name { get; }

    /// <inheritdoc/>
    public IReadOnlyList<ParameterGroupSpec> ExtraParameterGroups { get; } = [];

    /// <summary>The per-sample weights for these SNRs (float64, same shape).</summary>
    public abstract Tensor Weights(Tensor signalToNoise);

    /// <inheritdoc/>
    public double Backward(WeightingBatch batch, IReadOnlyList<Parameter> modelParameters)
    {
        using var scope = NewDisposeScope();
        var w = Weights(batch.SignalToNoise).to(batch.PerSampleLoss.dtype).to(batch.PerSampleLoss.device);
        (w * batch.PerSampleLoss).mean().backward();
        return batch.PerSampleLoss.detach().mean().item<float>();
    }

    /// <inheritdoc/>
    public void Save(BinaryWriter writer) { }
    /// <inheritdoc/>
    public void Load(BinaryReader reader) { }
    /// <inheritdoc/>
    public void Dispose() { }
}
