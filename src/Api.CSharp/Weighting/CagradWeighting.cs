using DiffusionFunctional.Core.Weighting;

namespace DiffusionFunctional.Weighting;

/// <summary>
/// CAGrad (Liu et al. 2021) over clusters, c = 0.5 by default: the update maximises the worst cluster's
/// improvement within a ball of radius c |g0| around the average gradient g0, rescaled by 1 / (1 + c^2) as the
/// official code and LibMTL do by default. Exact weights from Core (<see cref="Cagrad.solve"/>).
/// </summary>
public sealed class CagradWeighting : GradientWeighting
{
    /// <summary>The conflict-aversion radius c in [0, 1).</summary>
    public double C { get; }
    /// <summary>How the update is rescaled after solving.</summary>
    public CagradRescale Rescale { get; }

    /// <summary>CAGrad for k clusters with conflict radius c in [0, 1).</summary>
    public CagradWeighting(int clusters, double c = 0.5, CagradRescale rescale = CagradRescale.OnePlusCSquared) : base(clusters)
    {
        if (double.IsNaN(c) || c < 0 || c >= 1) throw new BadInputException($"CAGrad's c must lie in [0, 1), got {c}");
        C = c;
        Rescale = rescale;
    }

    /// <inheritdoc/>
    public override string Name => "cagrad";

    /// <inheritdoc/>
    protected override double[] Solve(double[,] gram) => Cagrad.solve(gram, C, Rescale).Weights;
}
