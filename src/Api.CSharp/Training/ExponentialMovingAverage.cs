using DiffusionFunctional.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace DiffusionFunctional.Training;

/// <summary>
/// An exponential moving average of a UNet's weights, ema = decay * ema + (1 - decay) * w after each step,
/// kept in a second UNet of the same shape (always in eval mode), which is what sampling uses by default.
/// </summary>
public sealed class ExponentialMovingAverage : IDisposable
{
    private readonly UNet source;
    private readonly (Tensor Ema, Tensor Live)[] pairs;

    /// <summary>The averaged network.</summary>
    public UNet Model { get; }
    /// <summary>The decay per update, in [0, 1).</summary>
    public double Decay { get; }

    public ExponentialMovingAverage(UNet source, double decay)
    {
        if (decay < 0 || decay >= 1) throw new BadInputException($"EMA decay must lie in [0, 1), got {decay}");
        this.source = source;
        Decay = decay;
        Model = new UNet(source.Config);
        Model.to(source.parameters().First().device);
        Model.eval();
        foreach (var p in Model.parameters()) p.requires_grad = false;
        var live = source.state_dict();
        var ema = Model.state_dict();
        pairs = live.Keys.Select(k => (ema[k], live[k])).ToArray();
        CopyFromSource();
    }

    /// <summary>Sets the average to the current weights.</summary>
    public void CopyFromSource()
    {
        using var noGrad = no_grad();
        foreach (var (e, l) in pairs) e.copy_(l);
    }

    /// <summary>One update: ema = decay * ema + (1 - decay) * live.</summary>
    public void Update()
    {
        using var noGrad = no_grad();
        foreach (var (e, l) in pairs) e.mul_(Decay).add_(l, alpha: 1 - Decay);
    }

    public void Dispose() => Model.Dispose();
}
