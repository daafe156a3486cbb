using TorchSharp;
using static TorchSharp.torch;

namespace DiffusionFunctional.Analysis;

/// <summary>
/// The hybrid sampler's network for the negative transfer gap (ANT section 3.3, observation O2; docs/analysis.md): the specialist denoises the
/// timesteps inside its interval [Start, End), the shared model all others. Routing is per sample, so it also works
/// for batches that mix timesteps.
/// </summary>
public sealed class HybridDenoiser : nn.Module<Tensor, Tensor, Tensor>
{
    readonly nn.Module<Tensor, Tensor, Tensor> shared;
    readonly nn.Module<Tensor, Tensor, Tensor> specialist;

    /// <summary>First timestep the specialist handles.</summary>
    public int Start { get; }
    /// <summary>One past the last timestep the specialist handles.</summary>
    public int End { get; }

    /// <summary>Combines a shared model and a specialist (neither owned, neither disposed here) for the interval [start, end).</summary>
    public HybridDenoiser(nn.Module<Tensor, Tensor, Tensor> shared, nn.Module<Tensor, Tensor, Tensor> specialist, int start, int end)
        : base(nameof(HybridDenoiser))
    {
        if (start < 0 || end <= start) throw new BadInputException($"the specialist's interval [{start}, {end}) is empty");
        this.shared = shared;
        this.specialist = specialist;
        Start = start;
        End = end;
        // Not registered as submodules: the hybrid owns neither network and must not dispose them.
    }

    /// <inheritdoc/>
    public override Tensor forward(Tensor x, Tensor timesteps)
    {
        using var scope = NewDisposeScope();
        using var start = Start.ToScalar();
        using var end = End.ToScalar();
        var inside = timesteps.ge(start).logical_and(timesteps.lt(end));
        var insideCount = inside.sum().item<long>();
        Tensor result;
        if (insideCount == timesteps.shape[0]) result = specialist.forward(x, timesteps);
        else if (insideCount == 0) result = shared.forward(x, timesteps);
        else
        {
            var inIdx = inside.nonzero().flatten();
            var outIdx = inside.logical_not().nonzero().flatten();
            var fromSpecialist = specialist.forward(x.index_select(0, inIdx), timesteps.index_select(0, inIdx));
            var fromShared = shared.forward(x.index_select(0, outIdx), timesteps.index_select(0, outIdx));
            result = zeros_like(x).index_copy(0, inIdx, fromSpecialist).index_copy(0, outIdx, fromShared);
        }
        return result.MoveToOuterDisposeScope();
    }
}
