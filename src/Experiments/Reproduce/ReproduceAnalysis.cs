using DiffusionFunctional.Core;
using DiffusionFunctional.Experiments.Demo;

namespace DiffusionFunctional.Experiments.Reproduce;

/// <summary>Turns the convergence records and the observations' measurements into a <see cref="ReproduceSummary"/>
/// (the statistics come from Core: docs/statistics.md).</summary>
public static class ReproduceAnalysis
{
    /// <summary>Summarises what is measured so far; <see cref="ReproduceSummary.Complete"/> says whether that is everything.</summary>
    public static ReproduceSummary Summarise(ReproduceOptions options, DemoSummary demo, IReadOnlyList<DemoRecord> records, ReproduceStore store)
    {
        var profile = options.Profile;
        var seeds = Enumerable.Range(0, options.Seeds).Select(s => (long)s).ToArray();
        var own = records.Where(r => r.Seed < options.Seeds).ToList();
        var compared = demo.ComparedStep;
        var methods = options.Methods;
        var vanilla = methods[0].Id;
        var minSnr = methods[1].Id;
        var curveSamples = profile.Convergence.EvaluationSamples;
        double Final(string id, long seed, Func<DemoRecord, double> metric) =>
            own.FirstOrDefault(r => r.Method == id && r.Seed == seed && r.Step == compared && !r.Diverged) is { } r ? metric(r) : double.NaN;

        var results = methods.Select(m =>
        {
            var curve = Curve(own, m.Id, curveSamples);
            var fd = seeds.Select(s => Final(m.Id, s, r => r.Fd)).ToArray();
            var kid = seeds.Select(s => Final(m.Id, s, r => r.Kid)).ToArray();
            var kidError = seeds.Select(s => Final(m.Id, s, r => r.KidStandardError)).ToArray();
            var fdOnCurveSamples = seeds.Select(s => Final(m.Id, s, r => r.FdAt(curveSamples))).ToArray();
            var reach = seeds.Select(s => StepsToReach(own, m.Id, s, Final(vanilla, s, r => r.FdAt(curveSamples)), compared, curveSamples)).ToArray();
            return new MethodResult(m.Id, m.ToString(), curve, fd, kid, kidError, fdOnCurveSamples, reach,
                ReproductionStatistics.SummarizeSteps(reach),
                Paired(fd, seeds.Select(s => Final(vanilla, s, r => r.Fd)).ToArray()),
                Paired(kid, seeds.Select(s => Final(vanilla, s, r => r.Kid)).ToArray()),
                Paired(fd, seeds.Select(s => Final(minSnr, s, r => r.Fd)).ToArray()),
                Paired(kid, seeds.Select(s => Final(minSnr, s, r => r.Kid)).ToArray()),
                own.Where(r => r.Method == m.Id && r.Diverged).Select(r => r.Seed).Distinct().Order().ToList(),
                demo.Methods.FirstOrDefault(d => d.Id == m.Id)?.StepSecondsMean ?? double.NaN);
        }).ToList();

        // FD's bias shrinks with the sample count (the real-vs-real floor here: 21.5 at 250 images, 7.0 at 1,000), so
        // the plateau is judged on points scored with the same count: the final point's FD on all its images would
        // always look like a last drop and the criterion could never hold; its FD on the first images belongs.
        var vanillaCurve = results[0].Curve
            .Where(p => p.Step <= compared && double.IsFinite(p.CurveFdMean)).Select(p => p.CurveFdMean).ToArray();
        var plateau = ReproductionStatistics.Plateau(vanillaCurve, profile.PlateauPoints, profile.PlateauPercent);
        var affinity = profile.Convergence.KeptCheckpoints.Select(step => AffinityAt(store, step)).Where(a => a.Rho.Length > 0).ToList();
        var ntg = new[] { methods[0].Id, methods[2].Id }.Select(id => NtgOf(store, id)).Where(n => n.Seeds > 0).ToList();
        var complete = demo.Complete && store.Floors.Count > 0 && (!options.Observations || Expected(options, own, store));
        var partial = new ReproduceSummary(profile.Name, options.Seeds, complete, compared, results, store.Floors.OrderBy(f => f.Samples).ToList(),
            plateau, affinity, ntg, [], store.Mechanism.OrderBy(m => m.Seed).ToList(), ObservationsOff: !options.Observations);
        return partial with { Claims = ReproduceClaims.Judge(partial) };
    }

