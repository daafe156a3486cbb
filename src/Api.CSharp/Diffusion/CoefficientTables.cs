using static TorchSharp.torch;

namespace DiffusionFunctional.Diffusion;

/// <summary>
/// sqrt(abar_t) and sqrt(1 - abar_t) for t = 0..T-1 as float32 tensors, computed once in double and rounded to float
/// (the values the per-step lookups used to build from host arrays), copied once to each device asked for. A training
/// step then looks its batch's rows up with index_select on the device instead of reading the timesteps back to the
/// host and building new tensors (docs/benchmarks-history.md, "What was tried, kept or not").
/// </summary>
internal sealed class CoefficientTables
{
    private readonly float[] sqrtAlphaBar;
    private readonly float[] sqrtOneMinusAlphaBar;
    private readonly Dictionary<string, (Tensor, Tensor)> byDevice = [];
    private readonly Lock gate = new();

    public CoefficientTables(double[] alphaBar)
    {
        sqrtAlphaBar = [.. alphaBar.Select(a => (float)Math.Sqrt(a))];
        sqrtOneMinusAlphaBar = [.. alphaBar.Select(a => (float)Math.Sqrt(1 - a))];
    }

    /// <summary>Both tables on <paramref name="device"/> (built on first use; they live as long as the diffusion).</summary>
    public (Tensor SqrtAlphaBar, Tensor SqrtOneMinusAlphaBar) On(Device device)
    {
        var key = device.ToString();
        lock (gate)
        {
            if (byDevice.TryGetValue(key, out var found)) return found;
            // Detached: a table first built inside a step's dispose scope must outlive it.
            var built = (tensor(sqrtAlphaBar, dtype: float32, device: device).DetachFromDisposeScope(),
                         tensor(sqrtOneMinusAlphaBar, dtype: float32, device: device).DetachFromDisposeScope());
            byDevice[key] = built;
            return built;
        }
    }
}
