namespace DiffusionFunctional.Weighting;

/// <summary>The hyper-parameters of the weighting methods, with the defaults of method.md; <see cref="Weightings.Create(string, int, WeightingOptions)"/> reads only those of the chosen method.</summary>
public sealed record WeightingOptions
{
    /// <summary>Seed of the methods' own generators (PCGrad's random orders).</summary>
    public long Seed { get; init; }
    /// <summary>Min-SNR's gamma (5).</summary>
    public double MinSnrGamma { get; init; } = 5.0;
    /// <summary>True when the model predicts v (Min-SNR then uses min(SNR, gamma) / (SNR + 1)).</summary>
    public bool VPrediction { get; init; }
    /// <summary>P2's k (1).</summary>
    public double P2K { get; init; } = 1.0;
    /// <summary>P2's gamma (1; the paper also uses 0.5).</summary>
    public double P2Gamma { get; init; } = 1.0;
    /// <summary>Learning rate of UW's log-variances (0.025).</summary>
    public double UncertaintyLearningRate { get; init; } = UncertaintyWeighting.DefaultLearningRate;
    /// <summary>Steps between Nash-MTL solves (25).</summary>
    public int NashSolveEvery { get; init; } = 25;
    /// <summary>CAGrad's c (0.5).</summary>
    public double CagradC { get; init; } = 0.5;
}
