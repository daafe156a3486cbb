using DiffusionFunctional.Core.Weighting;

namespace DiffusionFunctional.Weighting;

/// <summary>
/// MGDA (Sener and Koltun 2018) over clusters: the update is the minimum-norm point of the convex hull of the
/// cluster gradients (no gradient normalisation, LibMTL's default). Exact weights from Core (<see cref="Mgda.solve"/>).
/// </summary>
public sealed class MgdaWeighting(int clusters) : GradientWeighting(clusters)
{
    /// <inheritdoc/>
    public override string Name => "mgda";

    /// <inheritdoc/>
    protected override double[] Solve(double[,] gram) => Mgda.solve(gram).Weights;
}
