using TorchSharp.Modules;

namespace DiffusionFunctional.Weighting;

/// <summary>Ordinary diffusion training: the mean of the per-sample losses, one backward pass. No state.</summary>
public sealed class VanillaWeighting : IWeighting
{
    public string Name => "vanilla";

    public IReadOnlyList<ParameterGroupSpec> ExtraParameterGroups { get; } = [];

    public double Backward(WeightingBatch batch, IReadOnlyList<Parameter> modelParameters)
    {
        using var loss = batch.PerSampleLoss.mean();
        loss.backward();
        return loss.item<float>();
    }

    public void Save(BinaryWriter writer) { }
    public void Load(BinaryReader reader) { }
    public void Dispose() { }
}

/// <summary>Builds a weighting by name; the one place new methods register.</summary>
public static class Weightings
{
    /// <summary>Names <see cref="Create"/> accepts.</summary>
    public static IReadOnlyList<string> Names { get; } = ["vanilla"];

    /// <summary>Creates the named method for k clusters.</summary>
    public static IWeighting Create(string name, int clusters) => (name ?? "").Trim().ToLowerInvariant() switch
    {
        "vanilla" => new VanillaWeighting(),
        _ => throw new BadInputException($"unknown weighting '{name}' (expected one of: {string.Join(", ", Names)})"),
    };
}
