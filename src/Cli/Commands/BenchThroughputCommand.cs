using System.ComponentModel;
using System.Globalization;
using System.Text.Json;
using DiffusionFunctional.Backend;
using DiffusionFunctional.Experiments.Bench;
using DiffusionFunctional.Training;
using Spectre.Console;
using Spectre.Console.Cli;

namespace DiffusionFunctional.Cli.Commands;

/// <summary><c>dfn bench throughput</c>: training and sampling speed, FLOPs, GEMM ratio and peak memory.</summary>
public sealed class BenchThroughputCommand : Command<BenchThroughputCommand.Settings>
{
    public sealed class Settings : CommandSettings, IComputesWithTensors, Options.IHasDeprecatedOptions
    {
        [CommandOption("--model <NAME>"), Options.ListedDescription(Options.Listing.ModelPresets, "Network preset: {0}."), DefaultValue("small")]
        public string Model { get; init; } = "small";
        [CommandOption("--batch <B>"), Description(Options.OptionText.Batch), DefaultValue(64)] public int Batch { get; init; } = 64;
        [CommandOption("--steps <N>"), Description(Options.OptionText.Steps + " The timed ones, after --untimed-steps."), DefaultValue(5)] public int Steps { get; init; } = 5;
        [CommandOption("--untimed-steps <N>"), Description("Training steps run before timing starts."), DefaultValue(2)] public int UntimedSteps { get; init; } = 2;
        /// <summary>The old spelling of <see cref="UntimedSteps"/> (--warmup means the learning-rate warm-up elsewhere).</summary>
        [CommandOption("--warmup <N>", IsHidden = true)] public int? OldWarmup { get; init; }
        [CommandOption("--sample-batch <N>"), DefaultValue(64)] public int SampleBatch { get; init; } = 64;
        [CommandOption("--sampler-steps <N>"), Description(Options.OptionText.SamplerSteps + " The sampling timed."), DefaultValue(10)] public int SamplerSteps { get; init; } = 10;
        /// <summary>The old spelling of <see cref="SamplerSteps"/>.</summary>
        [CommandOption("--sample-steps <N>", IsHidden = true)] public int? OldSampleSteps { get; init; }
        [CommandOption("--threads <LIST>"), Description(Options.OptionText.Threads + " A list (1,2) compares them interleaved.")] public string? Threads { get; init; }
        [CommandOption("--precision <LIST>"), Description(Options.OptionText.Precision + " A list (fp32,bf16) compares them interleaved."), DefaultValue("fp32")]
        public string Precision { get; init; } = "fp32";
        [CommandOption("--channels-last <LIST>"), Description("off, on, or off,on to compare interleaved."), DefaultValue("off")]
        public string ChannelsLast { get; init; } = "off";
        [CommandOption("--rounds <N>"), Description("Rounds of --steps per variant, interleaved across variants."), DefaultValue(1)]
        public int Rounds { get; init; } = 1;
        [CommandOption("--device <DEVICE>"), Description(Options.OptionText.Device), DefaultValue("cpu")] public string Device { get; init; } = "cpu";
        [CommandOption("--peer"), Description("Also time the same step in PyTorch (bench/peer, /usr/bin/python3 with torch), interleaved: ours / PyTorch per thread count. Exit 2 when torch is missing.")]
        public bool Peer { get; init; }
        [CommandOption("--json"), Description(Options.OptionText.Json)] public bool Json { get; init; }

        /// <summary>Untimed steps, given under either name.</summary>
        public int Warmup => OldWarmup ?? UntimedSteps;
        /// <summary>Sampler steps, given under either name.</summary>
        public int SampleSteps => OldSampleSteps ?? SamplerSteps;

        /// <inheritdoc/>
        public IReadOnlyList<(string Old, string New)> Renamed => [("--warmup", "--untimed-steps"), ("--sample-steps", "--sampler-steps")];

        /// <inheritdoc/>
        public override ValidationResult Validate() => Checks.First(
            Checks.Library(() => Models.Denoisers.Named(Model), "--model"), Checks.Positive(Batch, "--batch"), Checks.Positive(Steps, "--steps"),
            Checks.NotNegative(Warmup, OldWarmup is null ? "--untimed-steps" : "--warmup"), Checks.Positive(SampleBatch, "--sample-batch"),
            Checks.Positive(SampleSteps, OldSampleSteps is null ? "--sampler-steps" : "--sample-steps"),
            Checks.Between(Rounds, 1, 1000, "--rounds"), ThreadList(), Checks.Device(Device), Checks.Plain(() => Variants(this)));

        /// <summary>Each listed thread count is a whole number within the machine's cores.</summary>
        ValidationResult? ThreadList() => Threads is null ? null
            : Threads.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
                .Select(t => int.TryParse(t, NumberStyles.None, CultureInfo.InvariantCulture, out var n)
                    ? Checks.Threads(n) : Checks.Error($"--threads takes whole numbers, got '{t}'"))
                .FirstOrDefault(r => r is not null);
    }

