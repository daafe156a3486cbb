using DiffusionFunctional.Experiments.Plots;

namespace DiffusionFunctional.Experiments.Reproduce;

/// <summary>The reproduce report's figures: convergence with a band over seeds, the affinity decay curve and NTG bars.</summary>
public static class ReproducePlots
{
    /// <summary>FD or KID against steps: one line per method (mean over seeds) with a band of one standard deviation,
    /// and the real-vs-real floor at the final sample count as a dashed line.</summary>
    public static ScottPlot.Plot Convergence(ReproduceSummary s, bool kid)
    {
        PlotFonts.EnsureRegistered();
        var plot = new ScottPlot.Plot();
        var palette = new ScottPlot.Palettes.Category10();
        var index = 0;
        foreach (var m in s.Methods.Where(m => m.Curve.Count > 0))
        {
            var color = palette.GetColor(index++);
            var xs = m.Curve.Select(p => (double)p.Step).ToArray();
            var mean = m.Curve.Select(p => kid ? p.KidMean : p.FdMean).ToArray();
            var std = m.Curve.Select(p => kid ? p.KidStd : p.FdStd).ToArray();
            if (s.Seeds > 1)
            {
                var band = plot.Add.FillY(xs, mean.Zip(std, (a, b) => a - b).ToArray(), mean.Zip(std, (a, b) => a + b).ToArray());
                band.FillColor = color.WithAlpha(0.2);
                band.LineWidth = 0;
            }
            var line = plot.Add.Scatter(xs, mean);
            line.Color = color;
            line.LineWidth = 2;
            line.MarkerSize = 5;
            line.LegendText = m.Spec;
        }
        if (s.Floors.Count > 0 && s.Methods.Any(m => m.Curve.Count > 0))
        {
            var floor = s.Floors.MaxBy(f => f.Samples)!;
            var at = plot.Add.HorizontalLine(kid ? floor.Kid : floor.Fd);
            at.LinePattern = ScottPlot.LinePattern.Dashed;
            at.Color = ScottPlot.Colors.Gray;
            at.LegendText = $"real vs real ({floor.Samples} images)";
        }
        plot.Axes.Left.Min = 0;
        var metric = kid ? "KID" : "FD-ResNet18";
        plot.Title($"{metric} of EMA samples ({s.Profile} profile, {s.Seeds} seed(s){(s.Seeds > 1 ? ": mean ± std" : "")})");
        plot.XLabel("training step");
        plot.YLabel($"{metric} (lower is better)");
        plot.ShowLegend(ScottPlot.Alignment.UpperRight); // metrics fall with training: the upper right stays free
        return plot;
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
