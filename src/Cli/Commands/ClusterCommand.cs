using System.ComponentModel;
using System.Globalization;
using System.Text.Json;
using DiffusionFunctional.Clustering;
using DiffusionFunctional.Core;
using Spectre.Console;
using Spectre.Console.Cli;

namespace DiffusionFunctional.Cli.Commands;

public sealed class ClusterCommand : Command<ClusterCommand.Settings>
{
    public sealed class Settings : CommandSettings, Options.IHasDeprecatedOptions
    {
        [CommandOption("--schedule <NAME>")]
        [Description(Options.OptionText.Schedule)]
        [DefaultValue("linear")]
        public string Schedule { get; init; } = "linear";

        [CommandOption("--timesteps <T>")]
        [Description(Options.OptionText.Timesteps)]
        [DefaultValue(1000)]
        public int Timesteps { get; init; } = 1000;

        [CommandOption("--clusters <K>")]
        [Description(Options.OptionText.Clusters)]
        [DefaultValue(5)]
        public int Clusters { get; init; } = 5;

        [CommandOption("--cluster-objective <NAME>")]
        [Options.ListedDescription(Options.Listing.Objectives, "Clustering objective: {0} (affinity needs --affinity).")]
        [DefaultValue("snr")]
        public string ClusterObjective { get; init; } = "snr";

        /// <summary>The old spelling of <see cref="ClusterObjective"/>.</summary>
        [CommandOption("--objective <NAME>", IsHidden = true)]
        public string? OldObjective { get; init; }

        /// <summary>The old way to say snr-raw (--snr-scale raw with the snr objective).</summary>
        [CommandOption("--snr-scale <SCALE>", IsHidden = true)]
        public string? OldSnrScale { get; init; }

        [CommandOption("--affinity <FILE>")]
        [Description(Options.OptionText.Affinity)]
        public string? Affinity { get; init; }

        [CommandOption("--json")]
        [Description(Options.OptionText.Json)]
        public bool Json { get; init; }

        /// <summary>The objective, given under either name (an old --snr-scale raw turns snr into snr-raw).</summary>
        public string Objective => OldObjective ?? ClusterObjective;

        /// <inheritdoc/>
        public IReadOnlyList<(string Old, string New)> Renamed => [("--objective", "--cluster-objective"), ("--snr-scale", "--cluster-objective snr-raw (or snr for log-SNR)")];

        /// <inheritdoc/>
        public override ValidationResult Validate() => Checks.First(
            NoiseSchedules.TryParseKind(Schedule, out _) ? null : Checks.Error($"--schedule: unknown schedule '{Schedule}' (expected linear, scaled_linear, squaredcos_cap_v2 or sigmoid)"),
            Checks.Between(Timesteps, 1, 1_000_000, "--timesteps"), Checks.Positive(Clusters, "--clusters"),
            TimestepClusterings.TryChooseObjective(Objective, OldSnrScale ?? "", out var choice, out var error) ? null : Checks.Error(error.Message),
            choice is { NeedsAffinity: true } && string.IsNullOrWhiteSpace(Affinity) ? Checks.Error("the affinity objective needs an affinity matrix file (--affinity FILE.csv)") : null);
    }

    public override int Execute(CommandContext context, Settings s, CancellationToken cancellationToken)
    {
        var result = TimestepClustering.Run(new ClusterRequest(s.Schedule, s.Timesteps, s.Clusters, s.Objective, s.OldSnrScale ?? "", s.Affinity));
        if (s.Json)
        {
            var json = new
            {
                schedule = result.Request.Schedule,
                objective = result.ObjectiveName,
                timesteps = result.Request.Timesteps,
                clusters = result.Request.Clusters,
                boundaries = result.Boundaries,
                cost = result.Cost,
            };
            Console.Out.WriteLine(JsonSerializer.Serialize(json));
            return DfnApp.Ok;
        }

        var table = new Table().AddColumns("cluster", "timesteps [[start, end)", "size", "log-SNR from", "log-SNR to");
        foreach (var r in result.Ranges)
            table.AddRow(r.Index.ToString(CultureInfo.InvariantCulture), $"[[{r.Start}, {r.End})", r.Size.ToString(CultureInfo.InvariantCulture),
                r.LogSnrAtStart.ToString("F3", CultureInfo.InvariantCulture), r.LogSnrAtEnd.ToString("F3", CultureInfo.InvariantCulture));
        AnsiConsole.Write(table);
        AnsiConsole.MarkupLine(CultureInfo.InvariantCulture, "[grey]{0} schedule, T = {1}, k = {2}, objective {3}: optimal cost {4}[/]",
            Markup.Escape(result.Request.Schedule), result.Request.Timesteps, result.Request.Clusters,
            Markup.Escape(result.ObjectiveName), result.Cost.ToString("G10", CultureInfo.InvariantCulture));
        return DfnApp.Ok;
    }
}
