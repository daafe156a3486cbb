using System.ComponentModel;
using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using DiffusionFunctional.Weighting;
using Spectre.Console;
using Spectre.Console.Cli;

namespace DiffusionFunctional.Cli.Commands;

/// <summary>Options shared by the weighting benchmarks (a small model trained by <see cref="WeightingHarness"/>).</summary>
public class WeightingBenchSettings : CommandSettings
{
    [CommandOption("--methods <NAMES>")]
    [Description("Comma-separated weighting names (default: every registered method).")]
    public string? Methods { get; init; }

    [CommandOption("--model <NAME>")]
    [Description("Model size: tiny (8x8), small (28x28), mnist, base32.")]
    [DefaultValue("tiny")]
    public string Model { get; init; } = "tiny";

    [CommandOption("--clusters <K>")]
    [Description("Equal-width timestep clusters k.")]
    [DefaultValue(5)]
    public int Clusters { get; init; } = 5;

    [CommandOption("--timesteps <T>")]
    [Description("Diffusion timesteps T (linear schedule).")]
    [DefaultValue(1000)]
    public int Timesteps { get; init; } = 1000;

    [CommandOption("--batch <B>")]
    [Description("Images per step.")]
    [DefaultValue(32)]
    public int Batch { get; init; } = 32;

    [CommandOption("--steps <N>")]
    [Description("Steps per run.")]
    public int? Steps { get; init; }

    [CommandOption("--lr <LR>")]
    [Description("AdamW learning rate after warm-up.")]
    [DefaultValue(1e-3)]
    public double LearningRate { get; init; } = 1e-3;

    [CommandOption("--warmup <N>")]
    [Description("Linear learning-rate warm-up steps.")]
    [DefaultValue(100)]
    public int Warmup { get; init; } = 100;

    [CommandOption("--clip <NORM>")]
    [Description("Gradient-norm clip (0: none).")]
    [DefaultValue(1.0)]
    public double Clip { get; init; } = 1.0;

    [CommandOption("--threads <N>")]
    [Description("libtorch CPU threads.")]
    [DefaultValue(1)]
    public int Threads { get; init; } = 1;

    [CommandOption("--json")]
    [Description("Print JSON instead of a table.")]
    public bool Json { get; init; }

    public IReadOnlyList<string> MethodList() =>
        string.IsNullOrWhiteSpace(Methods) ? Weightings.Names : Methods.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);

    public HarnessOptions Harness(string method, long seed, int steps) => new()
    {
        Weighting = method, Model = Model, Clusters = Clusters, Timesteps = Timesteps, BatchSize = Batch, Steps = steps, LearningRate = LearningRate,
        WarmupSteps = Warmup, GradientClipNorm = Clip > 0 ? Clip : null, Seed = seed,
    };
}

/// <summary><c>dfn bench stability</c>: trains the small model with each method over several seeds and reports divergence per run.</summary>
public sealed class BenchStabilityCommand : Command<BenchStabilityCommand.Settings>
{
    public sealed class Settings : WeightingBenchSettings
    {
        [CommandOption("--seeds <N>")]
        [Description("Seeds per method (0..N-1).")]
        [DefaultValue(5)]
        public int Seeds { get; init; } = 5;
    }

    public override int Execute(CommandContext context, Settings s, CancellationToken cancellationToken)
    {
        TorchSharp.torch.set_num_threads(s.Threads);
        var steps = s.Steps ?? 400;
        var results = new List<HarnessResult>();
        foreach (var method in s.MethodList())
            for (var seed = 0; seed < s.Seeds && !cancellationToken.IsCancellationRequested; seed++)
            {
                using var harness = new WeightingHarness(s.Harness(method, seed, steps) with { StopOnDivergence = true });
                var r = harness.Run();
                results.Add(r);
                if (!s.Json)
                    Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                        $"{r.Weighting,-17} seed {r.Seed}  steps {r.StepsRun,4}  final loss {r.FinalLoss,8:F4}  {(r.Divergence is { } d ? $"DIVERGED at step {d.Step}: {d.Reason}" : "ok")}"));
            }
        if (s.Json)
            Console.WriteLine(JsonSerializer.Serialize(results.Select(r => new
            {
                method = r.Weighting, seed = r.Seed, steps = r.StepsRun, finalLoss = r.FinalLoss,
                diverged = r.Divergence is not null, divergedAt = r.Divergence?.Step, reason = r.Divergence?.Reason,
            })));
        else
        {
            var table = new Table().AddColumns("method", "runs", "diverged", "mean final loss");
            foreach (var g in results.GroupBy(r => r.Weighting))
                table.AddRow(g.Key, g.Count().ToString(CultureInfo.InvariantCulture), g.Count(r => r.Divergence is not null).ToString(CultureInfo.InvariantCulture),
                    g.Where(r => r.Divergence is null).Select(r => r.FinalLoss).DefaultIfEmpty(double.NaN).Average().ToString("F4", CultureInfo.InvariantCulture));
            AnsiConsole.Write(table);
        }
        return results.Any(r => r.Divergence is not null) ? 1 : 0;
    }
}

