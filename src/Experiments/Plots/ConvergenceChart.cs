namespace DiffusionFunctional.Experiments.Plots;

/// <summary>
/// What the demo's and the reproduce report's metric-against-steps figures share, so the two draw a method the same
/// way: one colour per method from one palette, a line of the mean over seeds with a band of one standard deviation
/// when there are several, training steps across, and the legend where falling curves leave room.
/// </summary>
public static class ConvergenceChart
{
    /// <summary>A new plot with the system font registered (<see cref="PlotFonts"/>).</summary>
    public static ScottPlot.Plot Create()
    {
        PlotFonts.EnsureRegistered();
        return new ScottPlot.Plot();
    }

    /// <summary>The colour of the method drawn <paramref name="index"/>-th (from 0), for marks beside its line.</summary>
    public static ScottPlot.Color Colour(int index) => new ScottPlot.Palettes.Category10().GetColor(index);

    /// <summary>Draws the <paramref name="index"/>-th method's mean (and its band when <paramref name="std"/> is given)
    /// at <paramref name="position"/> of each value (<see cref="LogAxis.Position(double)"/> for FD); returns the line's
    /// positions, for the axis ticks.</summary>
    public static double[] AddMethod(ScottPlot.Plot plot, int index, string label, double[] steps, double[] mean, double[]? std,
        Func<double, double> position)
    {
        var colour = Colour(index);
        if (std is not null)
        {
            var band = plot.Add.FillY(steps, mean.Zip(std, (m, s) => position(m - s)).ToArray(), mean.Zip(std, (m, s) => position(m + s)).ToArray());
            band.FillColor = colour.WithAlpha(0.2);
            band.LineWidth = 0;
        }
        var ys = mean.Select(position).ToArray();
        var line = plot.Add.Scatter(steps, ys);
        line.Color = colour;
        line.LineWidth = 2;
        line.MarkerSize = 5;
        line.LegendText = label;
        return ys;
    }

    /// <summary>Titles and labels the plot, steps across, with the legend in the upper right.</summary>
    public static void Label(ScottPlot.Plot plot, string title, string yLabel)
    {
        plot.Title(title);
        plot.XLabel("training step");
        plot.YLabel(yLabel);
        plot.ShowLegend(ScottPlot.Alignment.UpperRight); // metrics fall with training: the upper right stays free
    }
}
