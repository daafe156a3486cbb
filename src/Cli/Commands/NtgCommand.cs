using System.ComponentModel;
using System.Globalization;
using System.Text.Json;
using DiffusionFunctional.Analysis;
using DiffusionFunctional.Experiments.Analysis;
using DiffusionFunctional.Experiments.Data;
using DiffusionFunctional.Weighting;
using Spectre.Console;
using Spectre.Console.Cli;

namespace DiffusionFunctional.Cli.Commands;

public sealed class NtgCommand : Command<NtgCommand.Settings>
{
    public sealed class Settings : Options.ModelSettings, Options.IHasDeprecatedOptions
    {
        [CommandOption("--specialists <K>")]
        [Description("Specialists, one per equal timestep interval (5 in the paper).")]
        [DefaultValue(5)]
        public int Specialists { get; init; } = 5;

        /// <summary>The old spelling of <see cref="Specialists"/>.</summary>
        [CommandOption("--intervals <K>", IsHidden = true)]
        public int? OldIntervals { get; init; }

        /// <summary>The number of specialists, given under either name.</summary>
        public int Intervals => OldIntervals ?? Specialists;

        /// <inheritdoc/>
        public IReadOnlyList<(string Old, string New)> Renamed => [("--intervals", "--specialists")];

        [CommandOption("--steps <N>")]
        [Description(Options.OptionText.Steps + " The shared model and each specialist.")]
        [DefaultValue(2000)]
        public int Steps { get; init; } = 2000;

        [CommandOption("--batch <B>"), Description(Options.OptionText.Batch)]
        [DefaultValue(64)]
        public int Batch { get; init; } = 64;

        [CommandOption("--lr <LR>"), Description(Options.OptionText.Lr)]
        [DefaultValue(1e-3)]
        public double LearningRate { get; init; } = 1e-3;

        [CommandOption("--warmup <STEPS>"), Description(Options.OptionText.Warmup)]
        [DefaultValue(100)]
        public int Warmup { get; init; } = 100;

        [CommandOption("--image-size <S>")]
        [Description(Options.OptionText.ImageSize + " Images are resized to it.")]
        [DefaultValue(16)]
        public int ImageSize { get; init; } = 16;

        [CommandOption("--timesteps <T>"), Description(Options.OptionText.Timesteps)]
        [DefaultValue(1000)]
        public int Timesteps { get; init; } = 1000;

        [CommandOption("--weighting <NAME>")]
        [Options.ListedDescription(Options.Listing.Weightings, "Weighting method: {0} (docs/weightings.md).")]
        [DefaultValue("vanilla")]
        public string Weighting { get; init; } = "vanilla";

        [CommandOption("--clusters <K>")]
        [Description(Options.OptionText.Clusters)]
        [DefaultValue(5)]
        public int Clusters { get; init; } = 5;

        [CommandOption("--cluster-objective <NAME>")]
        [Options.ListedDescription(Options.Listing.Objectives, "Clustering objective: {0} (affinity needs --affinity).")]
        [DefaultValue("snr")]
        public string ClusterObjective { get; init; } = "snr";

        [CommandOption("--samples <N>")]
        [Description("Generated images per FD.")]
        [DefaultValue(256)]
        public int Samples { get; init; } = 256;

        [CommandOption("--real-images <N>")]
        [Description("Held-out real images for FD (never trained on).")]
        [DefaultValue(1000)]
        public int RealImages { get; init; } = 1000;

        [CommandOption("--sampler-steps <N>")]
        [Description(Options.OptionText.SamplerSteps)]
        [DefaultValue(50)]
        public int SamplerSteps { get; init; } = 50;

        [CommandOption("--seed <S>")]
        [Description(Options.OptionText.Seed)]
        [DefaultValue(0L)]
        public long Seed { get; init; }

