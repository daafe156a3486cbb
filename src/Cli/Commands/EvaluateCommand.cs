using System.ComponentModel;
using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using DiffusionFunctional.Diffusion;
using DiffusionFunctional.Evaluation;
using DiffusionFunctional.Experiments.Data;
using Spectre.Console;
using Spectre.Console.Cli;

namespace DiffusionFunctional.Cli.Commands;

/// <summary><c>dfn evaluate</c>: FD-ResNet18, KID, precision and recall (and FID) of generated images against real ones.</summary>
public sealed class EvaluateCommand : Command<EvaluateCommand.Settings>
{
    /// <summary>Options of <c>dfn evaluate</c>.</summary>
    public sealed class Settings : Options.RunSettings
    {
        /// <summary>Real images.</summary>
        [CommandOption("--real <DATA>")]
        [Description("Real images: mnist (fetched on first use), idx:PATH (both resized to the generated images' size), folder:PATH or a folder of PNG/JPEG files of the generated size.")]
        public string? Real { get; init; }

        /// <summary>Generated images.</summary>
        [CommandOption("--fake <DIR>")]
        [Description("Generated images: a folder of PNG/JPEG files (one size), or a checkpoint (file or run folder) to sample with its EMA weights.")]
        public string? Fake { get; init; }

        /// <summary>Images per set.</summary>
        [CommandOption("--count <N>")]
        [Description(Options.OptionText.Count + ". A random N of each set, drawn with --seed (a checkpoint is sampled N times, default 500); default all.")]
        public int? Count { get; init; }

        /// <summary>Sampler of a checkpoint.</summary>
        [CommandOption("--sampler <NAME>")]
        [Description(Options.OptionText.Sampler)]
        [DefaultValue("ddim")]
        public string Sampler { get; init; } = "ddim";

        /// <summary>Sampler steps.</summary>
        [CommandOption("--sampler-steps <N>")]
        [Description(Options.OptionText.SamplerSteps)]
        [DefaultValue(50)]
        public int SamplerSteps { get; init; } = 50;

        /// <summary>Seed.</summary>
        [CommandOption("--seed <S>")]
        [Description(Options.OptionText.Seed)]
        [DefaultValue(0L)]
        public long Seed { get; init; }

        /// <summary>Inception file.</summary>
        [CommandOption("--inception <FILE>")]
        [Description("A TorchScript Inception-v3 (torch.jit.save) returning pool features: adds FID.")]
        public string? Inception { get; init; }

        /// <summary>Inception input range.</summary>
        [CommandOption("--inception-range <RANGE>")]
        [Description("Pixel range that Inception module expects: 0-1 (default), -1-1 or 0-255.")]
        [DefaultValue("0-1")]
        public string InceptionRange { get; init; } = "0-1";

        /// <summary>ResNet-18 workers.</summary>
        [CommandOption("--workers <N>")]
        [Description(Options.OptionText.Workers)]
        [DefaultValue(1)]
        public int Workers { get; init; } = 1;

        /// <summary>No feature cache.</summary>
        [CommandOption("--no-cache")]
        [Description("Do not read or write the real set's cached features (docs/cache.md).")]
        public bool NoCache { get; init; }

        /// <summary>JSON output.</summary>
        [CommandOption("--json")]
        [Description(Options.OptionText.Json)]
        public bool Json { get; init; }

        /// <inheritdoc/>
        protected override IEnumerable<ValidationResult?> OwnChecks() =>
        [
            Checks.Required(Real, "--real"), Checks.Required(Fake, "--fake"),
            Count is { } n ? Checks.Between(n, 2, 1_000_000, "--count") : null,
            Checks.Positive(SamplerSteps, "--sampler-steps"), Checks.Library(() => SamplerOptions.ParseKind(Sampler), "--sampler"), Checks.Between(Workers, 1, 64, "--workers"),
            InceptionRange.Trim() is "0-1" or "-1-1" or "0-255" ? null : Checks.Error($"--inception-range '{InceptionRange}' is not one of 0-1, -1-1, 0-255"),
        ];
    }

