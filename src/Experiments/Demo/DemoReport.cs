using System.Globalization;
using System.Text;

namespace DiffusionFunctional.Experiments.Demo;

/// <summary>One evaluation point of a method, over the seeds that reached it without diverging.</summary>
public sealed record DemoPoint(long Step, double MeanFd, double StdFd, int Seeds);

/// <summary>A method's results: its FD curve and the headline numbers.</summary>
/// <param name="Id">The method's <see cref="DemoMethod.Id"/>.</param>
/// <param name="Spec">The method as written on the command line.</param>
/// <param name="Curve">Mean and standard deviation of FD over seeds at each evaluation point.</param>
/// <param name="FinalFdMean">Mean FD at the compared step (NaN when no seed got there).</param>
/// <param name="FinalFdStd">Its standard deviation over seeds.</param>
/// <param name="FinalSeeds">Seeds that reached the compared step.</param>
/// <param name="StepsToReachBaseline">First evaluation step whose mean FD is at most the baseline's final mean FD; null: not reached.</param>
/// <param name="FinalFdChangePercent">Final mean FD relative to the baseline's, in percent (negative: better).</param>
/// <param name="StepSecondsMean">Mean wall time of one training step.</param>
/// <param name="DivergedSeeds">Seeds whose training diverged (reported, not hidden).</param>
public sealed record DemoMethodSummary(
    string Id, string Spec, IReadOnlyList<DemoPoint> Curve, double FinalFdMean, double FinalFdStd, int FinalSeeds,
    long? StepsToReachBaseline, double FinalFdChangePercent, double StepSecondsMean, IReadOnlyList<long> DivergedSeeds);

/// <summary>Everything the report shows.</summary>
/// <param name="Profile">The profile's name.</param>
/// <param name="Seeds">Seeds asked for.</param>
/// <param name="BaselineId">The method the others are compared with (vanilla when present).</param>
/// <param name="Methods">One summary per method, in the order given.</param>
/// <param name="Steps">The profile's final step.</param>
/// <param name="ComparedStep">The step the headline numbers compare at: <paramref name="Steps"/> once every run got
/// there, else the last evaluation point that every method has reached (an interrupted demo still compares fairly).</param>
/// <param name="Complete">Every method and seed reached the final step or diverged.</param>
public sealed record DemoSummary(string Profile, int Seeds, long Steps, long ComparedStep, bool Complete, string BaselineId, IReadOnlyList<DemoMethodSummary> Methods)
{
    /// <summary>FD-ResNet18 of two disjoint sets of real held-out digits at the final sample count (NaN: not measured).</summary>
    public double RealFloor { get; init; } = double.NaN;
}

/// <summary>Turns demo records into the summary and writes <c>results.md</c>, <c>results.csv</c>,
/// <c>convergence.csv</c>, <c>convergence.png</c> and <c>samples-&lt;method&gt;.png</c>.</summary>
public static class DemoReport
{
    static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    /// <summary>Means and standard deviations over seeds; the baseline is <c>vanilla</c> when present, else the first method.</summary>
    public static DemoSummary Summarise(IReadOnlyList<DemoRecord> records, IReadOnlyList<DemoMethod> methods, DemoProfile profile, int seeds)
    {
        var baseline = methods.FirstOrDefault(m => m.Id == "vanilla") ?? methods[0];
        var own = records.Where(r => r.Seed < seeds).ToList();
        var complete = methods.All(m => Enumerable.Range(0, seeds).All(seed =>
            own.Any(r => r.Method == m.Id && r.Seed == seed && (r.Diverged || r.Step == profile.Steps))));
        // A step counts as reached by a run when it was scored there, or when the run diverged at or before it.
        bool Reached(DemoMethod m, long seed, long step) =>
            own.Any(r => r.Method == m.Id && r.Seed == seed && (r.Diverged ? r.Step <= step : r.Step == step));
        var common = profile.EvaluationSteps
            .Where(step => methods.All(m => Enumerable.Range(0, seeds).All(seed => Reached(m, seed, step)))).ToList();
        long compared = complete || common.Count == 0 ? profile.Steps : common[^1];
        var partial = methods.Select(m => SummariseOne(own, m, compared)).ToList();
        var baselineFinal = partial.First(p => p.Id == baseline.Id).FinalFdMean;
        var result = partial.Select(p => p with
        {
            StepsToReachBaseline = double.IsFinite(baselineFinal) ? p.Curve.FirstOrDefault(c => c.Step <= compared && c.MeanFd <= baselineFinal)?.Step : null,
            FinalFdChangePercent = 100.0 * (p.FinalFdMean - baselineFinal) / baselineFinal,
        }).ToList();
        return new DemoSummary(profile.Name, seeds, profile.Steps, compared, complete, baseline.Id, result);
    }