/// <summary><c>dfn bench overhead</c>: median step time of every method relative to vanilla on the same model and batch.</summary>
public sealed class BenchOverheadCommand : Command<BenchOverheadCommand.Settings>
{
    public sealed class Settings : WeightingBenchSettings
    {
    }

    public override int Execute(CommandContext context, Settings s, CancellationToken cancellationToken)
    {
        TorchSharp.torch.set_num_threads(s.Threads);
        // 53 steps: the 50 timed ones (after 3 untimed) hold two Nash solves, its amortised rate at N = 25.
        var steps = s.Steps ?? 53;
        var methods = s.MethodList().Where(m => m != "vanilla").Prepend("vanilla").Append("k-backward").ToList();
        // All harnesses live at once and take their steps in turn, so a shared machine's changing load falls on
        // every method alike; CPU time of the process (libtorch on one thread) is reported beside wall time.
        var harnesses = methods.Select(m => m == "k-backward"
            ? new WeightingHarness(s.Harness(m, 0, steps), new SequentialBackwardBaseline(s.Clusters))
            : new WeightingHarness(s.Harness(m, 0, steps))).ToList();
        var cpu = methods.ToDictionary(m => m, _ => new List<double>());
        var wall = methods.ToDictionary(m => m, _ => new List<double>());
        try
        {
            for (var round = 0; round < steps && !cancellationToken.IsCancellationRequested; round++)
                for (var i = 0; i < methods.Count; i++)
                {
                    var before = Process.GetCurrentProcess().TotalProcessorTime;
                    var (_, seconds) = harnesses[i].Step();
                    var used = (Process.GetCurrentProcess().TotalProcessorTime - before).TotalSeconds;
                    if (round < 3) continue;
                    cpu[methods[i]].Add(used);
                    wall[methods[i]].Add(seconds);
                }
        }
        finally
        {
            foreach (var h in harnesses) h.Dispose();
        }
        static double Median(List<double> xs) { var a = xs.OrderBy(x => x).ToArray(); return a.Length == 0 ? double.NaN : a[a.Length / 2]; }
        // The mean, not the median, of CPU time: amortised costs (Nash's solve every N steps) must count.
        var times = methods.ToDictionary(m => m, m => cpu[m].DefaultIfEmpty(double.NaN).Average());
        var vanilla = times["vanilla"];
        var inherent = times["k-backward"];
        string[] perStep = ["pcgrad", "imtl", "cagrad", "mgda"];
        var rows = methods.Select(m => new
        {
            method = m,
            seconds = times[m],
            wallSeconds = Median(wall[m]),
            vsVanilla = times[m] / vanilla,
            vsForwardPlusKBackward = perStep.Contains(m) ? times[m] / inherent : (double?)null,
        }).ToList();
        if (s.Json) Console.WriteLine(JsonSerializer.Serialize(rows));
        else
        {
            var table = new Table().AddColumns("method", "mean CPU s/step", "median wall s/step", "x vanilla (CPU)", "x (1 forward + k backward)");
            foreach (var r in rows)
                table.AddRow(r.method, r.seconds.ToString("F4", CultureInfo.InvariantCulture), r.wallSeconds.ToString("F4", CultureInfo.InvariantCulture),
                    r.vsVanilla.ToString("F3", CultureInfo.InvariantCulture),
                    r.vsForwardPlusKBackward?.ToString("F3", CultureInfo.InvariantCulture) ?? "");
            AnsiConsole.Write(table);
            Console.WriteLine($"model {s.Model}, batch {s.Batch}, k = {s.Clusters}, {steps} steps per method, {s.Threads} thread(s); methods interleaved step by step; steps 4..{steps} timed (CPU: mean, wall: median)");
        }
        return 0;
    }
}
