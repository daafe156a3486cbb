namespace DiffusionFunctional.Weighting;

/// <summary>
/// A weighting that says how much each cluster's mean loss weighed in the step it just took (the trainer logs it in
/// metrics.jsonl as <c>cluster_weights</c>): for an update sum_i w_i grad L_i, the w_i. Uniform weights are 1/k each.
/// </summary>
public interface IReportsClusterWeights
{
    /// <summary>The weights of the last step, one per cluster; null before the first.</summary>
    IReadOnlyList<double>? LastClusterWeights { get; }
}
