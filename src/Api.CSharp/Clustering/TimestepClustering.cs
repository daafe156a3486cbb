using DiffusionFunctional.Core;

namespace DiffusionFunctional.Clustering;

/// <summary>One cluster of timesteps: the half-open range [Start, End) and its log-SNR span.</summary>
public sealed record ClusterRange(int Index, int Start, int End, double LogSnrAtStart, double LogSnrAtEnd)
{
    /// <summary>Timesteps in the cluster.</summary>
    public int Size => End - Start;
}

/// <summary>A clustering request by name, as a user or the CLI states it.</summary>
public sealed record ClusterRequest(
    string Schedule = "linear",
    int Timesteps = 1000,
    int Clusters = 5,
    string Objective = "snr",
    string SnrScale = "log",
    string? AffinityFile = null);

/// <summary>The exact optimum of a clustering request, with the schedule it was computed on and the objective's
/// canonical name (snr with the raw scale is snr-raw).</summary>
public sealed record ClusterResult(ClusterRequest Request, NoiseSchedule Schedule, int[] Boundaries, double Cost, string ObjectiveName = "")
{
    /// <summary>The clusters with their timestep ranges and log-SNR spans.</summary>
    public IReadOnlyList<ClusterRange> Ranges =>
        Enumerable.Range(0, Boundaries.Length - 1)
            .Select(i => new ClusterRange(i, Boundaries[i], Boundaries[i + 1],
                Schedule.LogSnr[Boundaries[i]], Schedule.LogSnr[Boundaries[i + 1] - 1]))
            .ToList();
}

/// <summary>Runs the F# core's exact interval clustering from C#, turning its typed errors into <see cref="BadInputException"/>.</summary>
public static class TimestepClustering
{
    /// <summary>Reads and validates an affinity CSV file (G rows of G numbers).</summary>
    public static double[,] ReadAffinity(string path)
    {
        if (Directory.Exists(path)) throw new BadInputException($"affinity file '{path}' is a folder; give the affinity.csv inside it");
        if (!File.Exists(path)) throw new BadInputException($"affinity file '{path}' not found");
        string text;
        try { text = File.ReadAllText(path); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException or NotSupportedException)
        {
            throw new BadInputException($"cannot read affinity file '{path}': {e.Message}");
        }
        if (!AffinityMatrices.TryParse(text, out var matrix, out var error)) throw new BadInputException($"affinity file '{path}': {error}");
        return matrix;
    }

    /// <summary>Clusters the timesteps of the requested schedule exactly.</summary>
    public static ClusterResult Run(ClusterRequest request)
    {
        if (!TimestepClusterings.TryChooseObjective(request.Objective, request.SnrScale, out var choice, out var parseError))
            throw new BadInputException(parseError.Message);
        if (choice.NeedsAffinity && string.IsNullOrWhiteSpace(request.AffinityFile))
            throw new BadInputException("the affinity objective needs an affinity matrix file (--affinity FILE.csv)");
        var affinity = choice.NeedsAffinity ? ReadAffinity(request.AffinityFile!) : null;
        if (!TimestepClusterings.TryCluster(request.Schedule, request.Timesteps, request.Clusters, request.Objective, request.SnrScale, affinity,
                out var clusters, out var error))
            throw new BadInputException(error.Message);
        if (!NoiseSchedules.TryCreate(request.Schedule, request.Timesteps, out var schedule, out var scheduleError)) throw new BadInputException(scheduleError);
        return new ClusterResult(request, schedule, clusters.Boundaries, clusters.Cost, choice.Name);
    }
}

/// <summary>
/// The one place that turns a clustering choice into the <see cref="ClusterPlan"/> a trainer follows: an objective
/// and k (k = 1 is plain uniform training), or explicit boundaries.
/// </summary>
public static class ClusterPlans
{
    /// <summary>
    /// The exact optimum of <paramref name="objective"/> (<c>timestep</c>, <c>snr</c>, <c>snr-raw</c> or <c>affinity</c>
    /// with <paramref name="affinityFile"/>) with k = <paramref name="clusters"/> on the schedule; one cluster for k = 1.
    /// </summary>
    /// <exception cref="BadInputException">An unknown schedule or objective, a bad k, or an unusable affinity file.</exception>
    public static ClusterPlan FromObjective(string schedule, int timesteps, int clusters, string objective, string? affinityFile = null)
    {
        if (clusters == 1) return ClusterPlan.Single(timesteps);
        var result = TimestepClustering.Run(new ClusterRequest(schedule, timesteps, clusters, objective, "", affinityFile));
        return ClusterPlan.Create(timesteps, result.Boundaries, $"{schedule}/{objective} k={clusters}");
    }

    /// <summary>A plan from boundaries written <c>0,153,394,624,823,1000</c> (as <c>dfn cluster --json</c> prints them).</summary>
    /// <exception cref="BadInputException">Not integers, or not strictly increasing from 0 to T.</exception>
    public static ClusterPlan FromBoundaries(string text, int timesteps)
    {
        var parts = (text ?? "").Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
        var bounds = new int[parts.Length];
        for (var i = 0; i < parts.Length; i++)
            if (!int.TryParse(parts[i], System.Globalization.NumberStyles.Integer, System.Globalization.CultureInfo.InvariantCulture, out bounds[i]))
                throw new BadInputException($"boundaries: '{parts[i]}' is not an integer");
        try { return ClusterPlan.Create(timesteps, bounds, "boundaries given"); }
        catch (ArgumentException e) { throw new BadInputException($"boundaries: {e.Message.Split(" (Parameter")[0]}"); }
    }
}
