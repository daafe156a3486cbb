using System.ComponentModel;
using System.Globalization;
using System.Text.Json;
using DiffusionFunctional.Experiments.Bench;
using DiffusionFunctional.Experiments.Demo;
using DiffusionFunctional.Training;
using DiffusionFunctional.Weighting;
using Spectre.Console;
using Spectre.Console.Cli;

namespace DiffusionFunctional.Cli.Commands;

/// <summary>Options shared by the weighting benchmarks: which methods, and the setting every one trains in.</summary>
public class WeightingBenchSettings : Options.DataSettings
{
    [CommandOption("--methods <LIST>")]
    [Options.ListedDescription(Options.Listing.Weightings, Options.OptionText.MethodsFormat + " Default: every registered method, clustered as the demo clusters it.")]
    public string? Methods { get; init; }

    [CommandOption("--profile <NAME>")]
    [Description(Options.OptionText.Profile + " synthetic (a named network on blob images, no download) or a demo profile (smoke, quick, full: its model, optimiser and MNIST split).")]
    [DefaultValue("synthetic")]
    public string Profile { get; init; } = "synthetic";

    [CommandOption("--model <NAME>")]
    [Options.ListedDescription(Options.Listing.ModelPresets, "Network preset: {0}.")]
    [DefaultValue("tiny")]
    public string Model { get; init; } = "tiny";

    [CommandOption("--timesteps <T>")]
    [Description(Options.OptionText.Timesteps + " Linear schedule.")]
    [DefaultValue(1000)]
    public int Timesteps { get; init; } = 1000;

    [CommandOption("--batch <B>")]
    [Description(Options.OptionText.Batch + " Default: 32, or the demo profile's.")]
    public int? Batch { get; init; }

    [CommandOption("--steps <N>")]
    [Description(Options.OptionText.Steps + " Default: stability 400 or the demo profile's length; overhead 53.")]
    public int? Steps { get; init; }

    [CommandOption("--lr <LR>")]
    [Description(Options.OptionText.Lr + " Default: 1e-3, or the demo profile's.")]
    public double? LearningRate { get; init; }

    [CommandOption("--warmup <N>")]
    [Description(Options.OptionText.Warmup + " Default: 100, or the demo profile's.")]
    public int? Warmup { get; init; }

    [CommandOption("--clip <NORM>")]
    [Description(Options.OptionText.Clip + " Default: 1.0, or the demo profile's.")]
    public double? Clip { get; init; }

    [CommandOption("--json")]
    [Description(Options.OptionText.Json)]
    public bool Json { get; init; }

    /// <summary>The fewest steps a run of this benchmark can use.</summary>
    protected virtual int MinimumSteps => 1;

    /// <inheritdoc/>
    protected override IEnumerable<ValidationResult?> OwnChecks() =>
    [
        Checks.Library(() => Models.Denoisers.Named(Model), "--model"), Checks.Library(() => MethodList(), "--methods"),
        Batch is { } b ? Checks.Positive(b, "--batch") : null, Checks.Between(Timesteps, 2, 1_000_000, "--timesteps"),
        Steps is { } n && n < MinimumSteps ? Checks.Error($"--steps must be at least {MinimumSteps}{StepsReason}, got {n}") : null,
        LearningRate is { } lr ? Checks.PositiveFinite(lr, "--lr") : null, Warmup is { } w ? Checks.NotNegative(w, "--warmup") : null,
        Clip is { } c ? Checks.NotNegativeFinite(c, "--clip") : null,
        Profile.Trim().Equals("synthetic", StringComparison.OrdinalIgnoreCase) || DemoProfile.Names.Contains(Profile.Trim().ToLowerInvariant()) ? null
            : Checks.Error($"unknown --profile '{Profile}' (expected synthetic, {string.Join(", ", DemoProfile.Names)})"),
    ];

    /// <summary>Why <see cref="MinimumSteps"/> is what it is (for the message), or empty.</summary>
    protected virtual string StepsReason => "";

    public IReadOnlyList<DemoMethod> MethodList() => DemoMethod.ParseList(string.IsNullOrWhiteSpace(Methods) ? string.Join(',', WeightingRegistry.Names) : Methods);

