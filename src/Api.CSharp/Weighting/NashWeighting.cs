using DiffusionFunctional.Core.Weighting;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DiffusionFunctional.Weighting;

/// <summary>
/// Nash-MTL (Navon et al. 2022) over clusters, ANT section 4.2; docs/weightings.md. Every <see cref="SolveEvery"/> steps (25 by
/// default) it runs k backward passes, forms the Gram matrix and solves alpha_i (G alpha / |G|_F)_i = 1 with
/// Core (<see cref="NashMtl.solve"/>), updating with sum_i alpha_i g_i / k. In between it reuses the last alpha
/// with a single backward of sum_i alpha_i L_i / k, so its amortised cost is about one backward pass.
/// Clipping is the trainer's (<c>TrainerOptions.GradientClipNorm</c>, 1.0 by default, for every method): by the
/// <see cref="IWeighting"/> contract a method never clips. The authors' released code clips only its Nash branch, at
/// 1.0; <c>dfn reproduce --recipe official</c> does the same.
/// </summary>
public sealed class NashWeighting : GradientWeighting
{
    private double[]? alpha;
    private long lastSolveStep = long.MinValue;

    /// <summary>Nash-MTL for k clusters, re-solving the bargaining weights every given number of steps.</summary>
    public NashWeighting(int clusters, int solveEvery = 25) : base(clusters)
    {
        if (solveEvery < 1) throw new BadInputException($"Nash-MTL's re-solve interval must be at least 1 step, got {solveEvery}");
        SolveEvery = solveEvery;
    }

    /// <summary>Steps between two solves of the bargaining weights.</summary>
    public int SolveEvery { get; }

    /// <summary>The bargaining weights alpha in use (null before the first solve).</summary>
    public double[]? Alpha => alpha is null ? null : (double[])alpha.Clone();

    /// <summary>Whether the last call to Backward re-solved alpha (k backward passes) or reused it (one).</summary>
    public bool LastStepSolved { get; private set; }

    /// <inheritdoc/>
    public override string Name => "nash";

    /// <inheritdoc/>
    protected override double[] Solve(double[,] gram)
    {
        var result = NashMtl.solve(gram);
        alpha = result.Alpha;
        return result.Weights;
    }

    /// <inheritdoc/>
    public override double Backward(WeightingBatch batch, IReadOnlyList<Parameter> modelParameters)
    {
        LastStepSolved = alpha is null || batch.Step - lastSolveStep >= SolveEvery || batch.Step < lastSolveStep;
        if (LastStepSolved)
        {
            lastSolveStep = batch.Step;
            return base.Backward(batch, modelParameters);
        }
        CheckClusters(batch);
        using var scope = NewDisposeScope();
        var weights = alpha!.Select(a => a / Clusters).ToArray();
        var losses = batch.ClusterLosses();
        var w = tensor(weights, dtype: float64).to(losses.dtype).to(losses.device);
        (losses * w).sum().backward();
        LastWeights = weights;
        return batch.PerSampleLoss.detach().mean().item<float>();
    }

    /// <inheritdoc/>
    public override void Save(BinaryWriter writer)
    {
        base.Save(writer);
        WeightingState.Write(writer, alpha);
        writer.Write(lastSolveStep);
    }

    /// <inheritdoc/>
    public override void Load(BinaryReader reader)
    {
        base.Load(reader);
        alpha = WeightingState.ReadDoubles(reader);
        lastSolveStep = reader.ReadInt64();
    }
}
