using static DiffusionFunctional.Weighting.WeightingKind;

namespace DiffusionFunctional.Weighting;

/// <summary>The weighting methods that come with the library, as <see cref="WeightingRegistry"/> holds them: the
/// multi-task methods ANT balances clusters with (Go et al. 2023, section 4) and the loss weightings a user would pick
/// instead.</summary>
internal static class BuiltInWeightings
{
    private static readonly WeightingSetting UwLearningRate =
        new("lr", "--uw-lr", UncertaintyWeighting.DefaultLearningRate, "learning rate of the log-variances (AdamW, no weight decay)", WeightingSetting.Positive);

    /// <summary>Every built-in method, in the order help texts list them.</summary>
    public static IReadOnlyList<WeightingDescriptor> All { get; } =
    [
        new("vanilla", Loss, false, "the plain mean of the per-sample losses (Ho et al. 2020)", [], _ => new VanillaWeighting()),
        new("min-snr", Loss, false, "Min-SNR-gamma: weights min(SNR, gamma)/SNR, or /(SNR+1) for v-prediction (Hang et al. 2023)",
            [new("gamma", "--snr-gamma", 5.0, "gamma", WeightingSetting.Positive)],
            c => new MinSnrWeighting(c.Setting("gamma"), c.VPrediction)),
        new("p2", Loss, false, "P2: weights 1/(k + SNR)^gamma (Choi et al. 2022)",
            [new("k", "--p2-k", 1.0, "k", WeightingSetting.Positive),
             new("gamma", "--p2-gamma", 1.0, "gamma (0.5 or 1 in the paper)", v => v >= 0 && double.IsFinite(v) ? null : $"must be a finite number, 0 or more, got {v}")],
            c => new P2Weighting(c.Setting("k"), c.Setting("gamma"))),
        new("edm2-uncertainty", Loss, false, "EDM2's learned uncertainty u(t), a small MLP on log-SNR (Karras et al. 2024)", [], _ => new Edm2UncertaintyWeighting()),
        new("importance", Loss, false, "iDDPM's importance sampling of timesteps by sqrt(E[L_t^2]) (Nichol and Dhariwal 2021)", [], _ => new ImportanceWeighting()),
        new("uw", Loss, true, "ANT-UW: uncertainty weighting of the cluster losses (Kendall et al. 2018)", [UwLearningRate],
            c => new UncertaintyWeighting(c.Clusters, c.Setting("lr"))),
        new("uw-bounded", Loss, true, "UW with the cluster weights normalised to mean 1 (k softmax(-s))", [UwLearningRate],
            c => new BoundedUncertaintyWeighting(c.Clusters, c.Setting("lr"))),
        new("famo", Loss, true, "FAMO: fast adaptive multitask optimisation, one extra forward (Liu et al. 2023)", [], c => new FamoWeighting(c.Clusters)),
        new("pcgrad", Gradient, true, "PCGrad: conflicting cluster gradients projected away (Yu et al. 2020)", [], c => new PcGradWeighting(c.Clusters, c.Seed)),
        new("nash", AmortisedGradient, true, "ANT-Nash: Nash-MTL bargaining weights (Navon et al. 2022), re-solved every N steps",
            [new("every", "--nash-every", 25, "steps between bargaining solves", WeightingSetting.PositiveInteger)],
            c => new NashWeighting(c.Clusters, (int)c.Setting("every"))),
        new("imtl", Gradient, true, "IMTL-G: an update with equal projections on every cluster gradient (Liu et al. 2021)", [], c => new ImtlWeighting(c.Clusters)),
        new("cagrad", Gradient, true, "CAGrad: the conflict-averse gradient (Liu et al. 2021)",
            [new("c", "--cagrad-c", 0.5, "c in [0, 1)", WeightingSetting.Fraction)],
            c => new CagradWeighting(c.Clusters, c.Setting("c"))),
        new("mgda", Gradient, true, "MGDA: the min-norm point of the cluster gradients (Sener and Koltun 2018)", [], c => new MgdaWeighting(c.Clusters)),
    ];
}
