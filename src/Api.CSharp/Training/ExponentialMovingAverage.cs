using DiffusionFunctional.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace DiffusionFunctional.Training;

/// <summary>
/// An exponential moving average of a denoiser's weights, ema = decay * ema + (1 - decay) * w after each step,
/// kept in a second network of the same shape (always in eval mode), which is what sampling uses by default.
/// </summary>
public sealed class ExponentialMovingAverage : IDisposable
{
    private readonly FlatParameters live;
    private readonly FlatParameters average;
    private readonly bool ownsLive;
    // State entries that are not parameters (buffers), averaged one by one; the parameters go buffer-wide.
    private readonly (Tensor Ema, Tensor Live)[] buffers;

    /// <summary>The averaged network.</summary>
    public Denoiser Model { get; }
    /// <summary>The decay per update, in [0, 1).</summary>
    public double Decay { get; }

    /// <summary>
    /// The weight the initial (random) weights still have in the average: the product of every decay applied so far
    /// (1 before any update). Sampling an average with a large share draws noise; commands warn above a few percent.
    /// </summary>
    public double InitialWeightShare { get; set; } = 1.0;

    /// <summary>Starts an average equal to <paramref name="source"/>'s current weights (which it lays out in one buffer,
    /// see <c>FlatParameters</c>: same values, same module).</summary>
    public ExponentialMovingAverage(Denoiser source, double decay)
        : this(source, new FlatParameters(source.parameters(), withGradients: false), decay, ownsLive: true)
    {
    }

    /// <summary>Averages <paramref name="source"/>, whose parameters <paramref name="live"/> already lays out.</summary>
    internal ExponentialMovingAverage(Denoiser source, FlatParameters live, double decay) : this(source, live, decay, ownsLive: false)
    {
    }

    private ExponentialMovingAverage(Denoiser source, FlatParameters live, double decay, bool ownsLive)
    {
        if (decay < 0 || decay >= 1) throw new BadInputException($"EMA decay must lie in [0, 1), got {decay}");
        this.live = live;
        this.ownsLive = ownsLive;
        Decay = decay;
        Model = source.Config.Build();
        Model.to(source.parameters().First().device);
        Model.eval();
        foreach (var p in Model.parameters()) p.requires_grad = false;
        average = new FlatParameters(Model.parameters(), withGradients: false);
        if (average.Values.numel() != live.Values.numel())
            throw new ArgumentException("the averaged network's layout differs from the source's", nameof(live));
        var parameterNames = source.named_parameters().Select(p => p.name).ToHashSet();
        var liveState = source.state_dict();
        var emaState = Model.state_dict();
        buffers = [.. liveState.Keys.Where(k => !parameterNames.Contains(k)).Select(k => (emaState[k], liveState[k]))];
        CopyFromSource();
    }

    /// <summary>Sets the average to the current weights.</summary>
    public void CopyFromSource()
    {
        using var noGrad = no_grad();
        average.Values.copy_(live.Values);
        foreach (var (e, l) in buffers) e.copy_(l);
    }

    /// <summary>One update: ema = decay * ema + (1 - decay) * live.</summary>
    public void Update() => Update(Decay);

    /// <summary>One update with the given decay (see <see cref="WarmupDecay"/>).</summary>
    public void Update(double decay)
    {
        using var noGrad = no_grad();
        // Explicit Scalars held to the end: see FlatAdamW.Update on implicit ones.
        using var keep = decay.ToScalar();
        using var take = (1 - decay).ToScalar();
        average.Values.mul_(keep).add_(live.Values, alpha: take);
        foreach (var (e, l) in buffers) e.mul_(keep).add_(l, alpha: take);
        InitialWeightShare *= decay;
    }

    /// <summary>Throws when the averaged network's weights no longer live in the average's buffer (see FlatParameters).</summary>
    internal void EnsureAttached() => average.EnsureAttached();

    /// <summary>
    /// The initial weights' share after <paramref name="steps"/> updates of a run with this decay, with or without
    /// warm-up (for checkpoints that did not record it).
    /// </summary>
    public static double InitialWeightShareAfter(double decay, bool warmup, long steps)
    {
        var share = 1.0;
        for (long s = 0; s < steps && share > 0; s++) share *= warmup ? WarmupDecay(decay, s) : decay;
        return share;
    }

    /// <summary>
    /// The decay after <paramref name="steps"/> updates with warm-up: min(decay, (1 + steps) / (10 + steps)). Without
    /// it a short run's average is still mostly the random initial weights (0.995^200 = 37%), and its samples are noise.
    /// </summary>
    public static double WarmupDecay(double decay, long steps) => Math.Min(decay, (1.0 + steps) / (10.0 + steps));

    /// <summary>Disposes the averaged network.</summary>
    public void Dispose()
    {
        average.Dispose();
        if (ownsLive) live.Dispose();
        Model.Dispose();
    }
}
