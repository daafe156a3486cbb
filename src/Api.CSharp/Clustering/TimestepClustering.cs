using DiffusionFunctional.Core;
using Microsoft.FSharp.Core;

namespace DiffusionFunctional.Clustering;

/// <summary>One cluster of timesteps: the half-open range [Start, End) and its log-SNR span.</summary>
public sealed record ClusterRange(int Index, int Start, int End, double LogSnrAtStart, double LogSnrAtEnd)
{
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

/// <summary>The exact optimum of a clustering request, with the schedule it was computed on.</summary>
public sealed record ClusterResult(ClusterRequest Request, NoiseSchedule Schedule, int[] Boundaries, double Cost)
{
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
        string text;
        try { text = File.ReadAllText(path); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException or NotSupportedException)
        {
            throw new BadInputException($"cannot read affinity file '{path}': {e.Message}");
        }
        var parsed = AffinityCsv.parse(text);
        if (parsed.IsError) throw new BadInputException($"affinity file '{path}': {parsed.ErrorValue}");
        return parsed.ResultValue;
    }

    /// <summary>Clusters the timesteps of the requested schedule exactly.</summary>
    public static ClusterResult Run(ClusterRequest request)
    {
        var objective = request.Objective?.Trim().ToLowerInvariant();
        if (objective == "affinity" && string.IsNullOrWhiteSpace(request.AffinityFile))
            throw new BadInputException("the affinity objective needs an affinity matrix file (--affinity FILE.csv)");
        var affinity = objective == "affinity" ? FSharpOption<double[,]>.Some(ReadAffinity(request.AffinityFile!)) : FSharpOption<double[,]>.None;
        var result = Objectives.clusterByName(request.Schedule, request.Timesteps, request.Clusters, request.Objective, request.SnrScale, affinity);
        if (result.IsError) throw new BadInputException(ClusteringErrorModule.message(result.ErrorValue));
        var clusters = result.ResultValue;
        var schedule = Core.Schedule.create(Core.Schedule.tryParseKind(request.Schedule).ResultValue, request.Timesteps);
        return new ClusterResult(request, schedule, clusters.Boundaries, clusters.Cost);
    }
}
