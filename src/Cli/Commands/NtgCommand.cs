using System.ComponentModel;
using System.Globalization;
using System.Text.Json;
using DiffusionFunctional.Analysis;
using DiffusionFunctional.Experiments.Analysis;
using DiffusionFunctional.Experiments.Data;
using Spectre.Console;
using Spectre.Console.Cli;

namespace DiffusionFunctional.Cli.Commands;

public sealed class NtgCommand : Command<NtgCommand.Settings>
{
    public sealed class Settings : CommandSettings, IComputesWithTensors
    {
        [CommandOption("--data <SPEC>")]
        [Description("Training and held-out real images: mnist, idx:PATH or folder:PATH.")]
        [DefaultValue("mnist")]
        public string Data { get; init; } = "mnist";

        [CommandOption("--intervals <K>")]
        [Description("Equal timestep intervals, one specialist each (5 in the paper).")]
        [DefaultValue(5)]
        public int Intervals { get; init; } = 5;

        [CommandOption("--steps <N>")]
        [Description("Training steps of the shared model and of each specialist.")]
        [DefaultValue(2000)]
        public int Steps { get; init; } = 2000;

        [CommandOption("--batch <B>")]
        [DefaultValue(64)]
        public int Batch { get; init; } = 64;

        [CommandOption("--lr <LR>")]
        [DefaultValue(1e-3)]
        public double LearningRate { get; init; } = 1e-3;

        [CommandOption("--warmup <STEPS>")]
        [DefaultValue(100)]
        public int Warmup { get; init; } = 100;

        [CommandOption("--model <NAME>")]
        [Description("UNet configuration: tiny, small, mnist, base32.")]
        [DefaultValue("small")]
        public string Model { get; init; } = "small";

        [CommandOption("--image-size <S>")]
        [Description("Images are resized to S x S.")]
        [DefaultValue(16)]
        public int ImageSize { get; init; } = 16;

        [CommandOption("--timesteps <T>")]
        [DefaultValue(1000)]
        public int Timesteps { get; init; } = 1000;

        [CommandOption("--weighting <NAME>")]
        [Description("Weighting of the shared model (vanilla, uw, pcgrad, ...): measures that method's effect on NTG.")]
        [DefaultValue("vanilla")]
        public string Weighting { get; init; } = "vanilla";

        [CommandOption("--clusters <K>")]
        [Description("Clusters of the shared model's plan when its weighting uses clusters.")]
        [DefaultValue(5)]
        public int Clusters { get; init; } = 5;

        [CommandOption("--cluster-objective <NAME>")]
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
        [DefaultValue(50)]
        public int SamplerSteps { get; init; } = 50;

        [CommandOption("--seed <S>")]
        [DefaultValue(0L)]
        public long Seed { get; init; }

        [CommandOption("--threads <N>")]
        [Description("libtorch CPU threads, 1..cores (default: 2, or 1 on a one-core machine).")]
        public int? Threads { get; init; }

        [CommandOption("--out <DIR>")]
        [Description("Runs, ntg.json and ntg.png; the same DIR resumes (default: runs/ntg in the cache, docs/cache.md).")]
        public string? Out { get; init; }

        [CommandOption("--json")]
        [Description("Print one JSON object (ntg.json's content) instead of a table.")]
        public bool Json { get; init; }

        /// <inheritdoc/>
        public override ValidationResult Validate() => Checks.First(
            Checks.Positive(Intervals, "--intervals"), Checks.Positive(Steps, "--steps"), Checks.Positive(Batch, "--batch"),
            Checks.PositiveFinite(LearningRate, "--lr"), Checks.NotNegative(Warmup, "--warmup"), Checks.Positive(Timesteps, "--timesteps"),
            Checks.Positive(Clusters, "--clusters"), Checks.Between(Samples, 2, 1_000_000, "--samples"), Checks.Between(RealImages, 2, 1_000_000, "--real-images"),
            Checks.Positive(SamplerSteps, "--sampler-steps"), Checks.Threads(Threads),
            Timesteps % Math.Max(1, Intervals) != 0 ? Checks.Error($"--intervals {Intervals} does not divide --timesteps {Timesteps}") : null);
    }

    public override int Execute(CommandContext context, Settings s, CancellationToken stop)
    {
        var request = new NtgRequest(s.Data, s.Out ?? Path.Combine(CacheDirectory.Runs, "ntg"), s.Intervals, s.Steps, s.Batch, s.LearningRate, s.Warmup, s.Model, s.ImageSize,
            "linear", s.Timesteps, s.Seed, s.Weighting, s.Clusters, s.ClusterObjective, s.Samples, s.RealImages, s.SamplerSteps, Checks.ThreadsOrDefault(s.Threads));
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
