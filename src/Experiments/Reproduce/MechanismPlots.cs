using System.Text.Json.Nodes;
using DiffusionFunctional.Experiments.Demo;
using DiffusionFunctional.Experiments.Plots;

namespace DiffusionFunctional.Experiments.Reproduce;

/// <summary>The mechanism figures of the reproduce report: held-out loss per interval against vanilla's, and the
/// cluster weights of the multi-task methods over training.</summary>
public static class MechanismPlots
{
    /// <summary>Per method (not vanilla), the held-out loss per interval relative to vanilla's in percent (mean over
    /// seeds), one line per method over the intervals, least noisy first.</summary>
    public static ScottPlot.Plot HeldOutLoss(ReproduceSummary s)
    {
        PlotFonts.EnsureRegistered();
        var plot = new ScottPlot.Plot();
        var records = s.Mechanism ?? [];
        var vanilla = records.Where(r => r.Method == "vanilla").ToDictionary(r => r.Seed);
        var palette = new ScottPlot.Palettes.Category10();
        var index = 1; // vanilla keeps the first colour in every figure
        var intervals = records.Count > 0 ? records[0].Starts.Length : 0;
        foreach (var group in records.Where(r => r.Method != "vanilla").GroupBy(r => r.Method))
        {
            var ys = Enumerable.Range(0, intervals).Select(i => group.Where(r => vanilla.ContainsKey(r.Seed))
                .Select(r => 100 * (r.HeldOutLoss[i] / vanilla[r.Seed].HeldOutLoss[i] - 1)).DefaultIfEmpty(double.NaN).Average()).ToArray();
            var line = plot.Add.Scatter(Enumerable.Range(0, intervals).Select(i => (double)i).ToArray(), ys);
            line.Color = palette.GetColor(index++);
            line.LineWidth = 2;
            line.LegendText = group.Key;
        }
        var zero = plot.Add.HorizontalLine(0);
        zero.Color = ScottPlot.Colors.Gray;
        zero.LegendText = "vanilla";
        if (records.Count > 0)
            plot.Axes.Bottom.SetTicks(Enumerable.Range(0, intervals).Select(i => (double)i).ToArray(),
                records[0].Starts.Zip(records[0].Ends, (a, e) => $"[{a}, {e})").ToArray());
        plot.Title("Held-out loss of the final EMA models against vanilla's, per timestep interval");
        plot.XLabel("timestep interval (least noisy first)");
        plot.YLabel("loss change vs vanilla (%)");
        plot.ShowLegend(ScottPlot.Edge.Right); // a method's change may peak in any interval: outside, the legend hides none
        return plot;
    }

    /// <summary>The weight of each cluster's loss over training, one panel-free line per (method, cluster), from the
    /// <c>cluster_weights</c> of each method's metrics.jsonl (<paramref name="metricsOf"/>), on a logarithmic axis
    /// (<see cref="LogAxis"/>); null when no method logged any (vanilla and Min-SNR do not).</summary>
    public static ScottPlot.Plot? ClusterWeights(IReadOnlyList<DemoMethod> methods, Func<DemoMethod, string> metricsOf)
    {
        PlotFonts.EnsureRegistered();
        var plot = new ScottPlot.Plot();
        var palette = new ScottPlot.Palettes.Category10();
        var clusters = 0;
        var methodIndex = 0;
        var plotted = new List<double>();
        foreach (var method in methods)
        {
            var path = metricsOf(method);
            if (!File.Exists(path)) continue;
            var rows = Read(path);
            if (rows.Count == 0) continue;
            var color = palette.GetColor(methodIndex++ % 10);
            clusters = rows[0].Weights.Length;
            // About 400 points per line, each the mean of its window of steps: the plot shows the trend, not every step
            // (Nash-MTL's alpha is solved afresh each step and jumps tenfold between neighbours; one step in twenty
            // would draw that noise, not its level). The windows and their steps are the same for every cluster.
            var windows = rows.Chunk(Math.Max(1, rows.Count / 400)).ToList();
            var steps = windows.Select(w => w.Average(r => (double)r.Step)).ToArray();
            for (var cluster = 0; cluster < clusters; cluster++)
            {
                var ys = windows.Select(w => LogAxis.Position(w.Average(r => r.Weights[cluster]), SmallestWeight)).ToArray();
                plotted.AddRange(ys);
                var line = plot.Add.Scatter(steps, ys);
                line.Color = color.WithAlpha(1.0 - 0.15 * cluster);
                line.MarkerSize = 0;
                line.LineWidth = 1.5f;
                line.LegendText = cluster == 0 ? $"{method} (cluster 0 darkest)" : "";
            }
        }
        if (clusters == 0) return null;
        var uniform = plot.Add.HorizontalLine(LogAxis.Position(1.0 / clusters, SmallestWeight));
        plotted.Add(uniform.Y);
        LogAxis.UseOn(plot, plotted);
        uniform.Color = ScottPlot.Colors.Gray;
        uniform.LinePattern = ScottPlot.LinePattern.Dashed;
        uniform.LegendText = $"uniform (1/k, k = {clusters})";
        plot.Title("Weight of each cluster's loss over training (seed 0)");
        plot.XLabel("training step");
        plot.YLabel("cluster weight in the update (log scale)");
        plot.ShowLegend(ScottPlot.Edge.Right); // weights spike anywhere in training (Nash's α): keep the legend off the data
        return plot;
    }

    // Weights are positive; one of zero (a method may switch a cluster off) is drawn here, far below any logged weight.
    const double SmallestWeight = 1e-6;

    static List<(long Step, double[] Weights)> Read(string path) =>
        File.ReadLines(path)
            .Select(line => { try { return JsonNode.Parse(line); } catch (System.Text.Json.JsonException) { return null; } })
            .Where(n => n?["step"] is not null && n["cluster_weights"] is JsonArray)
            .Select(n => (n!["step"]!.GetValue<long>(), n["cluster_weights"]!.AsArray().Select(w => w?.GetValue<double>() ?? double.NaN).ToArray()))
            .ToList();
}
