using System.Text.Json;
using System.Text.Json.Serialization;

namespace DiffusionFunctional.Experiments.Demo;

/// <summary>
/// One measurement of a demo: method <paramref name="Method"/> (its <see cref="DemoMethod.Id"/>) trained with
/// <paramref name="Seed"/> for <paramref name="Step"/> steps, scored on EMA samples. A diverged run has one record at
/// the step where its loss stopped being finite, with <paramref name="Fd"/> NaN and <paramref name="Diverged"/> true.
/// </summary>
/// <param name="Method">The method's <see cref="DemoMethod.Id"/>.</param>
/// <param name="Seed">The run's seed.</param>
/// <param name="Step">Training steps done when the EMA model was scored (or the step that diverged).</param>
/// <param name="Fd">FD-ResNet18 of the samples against the held-out real images (NaN when diverged).</param>
/// <param name="Precision">k-NN precision (k = 3) on ResNet-18 features.</param>
/// <param name="Recall">k-NN recall (k = 3) on ResNet-18 features.</param>
/// <param name="StepSeconds">Mean wall time of a training step since the previous evaluation point.</param>
/// <param name="EvaluationSeconds">Wall time of sampling and scoring this point.</param>
/// <param name="Diverged">True for the record that marks a diverged run.</param>
/// <param name="Kid">KID (unbiased MMD^2, polynomial kernel) on the same ResNet-18 features (NaN when not measured).</param>
/// <param name="KidStandardError">KID's spread over its subsets (docs/statistics.md).</param>
/// <param name="Samples">Generated images scored at this point (0 when not recorded).</param>
/// <param name="FdOfFirst">At a point scored with more images than the others (the final one): FD of its first
/// <see cref="DemoProfile.EvaluationSamples"/> images, drawn with the same noise as every other point's, so it compares
/// with the curve (FD's bias falls with the sample count); NaN elsewhere.</param>
public sealed record DemoRecord(
    string Method, long Seed, long Step, double Fd, double Precision, double Recall,
    double StepSeconds, double EvaluationSeconds, bool Diverged = false,
    double Kid = double.NaN, double KidStandardError = double.NaN, int Samples = 0, double FdOfFirst = double.NaN)
{
    /// <summary>This point's FD scored on <paramref name="evaluationSamples"/> images: <see cref="Fd"/> when that is
    /// the count it was scored with, <see cref="FdOfFirst"/> when it was scored with more, NaN otherwise.</summary>
    public double FdAt(int evaluationSamples) => Samples == evaluationSamples ? Fd : Samples > evaluationSamples ? FdOfFirst : double.NaN;
}

/// <summary>
/// The demo's results so far, as JSON lines in <c>results.jsonl</c>: one <see cref="DemoRecord"/> per
/// (method, seed, step). Every append rewrites the file to a temporary name and renames it, so an interrupted run
/// never leaves half a line; a re-run reads it and skips what is done. Several processes may add to it (cells of one
/// grid, <see cref="Grid.CellSelection"/>).
/// </summary>
public sealed class DemoResultStore
{
    static readonly JsonSerializerOptions Json = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
    };

    readonly List<DemoRecord> records = [];

    /// <summary>Opens (or starts) the store at <paramref name="path"/>; unreadable lines are ignored.</summary>
    public DemoResultStore(string path)
    {
        Path = path;
        Reload();
    }

    /// <summary>Reads the file again: what other processes running cells of the same grid have added since.</summary>
    public void Reload()
    {
        records.Clear();
        if (!File.Exists(Path)) return;
        foreach (var line in File.ReadAllLines(Path))
        {
            if (string.IsNullOrWhiteSpace(line)) continue;
            try
            {
                if (JsonSerializer.Deserialize<DemoRecord>(line, Json) is { } r) records.Add(r);
            }
            catch (JsonException) { }
        }
    }

    /// <summary>The JSON-lines file.</summary>
    public string Path { get; }

    /// <summary>Every record, in the order they were added.</summary>
    public IReadOnlyList<DemoRecord> Records => records;

    /// <summary>The record of (method, seed, step), or null.</summary>
    public DemoRecord? Find(string method, long seed, long step) =>
        records.FirstOrDefault(r => r.Method == method && r.Seed == seed && r.Step == step);

    /// <summary>The divergence record of (method, seed), or null.</summary>
    public DemoRecord? Divergence(string method, long seed) =>
        records.FirstOrDefault(r => r.Method == method && r.Seed == seed && r.Diverged);

    /// <summary>Adds a record (replacing one for the same method, seed and step) and rewrites the file atomically.
    /// Processes running other cells of the grid add to the same file: the rewrite holds the file's lock and starts
    /// from what is on disk, so no process drops another's records.</summary>
    public void Add(DemoRecord record)
    {
        using var held = Grid.FileLock.Acquire(Path + ".lock");
        Reload();
        records.RemoveAll(r => r.Method == record.Method && r.Seed == record.Seed && r.Step == record.Step);
        records.Add(record);
        AtomicFile.WriteAllLines(Path, records.Select(r => JsonSerializer.Serialize(r, Json)));
    }
}
