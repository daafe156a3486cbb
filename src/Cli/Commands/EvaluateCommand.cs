using System.ComponentModel;
using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using DiffusionFunctional.Diffusion;
using DiffusionFunctional.Evaluation;
using Spectre.Console;
using Spectre.Console.Cli;

namespace DiffusionFunctional.Cli.Commands;

public sealed class EvaluateCommand : Command<EvaluateCommand.Settings>
{
    public sealed class Settings : CommandSettings
    {
        [CommandOption("--real <DATA>")]
        [Description("Real images: mnist, idx:PATH, folder:PATH, or a folder of PNG/JPEG files (one size).")]
        public string? Real { get; init; }

        [CommandOption("--fake <DIR>")]
        [Description("Generated images: a folder of PNG/JPEG files (one size), or a checkpoint (.dfn) to sample from with its EMA weights.")]
        public string? Fake { get; init; }

        [CommandOption("--count <N>")]
        [Description("Use the first N images of each set (a checkpoint is sampled N times, default 500); default all.")]
        public int? Count { get; init; }

        [CommandOption("--sampler-steps <N>")]
        [Description("DDIM steps when --fake is a checkpoint.")]
        [DefaultValue(50)]
        public int SamplerSteps { get; init; } = 50;

        [CommandOption("--seed <S>")]
        [Description("Sampler seed when --fake is a checkpoint.")]
        [DefaultValue(0L)]
        public long Seed { get; init; }

        [CommandOption("--inception <FILE>")]
        [Description("A TorchScript Inception-v3 (torch.jit.save) returning pool features: adds FID.")]
        public string? Inception { get; init; }

        [CommandOption("--inception-range <RANGE>")]
        [Description("Pixel range that Inception module expects: 0-1 (default), -1-1 or 0-255.")]
        [DefaultValue("0-1")]
        public string InceptionRange { get; init; } = "0-1";

        [CommandOption("--workers <N>")]
        [Description("Images the ResNet-18 runs concurrently (one OnnxRuntime session pair each).")]
        [DefaultValue(1)]
        public int Workers { get; init; } = 1;

        [CommandOption("--no-cache")]
        [Description("Do not read or write the real set's cached features ($DFN_CACHE or ~/.cache/diffusionfunctional/features).")]
        public bool NoCache { get; init; }

        [CommandOption("--json")]
        [Description("Print one JSON object instead of a table.")]
        public bool Json { get; init; }

        public override ValidationResult Validate()
        {
            if (string.IsNullOrWhiteSpace(Real)) return ValidationResult.Error("--real is required");
            if (string.IsNullOrWhiteSpace(Fake)) return ValidationResult.Error("--fake is required");
            return ValidationResult.Success();
        }
    }

    static InceptionInputRange ParseRange(string text) => text.Trim() switch
    {
        "0-1" => InceptionInputRange.ZeroToOne,
        "-1-1" => InceptionInputRange.MinusOneToOne,
        "0-255" => InceptionInputRange.ZeroTo255,
        _ => throw new BadInputException($"--inception-range '{text}' is not one of 0-1, -1-1, 0-255"),
    };

    public override int Execute(CommandContext context, Settings s, CancellationToken cancellationToken)
    {
        var range = ParseRange(s.InceptionRange);
        var real = EvaluationInputs.LoadReal(s.Real!, s.Count, Messages.Info);
        var sampler = new SamplerOptions { Kind = SamplerKind.Ddim, Steps = s.SamplerSteps, Seed = s.Seed };
        var fake = EvaluationInputs.LoadFake(s.Fake!, s.Count, sampler, Messages.Info);
        var options = new EvaluationOptions(Workers: s.Workers, InceptionFile: s.Inception, InceptionRange: range, CacheRealFeatures: !s.NoCache);
        var watch = Stopwatch.StartNew();
        using var evaluator = new Evaluator(options);
        // Progress goes to stderr as plain lines so that stdout stays one table or one JSON object.
        var lastLine = "";
        var progress = new InlineProgress<WorkProgress>(p =>
        {
            if (p.Done != p.Total && p.Done % 256 != 0) return;
            var line = $"features ({p.Stage}): {p.Done}/{p.Total}";
            if (line != lastLine) Console.Error.WriteLine(line);
            lastLine = line;
        });
        var result = evaluator.Evaluate(real, fake, progress);
        var seconds = watch.Elapsed.TotalSeconds;

        if (s.Json)
        {
            var json = new
            {
                real = s.Real,
                fake = s.Fake,
                real_count = result.RealCount,
                fake_count = result.FakeCount,
                fd_resnet18 = result.FdResNet18,
                precision = result.Precision,
                recall = result.Recall,
                k = result.K,
                fid = result.Fid,
                real_features_cached = result.RealFeaturesFromCache,
                seconds,
            };
            Console.Out.WriteLine(JsonSerializer.Serialize(json));
            return DfnApp.Ok;
        }

        string F(double v) => v.ToString("G6", CultureInfo.InvariantCulture);
        var table = new Table().AddColumns("metric", "value");
        table.AddRow("FD-ResNet18", F(result.FdResNet18));
        table.AddRow($"precision (k = {result.K})", F(result.Precision));
        table.AddRow($"recall (k = {result.K})", F(result.Recall));
        if (result.Fid is { } fid) table.AddRow("FID", F(fid));
        AnsiConsole.Write(table);
        AnsiConsole.MarkupLine(CultureInfo.InvariantCulture, "[grey]{0} real vs {1} generated images, {2:F1} s{3}[/]",
            result.RealCount, result.FakeCount, seconds, result.RealFeaturesFromCache ? " (real features from cache)" : "");
        return DfnApp.Ok;
    }
}
