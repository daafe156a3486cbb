using DiffusionFunctional.Timesteps;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DiffusionFunctional.Weighting;

/// <summary>A weighting that needs its own timestep distribution: the trainer must draw timesteps from
/// <see cref="Timesteps"/> (and call its <c>Observe</c>) instead of the default stratified one.</summary>
public interface IWeightingWithTimesteps : IWeighting
{
    /// <summary>The distribution this weighting's reweighting matches.</summary>
    ITimestepDistribution Timesteps { get; }
}

/// <summary>
/// iDDPM importance sampling as a weighting, name <c>importance</c>: the mean of L_t / (T_c p_t) with the
/// probabilities its <see cref="ImportanceTimesteps"/> drew the batch with, so the expected loss equals
/// uniform sampling's while rare high-loss timesteps are seen more often. One backward. Its state (saved with
/// the weighting) is the distribution's loss history.
/// </summary>
public sealed class ImportanceWeighting : IWeightingWithTimesteps
{
    private readonly ImportanceTimesteps sampler = new();

    /// <inheritdoc/>
    public string Name => "importance";

    /// <summary>The distribution the trainer must draw timesteps from with this weighting.</summary>
    public ImportanceTimesteps Importance => sampler;

    /// <inheritdoc/>
    public ITimestepDistribution Timesteps => sampler;

    /// <inheritdoc/>
    public IReadOnlyList<ParameterGroupSpec> ExtraParameterGroups { get; } = [];

    /// <inheritdoc/>
    public double Backward(WeightingBatch batch, IReadOnlyList<Parameter> modelParameters)
    {
        using var scope = NewDisposeScope();
        var w = sampler.ImportanceWeights(batch.Timesteps).to(batch.PerSampleLoss.dtype).to(batch.PerSampleLoss.device);
        (w * batch.PerSampleLoss).mean().backward();
        return batch.PerSampleLoss.detach().mean().item<float>();
    }

    /// <inheritdoc/>
    public void Save(BinaryWriter writer) => sampler.Save(writer);
    /// <inheritdoc/>
    public void Load(BinaryReader reader) => sampler.Load(reader);
    /// <inheritdoc/>
    public void Dispose() { }
}