    /// <summary>
    /// The shared setting; a demo profile loads its training split (fetching MNIST on first use). Without --steps a run
    /// has <paramref name="defaultSteps"/> steps, or the demo profile's own length when <paramref name="profileLength"/>.
    /// </summary>
    public WeightingBenchSetup Setup(int defaultSteps, bool profileLength)
    {
        TorchSharp.torch.set_num_threads(ThreadsOr(1));
        if (Profile.Trim().Equals("synthetic", StringComparison.OrdinalIgnoreCase))
        {
            var options = Override(new TrainerOptions { BatchSize = 32, LearningRate = 1e-3, WarmupSteps = 100, GradientClipNorm = 1.0, EmaDecay = 0.99, Steps = defaultSteps });
            return WeightingBenchSetup.Synthetic(Model, Timesteps, options);
        }
        if (!DemoProfile.Names.Contains(Profile.Trim().ToLowerInvariant()))
            throw new BadInputException($"unknown --profile '{Profile}' (expected synthetic, {string.Join(", ", DemoProfile.Names)})");
        var profile = DemoProfile.Named(Profile);
        var runner = new DemoRunner(new DemoOptions { Profile = profile, Data = Data, Threads = ThreadsOr(1) }, Messages.Info);
        var (train, _) = runner.LoadData();
        return WeightingBenchSetup.FromDemo(profile, train, Timesteps, Override(profile.Training(0) with { Steps = profileLength ? profile.Steps : defaultSteps }));
    }

    private TrainerOptions Override(TrainerOptions o) => o with
    {
        BatchSize = Batch ?? o.BatchSize, LearningRate = LearningRate ?? o.LearningRate, WarmupSteps = Warmup ?? o.WarmupSteps,
        GradientClipNorm = Clip is { } c ? (c > 0 ? c : null) : o.GradientClipNorm, Steps = Steps ?? o.Steps,
    };
}

/// <summary><c>dfn bench stability</c>: trains each method over several seeds with the trainer and reports divergence per run.</summary>
public sealed class BenchStabilityCommand : Command<BenchStabilityCommand.Settings>
{
    public sealed class Settings : WeightingBenchSettings
    {
        [CommandOption("--seeds <N>")]
        [Description(Options.OptionText.Seeds + " One run per method and seed.")]
        [DefaultValue(5)]
        public int Seeds { get; init; } = 5;

        [CommandOption("--results <FILE>")]
        [Description("JSON-lines file each finished run is appended to; a re-run skips the runs already in it (resume).")]
        public string? Results { get; init; }

        [CommandOption("--log-every <N>")]
        [Description(Options.OptionText.LogEvery + " 0: one line per run.")]
        [DefaultValue(0)]
        public int LogEvery { get; init; }

        /// <inheritdoc/>
        protected override IEnumerable<ValidationResult?> OwnChecks() =>
            [.. base.OwnChecks(), Checks.Between(Seeds, 1, 1000, "--seeds"), Checks.NotNegative(LogEvery, "--log-every")];
    }

    public override int Execute(CommandContext context, Settings s, CancellationToken cancellationToken)
    {
        var methods = s.MethodList();
        using var setup = s.Setup(defaultSteps: 400, profileLength: true);
        var stored = s.Results is { } path ? WeightingStability.Load(path) : [];
        Messages.Info($"{setup.Description}; {setup.Options.Steps} steps per run");

        var results = new List<StabilityResult>();
        foreach (var method in methods)
            for (var seed = 0L; seed < s.Seeds; seed++)
            {
                var done = stored.LastOrDefault(r => r.Method == method.ToString() && r.Seed == seed && r.Steps == setup.Options.Steps && r.Setup == setup.Description);
                if (done is null)
                {
                    IProgress<StepMetrics>? onStep = s.LogEvery > 0
                        ? new InlineProgress<StepMetrics>(m => { if (m.Step % s.LogEvery == 0) Messages.Info(FormattableString.Invariant($"{method} seed {seed} step {m.Step}/{setup.Options.Steps} loss {m.MeanLoss:F4} ({m.Seconds:F2} s/step)")); })
                        : null;
                    done = WeightingStability.Run(setup, method, seed, cancellationToken, onStep);
                    if (done is null)
                    {
                        Messages.Info($"interrupted during {method} seed {seed}; finished runs are kept{(s.Results is null ? "" : $" in {s.Results}: run the same command to resume")}");
                        return DfnApp.Interrupted;
                    }
                    if (s.Results is { } file) WeightingStability.Append(file, done);
                }
                results.Add(done);
                if (!s.Json)
                    Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                        $"{done.Method,-20} seed {done.Seed}  steps {done.StepsRun,4}/{done.Steps}  final loss {done.FinalMeanLoss,8:F4}  {done.MedianStepSeconds,6:F3} s/step  {(done.Diverged ? $"DIVERGED at step {done.DivergedAt}: {done.Reason}" : "ok")}"));
            }
        if (s.Json) Console.WriteLine(JsonSerializer.Serialize(results));
        else
        {
            var table = new Table().AddColumns("method", "runs", "diverged", "mean final loss (runs that finished)");
            foreach (var g in results.GroupBy(r => r.Method))
                table.AddRow(g.Key, g.Count().ToString(CultureInfo.InvariantCulture), g.Count(r => r.Diverged).ToString(CultureInfo.InvariantCulture),
                    g.Where(r => !r.Diverged).Select(r => r.FinalMeanLoss).DefaultIfEmpty(double.NaN).Average().ToString("F4", CultureInfo.InvariantCulture));
            AnsiConsole.Write(table);
        }
        return results.Any(r => r.Diverged) ? 1 : 0;
    }
}