    static DemoMethodSummary SummariseOne(IReadOnlyList<DemoRecord> records, DemoMethod method, long compared)
    {
        var own = records.Where(r => r.Method == method.Id).ToList();
        var curve = own.Where(r => !r.Diverged && double.IsFinite(r.Fd)).GroupBy(r => r.Step).OrderBy(g => g.Key)
            .Select(g => new DemoPoint(g.Key, g.Average(r => r.Fd), SeedSpread.Std(g.Select(r => r.Fd)), g.Count()))
            .ToList();
        var final = curve.FirstOrDefault(p => p.Step == compared);
        var stepTimes = own.Where(r => double.IsFinite(r.StepSeconds)).Select(r => r.StepSeconds).ToList();
        return new DemoMethodSummary(method.Id, method.ToString(), curve, final?.MeanFd ?? double.NaN, final?.StdFd ?? double.NaN,
            final?.Seeds ?? 0, null, double.NaN, stepTimes.Count > 0 ? stepTimes.Average() : double.NaN,
            own.Where(r => r.Diverged).Select(r => r.Seed).Distinct().Order().ToList());
    }

    /// <summary>The "steps to reach the baseline's final FD" cell, with the speed-up over the baseline's steps.</summary>
    public static string StepsToReach(DemoMethodSummary m, DemoSummary summary) =>
        m.StepsToReachBaseline is not { } s ? "not reached"
        : m.Id == summary.BaselineId ? $"{s} (baseline)"
        : $"{s} ({((double)summary.ComparedStep / s).ToString("F1", Inv)}x fewer)";

    /// <summary>Writes the report files into the demo's output folder; grids maps method id to its sample grid.</summary>
    public static void Write(DemoSummary summary, DemoOptions options, IReadOnlyDictionary<string, string> grids)
    {
        var dir = options.OutputDirectory;
        Directory.CreateDirectory(dir);
        AtomicFile.WriteAllText(Path.Combine(dir, "results.md"), Markdown(summary, options));
        AtomicFile.WriteAllText(Path.Combine(dir, "results.csv"), SummaryCsv(summary));
        AtomicFile.WriteAllText(Path.Combine(dir, "convergence.csv"), CurveCsv(summary));
        AtomicFile.Write(Path.Combine(dir, "convergence.png"), path => ConvergencePlot(summary).SavePng(path, 800, 520));
        foreach (var m in summary.Methods)
            if (grids.TryGetValue(m.Id, out var grid) && File.Exists(grid))
                File.Copy(grid, Path.Combine(dir, $"samples-{m.Id}.png"), overwrite: true);
    }

    static string SummaryCsv(DemoSummary s)
    {
        var b = new StringBuilder("method,spec,seeds_finished,final_fd_mean,final_fd_std,fd_change_vs_baseline_percent,steps_to_baseline_final_fd,step_seconds,diverged_seeds\n");
        foreach (var m in s.Methods)
            b.Append(Inv, $"{m.Id},{m.Spec},{m.FinalSeeds},{Num(m.FinalFdMean)},{Num(m.FinalFdStd)},{Num(m.FinalFdChangePercent)},{m.StepsToReachBaseline?.ToString(Inv) ?? ""},{Num(m.StepSecondsMean)},{string.Join(' ', m.DivergedSeeds)}\n");
        return b.ToString();
    }

    static string CurveCsv(DemoSummary s)
    {
        var b = new StringBuilder("method,step,fd_mean,fd_std,seeds\n");
        foreach (var m in s.Methods)
        foreach (var p in m.Curve)
            b.Append(Inv, $"{m.Id},{p.Step},{Num(p.MeanFd)},{Num(p.StdFd)},{p.Seeds}\n");
        return b.ToString();
    }

    /// <summary>
    /// The line that puts a short demo in context: the real-vs-real floor, whether the baseline's FD was still falling
    /// over its last evaluation interval (more than 2%: the comparison is of early training), and what the longer runs
    /// found, with the page that explains it.
    /// </summary>
    public static string Context(DemoSummary s)
    {
        var parts = new List<string>();
        if (double.IsFinite(s.RealFloor)) parts.Add(string.Create(Inv, $"real digits against real digits score FD {s.RealFloor:F1} (the floor)"));
        var curve = s.Methods.FirstOrDefault(m => m.Id == s.BaselineId)?.Curve.Where(c => c.Step <= s.ComparedStep).ToList() ?? [];
        if (curve.Count >= 2)
        {
            var (before, last) = (curve[^2], curve[^1]);
            var change = 100 * (last.MeanFd - before.MeanFd) / before.MeanFd;
            var interval = FormattableString.Invariant($"{change:+0;-0}% from step {before.Step} to {last.Step}");
            parts.Add(change < -2
                ? $"{s.BaselineId} was still falling ({interval}): these are early-training differences"
                : $"{s.BaselineId} did not fall further ({interval})");
        }
        // What the longer runs found (docs/fidelity.md, runs 3 and 5); no run there reached a plateau, so this says budget.
        parts.Add("over 8,000 steps and 3 seeds (dfn reproduce) vanilla ends ahead of ANT-UW when the network predicts eps "
            + "and behind it when it predicts v, no model yet at a plateau: docs/fidelity.md says when ANT helps");
        return "Context: " + string.Join("; ", parts) + ".";
    }