    static List<CurvePoint> Curve(IReadOnlyList<DemoRecord> records, string id, int curveSamples) =>
        records.Where(r => r.Method == id && !r.Diverged && double.IsFinite(r.Fd)).GroupBy(r => r.Step).OrderBy(g => g.Key)
            .Select(g => new CurvePoint(g.Key, g.Average(r => r.Fd), SeedSpread.Std(g.Select(r => r.Fd)), g.Average(r => r.Kid), SeedSpread.Std(g.Select(r => r.Kid)),
                g.Count(), g.Max(r => r.Samples), g.Average(r => r.FdAt(curveSamples)), SeedSpread.Std(g.Select(r => r.FdAt(curveSamples)))))
            .ToList();

    /// <summary>Where a seed's FD curve, every point scored on <paramref name="samples"/> images, first reaches
    /// <paramref name="target"/> (scored the same way), log-linearly interpolated; NaN if never. With one sample count
    /// on both sides, the final point's smaller bias (more images) cannot make the target harder to reach.</summary>
    static double StepsToReach(IReadOnlyList<DemoRecord> records, string id, long seed, double target, long compared, int samples)
    {
        if (!double.IsFinite(target)) return double.NaN;
        var points = records.Where(r => r.Method == id && r.Seed == seed && !r.Diverged && r.Step <= compared)
            .Select(r => (r.Step, Fd: r.FdAt(samples))).Where(p => double.IsFinite(p.Fd)).OrderBy(p => p.Step).ToList();
        if (points.Count == 0) return double.NaN; // a cell not run yet (the report step after shards names it)
        return ReproductionStatistics.TryStepsToTarget(points.Select(p => (double)p.Step).ToArray(), points.Select(p => p.Fd).ToArray(), target, out var step)
            ? step : double.NaN;
    }

    // Only seeds where both values exist are paired; none yet (a run stopped early) is a comparison of 0 pairs.
    static PairedComparisonSummary Paired(double[] candidate, double[] baseline)
    {
        var pairs = candidate.Zip(baseline).Where(p => double.IsFinite(p.First) && double.IsFinite(p.Second)).ToArray();
        return pairs.Length == 0
            ? new PairedComparisonSummary(0, double.NaN, double.NaN, double.NaN, double.NaN, double.NaN, double.NaN, 0.95, false)
            : ReproductionStatistics.ComparePaired(pairs.Select(p => p.First).ToArray(), pairs.Select(p => p.Second).ToArray());
    }

    static AffinityStage AffinityAt(ReproduceStore store, long step)
    {
        var at = store.Affinity.Where(a => a.Step == step).OrderBy(a => a.Seed).ToList();
        var centres = at.FirstOrDefault()?.BinCentres ?? [];
        var means = Enumerable.Range(0, centres.Length)
            .Select(b => at.Select(a => a.BinMeans[b]).Where(double.IsFinite).DefaultIfEmpty(double.NaN).Average()).ToArray();
        var rho = at.Select(a => a.Rho).ToArray();
        return new AffinityStage(step, rho, at.Select(a => a.PValue).ToArray(), rho.DefaultIfEmpty(double.NaN).Average(), SeedSpread.Std(rho),
            centres, means, at.Select(a => a.CsvPath).ToArray());
    }

    static NtgSummary NtgOf(ReproduceStore store, string method)
    {
        var runs = store.Ntg.Where(n => n.Method == method).ToList();
        if (runs.Count == 0) return new NtgSummary(method, [], [], [], [], double.NaN, 0);
        var k = runs[0].Gaps.Length;
        return new NtgSummary(method, runs[0].Starts, runs[0].Ends,
            Enumerable.Range(0, k).Select(i => runs.Average(r => r.Gaps[i])).ToArray(),
            Enumerable.Range(0, k).Select(i => SeedSpread.Std(runs.Select(r => r.Gaps[i]))).ToArray(),
            runs.Average(r => r.FdShared), runs.Count);
    }

    // Every seed's observations are in: affinity at each kept step of vanilla, NTG of vanilla and ANT-UW (unless diverged).
    static bool Expected(ReproduceOptions options, IReadOnlyList<DemoRecord> records, ReproduceStore store)
    {
        var kept = options.Profile.Convergence.KeptCheckpoints;
        var methods = options.Methods;
        bool Diverged(string id, long seed) => records.Any(r => r.Method == id && r.Seed == seed && r.Diverged);
        for (long seed = 0; seed < options.Seeds; seed++)
        {
            if (!Diverged(methods[0].Id, seed) && kept.Any(step => store.Affinity.All(a => a.Seed != seed || a.Step != step))) return false;
            foreach (var id in new[] { methods[0].Id, methods[2].Id })
                if (!Diverged(id, seed) && store.Ntg.All(n => n.Seed != seed || n.Method != id)) return false;
        }
        return true;
    }
}
