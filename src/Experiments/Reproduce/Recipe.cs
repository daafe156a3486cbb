using System.Globalization;
using DiffusionFunctional.Core;
using DiffusionFunctional.Diffusion;
using DiffusionFunctional.Experiments.Demo;

namespace DiffusionFunctional.Experiments.Reproduce;

/// <summary>
/// A training recipe of <c>dfn reproduce</c>, as data: the noise schedule, what the network predicts, the clusters the
/// multi-task methods balance, which methods clip their gradients, warm-up, learning rate, EMA and the evaluation
/// sampler. Every method of a run trains under the same recipe; nothing is tuned per method. Written
/// <c>NAME[:key=value,...]</c>: a named recipe with single settings changed, e.g. <c>official:schedule=linear</c>
/// (docs/fidelity.md lists the keys).
/// </summary>
public sealed record Recipe
{
    /// <summary>The recipe as written (name and changes).</summary>
    public required string Name { get; init; }
    /// <summary>Noise schedule (diffusers' names).</summary>
    public string Schedule { get; init; } = "linear";
    /// <summary>What the network predicts.</summary>
    public PredictionType Prediction { get; init; } = PredictionType.Epsilon;
    /// <summary>The clustering objective of the multi-task methods (ANT-UW, ANT-Nash).</summary>
    public string Objective { get; init; } = "snr";
    /// <summary>Their number of clusters k.</summary>
    public int Clusters { get; init; } = 5;
    /// <summary>"all" (every method clips at <see cref="ClipNorm"/>), "nash" (only Nash-MTL does) or "none".</summary>
    public string Clip { get; init; } = "all";
    /// <summary>The gradient-norm clip.</summary>
    public double ClipNorm { get; init; } = 1.0;
    /// <summary>Learning rate; null: the profile's.</summary>
    public double? LearningRate { get; init; }
    /// <summary>Linear warm-up steps; null: the profile's.</summary>
    public int? WarmupSteps { get; init; }
    /// <summary>EMA decay; null: the profile's.</summary>
    public double? EmaDecay { get; init; }
    /// <summary>Whether the EMA warms up (decay min(d, (1+t)/(10+t))).</summary>
    public bool EmaWarmup { get; init; } = true;
    /// <summary>Evaluation sampler; null: the profile's.</summary>
    public SamplerKind? Sampler { get; init; }
    /// <summary>Its steps; null: the profile's.</summary>
    public int? SamplerSteps { get; init; }
    /// <summary>What of the original recipe our models cannot follow (said in the report).</summary>
    public IReadOnlyList<string> NotFollowed { get; init; } = [];

    /// <summary>Today's recipe: the profile's settings (its sampler too), linear schedule, log-SNR clusters, every method
    /// clipped at 1.0. Runs before the profiles moved to DPM-Solver++(2M) sampled with DDIM: <c>ours:sampler=ddim</c>.</summary>
    public static Recipe Ours => new() { Name = "ours" };

    /// <summary>
    /// The choices of the authors' released code (gohyojun15/ANT_diffusion) as far as our models allow: cosine schedule,
    /// equal timestep clusters (k = 5), gradient clipping for Nash-MTL only, constant learning rate 1e-4 without warm-up,
    /// EMA 0.9999 from step 0 (no warm-up), 250-step DDPM sampling.
    /// </summary>
    public static Recipe Official => new()
    {
        Name = "official", Schedule = "squaredcos_cap_v2", Objective = "timestep", Clip = "nash", LearningRate = 1e-4, WarmupSteps = 0,
        EmaDecay = 0.9999, EmaWarmup = false, Sampler = SamplerKind.Ddpm, SamplerSteps = 250,
        NotFollowed =
        [
            "a DiT backbone of 33-458M parameters (ours: the profile's network, e.g. --model dit-mini, a DiT of 0.33M)",
            "the variational-bound term with learned variances (ours: the plain MSE; our networks predict no variance)",
            "class conditioning with guidance 1.5 (ours: unconditional)",
            "fp16 autocast (ours: the profile's precision)",
            "400-800K steps at batch 50-240 (ours: the profile's budget)",
        ],
    };

    /// <summary>The named recipes.</summary>
    public static IReadOnlyList<string> Names { get; } = ["ours", "official"];

    /// <summary>The keys a recipe's changes may set.</summary>
    public static IReadOnlyList<string> Keys { get; } =
        ["schedule", "prediction", "objective", "clusters", "clip", "clip-norm", "lr", "warmup", "ema", "ema-warmup", "sampler"];

