using DiffusionFunctional.Core.Weighting;

namespace DiffusionFunctional.Weighting;

/// <summary>
/// IMTL-G (Liu et al. 2021) over clusters: weights summing to 1 such that the update sum_j w_j g_j has equal
/// projections on every unit cluster gradient. Weights from Core (<see cref="ImtlG.solve"/>).
/// </summary>
public sealed class ImtlWeighting(int clusters) : GradientWeighting(clusters)
{
    /// <inheritdoc/>
    public override string Name => "imtl";

    /// <inheritdoc/>
    protected override double[] Solve(double[,] gram) => ImtlG.solve(gram).Weights;
}
