using DiffusionFunctional.Core.Weighting;

namespace DiffusionFunctional.Weighting;

/// <summary>
/// PCGrad (Yu et al. 2020) over clusters, ANT section 4.2; docs/weightings.md: each g_i is projected against the original g_j it
/// conflicts with, over a random order of j, and the update is sum_i g_i'. The random orders come from a seeded
/// generator the method owns and saves; the projections are computed on the Gram matrix by Core
/// (<see cref="PcGrad.solve"/>). The EMA update the reference forgot is the trainer's, after every method alike.
/// <para>Scale, a documented choice: the g_i are gradients of the cluster losses L_i, so the update is k times the
/// released code's, which back-propagates L_i / k. AdamW's step does not depend on that scale; gradient clipping does
/// (it sees a norm k times larger), which is why runs that compare PCGrad with the released code's recipe say so.</para>
/// </summary>
public sealed class PcGradWeighting(int clusters, long seed = 0) : GradientWeighting(clusters)
{
    private readonly SeededRandom random = new(seed);

    /// <inheritdoc/>
    public override string Name => "pcgrad";

    /// <summary>The orders used at the last step (orders[i] = the j's g_i was projected against, in turn).</summary>
    public int[][]? LastOrders { get; private set; }

    /// <inheritdoc/>
    protected override double[] Solve(double[,] gram)
    {
        var orders = PcGrad.randomOrders(random, Clusters);
        LastOrders = orders;
        return PcGrad.solve(gram, orders).Weights;
    }

    /// <inheritdoc/>
    public override void Save(BinaryWriter writer)
    {
        base.Save(writer);
        writer.Write(random.State);
    }

    /// <inheritdoc/>
    public override void Load(BinaryReader reader)
    {
        base.Load(reader);
        random.State = reader.ReadUInt64();
    }
}
