using DiffusionFunctional.Backend;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DiffusionFunctional.Training;

/// <summary>
/// TorchSharp's AdamW with the model's parameter group updated in one pass over flat buffers (<see cref="FlatParameters"/>)
/// instead of TorchSharp's loop, which makes about nine native calls and two temporaries per parameter tensor (4% of a
/// quick-demo step; docs/benchmarks-history.md, "What was tried, kept or not"). The arithmetic is TorchSharp's, operation for operation
/// (decoupled weight decay, bias-corrected moments, no AMSGrad, minimising). <see cref="Optimizer"/> is TorchSharp's own
/// AdamW, kept for its options and per-parameter state, whose moments for the model's group are views of two flat
/// buffers: its <c>save_state_dict</c> and <c>load_state_dict</c> (which loads in place), and with them the checkpoint
/// format, are unchanged. Further groups (a weighting's few parameters) take the same arithmetic tensor by tensor.
/// </summary>
internal sealed class FlatAdamW : IDisposable
{
    private readonly FlatParameters flat;
    private readonly AdamW.ParamGroup[] groups;
    private readonly AdamW.State[] flatStates;
    private readonly (Parameter Parameter, AdamW.State State, int Group)[] others;
    private readonly Tensor expAvg;
    private readonly Tensor expAvgSq;

    /// <summary>TorchSharp's optimiser: options (learning rates) and the state that checkpoints save.</summary>
    public AdamW Optimizer { get; }

    /// <summary>AdamW over <paramref name="flat"/>'s parameters (the first group) and <paramref name="otherGroups"/>.</summary>
    public FlatAdamW(FlatParameters flat, double learningRate, double weightDecay, IEnumerable<AdamW.ParamGroup> otherGroups)
    {
        if (flat.Gradients is null) throw new ArgumentException("AdamW needs the parameters laid out with their gradients", nameof(flat));
        this.flat = flat;
        groups = [new AdamW.ParamGroup(flat.Parameters, lr: learningRate, weight_decay: weightDecay), .. otherGroups];
        Optimizer = optim.AdamW(groups, lr: learningRate, weight_decay: weightDecay);
        // state_dict() lists TorchSharp's live state objects, group by group, parameter by parameter.
        var states = Optimizer.state_dict().State.Cast<AdamW.State>().ToArray();
        var count = flat.Parameters.Count;
        flatStates = states[..count];
        others = [.. groups.Skip(1).SelectMany((g, i) => g.Parameters.Select(p => (Parameter: p, Group: i + 1)))
            .Select((pg, j) => (pg.Parameter, states[count + j], pg.Group))];
        expAvg = zeros_like(flat.Values);
        expAvgSq = zeros_like(flat.Values);
        for (var i = 0; i < count; i++)
        {
            flatStates[i].exp_avg.Dispose();
            flatStates[i].exp_avg_sq.Dispose();
            flatStates[i].exp_avg = flat.SliceOf(expAvg, i);
            flatStates[i].exp_avg_sq = flat.SliceOf(expAvgSq, i);
        }
    }

    /// <summary>One update of every group at its current learning rate.</summary>
    public void Step()
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var options = groups.Select(g => g.Options).ToArray();
        // Every parameter of the flat group has a gradient (a view of the buffer), so their counts move together.
        long step = 0;
        foreach (var state in flatStates) step = ++state.step;
        Update(flat.Values, flat.Gradients!, expAvg, expAvgSq, options[0], step);
        foreach (var (parameter, state, group) in others)
        {
            var grad = parameter.grad;
            if (grad is null) continue;
            Update(parameter, grad, state.exp_avg, state.exp_avg_sq, options[group], ++state.step);
        }
    }

    /// <summary>Zeroes every gradient in place (the model's with one call), so the buffer's views stay attached.</summary>
    public void ZeroGrad()
    {
        using var scope = NewDisposeScope();
        flat.Gradients!.zero_();
        foreach (var (parameter, _, _) in others) parameter.grad?.zero_();
    }

    // TorchSharp's AdamW.step for one tensor (or one flat buffer), amsgrad and maximize off; the same operations in the
    // same order, so a flat update computes what the per-tensor loop computed. Every number is an explicit Scalar held
    // to the end of the update: an implicit one is referenced only by its raw handle during the native call, so its
    // finaliser may free it under a running add_; a freed Scalar stopped long runs (docs/platform.md, "a freed Scalar").
    private static void Update(Tensor param, Tensor grad, Tensor expAvg, Tensor expAvgSq, AdamW.Options options, long step)
    {
        var learningRate = options.LearningRate!.Value;
        var (beta1, beta2) = (options.beta1!.Value, options.beta2!.Value);
        using var decay = (1 - learningRate * options.weight_decay!.Value).ToScalar();
        using var b1 = beta1.ToScalar();
        using var oneMinusB1 = (1 - beta1).ToScalar();
        using var b2 = beta2.ToScalar();
        using var oneMinusB2 = (1 - beta2).ToScalar();
        using var correction2 = Math.Sqrt(1 - Math.Pow(beta2, step)).ToScalar();
        using var eps = options.eps!.Value.ToScalar();
        using var stepSize = (-learningRate / (1 - Math.Pow(beta1, step))).ToScalar();
        param.mul_(decay);
        expAvg.mul_(b1).add_(grad, alpha: oneMinusB1);
        expAvgSq.mul_(b2).addcmul_(grad, grad, value: oneMinusB2);
        using var denominator = expAvgSq.sqrt();
        denominator.div_(correction2).add_(eps, Scalars.One);
        param.addcdiv_(expAvg, denominator, value: stepSize);
    }

    /// <summary>Frees TorchSharp's optimiser (with the moments' views) and the moment buffers.</summary>
    public void Dispose()
    {
        Optimizer.Dispose();
        expAvg.Dispose();
        expAvgSq.Dispose();
    }
}
