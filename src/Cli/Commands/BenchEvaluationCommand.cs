using System.ComponentModel;
using System.Globalization;
using System.Text.Json;
using DiffusionFunctional.Experiments.Bench;
using DiffusionFunctional.Evaluation;
using Spectre.Console;
using Spectre.Console.Cli;

namespace DiffusionFunctional.Cli.Commands;

/// <summary><c>dfn bench evaluation</c>: ResNet-18 features, batched against one image per run, CPU-ms per image.</summary>
public sealed class BenchEvaluationCommand : Command<BenchEvaluationCommand.Settings>
{
    public sealed class Settings : CommandSettings, IComputesWithTensors, Options.IHasDeprecatedOptions
    {
        [CommandOption("--data <SOURCE>"), Description(Options.OptionText.Data + " Also synthetic (blob images, no download) or a plain folder."), DefaultValue("synthetic")]
        public string Data { get; init; } = "synthetic";
        [CommandOption("--images <N>"), Description(Options.OptionText.Count + ". Each timed extraction takes this many."), DefaultValue(256)] public int Images { get; init; } = 256;
        [CommandOption("--feature-batch <LIST>"), Description("Comma-separated ResNet-18 batch sizes of the batched path (default: the extractor's default).")]
        public string? FeatureBatch { get; init; }
        /// <summary>The old spelling of <see cref="FeatureBatch"/> (--batch means images per training step elsewhere).</summary>
        [CommandOption("--batch <LIST>", IsHidden = true)] public string? OldBatch { get; init; }
        /// <summary>The batch sizes, given under either name.</summary>
        public string? Batch => OldBatch ?? FeatureBatch;
        [CommandOption("--sessions <N>"), Description("OnnxRuntime sessions of both paths, each with --session-threads threads (dfn demo opens 1 session of 2 threads)."), DefaultValue(1)] public int Sessions { get; init; } = 1;
        [CommandOption("--session-threads <N>"), Description("OnnxRuntime threads per session."), DefaultValue(1)] public int SessionThreads { get; init; } = 1;
        /// <summary>The old spelling of <see cref="Sessions"/> (--workers means ResNet-18 threads elsewhere).</summary>
        [CommandOption("--workers <N>", IsHidden = true)] public int? OldWorkers { get; init; }
        /// <summary>The old spelling of <see cref="SessionThreads"/> (--threads means libtorch threads elsewhere).</summary>
        [CommandOption("--threads <N>", IsHidden = true)] public int? OldThreads { get; init; }
        [CommandOption("--repeats <N>"), Description("Timed pairs per batch size."), DefaultValue(3)] public int Repeats { get; init; } = 3;
        [CommandOption("--json"), Description(Options.OptionText.Json)] public bool Json { get; init; }

        /// <summary>Sessions, given under either name.</summary>
        public int Workers => OldWorkers ?? Sessions;
        /// <summary>Threads per session, given under either name.</summary>
        public int Threads => OldThreads ?? SessionThreads;

        /// <inheritdoc/>
        public IReadOnlyList<(string Old, string New)> Renamed => [("--workers", "--sessions"), ("--threads", "--session-threads"), ("--batch", "--feature-batch")];

        /// <inheritdoc/>
        public override ValidationResult Validate() => Checks.First(
            Images < 1 ? Checks.Error($"--images must be at least 1, got {Images} images") : null, Checks.Between(Workers, 1, 64, OldWorkers is null ? "--sessions" : "--workers"),
            Checks.Between(Threads, 1, 1024, OldThreads is null ? "--session-threads" : "--threads"), Checks.Between(Repeats, 1, 1000, "--repeats"),
            Checks.Library(() => ParseBatches(Batch), "--batch"));
    }

    public override int Execute(CommandContext context, Settings s, CancellationToken cancellationToken)
    {
        var report = EvaluationBenchmark.Run(new EvaluationBenchOptions
        {
            Data = s.Data, Images = s.Images, BatchSizes = ParseBatches(s.Batch), Workers = s.Workers, ThreadsPerWorker = s.Threads, Repeats = s.Repeats,
        }, s.Json ? null : line => Console.Error.WriteLine($"dfn: {line}"));
        if (s.Json)
        {
            Console.Out.WriteLine(JsonSerializer.Serialize(report, new JsonSerializerOptions { PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower }));
            return DfnApp.Ok;
        }
        string F(double v, string format = "F1") => v.ToString(format, CultureInfo.InvariantCulture);
        var loads = report.Runs.Select(r => r.LoadAverage).Where(double.IsFinite).ToArray();
        var load = loads.Length == 0 ? "load average unknown" : $"load average {F(loads.Min())}-{F(loads.Max())}";
        AnsiConsole.WriteLine($"{report.Images} images ({report.Data}), {report.Workers} worker(s) x {report.ThreadsPerWorker} thread(s); medians of {s.Repeats} repeats; {load}");
        var table = new Table().AddColumns("batch", "single image CPU-ms/image", "batched CPU-ms/image", "CPU ratio", "wall ratio", "max |feature diff|");
        foreach (var r in report.Summaries)
            table.AddRow(r.BatchSize.ToString(CultureInfo.InvariantCulture), F(r.SingleCpuMsPerImage), F(r.BatchedCpuMsPerImage), F(r.CpuRatio, "F2"), F(r.WallRatio, "F2"), r.MaxAbsDifference.ToString("G3", CultureInfo.InvariantCulture));
        AnsiConsole.Write(table);
        return DfnApp.Ok;
    }

    internal static int[] ParseBatches(string? text)
    {
        if (string.IsNullOrWhiteSpace(text)) return [ResNet18Options.DefaultBatchSize];
        return text.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries).Select(part =>
            int.TryParse(part, NumberStyles.None, CultureInfo.InvariantCulture, out var size) && size > 0
                ? size
                : throw new BadInputException($"--batch takes positive integers separated by commas, got '{part}'")).ToArray();
    }
}