        [CommandOption("--out <DIR>")]
        [Description("Runs, ntg.json and ntg.png; the same DIR resumes (default: runs/ntg in the cache, docs/cache.md).")]
        public string? Out { get; init; }

        [CommandOption("--json")]
        [Description(Options.OptionText.Json)]
        public bool Json { get; init; }

        /// <inheritdoc/>
        protected override IEnumerable<ValidationResult?> OwnChecks() =>
        [
            Checks.Positive(Intervals, "--specialists"), Checks.Positive(Steps, "--steps"), Checks.Positive(Batch, "--batch"),
            Checks.PositiveFinite(LearningRate, "--lr"), Checks.NotNegative(Warmup, "--warmup"), Checks.Positive(Timesteps, "--timesteps"),
            Checks.Positive(Clusters, "--clusters"), Checks.Between(Samples, 2, 1_000_000, "--samples"), Checks.Between(RealImages, 2, 1_000_000, "--real-images"),
            Checks.Positive(SamplerSteps, "--sampler-steps"),
            WeightingRegistry.Find(Weighting) is null ? Checks.Error($"--weighting '{Weighting}' is unknown (expected one of: {string.Join(", ", WeightingRegistry.Names)})") : null,
            Checks.Library(() => Experiments.Demo.DemoMethod.DemoObjective(ClusterObjective, "--cluster-objective"), "--cluster-objective"),
            Timesteps % Math.Max(1, Intervals) != 0 ? Checks.Error($"--specialists {Intervals} does not divide --timesteps {Timesteps}") : null,
        ];
    }

    public override int Execute(CommandContext context, Settings s, CancellationToken stop)
    {
        var request = new NtgRequest(s.Data, s.Out ?? Path.Combine(CacheDirectory.Runs, "ntg"), s.Intervals, s.Steps, s.Batch, s.LearningRate, s.Warmup, s.Model, s.ImageSize,
            "linear", s.Timesteps, s.Seed, s.Weighting, s.Clusters, s.ClusterObjective, s.Samples, s.RealImages, s.SamplerSteps, s.ThreadsOr(2));
        var every = Math.Max(1, s.Steps / 20);
        MnistFetch.EnsureAvailable(s.Data, Messages.Info);
        NtgResult result;
        try
        {
            // Progress as plain lines on stderr (stdout keeps the table or the JSON object).
            result = NegativeTransferGap.Run(request, stop, Messages.Info, (name, m) =>
            {
                if (m.Step % every == 0 || m.Step == s.Steps)
                    Messages.Info(string.Create(CultureInfo.InvariantCulture, $"{name}: step {m.Step}/{s.Steps} loss {m.Loss:F5}"));
            });
        }
        catch (OperationCanceledException)
        {
            Messages.Info("interrupted; checkpoints written, run the same command again to resume");
            return DfnApp.Interrupted;
        }

        if (s.Json)
        {
            Console.Out.WriteLine(JsonSerializer.Serialize(JsonDocument.Parse(File.ReadAllText(result.JsonPath)).RootElement));
            return DfnApp.Ok;
        }
        var table = new Table().AddColumns("interval", "timesteps", "FD hybrid", "NTG = FD(hybrid) - FD(shared)");
        foreach (var i in result.Intervals)
            table.AddRow(i.Index.ToString(CultureInfo.InvariantCulture), $"[[{i.Start}, {i.End})",
                i.FdHybrid.ToString("F2", CultureInfo.InvariantCulture), (i.Gap >= 0 ? "+" : "") + i.Gap.ToString("F2", CultureInfo.InvariantCulture));
        AnsiConsole.Write(table);
        AnsiConsole.MarkupLine(CultureInfo.InvariantCulture, "FD(shared, {0}) = {1:F2}; negative NTG = negative transfer. Wrote {2} and {3}",
            Markup.Escape(s.Weighting), result.FdShared, Markup.Escape(result.JsonPath), Markup.Escape(result.ChartPath));
        return DfnApp.Ok;
    }
}
