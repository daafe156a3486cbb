using DiffusionFunctional.Analysis;
using DiffusionFunctional.Core;

namespace DiffusionFunctional.Experiments.Analysis;

/// <summary>Where an affinity analysis wrote its outputs, and its headline statistic.</summary>
/// <param name="CsvPath">The matrix as CSV (what <c>dfn cluster --cluster-objective affinity</c> reads).</param>
/// <param name="HeatmapPath">The heatmap PNG.</param>
/// <param name="ScatterPath">The affinity against |delta log-SNR| scatter PNG.</param>
/// <param name="SpearmanRho">Spearman correlation of affinity with |delta log-SNR| over group pairs (O1 predicts &lt; 0).</param>
public sealed record AffinityReportFiles(string CsvPath, string HeatmapPath, string ScatterPath, double SpearmanRho);

/// <summary>Writes an affinity matrix as the CSV `dfn cluster --cluster-objective affinity` reads, plus two PNG plots.</summary>
public static class AffinityReport
{
    /// <summary>Writes affinity.csv, the heatmap and the affinity-vs-gap scatter into the folder; returns their paths and Spearman's rho.</summary>
    public static AffinityReportFiles Write(string directory, AffinityMeasurement measurement, NoiseSchedule schedule)
    {
        Directory.CreateDirectory(directory);
        var g = measurement.Cosines.GetLength(0);
        Plots.PlotFonts.EnsureRegistered();
        var csv = Path.Combine(directory, "affinity.csv");
        AtomicFile.WriteAllText(csv, AffinityMatrices.Format(measurement.Cosines));

        var heatmap = Path.Combine(directory, "affinity-heatmap.png");
        var plot = Plots.AffinityHeatmap.Create(measurement.Cosines, $"Task affinity (gradient cosine), {g} timestep groups");
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
