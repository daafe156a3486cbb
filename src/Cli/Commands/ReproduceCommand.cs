using System.ComponentModel;
using DiffusionFunctional.Experiments.Reproduce;
using Spectre.Console;
using Spectre.Console.Cli;

namespace DiffusionFunctional.Cli.Commands;

/// <summary><c>dfn reproduce</c>: the paper's three claims on real data in one resumable command (<see cref="ReproduceRunner"/>).</summary>
public sealed class ReproduceCommand : Command<ReproduceCommand.Settings>
{
    /// <summary>Options of <c>dfn reproduce</c>.</summary>
    public sealed class Settings : Options.GridSettings
    {
        /// <summary>Profile.</summary>
        [CommandOption("--profile <NAME>"), Description(Options.OptionText.Profile + " smoke (CI check, a minute), quick (about an hour on 2 idle cores, 1 seed) or full (3 seeds, hours; resumable across days)."), DefaultValue("quick")]
        public string Profile { get; init; } = "quick";
        /// <summary>Extra methods.</summary>
        [CommandOption("--methods <LIST>"), Options.ListedDescription(Options.Listing.Weightings, Options.OptionText.MethodsFormat + " Compared beside the recipe's four (vanilla, min-snr, ANT-UW, ANT-Nash).")]
        public string? Methods { get; init; }
        /// <summary>Seeds.</summary>
        [CommandOption("--seeds <N>"), Description(Options.OptionText.Seeds + " Default: the profile's (quick 1, full 3).")]
        public int? Seeds { get; init; }
        /// <summary>Output folder.</summary>
        [CommandOption("--out <DIR>"), Description("Where report.md, report.json, the figures and every run go; the same DIR resumes (default: runs/reproduce-PROFILE in the cache, docs/cache.md).")]
        public string? Out { get; init; }
        /// <summary>Workers.</summary>
        [CommandOption("--workers <N>"), Description(Options.OptionText.Workers), DefaultValue(2)]
        public int Workers { get; init; } = 2;
        /// <summary>Recipe.</summary>
        [CommandOption("--recipe <RECIPE>"), Description("Training recipe: ours (default) or official (the authors' released code's choices), optionally with changes NAME:key=value,... e.g. official:schedule=linear (keys: schedule, prediction, objective, clusters, clip, clip-norm, lr, warmup, ema, ema-warmup, sampler; docs/fidelity.md)."), DefaultValue("ours")]
        public string Recipe { get; init; } = "ours";
        /// <summary>Budget.</summary>
        [CommandOption("--steps <N>"), Description(Options.OptionText.Steps + " Instead of the profile's; evaluation points continue at its last spacing, and a larger N resumes a finished folder.")]
        public int? Steps { get; init; }
        /// <summary>Evaluation spacing.</summary>
        [CommandOption("--evaluate-every <N>"), Description("With --steps beyond the profile's: steps between the added evaluation points (default: the profile's last spacing).")]
        public int? EvaluateEvery { get; init; }
        /// <summary>Precision.</summary>
        [CommandOption("--precision <P>"), Description(Options.OptionText.PrecisionAuto), DefaultValue("auto")]
        public string Precision { get; init; } = "auto";
        /// <summary>Network.</summary>
        [CommandOption("--model <NAME>"), Options.ListedDescription(Options.Listing.ModelPresets, "Network preset: {0}.")]
        public string? Model { get; init; }
        /// <summary>Convergence only.</summary>
        [CommandOption("--no-observations"), Description("Measure convergence only; skip O1 (task affinity) and O2 (negative transfer).")]
        public bool NoObservations { get; init; }
        /// <summary>Line interval.</summary>
        [CommandOption("--log-every <N>"), Description(Options.OptionText.LogEvery), DefaultValue(250)]
        public int LogEvery { get; init; } = 250;

        /// <inheritdoc/>
        protected override IEnumerable<ValidationResult?> OwnChecks() =>
        [
            Checks.Between(Workers, 1, 64, "--workers"), Seeds is { } n ? Checks.Between(n, 1, 100, "--seeds") : null,
            Checks.Library(() => ReproduceProfile.Named(Profile), "--profile"),
            string.IsNullOrWhiteSpace(Methods) ? null : Checks.Library(() => Experiments.Demo.DemoMethod.ParseList(Methods), "--methods"),
            Checks.Positive(LogEvery, "--log-every"), Checks.Library(() => Experiments.Reproduce.Recipe.Parse(Recipe), "--recipe"),
            Steps is { } steps ? Checks.Between(steps, 2, 10_000_000, "--steps") : null,
            EvaluateEvery is { } every ? Checks.Between(every, 1, 10_000_000, "--evaluate-every") : null,
            Checks.PrecisionOrAuto(Precision),
            Model is { } model ? Checks.Library(() => Models.Denoisers.Named(model), "--model") : null,
        ];
    }

    /// <inheritdoc/>
    public override int Execute(CommandContext context, Settings s, CancellationToken stop)
    {
        var profile = ReproduceProfile.Named(s.Profile);
        if (s.Model is { } model) profile = profile.WithModel(model);
        if (s.Steps is { } steps) profile = profile.WithSteps(steps, s.EvaluateEvery);
        profile = profile with { Convergence = profile.Convergence with { Precision = Checks.ResolvePrecision(s.Precision, TorchSharp.torch.CPU) } };
        Training.Bf16Support.Require(profile.Convergence.Precision, TorchSharp.torch.CPU);
        var output = s.Out ?? Path.Combine(CacheDirectory.Runs, $"reproduce-{profile.Name}");
        if (GridRun.RunJobs(s, stop) is { } jobsEnded) return jobsEnded;
        var extra = string.IsNullOrWhiteSpace(s.Methods) ? null : Experiments.Demo.DemoMethod.ParseList(s.Methods);
        var options = new ReproduceOptions(profile, s.Seeds ?? profile.Seeds, output, s.Data, s.ThreadsOr(2), s.Workers, extra,
            Experiments.Reproduce.Recipe.Parse(s.Recipe), !s.NoObservations, GridRun.Selection(s));
        var runner = new ReproduceRunner(options, Messages.Info);
        var (outcome, summary) = WorkProgressDisplay.Run(s.LogEvery, progress => runner.Run(stop, progress));
        var selection = options.Cells ?? Experiments.Grid.CellSelection.Every;
        if (selection.WritesReport)
        {
            var table = new Table().AddColumns("claim", "ours", "verdict");
            foreach (var c in summary.Claims) table.AddRow(Markup.Escape(c.Claim), Markup.Escape(c.Ours), Markup.Escape(c.Verdict));
            AnsiConsole.Write(table);
            Messages.Info($"report: {Path.Combine(output, "report.md")} (and report.json, figures)");
        }
        if (outcome == ReproduceOutcome.Interrupted)
        {
            Messages.Info("stopped before every part finished; run the same command again to continue");
            return DfnApp.Interrupted;
        }
        return GridRun.Ending(selection, outcome == ReproduceOutcome.CellsMissing, runner.MissingCells) ?? DfnApp.Ok;
    }
}
