using DiffusionFunctional.Backend;
using static TorchSharp.torch;

namespace DiffusionFunctional.Weighting;

/// <summary>
/// Min-SNR-gamma (Hang et al. 2023), docs/weightings.md: the mean of w_t L_t with w_t = min(SNR_t, gamma) / SNR_t
/// for eps-prediction, or min(SNR_t, gamma) / (SNR_t + 1) for v-prediction; gamma = 5 by default (diffusers'
/// <c>--snr_gamma 5</c>). Per sample, no clusters needed, one backward.
/// </summary>
public sealed class MinSnrWeighting : SnrWeighting
{
    /// <summary>Min-SNR-gamma weighting; the flag selects the v-prediction form of the weight.</summary>
    public MinSnrWeighting(double gamma = 5.0, bool vPrediction = false)
    {
        if (!(gamma > 0) || double.IsInfinity(gamma)) throw new BadInputException($"Min-SNR's gamma must be positive, got {gamma}");
        Gamma = gamma;
        VPrediction = vPrediction;
    }

    /// <summary>The SNR cap gamma.</summary>
    public double Gamma { get; }
    /// <summary>True for the v-prediction form min(SNR, gamma) / (SNR + 1).</summary>
    public bool VPrediction { get; }

    /// <inheritdoc/>
    public override string Name => "min-snr";

    /// <summary>The per-sample weights for these SNRs (float64, same shape).</summary>
    public override Tensor Weights(Tensor signalToNoise)
    {
        using var scope = NewDisposeScope();
        var snr = signalToNoise.to_type(float64);
        var capped = snr.ClampMax(Gamma);
        return (VPrediction ? capped / snr.Plus(1) : capped / snr).MoveToOuterDisposeScope();
    }
}
