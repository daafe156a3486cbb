using System.Text.Json;

namespace DiffusionFunctional.Experiments.Analysis;

/// <summary>Writes the negative transfer gap as ntg.json and a bar chart (ntg.png).</summary>
public static class NtgReport
{
    /// <summary>Writes ntg.json (settings, FD of the shared model, each interval's FD and NTG) and ntg.png into the request's folder.</summary>
    public static (string Json, string Chart) Write(NtgRequest r, double fdShared, IReadOnlyList<NtgInterval> intervals)
    {
        var json = Path.Combine(r.OutputDirectory, "ntg.json");
        AtomicFile.WriteAllText(json, JsonSerializer.Serialize(new
        {
            weighting = r.Weighting,
            steps = r.Steps,
            seed = r.Seed,
            eval_samples = r.EvalSamples,
            fd_shared = fdShared,
            intervals = intervals.Select(i => new { index = i.Index, start = i.Start, end = i.End, fd_hybrid = i.FdHybrid, ntg = i.Gap }),
        }, new JsonSerializerOptions { WriteIndented = true }));

        Plots.PlotFonts.EnsureRegistered();
        var chart = Path.Combine(r.OutputDirectory, "ntg.png");
        var plot = new ScottPlot.Plot();
        var bars = intervals.Select(i => new ScottPlot.Bar
        {
            Position = i.Index,
            Value = i.Gap,
            FillColor = i.Gap < 0 ? ScottPlot.Colors.IndianRed : ScottPlot.Colors.SteelBlue,
        }).ToList();
        plot.Add.Bars(bars);
        plot.Axes.Bottom.SetTicks(intervals.Select(i => (double)i.Index).ToArray(), intervals.Select(i => $"[{i.Start},{i.End})").ToArray());
        plot.Title($"Negative transfer gap (shared: {r.Weighting}); below 0 = negative transfer");
        plot.XLabel("specialist's timestep interval (least -> most noisy)");
        plot.YLabel("FD(hybrid) - FD(shared)");
        AtomicFile.Write(chart, path => plot.SavePng(path, 640, 420));
        return (json, chart);
    }
}
