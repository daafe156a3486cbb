using System.ComponentModel;
using System.Globalization;
using System.Text.Json;
using DiffusionFunctional.Backend;
using DiffusionFunctional.Experiments.Bench;
using Spectre.Console;
using Spectre.Console.Cli;

namespace DiffusionFunctional.Cli.Commands;

/// <summary><c>dfn bench throughput</c>: training and sampling speed, FLOPs, GEMM ratio and peak memory.</summary>
public sealed class BenchThroughputCommand : Command<BenchThroughputCommand.Settings>
{
    public sealed class Settings : CommandSettings
    {
        [CommandOption("--model <NAME>"), Description("UNet configuration (dfn train's default: small)."), DefaultValue("small")]
        public string Model { get; init; } = "small";
        [CommandOption("--batch <B>"), DefaultValue(64)] public int Batch { get; init; } = 64;
        [CommandOption("--steps <N>"), Description("Timed training steps."), DefaultValue(5)] public int Steps { get; init; } = 5;
        [CommandOption("--warmup <N>"), Description("Untimed steps first."), DefaultValue(2)] public int Warmup { get; init; } = 2;
        [CommandOption("--sample-batch <N>"), DefaultValue(64)] public int SampleBatch { get; init; } = 64;
        [CommandOption("--sample-steps <N>"), Description("DDIM steps timed."), DefaultValue(10)] public int SampleSteps { get; init; } = 10;
        [CommandOption("--threads <N>")] public int? Threads { get; init; }
        [CommandOption("--device <DEVICE>"), DefaultValue("cpu")] public string Device { get; init; } = "cpu";
        [CommandOption("--json"), Description("Print one JSON object with every figure.")] public bool Json { get; init; }
    }

    public override int Execute(CommandContext context, Settings s, CancellationToken cancellationToken)
    {
        try { TorchBackend.Resolve(s.Device); }
        catch (TorchBackend.DeviceUnavailableException e) { throw new BadInputException(e.Message); }
        var report = ThroughputBenchmark.Run(new ThroughputOptions
        {
            Model = s.Model, BatchSize = s.Batch, TrainSteps = s.Steps, WarmupSteps = s.Warmup,
            SampleBatch = s.SampleBatch, SampleSteps = s.SampleSteps, Threads = s.Threads, Device = s.Device,
        }, s.Json ? null : Messages.Info);
        if (s.Json)
        {
            Console.Out.WriteLine(JsonSerializer.Serialize(report, new JsonSerializerOptions { PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower }));
            return DfnApp.Ok;
        }
        var table = new Table().AddColumns("figure", "value");
        string F(double v, string format = "F2") => v.ToString(format, CultureInfo.InvariantCulture);
        table.AddRow("model", $"{report.Model} ({report.Parameters:N0} parameters, {report.ImageChannels}x{report.ImageSize}x{report.ImageSize})");
        table.AddRow("device / threads", $"{report.Device} / {report.Threads}");
        table.AddRow("training images/s", $"{F(report.TrainImagesPerSecond)} (batch {report.BatchSize}, {F(report.TrainSecondsPerStep, "F3")} s/step)");
        table.AddRow("sampling image-steps/s", F(report.SampleImagesPerSecondPerStep));
        table.AddRow("DDIM-50 images/s", F(report.Ddim50ImagesPerSecond));
        table.AddRow("forward GFLOP/image", F(report.ForwardGflopPerImage, "F4"));
        table.AddRow("achieved training GFLOP/s", F(report.AchievedTrainGflops));
        table.AddRow("libtorch GEMM GFLOP/s", F(report.GemmGflops));
        table.AddRow("ratio to GEMM", F(report.RatioToGemm, "F3"));
        table.AddRow("peak resident MB", F(report.PeakResidentMegabytes, "F0"));
        AnsiConsole.Write(table);
        return DfnApp.Ok;
    }
}
