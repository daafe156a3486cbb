using System.Diagnostics;
using DiffusionFunctional.Data;
using DiffusionFunctional.Evaluation;
using static TorchSharp.torch;

namespace DiffusionFunctional.Experiments.Bench;

/// <summary>What <see cref="EvaluationBenchmark"/> measures.</summary>
public sealed record EvaluationBenchOptions
{
    /// <summary><c>synthetic</c> (blob images, no download) or what <c>dfn evaluate --real</c> takes (mnist, idx:PATH, folder:PATH, a folder).</summary>
    public string Data { get; init; } = "synthetic";
    /// <summary>Images each path extracts per repeat.</summary>
    public int Images { get; init; } = 256;
    /// <summary>Batch sizes of the batched path, each timed against the same single-image run.</summary>
    public IReadOnlyList<int> BatchSizes { get; init; } = [ResNet18Options.DefaultBatchSize];
    /// <summary>Sessions of both paths, each with <see cref="ThreadsPerWorker"/> threads (the demo opens one session of 2 threads).</summary>
    public int Workers { get; init; } = 1;
    /// <summary>OnnxRuntime intra-op threads per worker, both paths.</summary>
    public int ThreadsPerWorker { get; init; } = 1;
    /// <summary>Times each path runs; the order alternates so that a change in machine load hits both alike.</summary>
    public int Repeats { get; init; } = 3;
    /// <summary>Folder of the model files; default <see cref="ResNet18Extractor.DefaultModelDirectory"/>.</summary>
    public string? ModelDirectory { get; init; }
}

/// <summary>One repeat of one batch size: the single-image path and the batched path, back to back.</summary>
/// <param name="Repeat">Repeat number, from 1.</param>
/// <param name="BatchSize">Images per session run of the batched path.</param>
/// <param name="LoadAverage">The 1-minute load average before the pair (NaN where /proc/loadavg is absent).</param>
/// <param name="SingleCpuMsPerImage">Process CPU time per image, single-image path.</param>
/// <param name="SingleWallMsPerImage">Wall time per image, single-image path.</param>
/// <param name="BatchedCpuMsPerImage">Process CPU time per image, batched path.</param>
/// <param name="BatchedWallMsPerImage">Wall time per image, batched path.</param>
/// <param name="CpuRatio">Single-image CPU time over batched CPU time (above 1: the batched path is cheaper).</param>
public sealed record EvaluationBenchRun(
    int Repeat, int BatchSize, double LoadAverage,
    double SingleCpuMsPerImage, double SingleWallMsPerImage, double BatchedCpuMsPerImage, double BatchedWallMsPerImage, double CpuRatio);

/// <summary>The medians over repeats for one batch size.</summary>
/// <param name="BatchSize">Images per session run of the batched path.</param>
/// <param name="SingleCpuMsPerImage">Median CPU ms per image, single-image path.</param>
/// <param name="BatchedCpuMsPerImage">Median CPU ms per image, batched path.</param>
/// <param name="CpuRatio">Median of the per-repeat CPU ratios.</param>
/// <param name="WallRatio">Median of the per-repeat wall-time ratios.</param>
/// <param name="MaxAbsDifference">Largest |feature difference| between the two paths over every image and feature.</param>
public sealed record EvaluationBenchSummary(int BatchSize, double SingleCpuMsPerImage, double BatchedCpuMsPerImage, double CpuRatio, double WallRatio, double MaxAbsDifference);

/// <summary>Every figure of one <c>dfn bench evaluation</c> run (JSON names in snake_case by the CLI).</summary>
/// <param name="Data">Where the images came from.</param>
/// <param name="Images">Images per timed extraction.</param>
/// <param name="Workers">Workers of both paths.</param>
/// <param name="ThreadsPerWorker">Intra-op threads per worker.</param>
/// <param name="Runs">Every timed pair.</param>
/// <param name="Summaries">Medians per batch size.</param>
public sealed record EvaluationBenchReport(
    string Data, int Images, int Workers, int ThreadsPerWorker, IReadOnlyList<EvaluationBenchRun> Runs, IReadOnlyList<EvaluationBenchSummary> Summaries);

