using DiffusionFunctional.Experiments.Plots;

namespace DiffusionFunctional.Experiments.Reproduce;

/// <summary>The reproduce report's figures: convergence with a band over seeds, the affinity decay curve and NTG bars.</summary>
public static class ReproducePlots
{
    /// <summary>FD or KID against steps: one line per method (mean over seeds) with a band of one standard deviation,
    /// and the real-vs-real floor at the final sample count as a dashed line. FD's line stays on one sample count (a
    /// final point scored on more images shows its FD on the first ones, FD's bias depending on the count), with the
    /// final point's FD on all its images as an open marker. FD is drawn on a logarithmic axis (<see cref="LogAxis"/>);
    /// KID stays linear (it is unbiased and can be negative near the floor).</summary>
    public static ScottPlot.Plot Convergence(ReproduceSummary s, bool kid)
    {
        var plot = ConvergenceChart.Create();
        var index = 0;
        var plotted = new List<double>(); // FD's line values on the log axis, for its ticks
        foreach (var m in s.Methods.Where(m => m.Curve.Count > 0))
        {
            var points = kid ? m.Curve : m.Curve.Where(p => double.IsFinite(p.CurveFdMean)).ToList();
            if (!kid && MarkAllSampleFinal(plot, m, ConvergenceChart.Colour(index), first: index == 0) is { } finalY) plotted.Add(finalY);
            var ys = ConvergenceChart.AddMethod(plot, index++, m.Spec, points.Select(p => (double)p.Step).ToArray(),
                points.Select(p => kid ? p.KidMean : p.CurveFdMean).ToArray(),
                s.Seeds > 1 ? points.Select(p => kid ? p.KidStd : p.CurveFdStd).ToArray() : null,
                kid ? v => v : LogAxis.Position);
            if (!kid) plotted.AddRange(ys);
        }
        if (s.Floors.Count > 0 && s.Methods.Any(m => m.Curve.Count > 0))
        {
            // FD's floor at the line's sample count (dotted) and at the final one (dashed); KID is unbiased: one floor.
            var curveSamples = s.Methods.First(m => m.Curve.Count > 0).Curve[0].Samples;
            var floors = kid ? [s.Floors.MaxBy(f => f.Samples)!] : s.Floors.Where(f => f.Samples == curveSamples).Append(s.Floors.MaxBy(f => f.Samples)!).Distinct();
            foreach (var floor in floors)
            {
                var at = plot.Add.HorizontalLine(kid ? floor.Kid : LogAxis.Position(floor.Fd));
                if (!kid) plotted.Add(at.Y);
                at.LinePattern = floor.Samples == curveSamples && !kid ? ScottPlot.LinePattern.Dotted : ScottPlot.LinePattern.Dashed;
                at.Color = ScottPlot.Colors.Gray;
                at.LegendText = $"real vs real ({floor.Samples} images)";
            }
        }
        if (kid) plot.Axes.Left.Min = 0;
        else LogAxis.UseOn(plot, plotted);
        var metric = kid ? "KID" : "FD-ResNet18";
        ConvergenceChart.Label(plot, $"{metric} of EMA samples ({s.Profile} profile, {s.Seeds} seed(s){(s.Seeds > 1 ? ": mean ± std" : "")})",
            kid ? "KID (lower is better)" : "FD-ResNet18 (log scale; lower is better)");
        return plot;
    }

    // The final point's FD on all its images (lower than the curve's count would give): an open marker, not joined.
    // Returns where it was drawn (on the log axis), or null when the final point has the curve's sample count.
    static double? MarkAllSampleFinal(ScottPlot.Plot plot, MethodResult m, ScottPlot.Color color, bool first)
    {
        var last = m.Curve[^1];
        if (last.Samples <= m.Curve[0].Samples || !double.IsFinite(last.FdMean)) return null;
        var marker = plot.Add.Marker(last.Step, LogAxis.Position(last.FdMean), ScottPlot.MarkerShape.OpenCircle, 9, color);
        if (first) marker.LegendText = $"step {last.Step} on {last.Samples} images (open)";
        return marker.Y;
    }

    /// <summary>Mean affinity per |delta log-SNR| bin, one line per checkpoint stage (O1 predicts falling lines).</summary>
    public static ScottPlot.Plot Decay(ReproduceSummary s)
    {
        PlotFonts.EnsureRegistered();
        var plot = new ScottPlot.Plot();
        foreach (var stage in s.Affinity)
        {
            var finite = stage.BinCentres.Zip(stage.BinMeans).Where(p => double.IsFinite(p.Second)).ToArray();
            var line = plot.Add.Scatter(finite.Select(p => p.First).ToArray(), finite.Select(p => p.Second).ToArray());
            line.LegendText = $"step {stage.Step} (rho {stage.RhoMean:F2})";
            line.LineWidth = 2;
        }
        plot.Title("Task affinity against the log-SNR gap (vanilla model)");
        plot.XLabel("|delta log-SNR| between timestep groups");
        plot.YLabel("mean gradient cosine");
        plot.ShowLegend(ScottPlot.Alignment.UpperRight);
        return plot;
    }

    /// <summary>NTG per interval, vanilla and ANT-UW side by side, with the seed spread as error bars.</summary>
    public static ScottPlot.Plot Ntg(ReproduceSummary s)
    {
        PlotFonts.EnsureRegistered();
        var plot = new ScottPlot.Plot();
        var palette = new ScottPlot.Palettes.Category10();
        var width = 0.8 / Math.Max(1, s.Ntg.Count);
        for (var m = 0; m < s.Ntg.Count; m++)
        {
            var n = s.Ntg[m];
            var bars = Enumerable.Range(0, n.GapMean.Length).Select(i => new ScottPlot.Bar
            {
                Position = i + (m - (s.Ntg.Count - 1) / 2.0) * width,
                Value = n.GapMean[i],
                Error = n.Seeds > 1 ? n.GapStd[i] : 0,
                Size = width,
                FillColor = palette.GetColor(m),
            }).ToList();
            var added = plot.Add.Bars(bars);
            added.LegendText = n.Method;
        }
        if (s.Ntg.Count > 0)
        {
            var first = s.Ntg[0];
            plot.Axes.Bottom.SetTicks(Enumerable.Range(0, first.Starts.Length).Select(i => (double)i).ToArray(),
                Enumerable.Range(0, first.Starts.Length).Select(i => $"[{first.Starts[i]},{first.Ends[i]})").ToArray());
        }
        plot.Add.HorizontalLine(0).Color = ScottPlot.Colors.Black;
        plot.Title("Negative transfer gap: FD(hybrid) - FD(shared); below 0 = negative transfer");
        plot.XLabel("specialist's timestep interval (least -> most noisy)");
        plot.YLabel("NTG");
        plot.ShowLegend(ScottPlot.Alignment.UpperRight);
        return plot;
    }
}
