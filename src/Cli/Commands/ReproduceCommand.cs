using System.ComponentModel;
using DiffusionFunctional.Experiments.Reproduce;
using Spectre.Console;
using Spectre.Console.Cli;

namespace DiffusionFunctional.Cli.Commands;

/// <summary><c>dfn reproduce</c>: the paper's three claims on real data in one resumable command (<see cref="ReproduceRunner"/>).</summary>
public sealed class ReproduceCommand : Command<ReproduceCommand.Settings>
{
    /// <summary>Options of <c>dfn reproduce</c>.</summary>
    public sealed class Settings : CommandSettings, IComputesWithTensors
    {
        /// <summary>Data.</summary>
        [CommandOption("--data <SOURCE>"), Description("mnist (fetched on first use), idx:PATH or folder:PATH."), DefaultValue("mnist")]
        public string Data { get; init; } = "mnist";
        /// <summary>Profile.</summary>
        [CommandOption("--profile <NAME>"), Description("smoke (CI check, a minute), quick (about an hour on 2 idle cores, 1 seed) or full (3 seeds, hours; resumable across days)."), DefaultValue("quick")]
        public string Profile { get; init; } = "quick";
        /// <summary>Extra methods.</summary>
        [CommandOption("--methods <LIST>"), Description("More methods to compare beside vanilla, min-snr, uw:snr:5 and nash:snr:5, written as in dfn demo: weighting[[:objective[[:k]]]][[+dtr]][[+density]], e.g. uw:snr:5+dtr,vanilla+logit-normal.")]
        public string? Methods { get; init; }
        /// <summary>Seeds.</summary>
        [CommandOption("--seeds <N>"), Description("Seeds 0..N-1 (default: the profile's: quick 1, full 3).")]
        public int? Seeds { get; init; }
        /// <summary>Output folder.</summary>
        [CommandOption("--out <DIR>"), Description("Where report.md, report.json, the figures and every run go; the same DIR resumes (default: runs/reproduce-PROFILE in the cache, docs/cache.md).")]
        public string? Out { get; init; }
        /// <summary>Threads.</summary>
        [CommandOption("--threads <N>"), Description("libtorch CPU threads, 1..cores (default: 2, or 1 on a one-core machine; 1 is faster on a busy machine).")]
        public int? Threads { get; init; }
        /// <summary>Workers.</summary>
        [CommandOption("--workers <N>"), Description("Threads of the ResNet-18 (one OnnxRuntime session)."), DefaultValue(2)]
        public int Workers { get; init; } = 2;
        /// <summary>Recipe.</summary>
        [CommandOption("--recipe <RECIPE>"), Description("Training recipe: ours (default) or official (the authors' released code's choices), optionally with changes NAME:key=value,... e.g. official:schedule=linear (keys: schedule, prediction, objective, clusters, clip, clip-norm, lr, warmup, ema, ema-warmup, sampler; docs/fidelity.md)."), DefaultValue("ours")]
        public string Recipe { get; init; } = "ours";
        /// <summary>Budget.</summary>
        [CommandOption("--steps <N>"), Description("Train for N steps instead of the profile's (evaluation points continue at the profile's last spacing); a larger N resumes a finished folder.")]
        public int? Steps { get; init; }
        /// <summary>Evaluation spacing.</summary>
        [CommandOption("--evaluate-every <N>"), Description("With --steps beyond the profile's: steps between the added evaluation points (default: the profile's last spacing).")]
        public int? EvaluateEvery { get; init; }
        /// <summary>Precision.</summary>
        [CommandOption("--precision <P>"), Description("fp32 (default) or bf16 mixed precision (CPUs with native bfloat16 whose kernels pass the check; about 1.7x fp32 at one thread)."), DefaultValue("fp32")]
        public string Precision { get; init; } = "fp32";
        /// <summary>Network.</summary>
        [CommandOption("--model <NAME>"), Description("Another UNet preset at its own image size (tiny, mini, small, mnist, base32), e.g. small for 28x28.")]
        public string? Model { get; init; }
        /// <summary>Convergence only.</summary>
        [CommandOption("--no-observations"), Description("Measure convergence only; skip O1 (task affinity) and O2 (negative transfer).")]
        public bool NoObservations { get; init; }
        /// <summary>Line interval.</summary>
        [CommandOption("--log-every <N>"), Description("Training steps between plain progress lines (redirected output)."), DefaultValue(250)]
        public int LogEvery { get; init; } = 250;

        /// <inheritdoc/>
        public override ValidationResult Validate() => Checks.First(
            Checks.Threads(Threads), Checks.Between(Workers, 1, 64, "--workers"), Seeds is { } n ? Checks.Between(n, 1, 100, "--seeds") : null,
            Checks.Positive(LogEvery, "--log-every"), Checks.Library(() => Experiments.Reproduce.Recipe.Parse(Recipe), "--recipe"),
            Steps is { } steps ? Checks.Between(steps, 2, 10_000_000, "--steps") : null,
            EvaluateEvery is { } every ? Checks.Between(every, 1, 10_000_000, "--evaluate-every") : null,
            Checks.Library(() => Training.TrainingPrecision.Parse(Precision), "--precision"),
            Model is { } model ? Checks.Library(() => Models.UNetConfig.Named(model), "--model") : null);
    }

    /// <inheritdoc/>
    public override int Execute(CommandContext context, Settings s, CancellationToken stop)
    {
        var profile = ReproduceProfile.Named(s.Profile);
        if (s.Model is { } model) profile = profile.WithModel(model);
        if (s.Steps is { } steps) profile = profile.WithSteps(steps, s.EvaluateEvery);
        profile = profile with { Convergence = profile.Convergence with { Precision = Training.TrainingPrecision.Parse(s.Precision) } };
        Training.Bf16Support.Require(profile.Convergence.Precision, TorchSharp.torch.CPU);
        var output = s.Out ?? Path.Combine(CacheDirectory.Runs, $"reproduce-{profile.Name}");
        var extra = string.IsNullOrWhiteSpace(s.Methods) ? null : Experiments.Demo.DemoMethod.ParseList(s.Methods);
        var options = new ReproduceOptions(profile, s.Seeds ?? profile.Seeds, output, s.Data, Checks.ThreadsOrDefault(s.Threads), s.Workers, extra,
            Experiments.Reproduce.Recipe.Parse(s.Recipe), !s.NoObservations);
        var runner = new ReproduceRunner(options, Messages.Info);
        var (outcome, summary) = WorkProgressDisplay.Run(s.LogEvery, progress => runner.Run(stop, progress));
        var table = new Table().AddColumns("claim", "ours", "verdict");
        foreach (var c in summary.Claims) table.AddRow(Markup.Escape(c.Claim), Markup.Escape(c.Ours), Markup.Escape(c.Verdict));
        AnsiConsole.Write(table);
        Messages.Info($"report: {Path.Combine(output, "report.md")} (and report.json, figures)");
        if (outcome == ReproduceOutcome.Interrupted)
        {
            Messages.Info("stopped before every part finished; run the same command again to continue");
            return DfnApp.Interrupted;
        }
        return DfnApp.Ok;
    }
}
