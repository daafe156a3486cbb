namespace DiffusionFunctional.Experiments.Plots;

/// <summary>
/// The task-affinity heatmap: group i's row and column at coordinate i, group 0 (least noisy) at the bottom left, so
/// the diagonal runs from the bottom left to the top right and both axes increase away from the origin, with no
/// empty rows or columns around the matrix.
/// </summary>
public static class AffinityHeatmap
{
    /// <summary>Draws <paramref name="affinity"/> (G x G) with a colour bar.</summary>
    public static ScottPlot.Plot Create(double[,] affinity, string title)
    {
        PlotFonts.EnsureRegistered();
        var g = affinity.GetLength(0);
        var plot = new ScottPlot.Plot();
        var heatmap = plot.Add.Heatmap(affinity);
        heatmap.Colormap = new ScottPlot.Colormaps.Viridis();
        // Skia draws row 0 at the top, as an image; flipped, row 0 sits at y = 0 like the tick labels say.
        heatmap.FlipVertically = true;
        // The extent spans the cell centres: group i's cell is centred on i and covers [i - 0.5, i + 0.5].
        heatmap.Extent = new ScottPlot.CoordinateRect(0, g - 1, 0, g - 1);
        plot.Add.ColorBar(heatmap);
        plot.Axes.SetLimits(-0.5, g - 0.5, -0.5, g - 0.5);
        var ticks = Enumerable.Range(0, g).Where(i => g <= 20 || i % 5 == 0).Select(i => (double)i).ToArray();
        var labels = ticks.Select(t => ((int)t).ToString(System.Globalization.CultureInfo.InvariantCulture)).ToArray();
        plot.Axes.Bottom.SetTicks(ticks, labels);
        plot.Axes.Left.SetTicks(ticks, labels);
        plot.Title(title);
        plot.XLabel("group (0 = least noisy)");
        plot.YLabel("group (0 = least noisy)");
        return plot;
    }
}
