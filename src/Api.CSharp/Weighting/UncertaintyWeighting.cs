using DiffusionFunctional.Backend;
using TorchSharp;
using static TorchSharp.torch;

namespace DiffusionFunctional.Weighting;

/// <summary>
/// Uncertainty weighting (Kendall et al. 2018) over clusters, exactly as ANT section 4.2; docs/weightings.md (name <c>uw</c>):
/// learnable log-variances s in R^k (init 0) and loss = sum_i 0.5 (exp(-s_i) L_i / k + s_i), one backward.
/// s is an extra parameter group (AdamW, lr 0.025, no weight decay, as the reference). On fixed losses s_i
/// tends to log(L_i / k), so the weight on L_i grows like 1 / L_i as training lowers the losses; see
/// <see cref="BoundedUncertaintyWeighting"/> for the variant that keeps the total scale fixed.
/// The value returned for logging is the plain mean diffusion loss (comparable across methods), not the UW objective.
/// </summary>
public sealed class UncertaintyWeighting : LearnedLogVarianceWeighting
{
    /// <summary>Uncertainty weighting (Kendall et al.) for k clusters; the learning rate is the log-variances' AdamW rate.</summary>
    public UncertaintyWeighting(int clusters, double learningRate = DefaultLearningRate) : base(clusters, learningRate) { }

    /// <inheritdoc/>
    public override string Name => "uw";

    /// <inheritdoc/>
    protected override Tensor Objective(Tensor clusterLosses, Tensor s) =>
        ((-s).exp() * clusterLosses).Over(Clusters).Plus(s).Times(0.5).sum();

    /// <inheritdoc/>
    protected override double[] WeightsOf(double[] s) => s.Select(x => 0.5 * Math.Exp(-x) / Clusters).ToArray();
}
