using DiffusionFunctional.Backend;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DiffusionFunctional.Weighting;

/// <summary>
/// A weighting whose cluster weights move from another method's to uniform (vanilla's) over the first
/// <see cref="Steps"/> steps: at step t the update is (1 - λ) times the inner method's plus λ times the plain mean
/// loss's, with λ = t / <see cref="Steps"/> rising linearly to 1 and staying there.
/// <para>
/// Why: on our data ANT's methods lead early and vanilla ends ahead (docs/fidelity.md); this keeps the early lead and
/// hands the late phase to uniform weights. The move is exact for every method whose update is a weighted sum of the
/// cluster losses' gradients (UW, Nash between its solves, the loss weightings): one backward pass, through
/// <see cref="GradientMix"/>, which leaves every loss value as it is (so the inner method's state, such as UW's
/// log-variances, evolves as it would alone) and mixes the gradient reaching each sample's loss. For methods that
/// combine per-cluster gradients (PCGrad, Nash's solve steps, IMTL, CAGrad, MGDA) each cluster gradient is mixed
/// with the uniform one before the method combines them.
/// </para>
/// </summary>
public sealed class AnnealedWeighting : IWeighting, IDeviceResidentWeighting, IReportsClusterWeights
{
    private readonly IWeighting inner;
    private double lastLambda;

    /// <summary>Moves <paramref name="inner"/>'s cluster weights to uniform over <paramref name="steps"/> steps; owns it.</summary>
    /// <exception cref="BadInputException">Fewer than 1 step, or a method with its own timestep sampler (importance).</exception>
    public AnnealedWeighting(IWeighting inner, long steps)
    {
        if (steps < 1) throw new BadInputException($"the anneal to uniform weights needs at least 1 step, got {steps}");
        if (inner is IWeightingWithTimesteps)
            throw new BadInputException($"weighting '{inner.Name}' draws its own timesteps and cannot be annealed to uniform weights");
        this.inner = inner;
        Steps = steps;
    }

    /// <summary>Steps over which the weights move to uniform.</summary>
    public long Steps { get; }

    /// <summary>The method whose weights are annealed.</summary>
    public IWeighting Inner => inner;

    /// <summary>The mixing factor at 0-based step <paramref name="step"/>: 0 (the inner method) to 1 (uniform).</summary>
    public double Lambda(long step) => Math.Clamp((double)step / Steps, 0, 1);

    /// <inheritdoc/>
    public string Name => $"{inner.Name}~anneal:{Steps}";

    /// <inheritdoc/>
    public IReadOnlyList<ParameterGroupSpec> ExtraParameterGroups => inner.ExtraParameterGroups;

    /// <inheritdoc/>
    public IReadOnlyList<double>? LastClusterWeights =>
        inner is IReportsClusterWeights { LastClusterWeights: { } w } ? w.Select(x => (1 - lastLambda) * x + lastLambda / w.Count).ToArray() : null;

    /// <inheritdoc/>
    public double Backward(WeightingBatch batch, IReadOnlyList<Parameter> modelParameters)
    {
        lastLambda = Lambda(batch.Step);
        if (lastLambda == 0) return inner.Backward(batch, modelParameters);
        using var scope = NewDisposeScope();
        var mixed = GradientMix.Apply(batch.PerSampleLoss, lastLambda);
        return inner.Backward(batch with { PerSampleLoss = mixed }, modelParameters);
    }

    /// <inheritdoc/>
    public void MoveTo(Device device) => (inner as IDeviceResidentWeighting)?.MoveTo(device);

    /// <inheritdoc/>
    public void Save(BinaryWriter writer) => inner.Save(writer);

    /// <inheritdoc/>
    public void Load(BinaryReader reader) => inner.Load(reader);

    /// <inheritdoc/>
    public void Dispose() => inner.Dispose();
}

/// <summary>
/// An identity on a vector of per-sample losses whose backward pass mixes the incoming gradient g with the plain mean's:
/// (1 - λ) g + λ / n for each of the n samples. Written as a custom autograd function because TorchSharp 0.107 has no
/// tensor hooks.
/// </summary>
public sealed class GradientMix : autograd.SingleTensorFunction<GradientMix>
{
    /// <inheritdoc/>
    public override string Name => nameof(GradientMix);

    /// <summary><paramref name="losses"/> unchanged, with its gradient mixed by <paramref name="lambda"/> in [0, 1].</summary>
    public static Tensor Apply(Tensor losses, double lambda) => apply(losses, lambda);

    /// <inheritdoc/>
    public override Tensor forward(autograd.AutogradContext ctx, params object[] vars)
    {
        var losses = (Tensor)vars[0];
        ctx.save_data("lambda", (double)vars[1]);
        ctx.save_data("count", losses.numel());
        return losses.clone();
    }

    /// <inheritdoc/>
    public override List<Tensor> backward(autograd.AutogradContext ctx, Tensor grad_output)
    {
        var lambda = (double)ctx.get_data("lambda");
        var count = (long)ctx.get_data("count");
        return [grad_output.Times(1 - lambda).Plus(lambda / count), null!];
    }
}
