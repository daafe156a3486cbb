using System.Globalization;
using System.Text;
using DiffusionFunctional.Core;

namespace DiffusionFunctional.Experiments.Reproduce;

/// <summary>The three sections of report.md: convergence, O1 and O2, as tables written from the summary.</summary>
internal static class ReproduceSections
{
    static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    /// <summary>Where each method's final model is better or worse: held-out loss per interval against vanilla's, and
    /// FD under both samplers (does the ranking depend on the sampler?).</summary>
    public static void Mechanism(StringBuilder b, ReproduceSummary s)
    {
        if (s.Mechanism is not { Count: > 0 } records) return;
        var vanilla = records.Where(r => r.Method == "vanilla").ToDictionary(r => r.Seed);
        var first = records[0];
        b.Append("## Mechanism: where the final models differ\n\nHeld-out loss of each final EMA model per timestep interval (least noisy first; the same images, timesteps and noise for every model), ");
        b.Append("change against vanilla's (mean over seeds), and FD-ResNet18 of the same model under DDIM-50 and under DDPM over every timestep ");
        b.Append(Inv, $"({first.Samples} samples, the same noise). Figures: `mechanism-loss.png`, `cluster-weights.png` (seed 0's weights over training).\n\n| method | ");
        b.Append(string.Join(" | ", first.Starts.Zip(first.Ends, (a, e) => $"[{a}, {e})"))).Append(" | FD DDIM-50 | FD DDPM |\n|---|")
            .Append(string.Concat(first.Starts.Select(_ => "---|"))).Append("---|---|\n");
        foreach (var group in records.GroupBy(r => r.Method))
        {
            var changes = Enumerable.Range(0, first.Starts.Length).Select(i => group.Where(r => vanilla.ContainsKey(r.Seed))
                .Select(r => 100 * (r.HeldOutLoss[i] / vanilla[r.Seed].HeldOutLoss[i] - 1)).DefaultIfEmpty(double.NaN).Average());
            var cells = group.Key == "vanilla"
                ? Enumerable.Range(0, first.Starts.Length).Select(i => group.Average(r => r.HeldOutLoss[i]).ToString("F4", Inv))
                : changes.Select(c => c.ToString("+0.0;-0.0;0.0", Inv) + "%");
            b.Append(Inv, $"| {group.Key} | {string.Join(" | ", cells)} | {group.Average(r => r.FdDdim):F2} | {group.Average(r => r.FdDdpm):F2} |\n");
        }
        b.Append("\nVanilla's row gives its loss; the others, their change against it (negative: lower loss than vanilla in that interval).\n\n");
    }

