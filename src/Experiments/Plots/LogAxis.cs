namespace DiffusionFunctional.Experiments.Plots;

/// <summary>
/// A logarithmic vertical axis for FD curves and cluster weights. FD falls by two orders of magnitude over a run, and
/// on a linear axis the late differences, the ones a comparison is about, vanish; uncertainty weights span four orders
/// (0.1 to thousands) and on a linear axis hide Nash-MTL's, which stay within 0.1-20. ScottPlot draws a logarithmic
/// axis as log10 of the values with ticks labelled back in the original units; this class does both halves.
/// </summary>
public static class LogAxis
{
    /// <summary>Where a value goes on the axis. A band's lower edge (mean - std) can reach zero or below with few
    /// seeds: it is drawn at <paramref name="floor"/> instead.</summary>
    public static double Position(double value, double floor) => Math.Log10(Math.Max(value, floor));

    /// <summary>Where an FD value goes on the axis: <see cref="Position(double, double)"/> with the floor at 0.1, below
    /// any real FD.</summary>
    public static double Position(double value) => Position(value, 0.1);

    /// <summary>Labels the left axis in the original units: at 1, 2 and 5 times powers of ten (powers of ten alone
    /// over more than three decades, where the others would crowd the axis) when at least two of those fall among the
    /// plotted positions, else (a curve within a narrow range, as in a smoke run) at evenly spaced round values, 1, 2
    /// or 5 times a power of ten apart.</summary>
    public static void UseOn(ScottPlot.Plot plot, IReadOnlyCollection<double> positions)
    {
        var finite = positions.Where(double.IsFinite).ToList();
        if (finite.Count == 0) return;
        var (low, high) = (finite.Min(), finite.Max());
        var multiples = high - low > 3 ? new[] { 1.0 } : [1.0, 2.0, 5.0];
        var decades = Enumerable.Range((int)Math.Floor(low), (int)Math.Ceiling(high) - (int)Math.Floor(low) + 1)
            .SelectMany(k => multiples.Select(m => m * Math.Pow(10, k)))
            .Where(v => Math.Log10(v) >= low - 1e-9 && Math.Log10(v) <= high + 1e-9).ToArray();
        // Decade ticks carry the decimals their own magnitude needs (0.1, 1, 1,000); even ticks those of their step.
        var (ticks, labels) = decades.Length >= 2 ? (decades, decades.Select(v => Format(v, v)).ToArray()) : EvenlySpaced(low, high);
        if (ticks.Length > 0) plot.Axes.Left.SetTicks(ticks.Select(Math.Log10).ToArray(), labels);
    }

    static string Format(double value, double resolution) =>
        value.ToString("N" + Math.Max(0, -(int)Math.Floor(Math.Log10(resolution))), System.Globalization.CultureInfo.InvariantCulture);

    // Round values between the positions lowPosition and highPosition (log10), about a quarter of the range apart (one
    // value when the range is empty), labelled with the decimals of their step. The ends come back from log10 and 10^x
    // a rounding off (31 as 31.000000000000004): a relative slack keeps a round end a tick.
    static (double[] Ticks, string[] Labels) EvenlySpaced(double lowPosition, double highPosition)
    {
        var (low, high) = (Math.Pow(10, lowPosition), Math.Pow(10, highPosition));
        if (high <= low) return ([low], [Format(low, Math.Pow(10, Math.Floor(Math.Log10(low)) - 2))]);
        const double slack = 1e-9;
        var rough = (high - low) / 4 * (1 - slack);
        var magnitude = Math.Pow(10, Math.Floor(Math.Log10(rough)));
        var step = new[] { 1.0, 2.0, 5.0, 10.0 }.Select(m => m * magnitude).First(s => s >= rough);
        var first = Math.Ceiling(low / step - slack) * step;
        var count = (int)Math.Floor((high - first) / step + 1e-9) + 1;
        var ticks = Enumerable.Range(0, Math.Max(count, 0)).Select(i => first + i * step).ToArray();
        return (ticks, ticks.Select(v => Format(v, step)).ToArray());
    }
}
