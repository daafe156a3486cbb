using System.Text.Json;
using System.Text.Json.Serialization;

namespace DiffusionFunctional.Experiments.Reproduce;

/// <summary>The real-vs-real floor at one sample count: two disjoint sets of held-out digits scored against each other.</summary>
/// <param name="Samples">Images in the second set (the generated images' count it stands in for).</param>
/// <param name="Fd">FD-ResNet18 between the reference set and the spare set.</param>
/// <param name="Kid">KID between them.</param>
/// <param name="KidStandardError">KID's spread over its subsets.</param>
public sealed record FloorRecord(int Samples, double Fd, double Kid, double KidStandardError);

/// <summary>Task affinity of one vanilla checkpoint (observation O1).</summary>
/// <param name="Seed">The run's seed.</param>
/// <param name="Step">Training steps of the checkpoint.</param>
/// <param name="Rho">Spearman's rho of affinity against |delta log-SNR| over group pairs.</param>
/// <param name="PValue">Its two-sided p-value (the pairs share groups, so it is optimistic: docs/statistics.md).</param>
/// <param name="BinCentres">Centres of the |delta log-SNR| bins of the decay curve.</param>
/// <param name="BinMeans">Mean affinity per bin (NaN for an empty bin).</param>
/// <param name="CsvPath">The G x G matrix, as <c>dfn cluster --cluster-objective affinity</c> reads it.</param>
public sealed record AffinityRecord(long Seed, long Step, double Rho, double PValue, double[] BinCentres, double[] BinMeans, string CsvPath);

/// <summary>The negative transfer gap of one shared model (observation O2).</summary>
/// <param name="Seed">The seed of the shared model and of the specialists.</param>
/// <param name="Method">The shared model's method id (vanilla or ANT-UW).</param>
/// <param name="FdShared">FD-ResNet18 of the shared model alone.</param>
/// <param name="Starts">First timestep of each interval.</param>
/// <param name="Ends">One past the last timestep of each interval.</param>
/// <param name="FdHybrid">FD of each hybrid (specialist inside its interval).</param>
/// <param name="Gaps">NTG = FD(hybrid) - FD(shared) per interval; negative: negative transfer.</param>
public sealed record NtgRecord(long Seed, string Method, double FdShared, int[] Starts, int[] Ends, double[] FdHybrid, double[] Gaps);

/// <summary>
/// What <c>dfn reproduce</c> measured beyond the convergence runs (which keep their own results.jsonl): floors, affinity
/// and NTG, in one JSON file rewritten atomically after every new result, so a re-run redoes nothing finished.
/// </summary>
public sealed class ReproduceStore
{
    static readonly JsonSerializerOptions Json = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
        WriteIndented = true,
    };

    sealed record Contents(List<FloorRecord> Floors, List<AffinityRecord> Affinity, List<NtgRecord> Ntg, List<MechanismRecord>? Mechanism = null);

    Contents contents;

    /// <summary>Opens the store at <paramref name="path"/> (empty when the file does not exist).</summary>
    /// <exception cref="BadInputException">The file exists but cannot be read (it is never written half).</exception>
    public ReproduceStore(string path)
    {
        Path = path;
        if (!File.Exists(path))
        {
            contents = new Contents([], [], []);
            return;
        }
        try { contents = JsonSerializer.Deserialize<Contents>(File.ReadAllText(path), Json) ?? new Contents([], [], []); }
        catch (JsonException e) { throw new BadInputException($"{path} is not a reproduce results file ({e.Message}); move it away to start over"); }
    }

    /// <summary>The file.</summary>
    public string Path { get; }

    /// <summary>Floors measured so far.</summary>
    public IReadOnlyList<FloorRecord> Floors => contents.Floors;
    /// <summary>Affinity measurements so far.</summary>
    public IReadOnlyList<AffinityRecord> Affinity => contents.Affinity;
    /// <summary>NTG results so far.</summary>
    public IReadOnlyList<NtgRecord> Ntg => contents.Ntg;
    /// <summary>Mechanism measurements so far (files written before they existed have none).</summary>
    public IReadOnlyList<MechanismRecord> Mechanism => contents.Mechanism ?? [];

    /// <summary>Adds a floor (replacing one at the same sample count).</summary>
    public void Add(FloorRecord floor) => Replace(contents.Floors, f => f.Samples == floor.Samples, floor);

    /// <summary>Adds an affinity measurement (replacing one of the same seed and step).</summary>
    public void Add(AffinityRecord affinity) => Replace(contents.Affinity, a => a.Seed == affinity.Seed && a.Step == affinity.Step, affinity);

    /// <summary>Adds an NTG result (replacing one of the same seed and method).</summary>
    public void Add(NtgRecord ntg) => Replace(contents.Ntg, n => n.Seed == ntg.Seed && n.Method == ntg.Method, ntg);

    /// <summary>Adds a mechanism measurement (replacing one of the same seed and method).</summary>
    public void Add(MechanismRecord record)
    {
        var list = contents.Mechanism ?? [];
        if (contents.Mechanism is null) contents = contents with { Mechanism = list };
        Replace(list, m => m.Seed == record.Seed && m.Method == record.Method, record);
    }

    void Replace<T>(List<T> list, Predicate<T> same, T item)
    {
        list.RemoveAll(same);
        list.Add(item);
        AtomicFile.WriteAllText(Path, JsonSerializer.Serialize(contents, Json));
    }
}