    static string Num(double v) => double.IsFinite(v) ? v.ToString("R", Inv) : "";

    static string Markdown(DemoSummary s, DemoOptions o)
    {
        var p = o.Profile;
        var b = new StringBuilder();
        b.Append(Inv, $"# dfn demo: ANT vs baselines ({s.Profile} profile)\n\n");
        b.Append(Inv, $"Data {o.Data} at {p.Model.ImageSize}x{p.Model.ImageSize}; {p.Model.Describe()}; ");
        b.Append(Inv, $"{p.Steps} steps, batch {p.BatchSize}, AdamW lr {p.LearningRate:G3} (warm-up {p.WarmupSteps}, clip {p.GradientClipNorm:G3}), EMA {p.EmaDecay} with warm-up; ");
        b.Append(Inv, $"{o.Schedule} schedule, T = {o.Timesteps}; FD-ResNet18 of {p.EvaluationSamples} EMA samples ({p.Sampler(0).Description}) against {p.RealSamples} held-out real images; ");
        b.Append(Inv, $"{s.Seeds} seed(s){(s.Seeds > 1 ? ", mean ± std" : "")}.\n\n");
        if (!s.Complete) b.Append(Inv, $"**Incomplete**: not every run reached step {s.Steps}; the table compares at step {s.ComparedStep}, the last one all methods reached. Re-run the same command to continue.\n\n");
        b.Append(Inv, $"| method | FD at step {s.ComparedStep} | vs {s.BaselineId} | steps to reach {s.BaselineId}'s FD at step {s.ComparedStep} | s/step | diverged |\n");
        b.Append("|---|---|---|---|---|---|\n");
        foreach (var m in s.Methods)
        {
            var change = double.IsFinite(m.FinalFdChangePercent) ? $"{m.FinalFdChangePercent.ToString("+0.0;-0.0;0.0", Inv)}%" : "-";
            var diverged = m.DivergedSeeds.Count == 0 ? "0" : $"{m.DivergedSeeds.Count} (seed {string.Join(", ", m.DivergedSeeds)})";
            b.Append(Inv, $"| {m.Spec} | {SeedSpread.MeanStd(m.FinalFdMean, m.FinalFdStd, m.FinalSeeds)} | {change} | {StepsToReach(m, s)} | {(double.IsFinite(m.StepSecondsMean) ? m.StepSecondsMean.ToString("F3", Inv) : "-")} | {diverged} |\n");
        }
        var steps = s.Methods.SelectMany(m => m.Curve.Select(c => c.Step)).Distinct().Order().ToList();
        b.Append('\n').Append(Context(s)).Append('\n');
        b.Append("\nFD-ResNet18 at each evaluation point (lower is better):\n\n| step | ");
        b.Append(string.Join(" | ", s.Methods.Select(m => m.Spec))).Append(" |\n|---|").Append(string.Concat(s.Methods.Select(_ => "---|"))).Append('\n');
        foreach (var step in steps)
        {
            b.Append(Inv, $"| {step} | ");
            b.Append(string.Join(" | ", s.Methods.Select(m => m.Curve.FirstOrDefault(c => c.Step == step) is { } c ? SeedSpread.MeanStd(c.MeanFd, c.StdFd, c.Seeds) : "-")));
            b.Append(" |\n");
        }
        b.Append("\nFiles: `results.csv` (this table), `convergence.csv` and `convergence.png` (FD against steps), ");
        b.Append(string.Join(", ", s.Methods.Select(m => $"`samples-{m.Id}.png`"))).Append(" (EMA samples of seed 0 at the final step).\n");
        return b.ToString();
    }

    static ScottPlot.Plot ConvergencePlot(DemoSummary s)
    {
        var plot = Plots.ConvergenceChart.Create();
        var plotted = new List<double>();
        var index = 0;
        foreach (var m in s.Methods.Where(m => m.Curve.Count > 0))
            plotted.AddRange(Plots.ConvergenceChart.AddMethod(plot, index++, m.Spec, m.Curve.Select(c => (double)c.Step).ToArray(),
                m.Curve.Select(c => c.MeanFd).ToArray(), s.Seeds > 1 ? m.Curve.Select(c => c.StdFd).ToArray() : null, Plots.LogAxis.Position));
        Plots.LogAxis.UseOn(plot, plotted);
        Plots.ConvergenceChart.Label(plot, $"FD-ResNet18 of EMA samples ({s.Profile} profile, {s.Seeds} seed(s){(s.Seeds > 1 ? ": mean ± std" : "")})",
            "FD-ResNet18 (log scale; lower is better)");
        return plot;
    }
}
