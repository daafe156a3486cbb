using DiffusionFunctional.Core;
using TorchSharp;
using static TorchSharp.torch;

namespace DiffusionFunctional.Timesteps;

/// <summary>
/// A timestep sampler whose draws can be reweighted back to uniform sampling: multiplying each sample's loss by
/// <see cref="ImportanceWeights"/> makes every cluster chunk's expected loss its uniform mean over the cluster.
/// </summary>
public interface IImportanceWeightedTimesteps : ITimestepDistribution
{
    /// <summary>Whether the trainer should apply <see cref="ImportanceWeights"/> to the per-sample losses.</summary>
    bool ImportanceWeighted { get; }

    /// <summary>w_t = 1 / (T_c p(t | c)) for each timestep [B] under <paramref name="plan"/>, float64 on the timesteps' device.</summary>
    Tensor ImportanceWeights(Tensor timesteps, ClusterPlan plan);
}

/// <summary>
/// Draws timesteps from a <see cref="TimestepDensity"/> (uniform, logit-normal, beta, SpeeD), stratified by cluster
/// as <see cref="StratifiedTimesteps"/>: chunk c (<c>plan.ChunkSize(c, B)</c> samples) draws from the density
/// restricted to cluster c and renormalised, by inverse CDF of uniform draws from the trainer's generator only (so a
/// resumed run draws what the uninterrupted one would). With <c>ClusterPlan.Single(T)</c> it samples the density
/// itself. The density changes the training objective (as SD3 and SpeeD intend); with
/// <see cref="ImportanceWeighted"/> the weights 1/(T_c p(t|c)) undo that, keeping each cluster's expected loss
/// uniform while spending more draws where p is high (docs/routing-and-densities.md).
/// </summary>
public sealed class DensityTimesteps : IImportanceWeightedTimesteps
{
    private readonly double[] probabilities;
    private ClusterPlan? cachedPlan;
    private InverseCdfSampler[] clusterSamplers = [];
    private double[] weightTable = [];

    /// <summary>The density drawn from.</summary>
    public TimestepDensity Density { get; }
    /// <summary>Its canonical spec string, e.g. "logit-normal:0,1".</summary>
    public string Spec { get; }
    /// <inheritdoc/>
    public bool ImportanceWeighted { get; }
    /// <summary>"density:" and the spec ("+unbiased" when importance weighted), for logs and checkpoint headers.</summary>
    public string Name => $"density:{Spec}{(ImportanceWeighted ? "+unbiased" : "")}";
    /// <summary>A copy of p over all T timesteps (sums to 1).</summary>
    public double[] Probabilities => (double[])probabilities.Clone();

    /// <summary>
    /// The sampler of <paramref name="density"/> over <paramref name="schedule"/>'s timesteps. Throws
    /// <see cref="BadInputException"/> for invalid parameters, or when importance weighting is asked for a density
    /// with a timestep of zero probability (no weight can restore it).
    /// </summary>
    public DensityTimesteps(TimestepDensity density, NoiseSchedule schedule, bool importanceWeighted = false)
    {
        Density = density;
        Spec = TimestepDensityModule.format(density);
        ImportanceWeighted = importanceWeighted;
        probabilities = CoreCall(() => TimestepDensityModule.pmf(density, schedule));
        if (importanceWeighted) CoreCall(() => TimestepDensityModule.importanceWeights(probabilities));
    }

    /// <summary>Parses a spec (<c>uniform</c>, <c>logit-normal[:m,s]</c>, <c>beta[:a,b]</c>, <c>speed[:k,threshold]</c>); bad input otherwise.</summary>
    public static DensityTimesteps Parse(string spec, NoiseSchedule schedule, bool importanceWeighted = false)
    {
        if (!TimestepDensities.TryParse(spec, out var density, out var error)) throw new BadInputException($"timestep density: {error}");
        return new DensityTimesteps(density, schedule, importanceWeighted);
    }

    /// <inheritdoc/>
    public TimestepDraw Sample(int batchSize, ClusterPlan plan, Generator generator, Device device)
    {
        Prepare(plan);
        double[] uniforms;
        using (var u = rand([batchSize], dtype: float64, generator: generator)) uniforms = u.data<double>().ToArray();
        var next = 0;
        return StratifiedDraw.Build(batchSize, plan, device, (c, n) =>
        {
            var timesteps = new long[n];
            for (var j = 0; j < n; j++) timesteps[j] = plan.Start(c) + clusterSamplers[c].Sample(uniforms[next++]);
            return tensor(timesteps, dtype: int64);
        });
    }

    /// <inheritdoc/>
    public Tensor ImportanceWeights(Tensor timesteps, ClusterPlan plan)
    {
        Prepare(plan);
        var ts = timesteps.cpu().to_type(int64).data<long>().ToArray();
        return tensor(ts.Select(t => weightTable[t]).ToArray(), dtype: float64, device: timesteps.device);
    }

    /// <summary>w_t = 1 / (T_c p(t | c)) for every timestep under <paramref name="plan"/> (1 everywhere for uniform).</summary>
    public double[] ImportanceWeightTable(ClusterPlan plan)
    {
        Prepare(plan);
        return (double[])weightTable.Clone();
    }

    private void Prepare(ClusterPlan plan)
    {
        if (cachedPlan is not null && cachedPlan.SameAs(plan)) return;
        if (plan.Timesteps != probabilities.Length)
            throw new BadInputException($"the timestep density covers T = {probabilities.Length} but the plan has T = {plan.Timesteps}");
        var samplers = new InverseCdfSampler[plan.Count];
        var weights = new double[plan.Timesteps];
        for (var c = 0; c < plan.Count; c++)
        {
            var (start, end) = (plan.Start(c), plan.End(c));
            var restricted = CoreCall(() => TimestepDensityModule.restrict(probabilities, start, end));
            samplers[c] = new InverseCdfSampler(restricted);
            // Zero-probability timesteps are never drawn; their weight is unused unless weighting is on (then refused).
            var w = restricted.Select(p => p > 0 ? 1.0 / (restricted.Length * p) : double.PositiveInfinity).ToArray();
            Array.Copy(w, 0, weights, start, w.Length);
        }
        (cachedPlan, clusterSamplers, weightTable) = (plan, samplers, weights);
    }

    private static T CoreCall<T>(Func<T> call)
    {
        try { return call(); }
        catch (ArgumentException e) { throw new BadInputException($"timestep density: {e.Message.Split(" (Parameter")[0]}"); }
    }

    /// <inheritdoc/>
    public void Observe(TimestepDraw draw, Tensor perSampleLoss) { }

    /// <summary>Writes the name, so that resuming with another density or weighting fails clearly.</summary>
    public void Save(BinaryWriter writer) => writer.Write(Name);

    /// <inheritdoc/>
    public void Load(BinaryReader reader)
    {
        var name = reader.ReadString();
        if (name != Name) throw new BadInputException($"checkpoint holds timestep sampler '{name}', expected '{Name}'");
    }
}