    public static void Convergence(StringBuilder b, ReproduceSummary s, ReproduceOptions o)
    {
        var profile = o.Profile;
        b.Append("## 1. Convergence\n\n");
        var plateau = s.Plateau;
        b.Append(Inv, $"Plateau criterion: vanilla's mean FD at its last {plateau.Points} evaluation points scored with {profile.Convergence.EvaluationSamples} samples ");
        b.Append(Inv, $"(FD's bias depends on the sample count, so a final point scored with more counts with the FD of its first {profile.Convergence.EvaluationSamples}) lies within {plateau.TolerancePercent:G3}% of each other ");
        b.Append(double.IsFinite(plateau.RelativeRangePercent)
            ? string.Create(Inv, $"(measured: {plateau.RelativeRangePercent:F1}%): **{(plateau.Held ? "held" : "did not hold: vanilla was still improving, so the comparison is of models still training")}**.\n\n")
            : "(not enough points yet).\n\n");
        b.Append(Inv, $"| method | FD at step {s.ComparedStep} | KID at step {s.ComparedStep} | FD vs vanilla | FD vs Min-SNR | KID vs vanilla | steps to vanilla's final FD | s/step | diverged |\n");
        b.Append("|---|---|---|---|---|---|---|---|---|\n");
        foreach (var m in s.Methods)
        {
            b.Append(Inv, $"| {m.Spec} | {SeedSpread.MeanStd(m.FinalFd, "F2")} | {SeedSpread.MeanStd(m.FinalKid, "G3")} | {Change(m.FdVersusVanilla, m.Id == "vanilla")} | ");
            b.Append(Inv, $"{Change(m.FdVersusMinSnr, m.Id == "min-snr")} | {Change(m.KidVersusVanilla, m.Id == "vanilla")} | {Steps(m)} | ");
            b.Append(Inv, $"{(double.IsFinite(m.StepSeconds) ? m.StepSeconds.ToString("F3", Inv) : "-")} | {(m.DivergedSeeds.Count == 0 ? "0" : string.Join(", ", m.DivergedSeeds.Select(d => $"seed {d}")))} |\n");
        }
        b.Append("\nChanges are relative to the baseline, paired over seeds, with a Student-t 95% interval when there are at least two seeds. ");
        var curveSamples = profile.Convergence.EvaluationSamples;
        b.Append(Inv, $"\"Steps to vanilla's final FD\" is interpolated log-linearly between evaluation points, per seed (mean ± std over seeds that got there), ");
        b.Append(Inv, $"with every point and the target scored on {curveSamples} samples: at the final point, its first {curveSamples} images, drawn with the same noise as every other point's ");
        b.Append(Inv, $"(vanilla's target per seed: {string.Join(", ", s.Methods[0].FinalFdOnCurveSamples.Select(f => f.ToString("F2", Inv)))}).\n\n");
        b.Append("Real-vs-real floor (two disjoint sets of held-out digits, the second of the stated size):\n\n| images | FD-ResNet18 | KID |\n|---|---|---|\n");
        foreach (var f in s.Floors) b.Append(Inv, $"| {f.Samples} | {f.Fd:F2} | {f.Kid:G3} ± {f.KidStandardError:G2} |\n");
        b.Append("\nFD-ResNet18 at each evaluation point (mean over seeds; lower is better):\n\n| step | images | ");
        b.Append(string.Join(" | ", s.Methods.Select(m => m.Spec))).Append(" |\n|---|---|").Append(string.Concat(s.Methods.Select(_ => "---|"))).Append('\n');
        foreach (var step in s.Methods.SelectMany(m => m.Curve.Select(c => c.Step)).Distinct().Order())
        {
            var samples = s.Methods.SelectMany(m => m.Curve).FirstOrDefault(c => c.Step == step)?.Samples ?? 0;
            b.Append(Inv, $"| {step} | {samples} | ");
            b.Append(string.Join(" | ", s.Methods.Select(m => m.Curve.FirstOrDefault(c => c.Step == step) is { } c ? FdCell(c, curveSamples) : "-")));
            b.Append(" |\n");
        }
        b.Append("\n![FD](convergence-fd.png)\n\n![KID](convergence-kid.png)\n\nSamples at the final step (seed 0): ");
        b.Append(string.Join(", ", o.Methods.Select(m => $"[{m}](samples-{m.Id}.png)"))).Append(".\n\n");
    }

    public static void Affinity(StringBuilder b, ReproduceSummary s)
    {
        b.Append("## 2. Observation O1: task affinity falls with the noise-level gap\n\n");
        if (s.Affinity.Count == 0)
        {
            b.Append(AsSentence(s.Unmeasured()));
            return;
        }
        b.Append("Gradient cosine between timestep groups on a fixed image batch (vanilla model's live weights), Spearman's rho of affinity against |delta log-SNR| over all group pairs. ");
        b.Append("The p-value treats the pairs as independent; they share groups, so it is optimistic: read it with the spread over seeds and stages.\n\n");
        b.Append("| checkpoint step | rho per seed | mean rho | p-value per seed |\n|---|---|---|---|\n");
        foreach (var a in s.Affinity)
            b.Append(Inv, $"| {a.Step} | {string.Join(", ", a.Rho.Select(r => r.ToString("F3", Inv)))} | {a.RhoMean:F3}{(a.Rho.Length > 1 ? $" ± {a.RhoStd:F3}" : "")} | {string.Join(", ", a.PValue.Select(p => p.ToString("G2", Inv)))} |\n");
        b.Append("\nMean affinity per |delta log-SNR| bin (the decay curve):\n\n| bin centre | ").Append(string.Join(" | ", s.Affinity.Select(a => $"step {a.Step}"))).Append(" |\n|---|");
        b.Append(string.Concat(s.Affinity.Select(_ => "---|"))).Append('\n');
        var centres = s.Affinity[0].BinCentres;
        for (var i = 0; i < centres.Length; i++)
            b.Append(Inv, $"| {centres[i]:F2} | {string.Join(" | ", s.Affinity.Select(a => i < a.BinMeans.Length && double.IsFinite(a.BinMeans[i]) ? a.BinMeans[i].ToString("F3", Inv) : "-"))} |\n");
        b.Append("\n![affinity heatmap](affinity-heatmap.png)\n\n![affinity decay](affinity-decay.png)\n\n");
    }

