using DiffusionFunctional.Training;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DiffusionFunctional.Weighting;

/// <summary>A weighting that needs its own timestep sampler: the trainer must draw timesteps with <see cref="Sampler"/>
/// (and call its <c>Observe</c>) instead of the default stratified sampler.</summary>
public interface IWeightingWithSampler : IWeighting
{
    /// <summary>The sampler this weighting's reweighting matches.</summary>
    ITimestepSampler Sampler { get; }
}

/// <summary>
/// iDDPM importance sampling as a weighting, name <c>importance</c>: the mean of L_t / (T_c p_t) with the
/// probabilities its <see cref="ImportanceTimestepSampler"/> drew the batch with, so the expected loss equals
/// uniform sampling's while rare high-loss timesteps are seen more often. One backward. Its state (saved with
/// the weighting) is the sampler's loss history.
/// </summary>
public sealed class ImportanceWeighting : IWeightingWithSampler
{
    private readonly ImportanceTimestepSampler sampler = new();

    /// <inheritdoc/>
    public string Name => "importance";

    /// <summary>The sampler the trainer must use with this weighting.</summary>
    public ImportanceTimestepSampler ImportanceSampler => sampler;

    /// <inheritdoc/>
    public ITimestepSampler Sampler => sampler;

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
