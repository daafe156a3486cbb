using System.ComponentModel;
using System.Globalization;
using System.Text.Json;
using DiffusionFunctional.Clustering;
using Spectre.Console;
using Spectre.Console.Cli;

namespace DiffusionFunctional.Cli.Commands;

public sealed class ClusterCommand : Command<ClusterCommand.Settings>
{
    public sealed class Settings : CommandSettings
    {
        [CommandOption("--schedule <NAME>")]
        [Description("Noise schedule: linear, scaled_linear, squaredcos_cap_v2, sigmoid.")]
        [DefaultValue("linear")]
        public string Schedule { get; init; } = "linear";

        [CommandOption("--timesteps <T>")]
        [Description("Number of diffusion timesteps T.")]
        [DefaultValue(1000)]
        public int Timesteps { get; init; } = 1000;

        [CommandOption("--clusters <K>")]
        [Description("Number of clusters k (1 <= k <= T, or <= G for affinity).")]
        [DefaultValue(5)]
        public int Clusters { get; init; } = 5;

        [CommandOption("--objective <NAME>")]
        [Description("Clustering objective: timestep, snr or affinity.")]
        [DefaultValue("snr")]
        public string Objective { get; init; } = "snr";

        [CommandOption("--snr-scale <SCALE>")]
        [Description("For --objective snr: log (ln SNR, default) or raw (SNR itself).")]
        [DefaultValue("log")]
        public string SnrScale { get; init; } = "log";

        [CommandOption("--affinity <FILE>")]
        [Description("For --objective affinity: CSV with G rows of G numbers; G must divide T.")]
        public string? Affinity { get; init; }

        [CommandOption("--json")]
        [Description("Print one JSON object instead of a table.")]
        public bool Json { get; init; }
    }

    public override int Execute(CommandContext context, Settings s, CancellationToken cancellationToken)
    {
        var result = TimestepClustering.Run(new ClusterRequest(s.Schedule, s.Timesteps, s.Clusters, s.Objective, s.SnrScale, s.Affinity));
        if (s.Json)
        {
            var json = new
            {
                schedule = result.Request.Schedule,
                objective = result.Request.Objective,
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
            Markup.Escape(result.Request.Objective), result.Cost.ToString("G10", CultureInfo.InvariantCulture));
        return DfnApp.Ok;
    }
}
