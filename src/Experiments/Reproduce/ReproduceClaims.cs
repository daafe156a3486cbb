using System.Globalization;
using DiffusionFunctional.Core;

namespace DiffusionFunctional.Experiments.Reproduce;

/// <summary>
/// The paper's claims and a verdict on each, derived from the numbers by fixed rules (docs/reproduce.md states them):
/// a claim is "reproduced" when our figure shows the effect clearly (with an interval over seeds that excludes no
/// effect, when there are several seeds), "partly" when it points the same way but weaker or not clearly, and "not
/// reproduced" otherwise. A difference below <see cref="NoDifferencePercent"/> or with an interval over seeds that
/// includes zero is "no difference". The paper's figures are quoted for comparison, never used as targets.
/// </summary>
public static class ReproduceClaims
{
    static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    /// <summary>Relative FD changes smaller than this (in percent) are no difference, whatever the seeds say.</summary>
    public const double NoDifferencePercent = 1.0;

    /// <summary>"no difference ..." when the change is below <see cref="NoDifferencePercent"/> or its interval includes
    /// zero; null when there is a difference to judge.</summary>
    public static string? NoDifference(PairedComparisonSummary c) =>
        Math.Abs(c.MeanRelativeChangePercent) < NoDifferencePercent ? string.Create(Inv, $"no difference (|change| below {NoDifferencePercent:F0}%)")
        : c.HasInterval && c.RelativeChangeLower <= 0 && c.RelativeChangeUpper >= 0 ? "no difference beyond the seed spread"
        : null;

    /// <summary>The claims, in the order of the report's summary table.</summary>
    public static IReadOnlyList<ClaimVerdict> Judge(ReproduceSummary s)
    {
        var claims = new List<ClaimVerdict>();
        foreach (var method in s.Methods.Skip(2))
            claims.Add(BetterAtEqualSteps(method, s.ComparedStep));
        foreach (var method in s.Methods.Skip(2))
            claims.Add(Faster(method, s.ComparedStep));
        if (s.Methods.Count > 2) claims.Add(VersusMinSnr(s.Methods[2]));
        claims.Add(AffinityFalls(s.Affinity, s.Unmeasured()));
        if (s.Ntg.FirstOrDefault(n => n.Method == "vanilla") is { } vanillaNtg) claims.Add(NegativeTransfer(vanillaNtg));
        if (s.Ntg.Count == 2) claims.Add(AntReducesNegativeTransfer(s.Ntg[0], s.Ntg[1]));
        return claims;
    }

    static ClaimVerdict BetterAtEqualSteps(MethodResult m, long step)
    {
        var c = m.FdVersusVanilla;
        var ours = c.Count == 0 ? "not measured yet" : $"FD {Percent(c)} vs vanilla at step {step} ({Seeds(c.Count)})";
        var verdict = c.Count == 0 ? "not measured yet"
            : NoDifference(c) is { } none ? $"not reproduced: {none}{OneSeed(c)}"
            : c.MeanRelativeChangePercent <= -10 ? $"reproduced{OneSeed(c)}"
            : c.MeanRelativeChangePercent < 0 ? $"partly: lower, but by less than 10%{OneSeed(c)}"
            : $"not reproduced: higher than vanilla{OneSeed(c)}";
        return new ClaimVerdict($"{m.Spec} trains a better model than vanilla at equal steps", "FID 13-20% lower at equal iterations", ours, verdict);
    }

    static ClaimVerdict Faster(MethodResult m, long step)
    {
        var reached = m.StepsToVanillaSummary;
        var speedup = reached.Reached > 0 ? step / reached.Mean : double.NaN;
        var ours = reached.Seeds == 0 ? "not measured yet"
            : reached.Reached == 0 ? $"never reached vanilla's final FD within {step} steps ({Seeds(reached.Seeds)})"
            : string.Create(Inv, $"reached vanilla's final FD at step {reached.Mean:F0}{Spread(reached)}: {speedup:F2}x fewer ({reached.Reached} of {reached.Seeds} seeds)");
        var verdict = reached.Seeds == 0 ? "not measured yet"
            : reached.Reached < reached.Seeds ? "not reproduced: not every seed reached vanilla's final FD"
            : speedup >= 2.0 ? "reproduced"
            : speedup >= 1.25 ? "partly: faster, but less than 2x"
            : "not reproduced: no clear speed-up";
        return new ClaimVerdict($"{m.Spec} reaches vanilla's final FD in fewer steps", "about 2.5x fewer iterations to vanilla's final FID", ours, verdict);
    }