    public static void Ntg(StringBuilder b, ReproduceSummary s, ReproduceProfile profile)
    {
        b.Append("## 3. Observation O2: negative transfer\n\n");
        if (s.Ntg.Count == 0)
        {
            b.Append(AsSentence(s.Unmeasured()));
            return;
        }
        b.Append(Inv, $"One specialist per interval ({profile.SpecialistSteps} steps each, drawing t only in its interval); the shared models are the convergence runs' final models. ");
        b.Append(Inv, $"NTG = FD(hybrid) - FD(shared) on {profile.NtgSamples} samples with the same noise; below 0: the specialist does its interval better, i.e. the other tasks hurt it (negative transfer).\n\n");
        b.Append("| interval | ").Append(string.Join(" | ", s.Ntg.Select(n => $"NTG {n.Method}"))).Append(" |\n|---|").Append(string.Concat(s.Ntg.Select(_ => "---|"))).Append('\n');
        var first = s.Ntg[0];
        for (var i = 0; i < first.GapMean.Length; i++)
        {
            b.Append(Inv, $"| [{first.Starts[i]}, {first.Ends[i]}) | ");
            b.Append(string.Join(" | ", s.Ntg.Select(n => string.Create(Inv, $"{n.GapMean[i]:+0.00;-0.00;0.00}{(n.Seeds > 1 ? $" ± {n.GapStd[i]:F2}" : "")}"))));
            b.Append(" |\n");
        }
        b.Append(Inv, $"\nFD of the shared models alone: {string.Join(", ", s.Ntg.Select(n => string.Create(Inv, $"{n.Method} {n.FdSharedMean:F2}")))}.\n\n![NTG](ntg.png)\n");
    }

    static string Change(PairedComparisonSummary c, bool self) =>
        self ? "(baseline)" : c.Count == 0 ? "-"
        : c.HasInterval ? string.Create(Inv, $"{c.MeanRelativeChangePercent:+0.0;-0.0;0.0}% [{c.RelativeChangeLower:+0.0;-0.0;0.0}, {c.RelativeChangeUpper:+0.0;-0.0;0.0}]")
        : string.Create(Inv, $"{c.MeanRelativeChangePercent:+0.0;-0.0;0.0}%");

    // A point scored on more images than the curve also shows its FD on the curve's count, the comparable value.
    static string FdCell(CurvePoint c, int curveSamples)
    {
        var fd = c.Seeds > 1 ? string.Create(Inv, $"{c.FdMean:F1} ± {c.FdStd:F1}") : c.FdMean.ToString("F1", Inv);
        return c.Samples > curveSamples && double.IsFinite(c.CurveFdMean) ? string.Create(Inv, $"{fd} (first {curveSamples}: {c.CurveFdMean:F1})") : fd;
    }

    static string Steps(MethodResult m)
    {
        var r = m.StepsToVanillaSummary;
        if (r.Seeds == 0 || r.Reached == 0) return r.Seeds == 0 ? "-" : "not reached";
        var spread = r.Reached > 1 ? string.Create(Inv, $" ± {r.StandardDeviation:F0}") : "";
        return string.Create(Inv, $"{r.Mean:F0}{spread}{(r.Reached < r.Seeds ? $" ({r.Reached} of {r.Seeds} seeds)" : "")}");
    }

    /// <summary>A lower-case phrase as a paragraph of its own.</summary>
    static string AsSentence(string phrase) => char.ToUpperInvariant(phrase[0]) + phrase[1..] + ".\n\n";
}
