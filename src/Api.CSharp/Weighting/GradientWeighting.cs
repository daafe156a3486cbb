using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DiffusionFunctional.Weighting;

/// <summary>
/// The shared shape of the per-step gradient methods (PCGrad, IMTL-G, CAGrad, MGDA): k backward passes, one per
/// cluster loss L_i (the graph retained on all but the last), the k x k Gram matrix of the gradients, combination
/// weights w from a pure Core solver, and the update sum_j w_j g_j written into the parameters' <c>.grad</c>.
/// Subclasses supply only <see cref="Solve"/> (and any state the solver needs).
/// </summary>
public abstract class GradientWeighting : IWeighting, IReportsClusterWeights
{
    private readonly ClusterGradients gradients = new();

    /// <summary>A gradient-based method over k clusters: one backward pass per cluster, then weights from the Gram matrix.</summary>
    protected GradientWeighting(int clusters)
    {
        if (clusters < 1) throw new BadInputException($"the number of clusters must be at least 1, got {clusters}");
        Clusters = clusters;
    }

    /// <summary>k.</summary>
    public int Clusters { get; }

    /// <summary>The weights w of the last update (sum_j w_j g_j); null before the first step. For logs and tests.</summary>
    public double[]? LastWeights { get; protected set; }

    /// <inheritdoc/>
    public IReadOnlyList<double>? LastClusterWeights => LastWeights;

    /// <summary>The Gram matrix of the last step's per-cluster gradients; null before the first step.</summary>
    public double[,]? LastGram { get; private set; }

    /// <inheritdoc/>
    public abstract string Name { get; }

    /// <inheritdoc/>
    public IReadOnlyList<ParameterGroupSpec> ExtraParameterGroups { get; } = [];

    /// <summary>The combination weights for this step's Gram matrix (pure; from Core).</summary>
    protected abstract double[] Solve(double[,] gram);

    /// <inheritdoc/>
    public virtual double Backward(WeightingBatch batch, IReadOnlyList<Parameter> modelParameters)
    {
        CheckClusters(batch);
        using var scope = NewDisposeScope();
        var losses = batch.ClusterLosses();
        CaptureAll(losses, modelParameters);
        var gram = gradients.Gram();
        LastGram = gram;
        var weights = Solve(gram);
        LastWeights = weights;
        gradients.WriteCombination(weights);
        return batch.PerSampleLoss.detach().mean().item<float>();
    }

    /// <summary>One backward per cluster loss into the gradient buffer.</summary>
    protected void CaptureAll(Tensor clusterLosses, IReadOnlyList<Parameter> modelParameters)
    {
        gradients.Prepare(modelParameters, Clusters);
        for (var i = 0; i < Clusters; i++)
        {
            using var li = clusterLosses[i];
            gradients.Capture(li, i, retainGraph: i < Clusters - 1);
        }
    }

    /// <summary>The Gram matrix of the gradients last captured.</summary>
    protected double[,] CapturedGram() => gradients.Gram();

    /// <summary>Writes sum_j w_j g_j of the gradients last captured into the parameters' <c>.grad</c>.</summary>
    protected void WriteCombination(double[] weights) => gradients.WriteCombination(weights);

    /// <summary>Throws when the batch has another number of clusters than the method was built for.</summary>
    protected void CheckClusters(WeightingBatch batch)
    {
        if (batch.ClusterCount != Clusters)
            throw new BadInputException($"weighting '{Name}' was built for k = {Clusters} clusters but the batch has k = {batch.ClusterCount}");
    }

    /// <inheritdoc/>
    public virtual void Save(BinaryWriter writer)
    {
        WeightingState.WriteHeader(writer, Name, Clusters);
        WeightingState.Write(writer, LastWeights);
    }

    /// <inheritdoc/>
    public virtual void Load(BinaryReader reader)
    {
        WeightingState.ReadHeader(reader, Name, Clusters);
        LastWeights = WeightingState.ReadDoubles(reader);
    }

    /// <inheritdoc/>
    public virtual void Dispose()
    {
        gradients.Dispose();
        GC.SuppressFinalize(this);
    }
}
