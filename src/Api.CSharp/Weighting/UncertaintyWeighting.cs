using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DiffusionFunctional.Weighting;

/// <summary>
/// Uncertainty weighting (Kendall et al. 2018) over clusters, exactly as method.md section 6 (name <c>uw</c>):
/// learnable log-variances s in R^k (init 0) and loss = sum_i 0.5 (exp(-s_i) L_i / k + s_i), one backward.
/// s is an extra parameter group (AdamW, lr 0.025, no weight decay, as the reference). On fixed losses s_i
/// tends to log(L_i / k), so the weight on L_i grows like 1 / L_i as training lowers the losses; see
/// <see cref="BoundedUncertaintyWeighting"/> for the variant that keeps the total scale fixed.
/// The value returned for logging is the plain mean diffusion loss (comparable across methods), not the UW objective.
/// </summary>
public sealed class UncertaintyWeighting : IWeighting
{
    /// <summary>The reference's learning rate for s.</summary>
    public const double DefaultLearningRate = 0.025;

    private readonly Parameter logVariances;

    public UncertaintyWeighting(int clusters, double learningRate = DefaultLearningRate)
    {
        if (clusters < 1) throw new BadInputException($"the number of clusters must be at least 1, got {clusters}");
        Clusters = clusters;
        logVariances = new Parameter(zeros(clusters, dtype: float32), requires_grad: true);
        ExtraParameterGroups = [new ParameterGroupSpec([logVariances], learningRate, 0.0)];
    }

    /// <summary>k.</summary>
    public int Clusters { get; }

    /// <summary>The learned log-variances s (a live parameter; the optimiser updates it).</summary>
    public Parameter LogVariances => logVariances;

    public string Name => "uw";

    public IReadOnlyList<ParameterGroupSpec> ExtraParameterGroups { get; }

    public double Backward(WeightingBatch batch, IReadOnlyList<Parameter> modelParameters)
    {
        if (batch.ClusterCount != Clusters)
            throw new BadInputException($"weighting 'uw' was built for k = {Clusters} clusters but the batch has k = {batch.ClusterCount}");
        using var scope = NewDisposeScope();
        var losses = batch.ClusterLosses();
        var s = logVariances.to(losses.dtype).to(losses.device);
        (0.5 * ((-s).exp() * losses / Clusters + s)).sum().backward();
        return batch.PerSampleLoss.detach().mean().item<float>();
    }

    public void Save(BinaryWriter writer)
    {
        WeightingState.WriteHeader(writer, Name, Clusters);
        WeightingState.Write(writer, logVariances);
    }

    public void Load(BinaryReader reader)
    {
        WeightingState.ReadHeader(reader, Name, Clusters);
        WeightingState.ReadInto(reader, logVariances);
    }

    public void Dispose() => logVariances.Dispose();
}
