namespace DiffusionFunctional.Experiments.Plots;

/// <summary>
/// A logarithmic vertical axis for FD curves. FD falls by two orders of magnitude over a run, and on a linear axis the
/// late differences, the ones a comparison is about, vanish. ScottPlot draws a logarithmic axis as log10 of the values
/// with ticks labelled back in the original units; this class does both halves.
/// </summary>
public static class LogAxis
{
    /// <summary>Where a value goes on the axis. A band's lower edge (mean - std) can reach zero or below with few
    /// seeds: it is drawn at 0.1 instead, below any real FD.</summary>
    public static double Position(double value) => Math.Log10(Math.Max(value, 0.1));

    /// <summary>Labels the left axis in the original units: at 1, 2 and 5 times powers of ten when at least two of
    /// those fall among the plotted positions, else (a curve within a narrow range, as in a smoke run) at evenly spaced
    /// round values, 1, 2 or 5 times a power of ten apart.</summary>
    public static void UseOn(ScottPlot.Plot plot, IReadOnlyCollection<double> positions)
    {
        var finite = positions.Where(double.IsFinite).ToList();
        if (finite.Count == 0) return;
        var (low, high) = (finite.Min(), finite.Max());
        var decades = Enumerable.Range((int)Math.Floor(low), (int)Math.Ceiling(high) - (int)Math.Floor(low) + 1)
            .SelectMany(k => new[] { 1.0, 2.0, 5.0 }.Select(m => m * Math.Pow(10, k)))
            .Where(v => Math.Log10(v) >= low - 1e-9 && Math.Log10(v) <= high + 1e-9).ToArray();
        // Decimals enough for the finest tick: the step between even ticks, or the smallest decade tick's magnitude.
        var (ticks, step) = decades.Length >= 2
            ? (decades, Math.Pow(10, Math.Floor(Math.Log10(decades[0]))))
            : EvenlySpaced(Math.Pow(10, low), Math.Pow(10, high));
        var decimals = Math.Max(0, -(int)Math.Floor(Math.Log10(step)));
        var labels = ticks.Select(v => v.ToString("N" + decimals, System.Globalization.CultureInfo.InvariantCulture)).ToArray();
        if (ticks.Length > 0) plot.Axes.Left.SetTicks(ticks.Select(Math.Log10).ToArray(), labels);
    }

    // Round values from low to high about a quarter of the range apart (one value when the range is empty).
    static (double[] Ticks, double Step) EvenlySpaced(double low, double high)
    {
        if (high <= low) return ([low], Math.Pow(10, Math.Floor(Math.Log10(low)) - 2));
        var rough = (high - low) / 4;
        var magnitude = Math.Pow(10, Math.Floor(Math.Log10(rough)));
        var step = new[] { 1.0, 2.0, 5.0, 10.0 }.Select(m => m * magnitude).First(s => s >= rough);
        var first = Math.Ceiling(low / step) * step;
        var count = (int)Math.Floor((high - first) / step + 1e-9) + 1;
        return (Enumerable.Range(0, Math.Max(count, 0)).Select(i => first + i * step).ToArray(), step);
    }
}