    /// <summary>Parses <c>NAME[:key=value,...]</c>.</summary>
    /// <exception cref="BadInputException">An unknown name, key or value.</exception>
    public static Recipe Parse(string text)
    {
        var spec = (text ?? "").Trim().ToLowerInvariant();
        var colon = spec.IndexOf(':');
        var name = colon < 0 ? spec : spec[..colon];
        var recipe = name switch
        {
            "ours" => Ours,
            "official" => Official,
            _ => throw new BadInputException($"unknown recipe '{name}' (expected one of: {string.Join(", ", Names)}, optionally with :key=value,...)"),
        };
        if (colon >= 0)
            foreach (var change in spec[(colon + 1)..].Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
                recipe = recipe.With(change);
        return recipe with { Name = spec };
    }

    private Recipe With(string change)
    {
        var parts = change.Split('=', 2, StringSplitOptions.TrimEntries);
        if (parts.Length != 2 || parts[1].Length == 0)
            throw new BadInputException($"recipe change '{change}' is not key=value (keys: {string.Join(", ", Keys)})");
        var (key, value) = (parts[0], parts[1]);
        return key switch
        {
            "schedule" => NoiseSchedules.TryCreate(value, 10, out _, out var error) ? this with { Schedule = value } : throw new BadInputException($"recipe schedule: {error}"),
            "prediction" => this with { Prediction = value switch { "eps" => PredictionType.Epsilon, "v" => PredictionType.V, _ => throw Bad(key, value, "eps or v") } },
            "objective" => this with { Objective = DemoMethod.DemoObjective(value, "the recipe") },
            "clusters" => this with { Clusters = Integer(key, value, 1) },
            "clip" => value is "all" or "nash" or "none" ? this with { Clip = value } : throw Bad(key, value, "all, nash or none"),
            "clip-norm" => this with { ClipNorm = Positive(key, value) },
            "lr" => this with { LearningRate = Positive(key, value) },
            "warmup" => this with { WarmupSteps = Integer(key, value, 0) },
            "ema" => Positive(key, value) is var d && d < 1 ? this with { EmaDecay = d } : throw Bad(key, value, "a decay in (0, 1)"),
            "ema-warmup" => value is "on" or "off" ? this with { EmaWarmup = value == "on" } : throw Bad(key, value, "on or off"),
            "sampler" => WithSampler(value),
            _ => throw new BadInputException($"unknown recipe key '{key}' (expected one of: {string.Join(", ", Keys)})"),
        };
    }

    private Recipe WithSampler(string value)
    {
        var pieces = value.Split(':');
        var kind = SamplerOptions.ParseKind(pieces[0]);
        return this with { Sampler = kind, SamplerSteps = pieces.Length > 1 ? Integer("sampler", pieces[1], 1) : SamplerSteps };
    }

    private static BadInputException Bad(string key, string value, string expected) => new($"recipe {key} '{value}' is not {expected}");

    private static int Integer(string key, string value, int minimum) =>
        int.TryParse(value, NumberStyles.Integer, CultureInfo.InvariantCulture, out var n) && n >= minimum ? n : throw Bad(key, value, $"an integer of at least {minimum}");

    private static double Positive(string key, string value) =>
        double.TryParse(value, NumberStyles.Float, CultureInfo.InvariantCulture, out var x) && x > 0 && double.IsFinite(x) ? x : throw Bad(key, value, "a positive number");

    /// <summary>The paper's four methods under this recipe: vanilla, Min-SNR-5, ANT-UW and ANT-Nash on its clusters.</summary>
    public string Methods => $"vanilla,min-snr,uw:{Objective}:{Clusters},nash:{Objective}:{Clusters}";

    /// <summary>The profile every method trains under, with this recipe's settings in place of the profile's; the
    /// sampler takes at most <paramref name="timesteps"/> steps.</summary>
    public DemoProfile Apply(DemoProfile profile, int timesteps) => profile with
    {
        LearningRate = LearningRate ?? profile.LearningRate,
        WarmupSteps = WarmupSteps ?? profile.WarmupSteps,
        EmaDecay = EmaDecay ?? profile.EmaDecay,
        EmaWarmup = EmaWarmup,
        GradientClipNorm = ClipNorm,
        ClippedWeightings = Clip switch { "all" => null, "nash" => ["nash"], _ => [] },
        // DDPM over a subsequence of timesteps (the released code's "250-step DDPM", iDDPM's respacing) is DDIM with
        // eta 1: its noise is the respaced chain's posterior standard deviation (Song et al. 2021, eq. 16).
        SamplerEta = Sampler is null ? profile.SamplerEta : Sampler == SamplerKind.Ddpm && SamplerSteps is not null ? 1.0 : 0.0,
        SamplerKind = Sampler == SamplerKind.Ddpm && SamplerSteps is not null ? SamplerKind.Ddim : Sampler ?? profile.SamplerKind,
        SamplerSteps = Math.Min(SamplerSteps ?? profile.SamplerSteps, timesteps),
    };

    /// <summary>The recipe's settings as (setting, value) rows for the report, resolved against <paramref name="profile"/>.</summary>
    public IReadOnlyList<(string Setting, string Value)> Describe(DemoProfile profile, int timesteps)
    {
        var applied = Apply(profile, timesteps);
        return
        [
            ("schedule", Schedule),
            ("prediction", Prediction == PredictionType.V ? "v" : "eps"),
            ("clusters of the multi-task methods", $"{Objective}, k = {Clusters}"),
            ("gradient clipping", Clip switch { "all" => $"every method at {ClipNorm}", "nash" => $"Nash-MTL only, at {ClipNorm}", _ => "none" }),
            ("learning rate", FormattableString.Invariant($"{applied.LearningRate:G3}, warm-up {applied.WarmupSteps} steps, then constant")),
            ("EMA", FormattableString.Invariant($"{applied.EmaDecay}, {(EmaWarmup ? "warmed up (min(d, (1+t)/(10+t)))" : "from step 0")}")),
            ("evaluation sampler", applied.Sampler(0).Description),
        ];
    }
}
