using DiffusionFunctional.Backend;
using DiffusionFunctional.Core;
using TorchSharp;
using static TorchSharp.torch;

namespace DiffusionFunctional.Timesteps;

/// <summary>The timesteps of one batch and the cluster each belongs to, both int64 [B].</summary>
public sealed record TimestepDraw(Tensor Timesteps, Tensor Clusters) : IDisposable
{
    /// <inheritdoc/>
    public void Dispose()
    {
        Timesteps.Dispose();
        Clusters.Dispose();
    }
}

/// <summary>
/// Chooses the timesteps of each training batch. Implementations draw only from the generator they are given
/// (the trainer's, whose state the checkpoint holds) and keep any state of their own in Save/Load, so that a
/// resumed run draws exactly what the uninterrupted run would have.
/// </summary>
public interface ITimestepDistribution
{
    /// <summary>Short name for logs and checkpoints ("stratified", "importance", ...).</summary>
    string Name { get; }

    /// <summary>Draws <paramref name="batchSize"/> timesteps for the given plan.</summary>
    TimestepDraw Sample(int batchSize, ClusterPlan plan, Generator generator, Device device);

    /// <summary>Sees the per-sample losses of the batch it drew (for loss-aware samplers; detached, CPU or device).</summary>
    void Observe(TimestepDraw draw, Tensor perSampleLoss);

    /// <summary>Writes the sampler's state (nothing for stateless samplers).</summary>
    void Save(BinaryWriter writer);

    /// <summary>Restores what <see cref="Save"/> wrote.</summary>
    void Load(BinaryReader reader);
}

/// <summary>
/// Cluster-stratified uniform sampling (ANT section 4.2; docs/weightings.md): the batch splits into k chunks of
/// <c>plan.ChunkSize(c, B)</c> samples and chunk c draws t uniformly in cluster c. With
/// <c>ClusterPlan.Single(T)</c> this is ordinary uniform sampling.
/// </summary>
public sealed class StratifiedTimesteps : ITimestepDistribution
{
    /// <inheritdoc/>
    public string Name => "stratified";

    /// <inheritdoc/>
    public TimestepDraw Sample(int batchSize, ClusterPlan plan, Generator generator, Device device) =>
        StratifiedDraw.Build(batchSize, plan, device, (c, n) => randint(plan.Start(c), plan.End(c), [n], dtype: int64, generator: generator));

    /// <inheritdoc/>
    public void Observe(TimestepDraw draw, Tensor perSampleLoss) { }
    /// <inheritdoc/>
    public void Save(BinaryWriter writer) { }
    /// <inheritdoc/>
    public void Load(BinaryReader reader) { }
}

/// <summary>
/// The one routine that lays out a cluster-stratified batch (ANT section 4.2; docs/weightings.md): chunk c holds
/// <c>plan.ChunkSize(c, B)</c> samples of cluster c, chunks follow each other in cluster order. Every sampler that
/// respects clusters (uniform, importance, densities) draws through it, supplying only how a chunk's timesteps are drawn.
/// </summary>
public static class StratifiedDraw
{
    /// <summary>Builds the draw: <paramref name="drawChunk"/>(c, n) returns the n timesteps of chunk c (int64 [n], CPU).</summary>
    public static TimestepDraw Build(int batchSize, ClusterPlan plan, Device device, Func<int, int, Tensor> drawChunk)
    {
        using var scope = NewDisposeScope();
        var ts = new List<Tensor>();
        var cs = new List<Tensor>();
        for (var c = 0; c < plan.Count; c++)
        {
            var n = plan.ChunkSize(c, batchSize);
            if (n == 0) continue;
            ts.Add(drawChunk(c, n));
            cs.Add(Scalars.Full([n], c, int64));
        }
        var draw = new TimestepDraw(cat(ts, 0).to(device), cat(cs, 0).to(device));
        draw.Timesteps.MoveToOuterDisposeScope();
        draw.Clusters.MoveToOuterDisposeScope();
        return draw;
    }
}
