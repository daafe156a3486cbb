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
    public sealed class Settings : CommandSettings, IComputesWithTensors
    {
        [CommandOption("--data <SOURCE>"), Description("synthetic (blob images, no download), mnist, idx:PATH, folder:PATH or a folder."), DefaultValue("synthetic")]
        public string Data { get; init; } = "synthetic";
        [CommandOption("--images <N>"), Description("Images per timed extraction."), DefaultValue(256)] public int Images { get; init; } = 256;
        [CommandOption("--batch <LIST>"), Description("Comma-separated batch sizes of the batched path (default: the extractor's default).")]
        public string? Batch { get; init; }
        [CommandOption("--workers <N>"), Description("Sessions of both paths, each with --threads threads (dfn demo opens 1 session of 2 threads)."), DefaultValue(1)] public int Workers { get; init; } = 1;
        [CommandOption("--threads <N>"), Description("OnnxRuntime threads per worker."), DefaultValue(1)] public int Threads { get; init; } = 1;
        [CommandOption("--repeats <N>"), Description("Timed pairs per batch size."), DefaultValue(3)] public int Repeats { get; init; } = 3;
        [CommandOption("--json"), Description("Print one JSON object with every figure.")] public bool Json { get; init; }
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

    static int[] ParseBatches(string? text)
    {
        if (string.IsNullOrWhiteSpace(text)) return [ResNet18Options.DefaultBatchSize];
        return text.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries).Select(part =>
            int.TryParse(part, NumberStyles.None, CultureInfo.InvariantCulture, out var size) && size > 0
                ? size
                : throw new BadInputException($"--batch takes positive integers separated by commas, got '{part}'")).ToArray();
    }
}
