using System.ComponentModel;
using System.Globalization;
using System.Runtime.InteropServices;
using DiffusionFunctional.Backend;
using DiffusionFunctional.Experiments.Demo;
using Spectre.Console;
using Spectre.Console.Cli;

namespace DiffusionFunctional.Cli.Commands;

/// <summary><c>dfn demo</c>: ANT against the baselines on MNIST, trained and scored by <see cref="DemoRunner"/>.</summary>
public sealed class DemoCommand : Command<DemoCommand.Settings>
{
    public sealed class Settings : Options.GridSettings
    {
        [CommandOption("--profile <NAME>"), Description(Options.OptionText.Profile + " smoke (CI check, seconds), quick (about 10 min on 2 cores) or full."), DefaultValue("quick")]
        public string Profile { get; init; } = "quick";
        [CommandOption("--methods <LIST>"), Options.ListedDescription(Options.Listing.Weightings, Options.OptionText.MethodsFormat), DefaultValue(DemoMethod.DefaultList)]
        public string Methods { get; init; } = DemoMethod.DefaultList;
        [CommandOption("--seeds <N>"), Description(Options.OptionText.Seeds + " The report gives mean ± std."), DefaultValue(1)]
        public int Seeds { get; init; } = 1;
        [CommandOption("--out <DIR>"), Description("Results and run folders; re-running with the same DIR resumes (default: runs/demo in the cache, docs/cache.md).")]
        public string? Out { get; init; }
        [CommandOption("--workers <N>"), Description(Options.OptionText.Workers), DefaultValue(2)]
        public int Workers { get; init; } = 2;
        [CommandOption("--device <DEVICE>"), Description(Options.OptionText.Device), DefaultValue("cpu")]
        public string Device { get; init; } = "cpu";
        [CommandOption("--model <NAME>"), Options.ListedDescription(Options.Listing.ModelPresets, "Network preset: {0}. Default: the profile's; any preset trains at the profile's image size, on the same digits.")]
        public string? Model { get; init; }

        [CommandOption("--precision <P>"), Description(Options.OptionText.PrecisionAuto), DefaultValue("auto")]
        public string Precision { get; init; } = "auto";
        [CommandOption("--log-every <N>"), Description(Options.OptionText.LogEvery), DefaultValue(50)]
        public int LogEvery { get; init; } = 50;

        /// <inheritdoc/>
        protected override IEnumerable<ValidationResult?> OwnChecks() =>
        [
            Checks.PrecisionOrAuto(Precision), Checks.Device(Device), Checks.Positive(Workers, "--workers"), Checks.Positive(Seeds, "--seeds"),
            Checks.Positive(LogEvery, "--log-every"), Checks.Library(() => DemoProfile.Named(Profile), "--profile"),
            Model is { } model ? Checks.Library(() => WithModel(DemoProfile.Named(Profile), model), "--model") : null,
            Checks.Library(() => DemoMethod.ParseList(Methods), "--methods"),
        ];
    }

    /// <inheritdoc/>
    public override int Execute(CommandContext context, Settings s, CancellationToken stop)
    {
        var device = TorchBackend.Resolve(s.Device);
        var precision = Checks.ResolvePrecision(s.Precision, device);
        Training.Bf16Support.Require(precision, device);
        var output = s.Out ?? Path.Combine(CacheDirectory.Runs, "demo");
        var options = new DemoOptions
        {
            Profile = WithModel(DemoProfile.Named(s.Profile), s.Model) with { Precision = precision },
            Model = s.Model, Methods = DemoMethod.ParseList(s.Methods), Seeds = s.Seeds,
            OutputDirectory = output, Data = s.Data, Threads = s.ThreadsOr(2), EvaluationWorkers = s.Workers, Device = s.Device,
            Cells = GridRun.Selection(s),
        };
        var runner = new DemoRunner(options, Messages.Info); // checks methods and named cells before anything is written
        OutputLocation.CheckDirectory(output); // a file or unwritable --out is refused before any data are loaded
        if (GridRun.RunJobs(s, stop) is { } jobsEnded) return jobsEnded;
        var (outcome, summary) = WorkProgressDisplay.Run(s.LogEvery, progress => runner.Run(stop, progress));

        if (options.Cells.WritesReport)
        {
            PrintTable(summary);
            Messages.Info($"report in {Path.Combine(output, "results.md")}, results.csv, convergence.png, samples-<method>.png");
        }
        if (outcome == DemoOutcome.Interrupted)
        {
            Messages.Info("interrupted; checkpoints written; run the same command again to resume");
            return DfnApp.Interrupted;
        }
        return GridRun.Ending(options.Cells, outcome == DemoOutcome.CellsMissing, [.. runner.MissingCells.Select(c => c.Id)]) ?? DfnApp.Ok;
    }

    /// <summary>The profile with the named network at the profile's image size (null: the profile's own).</summary>
    static DemoProfile WithModel(DemoProfile profile, string? model) =>
        model is null ? profile : profile with { Model = Models.Denoisers.Named(model, imageSize: profile.Model.ImageSize) };

    static void PrintTable(DemoSummary s)
    {
        var table = new Table().Title(Markup.Escape($"dfn demo, {s.Profile} profile, {s.Seeds} seed(s): FD-ResNet18 at step {s.ComparedStep} (lower is better)"));
        table.AddColumn("method");
        table.AddColumn(new TableColumn("FD").RightAligned());
        table.AddColumn(new TableColumn($"vs {s.BaselineId}").RightAligned());
        table.AddColumn(new TableColumn($"steps to {s.BaselineId}'s FD").RightAligned());
        table.AddColumn(new TableColumn("s/step").RightAligned());
        table.AddColumn(new TableColumn("diverged").RightAligned());
        foreach (var m in s.Methods)
        {
            table.AddRow(
                Markup.Escape(m.Spec),
                Markup.Escape(Experiments.SeedSpread.MeanStd(m.FinalFdMean, m.FinalFdStd, m.FinalSeeds)),
                double.IsFinite(m.FinalFdChangePercent) ? m.FinalFdChangePercent.ToString("+0.0;-0.0;0.0", CultureInfo.InvariantCulture) + "%" : "-",
                Markup.Escape(DemoReport.StepsToReach(m, s)),
                double.IsFinite(m.StepSecondsMean) ? m.StepSecondsMean.ToString("F3", CultureInfo.InvariantCulture) : "-",
                m.DivergedSeeds.Count.ToString(CultureInfo.InvariantCulture));
        }
        AnsiConsole.Write(table);
        Console.WriteLine(DemoReport.Context(s));
        if (!s.Complete) AnsiConsole.MarkupLine($"[yellow]incomplete: compared at step {s.ComparedStep}, the last all methods reached; re-run the same command to continue[/]");
    }
}