/// <summary><c>dfn bench overhead</c>: step time of every method relative to vanilla on the same model, data and batch.</summary>
public sealed class BenchOverheadCommand : Command<BenchOverheadCommand.Settings>
{
    public sealed class Settings : WeightingBenchSettings
    {
        /// <summary>Three untimed steps, then at least one timed.</summary>
        protected override int MinimumSteps => UntimedSteps + 1;

        /// <inheritdoc/>
        protected override string StepsReason => $" (the first {UntimedSteps} are not timed)";
    }

    /// <summary>Steps of each method run before timing starts.</summary>
    const int UntimedSteps = 3;

    public override int Execute(CommandContext context, Settings s, CancellationToken cancellationToken)
    {
        // Plain vanilla is the unit and comes first once; vanilla with routing or a density is a method like any other.
        var plainVanilla = DemoMethod.Parse("vanilla");
        var methods = s.MethodList().Where(m => m.Id != plainVanilla.Id).Prepend(plainVanilla).ToList();
        // 53 steps: the 50 timed ones (after 3 untimed) hold two Nash solves, its amortised rate at N = 25.
        using var setup = s.Setup(defaultSteps: 53, profileLength: false);
        var steps = setup.Options.Steps;
        var baseline = methods.FirstOrDefault(m => WeightingRegistry.Get(m.Weighting).Kind == WeightingKind.Gradient) ?? DemoMethod.Parse("pcgrad");
        var rows = WeightingOverhead.Run(setup, methods, baseline, steps, UntimedSteps, cancellationToken);
        var vanilla = rows[0].CpuSeconds;
        var inherent = rows[^1].CpuSeconds;
        var report = rows.Select((r, i) => new
        {
            method = r.Method,
            seconds = r.CpuSeconds,
            wallSeconds = r.WallSeconds,
            vsVanilla = r.CpuSeconds / vanilla,
            vsForwardPlusKBackward = i < methods.Count && WeightingRegistry.Get(methods[i].Weighting).Kind == WeightingKind.Gradient ? r.CpuSeconds / inherent : (double?)null,
        }).ToList();
        if (s.Json) Console.WriteLine(JsonSerializer.Serialize(report.ToDictionary(r => r.method)));
        else
        {
            var table = new Table().AddColumns("method", "mean CPU s/step", "median wall s/step", "x vanilla (CPU)", "x (1 forward + k backward)");
            foreach (var r in report)
                table.AddRow(r.method, r.seconds.ToString("F4", CultureInfo.InvariantCulture), r.wallSeconds.ToString("F4", CultureInfo.InvariantCulture),
                    r.vsVanilla.ToString("F3", CultureInfo.InvariantCulture),
                    r.vsForwardPlusKBackward?.ToString("F3", CultureInfo.InvariantCulture) ?? "");
            AnsiConsole.Write(table);
            Console.WriteLine($"{setup.Description}; {steps} steps per method, {s.ThreadsOr(1)} thread(s); methods interleaved step by step; steps {UntimedSteps + 1}..{steps} timed (CPU: mean, wall: median); k-backward has the k of {baseline}");
        }
        return 0;
    }
}
