using DiffusionFunctional.Core.Weighting;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DiffusionFunctional.Weighting;

/// <summary>
/// FAMO (Liu et al. 2023) over clusters, name <c>famo</c>: one backward of sum_i w_i L_i with w from the task
/// logits (<see cref="Famo.lossWeights"/>), O(1) extra memory in k.
/// <para>Where FAMO sees the post-update losses: the paper runs an extra forward on the same batch after each
/// model step to measure how each log L_i fell. Here, as in LibMTL, the next step's cluster losses serve as the
/// post-update losses of the previous step (a different batch, so a noisier but free estimate): at the start of
/// each <see cref="Backward"/> the logits take one Adam step (lr 0.025, L2 weight decay 1e-3, the reference's
/// settings) along <see cref="Famo.logitGradient"/>(previous losses, current losses), and only then are this
/// step's weights computed, so the order of updates matches the paper's. The logits and their Adam moments are
/// the method's own state (saved with it), not an extra parameter group: the reference steps them with a gradient
/// it computes itself rather than by backpropagation. The minimum losses m_i are 0 (MSE is non-negative).</para>
/// </summary>
public sealed class FamoWeighting : IWeighting
{
    private const double Beta1 = 0.9, Beta2 = 0.999, AdamEpsilon = 1e-8;

    private double[] logits, firstMoment, secondMoment;
    private long adamSteps;
    private double[]? previousLosses;
    private readonly double[] minLosses;

    /// <summary>FAMO for k clusters; the logits take Adam steps with this learning rate and weight decay.</summary>
    public FamoWeighting(int clusters, double learningRate = 0.025, double weightDecay = 1e-3)
    {
        if (clusters < 1) throw new BadInputException($"the number of clusters must be at least 1, got {clusters}");
        if (!(learningRate > 0)) throw new BadInputException($"FAMO's learning rate must be positive, got {learningRate}");
        Clusters = clusters;
        LearningRate = learningRate;
        WeightDecay = weightDecay;
        logits = new double[clusters];
        firstMoment = new double[clusters];
        secondMoment = new double[clusters];
        minLosses = new double[clusters];
    }

    /// <summary>k.</summary>
    public int Clusters { get; }
    /// <summary>The logits' Adam learning rate.</summary>
    public double LearningRate { get; }
    /// <summary>The logits' L2 weight decay (added to their gradient, as torch's Adam does).</summary>
    public double WeightDecay { get; }
    /// <summary>The task logits (z = softmax of them).</summary>
    public double[] Logits => (double[])logits.Clone();
    /// <summary>The loss weights of the last step (they sum to 1); null before the first step.</summary>
    public double[]? LastWeights { get; private set; }

    /// <inheritdoc/>
    public string Name => "famo";

    /// <inheritdoc/>
    public IReadOnlyList<ParameterGroupSpec> ExtraParameterGroups { get; } = [];

    /// <inheritdoc/>
    public double Backward(WeightingBatch batch, IReadOnlyList<Parameter> modelParameters)
    {
        if (batch.ClusterCount != Clusters)
            throw new BadInputException($"weighting 'famo' was built for k = {Clusters} clusters but the batch has k = {batch.ClusterCount}");
        using var scope = NewDisposeScope();
        var losses = batch.ClusterLosses();
        var current = losses.detach().to_type(float64).cpu().data<double>().ToArray();
        if (previousLosses is not null) StepLogits(Famo.logitGradient(logits, previousLosses, current, minLosses));
        var weights = Famo.lossWeights(logits, current, minLosses);
        LastWeights = weights;
        var w = tensor(weights, dtype: float64).to(losses.dtype).to(losses.device);
        (w * losses).sum().backward();
        previousLosses = current;
        return batch.PerSampleLoss.detach().mean().item<float>();
    }

    // Adam on k scalars (torch.optim.Adam's update with L2 weight decay), written out because the gradient is computed, not backpropagated.
    private void StepLogits(double[] gradient)
    {
        adamSteps++;
        var correction1 = 1 - Math.Pow(Beta1, adamSteps);
        var correction2 = 1 - Math.Pow(Beta2, adamSteps);
        for (var i = 0; i < Clusters; i++)
        {
            var g = gradient[i] + WeightDecay * logits[i];
            firstMoment[i] = Beta1 * firstMoment[i] + (1 - Beta1) * g;
            secondMoment[i] = Beta2 * secondMoment[i] + (1 - Beta2) * g * g;
            logits[i] -= LearningRate * (firstMoment[i] / correction1) / (Math.Sqrt(secondMoment[i] / correction2) + AdamEpsilon);
        }
    }

    /// <inheritdoc/>
    public void Save(BinaryWriter writer)
    {
        WeightingState.WriteHeader(writer, Name, Clusters);
        WeightingState.Write(writer, logits);
        WeightingState.Write(writer, firstMoment);
        WeightingState.Write(writer, secondMoment);
        writer.Write(adamSteps);
        WeightingState.Write(writer, previousLosses);
        WeightingState.Write(writer, LastWeights);
    }

    /// <inheritdoc/>
    public void Load(BinaryReader reader)
    {
        WeightingState.ReadHeader(reader, Name, Clusters);
        logits = ReadK(reader);
        firstMoment = ReadK(reader);
        secondMoment = ReadK(reader);
        adamSteps = reader.ReadInt64();
        previousLosses = WeightingState.ReadDoubles(reader);
        LastWeights = WeightingState.ReadDoubles(reader);
    }

    private double[] ReadK(BinaryReader reader)
    {
        var values = WeightingState.ReadDoubles(reader);
        if (values is null || values.Length != Clusters) throw new BadInputException($"checkpoint FAMO state does not have {Clusters} values");
        return values;
    }

    /// <inheritdoc/>
    public void Dispose() { }
}
