using System.ComponentModel;
using System.Globalization;
using System.Text.Json;
using DiffusionFunctional.Analysis;
using DiffusionFunctional.Experiments.Analysis;
using DiffusionFunctional.Experiments.Data;
using Spectre.Console;
using Spectre.Console.Cli;

namespace DiffusionFunctional.Cli.Commands;

public sealed class AffinityCommand : Command<AffinityCommand.Settings>
{
    public sealed class Settings : Options.DataSettings
    {
        [CommandOption("--checkpoints <PATH>")]
        [Description("Checkpoint files or folders of *.dfn files (repeat the option or separate with commas); the matrix is averaged over them.")]
        public string[] Checkpoints { get; init; } = [];

        [CommandOption("--groups <G>")]
        [Description("Timestep groups G (must divide T); 20-100 is typical.")]
        [DefaultValue(20)]
        public int Groups { get; init; } = 20;

        [CommandOption("--images <N>")]
        [Description(Options.OptionText.Count + ". The fixed batch the losses are measured on (the same images and noise for every group).")]
        [DefaultValue(32)]
        public int Images { get; init; } = 32;

        [CommandOption("--sketch-dim <D>")]
        [Description("0: keep each group's full gradient; D > 0: keep a D-dimensional random projection (memory G x D) and report its measured cosine error.")]
        [DefaultValue(0)]
        public int SketchDim { get; init; }

        [CommandOption("--ema")]
        [Description("Measure the EMA weights instead of the online ones.")]
        public bool Ema { get; init; }

        [CommandOption("--seed <S>")]
        [Description(Options.OptionText.Seed)]
        [DefaultValue(0L)]
        public long Seed { get; init; }

        [CommandOption("--out <DIR>")]
        [Description("Where affinity.csv, affinity-heatmap.png and affinity-vs-logsnr.png go (default: runs/affinity in the cache, docs/cache.md).")]
        public string? Out { get; init; }

        [CommandOption("--json")]
        [Description(Options.OptionText.Json)]
        public bool Json { get; init; }

        /// <inheritdoc/>
        protected override IEnumerable<ValidationResult?> OwnChecks() =>
        [
            Checkpoints.Length == 0 ? Checks.Error("no checkpoint given: --checkpoints FILE|DIR is required") : null, Checks.Between(Groups, 2, 100_000, "--groups"),
            Checks.Between(Images, 1, 100_000, "--images"), Checks.NotNegative(SketchDim, "--sketch-dim"),
        ];
    }

    public override int Execute(CommandContext context, Settings s, CancellationToken stop)
    {
        if (s.Threads is { } threads) Backend.TorchBackend.SetThreads(threads);
        var checkpoints = s.Checkpoints.SelectMany(c => c.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)).ToList();
        var request = new AffinityRequest(checkpoints, s.Data, s.Out ?? Path.Combine(CacheDirectory.Runs, "affinity"), s.Groups, s.Images, s.SketchDim, s.Seed, s.Ema);
        MnistFetch.EnsureAvailable(s.Data, Messages.Info);
        var result = AffinityRun.Run(request, Messages.Info);
        var m = result.Measurement;
        if (s.Json)
        {
            Console.Out.WriteLine(JsonSerializer.Serialize(new
            {
                checkpoints = result.Checkpoints,
                groups = s.Groups,
                images = s.Images,
                sketch_dim = s.SketchDim,
                sketch_max_cosine_error = double.IsNaN(m.SketchMaxError) ? (double?)null : m.SketchMaxError,
                spearman_affinity_vs_logsnr_gap = double.IsNaN(result.Files.SpearmanRho) ? (double?)null : result.Files.SpearmanRho,
                csv = result.Files.CsvPath,
                heatmap = result.Files.HeatmapPath,
                scatter = result.Files.ScatterPath,
            }));
            return DfnApp.Ok;
        }
        AnsiConsole.MarkupLine(CultureInfo.InvariantCulture, "Task affinity over [bold]{0}[/] checkpoint(s), {1} groups, {2} images, {3:N0} parameters",
            result.Checkpoints.Count, s.Groups, s.Images, result.ParameterCount);
        AnsiConsole.MarkupLine(CultureInfo.InvariantCulture, "Spearman rho (affinity vs |delta log-SNR|): [bold]{0:F3}[/] (observation O1 predicts a negative value)",
            result.Files.SpearmanRho);
        if (!double.IsNaN(m.SketchMaxError))
            AnsiConsole.MarkupLine(CultureInfo.InvariantCulture, "sketch (d = {0}): max measured cosine error {1:F4}", s.SketchDim, m.SketchMaxError);
        AnsiConsole.WriteLine($"wrote {result.Files.CsvPath}, {result.Files.HeatmapPath}, {result.Files.ScatterPath}");
        AnsiConsole.WriteLine($"cluster on it: dfn cluster --cluster-objective affinity --affinity {result.Files.CsvPath} --timesteps <T> --clusters 5");
        return DfnApp.Ok;
    }
}