/// <summary>
/// ResNet-18 feature extraction, the batched <see cref="ResNet18Extractor"/> against the single-image path it replaced
/// (<see cref="ResNet18SingleImage"/>), in one process and interleaved: CPU and wall milliseconds per image, their
/// ratio, and the largest feature difference. The machine is shared, so the ratio from one run is the figure to
/// compare, with the load average beside it (docs/benchmarks.md, "Evaluation").
/// </summary>
public static class EvaluationBenchmark
{
    /// <summary>Runs the comparison; <paramref name="log"/> receives one line per timed pair.</summary>
    /// <exception cref="BadInputException">An option is out of range or the data cannot be loaded.</exception>
    public static EvaluationBenchReport Run(EvaluationBenchOptions o, Action<string>? log = null)
    {
        if (o.Images < 1 || o.Repeats < 1 || o.BatchSizes.Count == 0)
            throw new BadInputException($"images, repeats and batch sizes must be given and positive, got {o.Images} images, {o.Repeats} repeats, {o.BatchSizes.Count} batch sizes");
        var (images, description) = LoadImages(o.Data, o.Images);
        var options = new ResNet18Options(o.ModelDirectory, o.Workers, o.ThreadsPerWorker);
        using var single = new ResNet18SingleImage(options);
        var batched = o.BatchSizes.Select(b => new ResNet18Extractor(options with { BatchSize = b })).ToArray();
        try
        {
            single.Extract(images.Take(Math.Min(2, images.Count)));
            foreach (var extractor in batched) extractor.Extract(images.Take(Math.Min(o.BatchSizes.Max() * o.Workers, images.Count)));
            var runs = new List<EvaluationBenchRun>();
            var maxDifference = new double[batched.Length];
            for (var repeat = 1; repeat <= o.Repeats; repeat++)
            {
                for (var b = 0; b < batched.Length; b++)
                {
                    var load = LoadAverage();
                    // Alternate the order so that a load change during the pair does not always favour one path.
                    var singleFirst = (repeat + b) % 2 == 1;
                    var (first, firstCost) = Timed(singleFirst ? single : batched[b], images);
                    var (second, secondCost) = Timed(singleFirst ? batched[b] : single, images);
                    var (singleFeatures, singleCost, batchedFeatures, batchedCost) = singleFirst
                        ? (first, firstCost, second, secondCost) : (second, secondCost, first, firstCost);
                    maxDifference[b] = Math.Max(maxDifference[b], MaxAbsDifference(singleFeatures, batchedFeatures));
                    var run = new EvaluationBenchRun(repeat, o.BatchSizes[b], load,
                        singleCost.CpuMs / images.Count, singleCost.WallMs / images.Count,
                        batchedCost.CpuMs / images.Count, batchedCost.WallMs / images.Count, singleCost.CpuMs / batchedCost.CpuMs);
                    runs.Add(run);
                    log?.Invoke($"repeat {repeat}, batch {run.BatchSize}, load {load:F1}: single image {run.SingleCpuMsPerImage:F1} CPU-ms/image, batched {run.BatchedCpuMsPerImage:F1}, ratio {run.CpuRatio:F2}");
                }
            }
            var summaries = o.BatchSizes.Select((size, b) =>
            {
                var mine = runs.Where(r => r.BatchSize == size).ToArray();
                return new EvaluationBenchSummary(size, Median(mine.Select(r => r.SingleCpuMsPerImage)), Median(mine.Select(r => r.BatchedCpuMsPerImage)),
                    Median(mine.Select(r => r.CpuRatio)), Median(mine.Select(r => r.SingleWallMsPerImage / r.BatchedWallMsPerImage)), maxDifference[b]);
            }).ToArray();
            return new EvaluationBenchReport(description, images.Count, o.Workers, o.ThreadsPerWorker, runs, summaries);
        }
        finally
        {
            foreach (var extractor in batched) extractor.Dispose();
        }
    }

    static (ImageBatch Images, string Description) LoadImages(string data, int count)
    {
        if (!data.Trim().Equals("synthetic", StringComparison.OrdinalIgnoreCase))
        {
            Data.MnistFetch.EnsureAvailable(data);
            using var set = DataSources.Load(data, channels: 1, size: 28);
            if (set.Count < count) throw new BadInputException($"--data {data} holds {set.Count} images, fewer than the {count} asked for");
            using var first = set.Images.narrow(0, 0, count);
            return (ImageBatch.FromSigned(first), data);
        }
        using var blobs = SyntheticImages.Blobs(count, 28, seed: 0);
        return (ImageBatch.FromSigned(blobs.Images), blobs.Description);
    }

    static (double[,] Features, (double CpuMs, double WallMs) Cost) Timed(IFeatureExtractor extractor, ImageBatch images)
    {
        using var process = Process.GetCurrentProcess();
        var cpu = process.TotalProcessorTime;
        var clock = Stopwatch.StartNew();
        var features = extractor.Extract(images);
        var wall = clock.Elapsed.TotalMilliseconds;
        process.Refresh();
        return (features, ((process.TotalProcessorTime - cpu).TotalMilliseconds, wall));
    }

    static double MaxAbsDifference(double[,] a, double[,] b)
    {
        var max = 0.0;
        for (var i = 0; i < a.GetLength(0); i++)
            for (var j = 0; j < a.GetLength(1); j++) max = Math.Max(max, Math.Abs(a[i, j] - b[i, j]));
        return max;
    }

    static double Median(IEnumerable<double> values)
    {
        var sorted = values.Order().ToArray();
        return sorted.Length % 2 == 1 ? sorted[sorted.Length / 2] : (sorted[sorted.Length / 2 - 1] + sorted[sorted.Length / 2]) / 2;
    }

    /// <summary>The 1-minute load average, NaN where the system does not publish it.</summary>
    internal static double LoadAverage()
    {
        try
        {
            var text = File.ReadAllText("/proc/loadavg").Split(' ')[0];
            return double.Parse(text, System.Globalization.CultureInfo.InvariantCulture);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException)
        {
            return double.NaN;
        }
    }
}
