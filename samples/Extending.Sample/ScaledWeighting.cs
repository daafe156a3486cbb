using DiffusionFunctional.Backend;
using DiffusionFunctional.Weighting;
using TorchSharp.Modules;

/// <summary>A new weighting: the mean loss times a factor of its own. One class (the method) and one registration.</summary>
public sealed class ScaledWeighting(double factor) : IWeighting
{
    public string Name => "scaled";
    public IReadOnlyList<ParameterGroupSpec> ExtraParameterGroups { get; } = [];

    public double Backward(WeightingBatch batch, IReadOnlyList<Parameter> modelParameters)
    {
        using var loss = batch.PerSampleLoss.mean().Times(factor);
        loss.backward();
        return batch.PerSampleLoss.detach().mean().item<float>();
    }

    public void Save(BinaryWriter writer) { }
    public void Load(BinaryReader reader) { }
    public void Dispose() { }

    /// <summary>Its facts, for the registry: name, kind, whether it balances clusters, description, settings, factory.</summary>
    public static WeightingDescriptor Descriptor { get; } = new(
        "scaled", WeightingKind.Loss, NeedsClusters: false, "the mean loss times a factor (docs/extending.md)",
        [new WeightingSetting("factor", Option: null, Default: 0.5, "the factor", WeightingSetting.Positive)],
        context => new ScaledWeighting(context.Setting("factor")));
}