    static ClaimVerdict VersusMinSnr(MethodResult ant)
    {
        var c = ant.FdVersusMinSnr;
        var ours = c.Count == 0 ? "not measured yet" : $"FD {Percent(c)} vs Min-SNR ({Seeds(c.Count)})";
        var verdict = c.Count == 0 ? "not measured yet"
            : NoDifference(c) is { } none ? none + OneSeed(c)
            : c.MeanRelativeChangePercent < 0 ? $"{ant.Spec} ends lower{OneSeed(c)}" : $"Min-SNR ends lower{OneSeed(c)}";
        return new ClaimVerdict($"{ant.Spec} against Min-SNR (the strongest single-task baseline here)", "not reported", ours, verdict);
    }

    static ClaimVerdict AffinityFalls(IReadOnlyList<AffinityStage> stages, string unmeasured)
    {
        if (stages.Count == 0) return new ClaimVerdict("O1: task affinity falls as the noise-level gap grows", "affinity decays with the timestep gap (heatmaps)", unmeasured, unmeasured);
        var ours = string.Join("; ", stages.Select(a => string.Create(Inv, $"step {a.Step}: rho {a.RhoMean:F2}{(a.Rho.Length > 1 ? $" ± {a.RhoStd:F2}" : "")} (max p {a.PValue.Max():G2})")));
        var allSignificant = stages.All(a => a.Rho.All(r => r < 0) && a.PValue.All(p => p < 0.05));
        var verdict = allSignificant ? "reproduced: negative and significant at every stage and seed"
            : stages[^1].RhoMean < 0 ? "partly: negative at the final stage, not significant or not negative everywhere"
            : "not reproduced: affinity does not fall with the gap";
        return new ClaimVerdict("O1: task affinity falls as the noise-level gap grows", "affinity decays with the timestep gap (heatmaps)", ours, verdict);
    }

    static ClaimVerdict NegativeTransfer(NtgSummary vanilla)
    {
        var ours = Gaps(vanilla);
        var clear = Enumerable.Range(0, vanilla.GapMean.Length).Where(i => vanilla.GapMean[i] + (vanilla.Seeds > 1 ? vanilla.GapStd[i] : 0) < 0).ToList();
        var negative = vanilla.GapMean.Count(g => g < 0);
        var verdict = clear.Count > 0 ? $"reproduced: NTG < 0 in interval(s) {string.Join(", ", clear.Select(i => $"[{vanilla.Starts[i]}, {vanilla.Ends[i]})"))}{(vanilla.Seeds > 1 ? " beyond the seed spread" : " (one seed)")}"
            : negative > 0 ? "partly: some NTG < 0, within the seed spread"
            : "not reproduced: no interval shows negative transfer on this data";
        return new ClaimVerdict("O2: negative transfer between denoising tasks (vanilla model)", "NTG on FFHQ about +4.6, +0.15, -1.6, -5.9, -7.6 (least to most noisy)", ours, verdict);
    }

    static ClaimVerdict AntReducesNegativeTransfer(NtgSummary vanilla, NtgSummary ant)
    {
        double Negative(NtgSummary n) => n.GapMean.Where(g => g < 0).Sum();
        var (before, after) = (Negative(vanilla), Negative(ant));
        var ours = string.Create(Inv, $"sum of negative NTG: vanilla {before:F2}, {ant.Method} {after:F2}; {ant.Method}: {Gaps(ant)}");
        var verdict = before == 0 ? "not applicable: vanilla shows no negative transfer"
            : after > before ? "reproduced: ANT moves negative NTG toward 0" : "not reproduced: ANT does not reduce negative transfer";
        return new ClaimVerdict("ANT reduces negative transfer", "ANT moves NTG toward 0", ours, verdict);
    }

    static string Gaps(NtgSummary n) => string.Join(", ", Enumerable.Range(0, n.GapMean.Length)
        .Select(i => string.Create(Inv, $"{n.GapMean[i]:+0.00;-0.00;0.00}{(n.Seeds > 1 ? $" ± {n.GapStd[i]:F2}" : "")}"))) + $" (least to most noisy; {Seeds(n.Seeds)})";

    static string Percent(PairedComparisonSummary c) => c.HasInterval
        ? string.Create(Inv, $"{c.MeanRelativeChangePercent:+0.0;-0.0;0.0}% [{c.RelativeChangeLower:+0.0;-0.0;0.0}%, {c.RelativeChangeUpper:+0.0;-0.0;0.0}%] ({c.Level:P0} CI)")
        : string.Create(Inv, $"{c.MeanRelativeChangePercent:+0.0;-0.0;0.0}%");

    static string Spread(StepsAcrossSeeds s) => s.Reached > 1 ? string.Create(Inv, $" ± {s.StandardDeviation:F0}") : "";
    static string Seeds(int n) => n == 1 ? "1 seed" : $"{n} seeds";
    static string OneSeed(PairedComparisonSummary c) => c.HasInterval ? "" : " (one seed: no interval)";
}
