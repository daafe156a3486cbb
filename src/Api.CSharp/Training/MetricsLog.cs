using System.Text.Json;
using System.Text.Json.Nodes;

namespace DiffusionFunctional.Training;

/// <summary>
/// <c>metrics.jsonl</c>: one JSON object per step, flushed as written. On resume, lines after the checkpoint's
/// step (written by the run that died) and any torn last line are dropped, so the file always tells one history.
/// Each process that trains first writes a header line, <c>{"header": {...}}</c>, saying what it ran on (library version,
/// the convolution kernels in force, CPU, threads) and from which step; readers of steps skip it.
/// </summary>
public sealed class MetricsLog : IDisposable
{
    private readonly StreamWriter writer;

    /// <summary>The metrics.jsonl file.</summary>
    public string Path { get; }

    private MetricsLog(string path, StreamWriter writer)
    {
        Path = path;
        this.writer = writer;
    }

    /// <summary>Opens the log, keeping only the steps 1..<paramref name="keepThroughStep"/> already in it (and the
    /// headers of the processes that wrote them), then appends <paramref name="header"/> with its first step. Steps of
    /// that range that are missing (a line cut short when a run was killed) are reported to <paramref name="warn"/>.</summary>
    public static MetricsLog Open(string path, long keepThroughStep, JsonObject? header = null, Action<string>? warn = null)
    {
        var kept = new List<string>();
        var steps = new HashSet<long>();
        if (File.Exists(path) && keepThroughStep > 0)
            foreach (var line in File.ReadAllLines(path))
            {
                if (StepOf(line) is { } step && step <= keepThroughStep && steps.Add(step)) kept.Add(line);
                else if (HeaderStepOf(line) is { } from && from <= keepThroughStep) kept.Add(line);
            }
        if (keepThroughStep > 0 && steps.Count < keepThroughStep && File.Exists(path))
        {
            var first = Enumerable.Range(1, (int)Math.Min(keepThroughStep, int.MaxValue)).First(s => !steps.Contains(s));
            warn?.Invoke($"{path} lacks {keepThroughStep - steps.Count} of the {keepThroughStep} steps before this resume, from step {first} " +
                "(a line cut short when the previous run was stopped); training goes on from the checkpoint");
        }
        if (header is not null)
        {
            header["from_step"] = keepThroughStep + 1;
            kept.Add(new JsonObject { ["header"] = header }.ToJsonString());
        }
        File.WriteAllLines(path, kept);
        var writer = new StreamWriter(new FileStream(path, FileMode.Append, FileAccess.Write, FileShare.Read)) { AutoFlush = true };
        return new MetricsLog(path, writer);
    }

    /// <summary>The step of a line, or null for a torn or foreign line.</summary>
    public static long? StepOf(string line)
    {
        try { return JsonNode.Parse(line)?["step"]?.GetValue<long>(); }
        catch (JsonException) { return null; }
    }

    /// <summary>Writes what is buffered and asks the operating system to put the file on disk.</summary>
    public void FlushToDisk()
    {
        writer.Flush();
        if (writer.BaseStream is FileStream file) file.Flush(flushToDisk: true);
    }

    /// <summary>The first step a header line describes, or null for any other line.</summary>
    public static long? HeaderStepOf(string line)
    {
        try { return JsonNode.Parse(line)?["header"]?["from_step"]?.GetValue<long>(); }
        catch (JsonException) { return null; }
    }

    /// <summary>Appends one step.</summary>
    public void Write(StepMetrics m)
    {
        var json = new JsonObject
        {
            ["step"] = m.Step,
            ["loss"] = m.Loss,
            ["mean_loss"] = Number(m.MeanLoss),
            ["lr"] = m.LearningRate,
            ["grad_norm"] = Number(m.GradientNorm),
            ["cluster_losses"] = new JsonArray(m.ClusterLosses.Select(Number).ToArray()),
            ["seconds"] = m.Seconds,
        };
        if (m.ClusterWeights is { } weights) json["cluster_weights"] = new JsonArray(weights.Select(Number).ToArray());
        writer.WriteLine(json.ToJsonString());
    }

    /// <summary>Appends the line that ends a diverged run (no "loss": readers of losses skip it).</summary>
    public void WriteDivergence(Divergence d) =>
        writer.WriteLine(new JsonObject { ["step"] = d.Step, ["diverged"] = d.Reason, ["diverged_loss"] = Number(d.Loss) }.ToJsonString());

    // JSON has no NaN or infinity: such a value is written as null.
    private static JsonNode? Number(double v) => double.IsFinite(v) ? JsonValue.Create(v) : null;

    /// <summary>Reads the losses of a metrics file, in step order (for comparisons and plots).</summary>
    public static IReadOnlyList<(long Step, double Loss)> ReadLosses(string path) =>
        File.ReadAllLines(path)
            .Select(line => { try { return JsonNode.Parse(line); } catch (JsonException) { return null; } })
            .Where(n => n?["step"] is not null && n["loss"] is not null)
            .Select(n => (n!["step"]!.GetValue<long>(), n["loss"]!.GetValue<double>()))
            .ToList();

    /// <inheritdoc/>
    public void Dispose() => writer.Dispose();
}
