using DiffusionFunctional.Analysis;
using DiffusionFunctional.Core;

namespace DiffusionFunctional.Experiments.Analysis;

/// <summary>Where an affinity analysis wrote its outputs, and its headline statistic.</summary>
/// <param name="SpearmanRho">Spearman correlation of affinity with |delta log-SNR| over group pairs (O1 predicts &lt; 0).</param>
public sealed record AffinityReportFiles(string CsvPath, string HeatmapPath, string ScatterPath, double SpearmanRho);

/// <summary>Writes an affinity matrix as the CSV `dfn cluster --objective affinity` reads, plus two PNG plots.</summary>
public static class AffinityReport
{
    public static AffinityReportFiles Write(string directory, AffinityMeasurement measurement, NoiseSchedule schedule)
    {
        Directory.CreateDirectory(directory);
        var g = measurement.Cosines.GetLength(0);
        Plots.PlotFonts.EnsureRegistered();
        var csv = Path.Combine(directory, "affinity.csv");
        AtomicFile.WriteAllText(csv, AffinityMatrices.Format(measurement.Cosines));

        var heatmap = Path.Combine(directory, "affinity-heatmap.png");
        var plot = new ScottPlot.Plot();
        var hm = plot.Add.Heatmap(measurement.Cosines);
        hm.Colormap = new ScottPlot.Colormaps.Viridis();
        plot.Add.ColorBar(hm);
        plot.Title($"Task affinity (gradient cosine), {g} timestep groups");
        plot.XLabel("group (least noisy -> most noisy)");
        plot.YLabel("group");
        AtomicFile.Write(heatmap, path => plot.SavePng(path, 640, 560));

        var versus = AffinityMatrices.VersusLogSnrGap(measurement.Cosines, schedule);
        var rho = versus.SpearmanRho;
        var scatter = Path.Combine(directory, "affinity-vs-logsnr.png");
        var sp = new ScottPlot.Plot();
        var points = sp.Add.ScatterPoints(versus.Gaps, versus.Affinities);
        points.MarkerSize = 4;
        sp.Title($"Affinity vs |delta log-SNR|: Spearman rho = {rho:F3}");
        sp.XLabel("|delta log-SNR| between groups");
        sp.YLabel("gradient cosine");
        AtomicFile.Write(scatter, path => sp.SavePng(path, 640, 480));
        return new AffinityReportFiles(csv, heatmap, scatter, rho);
    }
}
