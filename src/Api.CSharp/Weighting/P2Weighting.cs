using DiffusionFunctional.Backend;
using static TorchSharp.torch;

namespace DiffusionFunctional.Weighting;

/// <summary>
/// P2 weighting (Choi et al. 2022), docs/weightings.md: the mean of w_t L_t with w_t = 1 / (k + SNR_t)^gamma,
/// k = 1 and gamma = 1 by default (the paper also uses gamma = 0.5). Per sample, one backward.
/// </summary>
public sealed class P2Weighting : SnrWeighting
{
    /// <summary>P2 weighting with constants k and gamma.</summary>
    public P2Weighting(double k = 1.0, double gamma = 1.0)
    {
        if (!(k > 0) || double.IsInfinity(k)) throw new BadInputException($"P2's k must be positive, got {k}");
        if (!(gamma >= 0) || double.IsInfinity(gamma)) throw new BadInputException($"P2's gamma must be non-negative, got {gamma}");
        K = k;
        Gamma = gamma;
    }

    /// <summary>The offset k in 1 / (k + SNR)^gamma.</summary>
    public double K { get; }
    /// <summary>The exponent gamma.</summary>
    public double Gamma { get; }

    /// <inheritdoc/>
    public override string Name => "p2";

    /// <summary>The per-sample weights for these SNRs (float64, same shape).</summary>
    public override Tensor Weights(Tensor signalToNoise)
    {
        using var scope = NewDisposeScope();
        return signalToNoise.to_type(float64).Plus(K).Pow(-Gamma).MoveToOuterDisposeScope();
    }
}