    static InceptionInputRange ParseRange(string text) => text.Trim() switch
    {
        "-1-1" => InceptionInputRange.MinusOneToOne,
        "0-255" => InceptionInputRange.ZeroTo255,
        _ => InceptionInputRange.ZeroToOne,
    };

    /// <inheritdoc/>
    public override int Execute(CommandContext context, Settings s, CancellationToken stop)
    {
        if (s.Threads is { } threads) Backend.TorchBackend.SetThreads(threads);
        MnistFetch.EnsureAvailable(s.Real!, Messages.Info);
        if (s.Count is { } count) EvaluationInputs.RequireRealCount(s.Real!, count); // before any sampling
        var sampler = new SamplerOptions { Kind = SamplerOptions.ParseKind(s.Sampler), Steps = s.SamplerSteps, Seed = s.Seed };
        var fake = EvaluationInputs.LoadFake(s.Fake!, s.Count, sampler, Messages.Info);
        var real = EvaluationInputs.LoadReal(s.Real!, s.Count, s.Seed, fake.Images, Messages.Info);
        var options = new EvaluationOptions(Workers: s.Workers, InceptionFile: s.Inception, InceptionRange: ParseRange(s.InceptionRange), CacheRealFeatures: !s.NoCache);
        var watch = Stopwatch.StartNew();
        using var evaluator = new Evaluator(options);
        // Progress goes to stderr as plain lines so that stdout stays one table or one JSON object.
        var lastLine = "";
        var result = evaluator.Evaluate(real.Images, fake.Images, new InlineProgress<WorkProgress>(p =>
        {
            if (p.Done != p.Total && p.Done % 256 != 0) return;
            var line = $"features ({p.Stage}): {p.Done}/{p.Total}";
            if (line != lastLine) Messages.Info(line);
            lastLine = line;
        }));
        var seconds = watch.Elapsed.TotalSeconds;
        if (s.Json) Console.Out.WriteLine(JsonSerializer.Serialize(Json(s, real, fake, result, seconds)));
        else PrintTable(real, fake, result, seconds);
        return DfnApp.Ok;
    }

    static object Json(Settings s, EvaluationSet real, EvaluationSet fake, EvaluationResult result, double seconds) => new
    {
        real = s.Real,
        fake = s.Fake,
        real_count = result.RealCount,
        fake_count = result.FakeCount,
        real_selection = real.Selection,
        fake_selection = fake.Selection,
        real_skipped = real.Skipped,
        fake_skipped = fake.Skipped,
        image_shape = new[] { fake.Images.Channels, fake.Images.Height, fake.Images.Width },
        fd_resnet18 = result.FdResNet18,
        kid = result.Kid,
        kid_standard_error = result.KidStandardError,
        kid_subset_size = result.KidSubsetSize,
        precision = result.Precision,
        recall = result.Recall,
        k = result.K,
        fid = result.Fid,
        real_features_cached = result.RealFeaturesFromCache,
        seconds,
    };

    static void PrintTable(EvaluationSet real, EvaluationSet fake, EvaluationResult result, double seconds)
    {
        string F(double v) => v.ToString("G6", CultureInfo.InvariantCulture);
        var table = new Table().AddColumns("metric", "value");
        table.AddRow("FD-ResNet18", F(result.FdResNet18));
        table.AddRow($"KID (subsets of {result.KidSubsetSize})", $"{F(result.Kid)} ± {F(result.KidStandardError)}");
        table.AddRow($"precision (k = {result.K})", F(result.Precision));
        table.AddRow($"recall (k = {result.K})", F(result.Recall));
        if (result.Fid is { } fid) table.AddRow("FID", F(fid));
        AnsiConsole.Write(table);
        Console.Out.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"real: {real.Selection}; generated: {fake.Selection}; {fake.Images.Channels}x{fake.Images.Height}x{fake.Images.Width}; {seconds:F1} s{(result.RealFeaturesFromCache ? " (real features from cache)" : "")}"));
    }
}
