using DiffusionFunctional.Backend;
using DiffusionFunctional.Core;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DiffusionFunctional.Weighting;

/// <summary>
/// Everything a weighting method may look at for one training step. The trainer builds it; a method must not
/// reach into the trainer for anything else.
/// </summary>
/// <param name="PerSampleLoss">Per-sample diffusion losses [B], float, graph attached (backward through it reaches the model).</param>
/// <param name="Timesteps">Timestep of each sample [B], int64.</param>
/// <param name="Clusters">Cluster index of each sample [B], int64 in [0, k); chunk c of the batch is cluster c.</param>
/// <param name="Plan">The cluster plan (k = <c>Plan.Count</c>, boundaries, T).</param>
/// <param name="Step">The 0-based optimisation step being computed.</param>
/// <param name="SignalToNoise">SNR(t) per sample [B], float64, for SNR-based weightings (Min-SNR, P2).</param>
public sealed record WeightingBatch(Tensor PerSampleLoss, Tensor Timesteps, Tensor Clusters, ClusterPlan Plan, long Step, Tensor SignalToNoise)
{
    /// <summary>Number of clusters k.</summary>
    public int ClusterCount => Plan.Count;

    /// <summary>Mean loss of each cluster's chunk, [k] with the graph attached (L_i of ANT section 4.2; docs/weightings.md).</summary>
    public Tensor ClusterLosses()
    {
        using var scope = NewDisposeScope();
        var k = ClusterCount;
        var sums = zeros(k, dtype: PerSampleLoss.dtype, device: PerSampleLoss.device).index_add(0, Clusters, PerSampleLoss, Scalars.One);
        var counts = zeros(k, dtype: PerSampleLoss.dtype, device: PerSampleLoss.device)
            .index_add(0, Clusters, ones_like(PerSampleLoss), Scalars.One).ClampMin(1);
        return (sums / counts).MoveToOuterDisposeScope();
    }
}

/// <summary>Trainable scalars a weighting owns, with the optimiser settings of their own AdamW group.</summary>
/// <param name="Parameters">The parameters (e.g. UW's k log-variances).</param>
/// <param name="LearningRate">Their learning rate (UW's reference: 0.025).</param>
/// <param name="WeightDecay">Their weight decay (UW's reference: 0).</param>
public sealed record ParameterGroupSpec(IReadOnlyList<Parameter> Parameters, double LearningRate, double WeightDecay = 0.0);

/// <summary>
/// Turns one batch of per-sample losses into gradients: the single point where ANT's multi-task methods
/// (UW, PCGrad, NashMTL, ...) and loss weightings (Min-SNR, P2, ...) differ.
/// <para>Contract, per step, as the trainer calls it:</para>
/// <list type="number">
/// <item>The trainer zeroes every gradient (model and <see cref="ExtraParameterGroups"/>), computes
/// <see cref="WeightingBatch.PerSampleLoss"/> with the graph attached, and calls <see cref="Backward"/> once.</item>
/// <item><see cref="Backward"/> leaves in each model parameter's <c>.grad</c> the gradient the optimiser should
/// apply (and in its own parameters' <c>.grad</c> theirs). It may run several backward passes
/// (<c>retain_graph: true</c> on all but the last), or combine per-cluster gradients itself; it must not step an
/// optimiser, clip, or touch the EMA: the trainer does those afterwards.</item>
/// <item>It returns the scalar loss to log (for vanilla, the mean loss). A non-finite value makes the trainer stop
/// before the optimiser step, keeping the last good checkpoint.</item>
/// <item>Any state that evolves (running averages, the step of the last Nash solve, an RNG) is written by
/// <see cref="Save"/> and restored by <see cref="Load"/> so a resumed run is bit-for-bit the uninterrupted one.
/// The values of <see cref="ExtraParameterGroups"/> belong to that state; their optimiser moments are saved by
/// the trainer with the optimiser.</item>
/// </list>
/// Methods that need randomness (PCGrad's shuffle) should draw from a seeded generator of their own whose
/// state they save; they must not use the global TorchSharp generator.
/// </summary>
public interface IWeighting : IDisposable
{
    /// <summary>The method's name as users choose it (LibMTL style): "vanilla", "UW", "PCGrad", ...</summary>
    string Name { get; }

    /// <summary>Trainable parameters the method owns, each group with its own optimiser settings (empty for most).</summary>
    IReadOnlyList<ParameterGroupSpec> ExtraParameterGroups { get; }

    /// <summary>Computes gradients for one batch (see the interface contract) and returns the loss to log.</summary>
    double Backward(WeightingBatch batch, IReadOnlyList<Parameter> modelParameters);

    /// <summary>Writes the method's evolving state into a checkpoint.</summary>
    void Save(BinaryWriter writer);

    /// <summary>Restores the state written by <see cref="Save"/> (same method, same k).</summary>
    void Load(BinaryReader reader);
}
