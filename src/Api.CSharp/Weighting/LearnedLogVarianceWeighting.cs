using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DiffusionFunctional.Weighting;

/// <summary>
/// What <c>uw</c> and <c>uw-bounded</c> share: k learnable log-variances s (init 0) in their own AdamW group, saved in
/// checkpoints, and one backward of an objective over the per-cluster losses. Subclasses give the objective.
/// </summary>
public abstract class LearnedLogVarianceWeighting : IWeighting, IDeviceResidentWeighting, IReportsClusterWeights
{
    /// <summary>The reference's learning rate for s.</summary>
    public const double DefaultLearningRate = 0.025;

    private readonly double learningRate;
    private Parameter logVariances;

    /// <summary>k = <paramref name="clusters"/> log-variances at 0, trained at <paramref name="learningRate"/> without weight decay.</summary>
    protected LearnedLogVarianceWeighting(int clusters, double learningRate)
    {
        if (clusters < 1) throw new BadInputException($"the number of clusters must be at least 1, got {clusters}");
        Clusters = clusters;
        this.learningRate = learningRate;
        logVariances = new Parameter(zeros(clusters, dtype: float32), requires_grad: true);
        ExtraParameterGroups = [new ParameterGroupSpec([logVariances], learningRate, 0.0)];
    }

    /// <summary>k.</summary>
    public int Clusters { get; }

    /// <summary>The learned log-variances s (a live parameter; the optimiser updates it).</summary>
    public Parameter LogVariances => logVariances;

    /// <inheritdoc/>
    public abstract string Name { get; }

    /// <inheritdoc/>
    public IReadOnlyList<ParameterGroupSpec> ExtraParameterGroups { get; private set; }

    /// <inheritdoc/>
    public void MoveTo(Device device)
    {
        if (Backend.TorchBackend.SameDevice(logVariances.device, device)) return;
        using var detached = logVariances.detach();
        var moved = new Parameter(detached.to(device), requires_grad: true);
        logVariances.Dispose();
        logVariances = moved;
        ExtraParameterGroups = [new ParameterGroupSpec([logVariances], learningRate, 0.0)];
    }

    /// <summary>The scalar to differentiate, from the per-cluster losses L [k] and s [k] (same dtype and device).</summary>
    protected abstract Tensor Objective(Tensor clusterLosses, Tensor s);

    /// <summary>The weight each cluster loss gets in <see cref="Objective"/> for log-variances <paramref name="s"/>.</summary>
    protected abstract double[] WeightsOf(double[] s);

    /// <inheritdoc/>
    public IReadOnlyList<double>? LastClusterWeights { get; private set; }

    /// <summary>The value returned for logging is the plain mean diffusion loss (comparable across methods).</summary>
    public double Backward(WeightingBatch batch, IReadOnlyList<Parameter> modelParameters)
    {
        if (batch.ClusterCount != Clusters)
            throw new BadInputException($"weighting '{Name}' was built for k = {Clusters} clusters but the batch has k = {batch.ClusterCount}");
        using var scope = NewDisposeScope();
        var losses = batch.ClusterLosses();
        var s = logVariances.to(losses.dtype).to(losses.device);
        LastClusterWeights = WeightsOf(s.detach().cpu().to_type(ScalarType.Float64).data<double>().ToArray());
        Objective(losses, s).backward();
        return batch.PerSampleLoss.detach().mean().item<float>();
    }

    /// <inheritdoc/>
    public void Save(BinaryWriter writer)
    {
        WeightingState.WriteHeader(writer, Name, Clusters);
        WeightingState.Write(writer, logVariances);
    }

    /// <inheritdoc/>
    public void Load(BinaryReader reader)
    {
        WeightingState.ReadHeader(reader, Name, Clusters);
        WeightingState.ReadInto(reader, logVariances);
    }

    /// <inheritdoc/>
    public void Dispose() => logVariances.Dispose();
}
