using BenchmarkDotNet.Attributes;
using DiffusionFunctional.Core;

namespace DiffusionFunctional.Bench;

/// <summary>In-process timings of the exact clustering paths (targets: docs/benchmarks.md, "Interval clustering").</summary>
[MemoryDiagnoser]
public class ClusteringBenchmarks
{
    NoiseSchedule linear1000 = null!;
    NoiseSchedule linear100k = null!;
    double[,] affinity100 = null!;
    double[,] affinity1000 = null!;

    [GlobalSetup]
    public void Setup()
    {
        linear1000 = Schedule.create(ScheduleKind.Linear, 1000);
        linear100k = Schedule.create(ScheduleKind.Linear, 100_000);
        affinity100 = SyntheticAffinity(100);
        affinity1000 = SyntheticAffinity(1000);
    }

    /// <summary>Affinity that decays with the group distance plus symmetric noise, like a measured TAS matrix.</summary>
    public static double[,] SyntheticAffinity(int g)
    {
        var rng = new Random(1);
        var m = new double[g, g];
        for (int r = 0; r < g; r++)
            for (int c = r; c < g; c++)
                m[r, c] = m[c, r] = Math.Exp(-Math.Abs(r - c) / (0.2 * g)) + 0.05 * (rng.NextDouble() - 0.5);
        return m;
    }

    static TimestepClusters Run(NoiseSchedule s, Objective o, int k)
    {
        var result = Objectives.cluster(s, o, k);
        if (result.IsError) throw new InvalidOperationException(ClusteringErrorModule.message(result.ErrorValue));
        return result.ResultValue;
    }

    [Benchmark(Description = "timestep T=1000 k=5")]
    public TimestepClusters Timestep1000() => Run(linear1000, Objective.TimestepObjective, 5);

    [Benchmark(Description = "snr(log) T=1000 k=5")]
    public TimestepClusters Snr1000() => Run(linear1000, Objective.NewSnrObjective(SnrScale.LogScale), 5);

    [Benchmark(Description = "affinity G=100 (T=1000) k=5")]
    public TimestepClusters Affinity100() => Run(linear1000, Objective.NewAffinityObjective(affinity100), 5);

    [Benchmark(Description = "affinity G=1000 (T=1000) k=5")]
    public TimestepClusters Affinity1000k5() => Run(linear1000, Objective.NewAffinityObjective(affinity1000), 5);

    [Benchmark(Description = "snr(log) T=100000 k=16")]
    public TimestepClusters Snr100k() => Run(linear100k, Objective.NewSnrObjective(SnrScale.LogScale), 16);

    [Benchmark(Description = "affinity G=1000 (T=1000) k=10")]
    public TimestepClusters Affinity1000() => Run(linear1000, Objective.NewAffinityObjective(affinity1000), 10);

    [Benchmark(Description = "snr(log) T=1000 k=5, O(kT^2) path")]
    public Clustering Snr1000Quadratic() => ClusteringModule.solveQuadratic(IntervalCostModule.l1ToMedian(linear1000.LogSnr), 5);
}
