using DiffusionFunctional.Backend;
using DiffusionFunctional.Core;
using TorchSharp;
using static TorchSharp.torch;

namespace DiffusionFunctional.Timesteps;

/// <summary>
/// iDDPM's loss-second-moment importance sampling (Nichol and Dhariwal 2021), docs/weightings.md, name
/// <c>importance</c>: it keeps the last <see cref="History"/> losses of every timestep and, once every t has that
/// many, draws t with p_t proportional to sqrt(E[L_t^2]) mixed with <see cref="UniformMix"/> uniform. Until then
/// (warm-up) it draws exactly as <see cref="StratifiedTimesteps"/>.
/// <para>With k clusters, chunk c still draws only from cluster c (the batch layout every weighting relies on),
/// with p restricted to the cluster and renormalised; with one cluster this is iDDPM exactly. The matching
/// reweighting 1 / (T_c p_t) (T_c = cluster size) is <see cref="ImportanceWeights"/>, applied by
/// <c>Weighting.ImportanceWeighting</c>, and uses the probabilities of the last <see cref="Sample"/>.</para>
/// The trainer must call <see cref="Observe"/> with each batch's per-sample losses (the
/// <see cref="ITimestepDistribution"/> contract); the history is the sampler's state.
/// </summary>
public sealed class ImportanceTimesteps : ITimestepDistribution
{
    /// <summary>Losses remembered per timestep (iDDPM: 10).</summary>
    public const int History = 10;
    /// <summary>The uniform share mixed into p (iDDPM: 0.001).</summary>
    public const double UniformMix = 0.001;

    private readonly StratifiedTimesteps uniform = new();
    private double[,] history = new double[0, History];
    private int[] counts = [];
    private int filledTimesteps;
    private double[]? lastProbabilities;
    private ClusterPlan? lastPlan;

    /// <inheritdoc/>
    public string Name => "importance";

    /// <summary>True once every timestep has <see cref="History"/> losses (the importance phase).</summary>
    public bool WarmedUp => counts.Length > 0 && filledTimesteps == counts.Length;

    /// <summary>The within-cluster probabilities p_t the last <see cref="Sample"/> used (null: uniform, warm-up).</summary>
    public double[]? LastProbabilities => lastProbabilities is null ? null : (double[])lastProbabilities.Clone();

    private void EnsureSize(int timesteps)
    {
        if (counts.Length == timesteps) return;
        if (counts.Length != 0) throw new BadInputException($"the importance sampler holds T = {counts.Length} but the plan has T = {timesteps}");
        history = new double[timesteps, History];
        counts = new int[timesteps];
        filledTimesteps = 0;
    }

    /// <summary>p_t within each cluster: sqrt(mean of the last losses squared), normalised per cluster, mixed with uniform.</summary>
    public double[] Probabilities(ClusterPlan plan)
    {
        EnsureSize(plan.Timesteps);
        var p = new double[plan.Timesteps];
        for (var c = 0; c < plan.Count; c++)
        {
            var total = 0.0;
            for (var t = plan.Start(c); t < plan.End(c); t++)
            {
                var n = Math.Min(counts[t], History);
                var squares = 0.0;
                for (var j = 0; j < n; j++) squares += history[t, j] * history[t, j];
                p[t] = n == 0 ? 0 : Math.Sqrt(squares / n);
                total += p[t];
            }
            var size = plan.Size(c);
            for (var t = plan.Start(c); t < plan.End(c); t++)
                p[t] = total > 0 ? (1 - UniformMix) * p[t] / total + UniformMix / size : 1.0 / size;
        }
        return p;
    }

    /// <inheritdoc/>
    public TimestepDraw Sample(int batchSize, ClusterPlan plan, Generator generator, Device device)
    {
        EnsureSize(plan.Timesteps);
        lastPlan = plan;
        if (!WarmedUp)
        {
            lastProbabilities = null;
            return uniform.Sample(batchSize, plan, generator, device);
        }
        var p = Probabilities(plan);
        lastProbabilities = p;
        return StratifiedDraw.Build(batchSize, plan, device, (c, n) =>
        {
            using var probabilities = tensor(p[plan.Start(c)..plan.End(c)], dtype: float64);
            return probabilities.multinomial(n, true, generator).Plus(plan.Start(c));
        });
    }

    /// <summary>The reweighting 1 / (T_c p_t) of each sample under the last draw's probabilities (1 in warm-up), float64 [B].</summary>
    public Tensor ImportanceWeights(Tensor timesteps)
    {
        var ts = timesteps.cpu().to_type(int64).data<long>().ToArray();
        if (lastProbabilities is null || lastPlan is null) return ones(ts.Length, dtype: float64);
        var plan = lastPlan;
        var w = ts.Select(t => 1.0 / (plan.Size(plan.ClusterOf((int)t)) * lastProbabilities[t])).ToArray();
        return tensor(w, dtype: float64);
    }

    /// <inheritdoc/>
    public void Observe(TimestepDraw draw, Tensor perSampleLoss)
    {
        var ts = draw.Timesteps.cpu().to_type(int64).data<long>().ToArray();
        var losses = perSampleLoss.detach().cpu().to_type(float64).data<double>().ToArray();
        for (var b = 0; b < ts.Length; b++)
        {
            var t = (int)ts[b];
            if (t < 0 || t >= counts.Length) throw new BadInputException($"timestep {t} lies outside [0, {counts.Length})");
            if (counts[t] < History)
            {
                history[t, counts[t]] = losses[b];
                if (++counts[t] == History) filledTimesteps++;
            }
            else
            {
                // Drop the oldest (iDDPM keeps a sliding window): shift left, append.
                for (var j = 1; j < History; j++) history[t, j - 1] = history[t, j];
                history[t, History - 1] = losses[b];
            }
        }
    }

    /// <inheritdoc/>
    public void Save(BinaryWriter writer)
    {
        writer.Write(Name);
        writer.Write(counts.Length);
        for (var t = 0; t < counts.Length; t++)
        {
            writer.Write(counts[t]);
            for (var j = 0; j < History; j++) writer.Write(history[t, j]);
        }
    }

    /// <inheritdoc/>
    public void Load(BinaryReader reader)
    {
        var name = reader.ReadString();
        if (name != Name) throw new BadInputException($"checkpoint holds timestep sampler '{name}', expected '{Name}'");
        var timesteps = reader.ReadInt32();
        counts = new int[timesteps];
        history = new double[timesteps, History];
        filledTimesteps = 0;
        for (var t = 0; t < timesteps; t++)
        {
            counts[t] = reader.ReadInt32();
            if (counts[t] == History) filledTimesteps++;
            for (var j = 0; j < History; j++) history[t, j] = reader.ReadDouble();
        }
        lastProbabilities = null;
    }
}
