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

/// <summary>Builds a weighting by name; the one place new methods register.</summary>
public static class Weightings
{
    /// <summary>Names <see cref="Create(string, int, WeightingOptions)"/> accepts.</summary>
    public static IReadOnlyList<string> Names { get; } =
        ["vanilla", "min-snr", "p2", "edm2-uncertainty", "importance", "uw", "uw-bounded", "famo",
         "pcgrad", "nash", "imtl", "cagrad", "mgda"];

    /// <summary>Creates the named method for k clusters with method.md's default settings.</summary>
    public static IWeighting Create(string name, int clusters) => Create(name, clusters, new WeightingOptions());

    /// <summary>Creates the named method for k clusters.</summary>
    public static IWeighting Create(string name, int clusters, WeightingOptions options) => (name ?? "").Trim().ToLowerInvariant() switch
    {
        "vanilla" => new VanillaWeighting(),
        "min-snr" => new MinSnrWeighting(options.MinSnrGamma, options.VPrediction),
        "p2" => new P2Weighting(options.P2K, options.P2Gamma),
        "edm2-uncertainty" => new Edm2UncertaintyWeighting(),
        "importance" => new ImportanceWeighting(),
        "uw" => new UncertaintyWeighting(clusters, options.UncertaintyLearningRate),
        "uw-bounded" => new BoundedUncertaintyWeighting(clusters, options.UncertaintyLearningRate),
        "famo" => new FamoWeighting(clusters),
        "pcgrad" => new PcGradWeighting(clusters, options.Seed),
        "nash" => new NashWeighting(clusters, options.NashSolveEvery),
        "imtl" => new ImtlWeighting(clusters),
        "cagrad" => new CagradWeighting(clusters, options.CagradC),
        "mgda" => new MgdaWeighting(clusters),
        _ => throw new BadInputException($"unknown weighting '{name}' (expected one of: {string.Join(", ", Names)})"),
    };
}
