using DiffusionFunctional.Core;

/// <summary>A new clustering objective: exact clusters of sqrt(SNR(t)), between the raw and the log scale.</summary>
public static class SqrtSnrObjective
{
    /// <summary>The plan of k clusters of a schedule's timesteps under this objective.</summary>
    public static ClusterPlan Plan(string schedule, int timesteps, int k)
    {
        if (!NoiseSchedules.TryCreate(schedule, timesteps, out var noise, out var error)) throw new ArgumentException(error);
        var values = noise.Snr.Select(Math.Sqrt).ToArray();
        var clusters = TimestepClusterings.ClusterValues(values, k); // the exact dynamic program, L1 to the median
        return ClusterPlan.Create(timesteps, clusters.Boundaries, $"{schedule}/sqrt-snr k={k}");
    }
}