    public override int Execute(CommandContext context, Settings s, CancellationToken cancellationToken)
    {
        try { TorchBackend.Resolve(s.Device); }
        catch (TorchBackend.DeviceUnavailableException e) { throw new BadInputException(e.Message); }
        var options = new ThroughputOptions
        {
            Model = s.Model, BatchSize = s.Batch, TrainSteps = s.Steps, WarmupSteps = s.Warmup,
            SampleBatch = s.SampleBatch, SampleSteps = s.SampleSteps, Device = s.Device,
        };
        var variants = Variants(s);
        Action<string>? log = s.Json ? null : Messages.Info;
        var reports = s.Peer ? PeerBenchmark.Run(options, variants, s.Rounds, log) : TrainingSpeedBenchmark.Run(options, variants, s.Rounds, log);
        foreach (var r in reports)
            if (r.Peer is { MeetsTarget: false } peer)
                Messages.Warn($"ours / PyTorch = {peer.Ratio:F3} at {r.Threads} thread(s), {r.Precision}: below the {PeerComparison.Target:F1} target (docs/benchmarks.md, \"PyTorch peer\")");
        if (s.Json)
        {
            var json = new JsonSerializerOptions { PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower };
            Console.Out.WriteLine(reports.Count == 1 ? JsonSerializer.Serialize(reports[0], json) : JsonSerializer.Serialize(reports, json));
            return DfnApp.Ok;
        }
        foreach (var report in reports) AnsiConsole.Write(Table(report));
        return DfnApp.Ok;
    }

    /// <summary>Every combination of the listed precisions, memory formats and thread counts, in that nesting order.</summary>
    private static List<SpeedVariant> Variants(Settings s)
    {
        static string[] Items(string text) => text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        var threads = s.Threads is null ? [TorchSharp.torch.get_num_threads()]
            : Items(s.Threads).Select(t => int.TryParse(t, NumberStyles.None, CultureInfo.InvariantCulture, out var n) ? n
                : throw new BadInputException($"--threads takes whole numbers, got '{t}'")).ToArray();
        var formats = Items(s.ChannelsLast).Select(f => f.ToLowerInvariant() switch
        {
            "off" => false,
            "on" => true,
            _ => throw new BadInputException($"--channels-last takes off and on, got '{f}'"),
        }).ToArray();
        var precisions = Items(s.Precision).Select(TrainingPrecision.Parse).ToArray();
        if (threads.Length == 0 || formats.Length == 0 || precisions.Length == 0) throw new BadInputException("--threads, --precision and --channels-last must not be empty");
        return [.. from p in precisions from f in formats from t in threads select new SpeedVariant(p, f, t)];
    }

    private static Table Table(ThroughputReport r)
    {
        string F(double v, string format = "F2") => v.ToString(format, CultureInfo.InvariantCulture);
        string Ms(double seconds) => $"{F(seconds * 1000, "F1")} ms ({F(100 * seconds / r.TrainSecondsPerStep, "F0")}%)";
        var table = new Table().AddColumns("figure", "value");
        table.AddRow("model", $"{r.Model} ({r.Parameters:N0} parameters, {r.ImageChannels}x{r.ImageSize}x{r.ImageSize})");
        table.AddRow("device / threads", $"{r.Device} / {r.Threads}");
        table.AddRow("precision / memory format", $"{r.Precision} / {(r.ChannelsLast ? "channels-last" : "NCHW")}");
        table.AddRow("training images/s", $"{F(r.TrainImagesPerSecond)} (batch {r.BatchSize}, {F(r.TrainSecondsPerStep, "F3")} s/step, {r.Rounds} round(s))");
        table.AddRow("relative to the first variant", F(r.RatioToFirst, "F3"));
        table.AddRow("step: data / forward / backward", $"{Ms(r.DataSeconds)} / {Ms(r.ForwardSeconds)} / {Ms(r.BackwardSeconds)}");
        table.AddRow("step: optimiser / EMA / other", $"{Ms(r.OptimiserSeconds)} / {Ms(r.EmaSeconds)} / {Ms(r.OtherSeconds)}");
        table.AddRow("sampling image-steps/s", F(r.SampleImagesPerSecondPerStep));
        table.AddRow("DDIM-50 images/s", F(r.Ddim50ImagesPerSecond));
        table.AddRow("forward GFLOP/image", F(r.ForwardGflopPerImage, "F4"));
        table.AddRow("achieved training GFLOP/s", F(r.AchievedTrainGflops));
        table.AddRow($"libtorch {r.Precision} GEMM GFLOP/s", F(r.GemmGflops));
        table.AddRow("ratio to GEMM", F(r.RatioToGemm, "F3"));
        table.AddRow("peak resident MB (whole process)", F(r.PeakResidentMegabytes, "F0"));
        if (r.Peer is { } p)
        {
            table.AddRow("PyTorch peer images/s", $"{F(p.ImagesPerSecond)} (torch {p.TorchVersion}, fp32, {p.Threads} thread(s), OpenMP {p.OpenMpWait})");
            table.AddRow(p.Guarded ? $"ours / PyTorch (target >= {F(PeerComparison.Target, "F1")})" : $"ours ({r.Precision}) / PyTorch (fp32)",
                $"{F(p.Ratio, "F3")}{(p.MeetsTarget == false ? " BELOW TARGET" : "")} (median of {p.Rounds} round(s): {string.Join(", ", p.RoundRatios.Select(x => F(x, "F3")))})");
            table.AddRow("peer check: max |PyTorch - ours|", $"{p.Check.MaxAbsDiff:G3} <= {p.Check.Bound:G3} (max |y| {F(p.Check.MaxAbsOutput)})");
        }
        return table;
    }
}
