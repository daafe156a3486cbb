using System.Globalization;

namespace DiffusionFunctional.Experiments;

/// <summary>
/// The spread over seeds that the demo's and the reproduce report's tables and figures show: the sample standard
/// deviation (divisor n - 1, as the paired intervals use) over the finite values, 0 for a single seed, and its
/// "mean ± std" text.
/// </summary>
public static class SeedSpread
{
    /// <summary>Sample standard deviation of the finite values; 0 when fewer than two are finite.</summary>
    public static double Std(IEnumerable<double> values)
    {
        var finite = values.Where(double.IsFinite).ToArray();
        return finite.Length < 2 ? 0 : MathNet.Numerics.Statistics.Statistics.StandardDeviation(finite);
    }

    /// <summary>"mean ± std" in <paramref name="format"/> (just the mean for one seed; "-" for no finite mean).</summary>
    public static string MeanStd(double mean, double std, int seeds, string format = "F1") =>
        !double.IsFinite(mean) ? "-"
        : seeds > 1 ? $"{mean.ToString(format, CultureInfo.InvariantCulture)} ± {std.ToString(format, CultureInfo.InvariantCulture)}"
        : mean.ToString(format, CultureInfo.InvariantCulture);

    /// <summary>"mean ± std" of the finite values ("-" when there are none).</summary>
    public static string MeanStd(IReadOnlyCollection<double> values, string format)
    {
        var finite = values.Where(double.IsFinite).ToArray();
        return finite.Length == 0 ? "-" : MeanStd(finite.Average(), Std(finite), finite.Length, format);
    }
}
