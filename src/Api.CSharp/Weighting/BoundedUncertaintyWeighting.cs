using DiffusionFunctional.Backend;
using TorchSharp;
using static TorchSharp.torch;

namespace DiffusionFunctional.Weighting;

/// <summary>
/// <c>uw-bounded</c>: uncertainty weighting with the total weight held at vanilla's. Not in the paper; offered
/// because the paper's form (<see cref="UncertaintyWeighting"/>, <c>uw</c>) lets the weights exp(-s_i) grow like
/// 1 / L_i as the losses fall (50-130x in a first MNIST run), faster than Adam's second-moment estimate adapts,
/// which diverged at lr 1e-3.
/// <para>s is learned exactly as in <c>uw</c> (same objective, same AdamW group, so s_i still tends to
/// log(L_i / k)), but the model is trained on sum_i lambda_i L_i / k with lambda = k softmax(-s) held constant:
/// the same relative balance between clusters, weights that average 1 and each lie in (0, k).</para>
/// </summary>
public sealed class BoundedUncertaintyWeighting : LearnedLogVarianceWeighting
{
    /// <summary>UW with bounded log-variances for k clusters; the learning rate is the log-variances' AdamW rate.</summary>
    public BoundedUncertaintyWeighting(int clusters, double learningRate = DefaultLearningRate) : base(clusters, learningRate) { }

    /// <summary>The cluster weights lambda = k softmax(-s) the model is trained with now (mean 1).</summary>
    public double[] ClusterWeights()
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        return (-LogVariances.to_type(float64)).softmax(0).Times(Clusters).data<double>().ToArray();
    }

    /// <inheritdoc/>
    public override string Name => "uw-bounded";

    /// <inheritdoc/>
    protected override Tensor Objective(Tensor clusterLosses, Tensor s)
    {
        var lambda = (-s).softmax(0).Times(Clusters).detach();
        var modelLoss = (lambda * clusterLosses).sum().Over(Clusters);
        var varianceLoss = ((-s).exp() * clusterLosses.detach()).Over(Clusters).Plus(s).Times(0.5).sum();
        return modelLoss.Plus(varianceLoss);
    }

    /// <inheritdoc/>
    protected override double[] WeightsOf(double[] s)
    {
        // The model loss weighs cluster i by k softmax(-s)_i / k = softmax(-s)_i (stable: shifted by min s).
        var smallest = s.Min();
        var e = s.Select(x => Math.Exp(smallest - x)).ToArray();
        return e.Select(x => x / e.Sum()).ToArray();
    }
}
