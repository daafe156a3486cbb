using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DiffusionFunctional.Weighting;

/// <summary>
/// <c>uw-bounded</c>: uncertainty weighting with the total weight held at vanilla's. Not in the paper; offered
/// because the paper's form (<see cref="UncertaintyWeighting"/>, <c>uw</c>) lets the weights exp(-s_i) grow like
/// 1 / L_i as the losses fall (50-130x in a first MNIST run), faster than Adam's second-moment estimate adapts,
/// which diverged at lr 1e-3.
/// <para>s is learned exactly as in <c>uw</c> (same objective, same AdamW group, so s_i still tends to
/// log(L_i / k)), but the model is trained on sum_i lambda_i L_i / k with lambda = k softmax(-s) held constant:
/// the same relative balance between clusters, weights that average 1 and each lie in (0, k).</para>
/// </summary>
public sealed class BoundedUncertaintyWeighting : IWeighting
{
    private readonly Parameter logVariances;

    public BoundedUncertaintyWeighting(int clusters, double learningRate = UncertaintyWeighting.DefaultLearningRate)
    {
        if (clusters < 1) throw new BadInputException($"the number of clusters must be at least 1, got {clusters}");
        Clusters = clusters;
        logVariances = new Parameter(zeros(clusters, dtype: float32), requires_grad: true);
        ExtraParameterGroups = [new ParameterGroupSpec([logVariances], learningRate, 0.0)];
    }

    /// <summary>k.</summary>
    public int Clusters { get; }

    /// <summary>The learned log-variances s.</summary>
    public Parameter LogVariances => logVariances;

    /// <summary>The cluster weights lambda = k softmax(-s) the model is trained with now (mean 1).</summary>
    public double[] ClusterWeights()
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        return (Clusters * (-logVariances.to_type(float64)).softmax(0)).data<double>().ToArray();
    }

    public string Name => "uw-bounded";

    public IReadOnlyList<ParameterGroupSpec> ExtraParameterGroups { get; }

    public double Backward(WeightingBatch batch, IReadOnlyList<Parameter> modelParameters)
    {
        if (batch.ClusterCount != Clusters)
            throw new BadInputException($"weighting 'uw-bounded' was built for k = {Clusters} clusters but the batch has k = {batch.ClusterCount}");
        using var scope = NewDisposeScope();
        var losses = batch.ClusterLosses();
        var s = logVariances.to(losses.dtype).to(losses.device);
        var lambda = (Clusters * (-s).softmax(0)).detach();
        var modelLoss = (lambda * losses).sum() / Clusters;
        var varianceLoss = (0.5 * ((-s).exp() * losses.detach() / Clusters + s)).sum();
        (modelLoss + varianceLoss).backward();
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
