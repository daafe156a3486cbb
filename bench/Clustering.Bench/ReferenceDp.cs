namespace DiffusionFunctional.Bench;

/// <summary>
/// The shape of the reference ANT implementation's interval clustering, kept only as a speed baseline:
/// every candidate interval's L1 cost is recomputed by a loop over its members inside the DP, O(k T^3).
/// (Its quirks — shifted boundaries, banker's-rounded centres — are not reproduced: same optimum as ours.)
/// </summary>
public static class ReferenceDp
{
    public static (int[] Boundaries, double Cost) Solve(double[] values, int k)
    {
        int n = values.Length;
        var d = new double[k + 1, n + 1];
        var arg = new int[k + 1, n + 1];
        for (int j = 0; j <= k; j++)
            for (int i = 0; i <= n; i++)
                d[j, i] = double.PositiveInfinity;
        d[0, 0] = 0;
        for (int j = 1; j <= k; j++)
            for (int i = j; i <= n; i++)
                for (int m = j - 1; m < i; m++)
                {
                    if (double.IsPositiveInfinity(d[j - 1, m])) continue;
                    double c = d[j - 1, m] + IntervalCost(values, m, i);
                    if (c < d[j, i]) { d[j, i] = c; arg[j, i] = m; }
                }
        var b = new int[k + 1];
        b[k] = n;
        for (int j = k; j >= 1; j--) b[j - 1] = arg[j, b[j]];
        return (b, d[k, n]);
    }

    static double IntervalCost(double[] v, int l, int r)
    {
        // Sorted (monotone) values: the median is the middle element.
        double med = v[l + (r - l) / 2];
        double s = 0;
        for (int t = l; t < r; t++) s += Math.Abs(v[t] - med);
        return s;
    }
}
