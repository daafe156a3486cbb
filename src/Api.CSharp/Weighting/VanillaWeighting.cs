using TorchSharp.Modules;

namespace DiffusionFunctional.Weighting;

/// <summary>Ordinary diffusion training: the mean of the per-sample losses, one backward pass. No state.</summary>
public sealed class VanillaWeighting : IWeighting
{
    /// <inheritdoc/>
    public string Name => "vanilla";

    /// <inheritdoc/>
    public IReadOnlyList<ParameterGroupSpec> ExtraParameterGroups { get; } = [];

    /// <inheritdoc/>
    public double Backward(WeightingBatch batch, IReadOnlyList<Parameter> modelParameters)
    {
        using var loss = batch.PerSampleLoss.mean();
        loss.backward();
        return loss.item<float>();
    }

    /// <inheritdoc/>
    public void Save(BinaryWriter writer) { }
    /// <inheritdoc/>
    public void Load(BinaryReader reader) { }
    /// <inheritdoc/>
    public void Dispose() { }
}
