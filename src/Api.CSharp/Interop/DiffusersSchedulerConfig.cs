using System.Text.Json.Nodes;
using DiffusionFunctional.Core;
using DiffusionFunctional.Diffusion;

namespace DiffusionFunctional.Interop;

/// <summary>
/// A <see cref="GaussianDiffusion"/> as the <c>scheduler_config.json</c> of diffusers' <c>DDPMScheduler</c>, both ways.
/// Our schedules carry diffusers' names and formulas (src/Core.FSharp/Schedule.fs), with fixed beta ranges that are
/// written out; user-given betas become <c>trained_betas</c>. Our DDPM sampler uses the posterior variance
/// (<c>fixed_small</c>) and clips x0 to [-1, 1] (<c>clip_sample</c>), as the written config says.
/// </summary>
public static class DiffusersSchedulerConfig
{
    /// <summary>The file name diffusers reads a scheduler's configuration from.</summary>
    public const string FileName = "scheduler_config.json";

    /// <summary>The (beta_start, beta_end) each of our named schedules uses (Schedule.betas).</summary>
    private static (double Start, double End) BetaRange(ScheduleKind kind) =>
        kind.IsScaledLinear ? (0.00085, 0.012) : (1e-4, 0.02);

    /// <summary>The <c>DDPMScheduler</c> configuration of <paramref name="diffusion"/>.</summary>
    public static JsonObject ToJson(GaussianDiffusion diffusion)
    {
        var kind = diffusion.Schedule.Kind;
        var custom = kind.IsCustomBetas;
        var (start, end) = BetaRange(kind);
        return new JsonObject
        {
            ["_class_name"] = "DDPMScheduler",
            ["num_train_timesteps"] = diffusion.Timesteps,
            ["beta_start"] = start,
            ["beta_end"] = end,
            ["beta_schedule"] = custom ? "linear" : diffusion.ScheduleName,
            ["trained_betas"] = custom ? new JsonArray(diffusion.Schedule.Betas.Select(b => (JsonNode?)b).ToArray()) : null,
            ["variance_type"] = "fixed_small",
            ["clip_sample"] = true,
            ["clip_sample_range"] = 1.0,
            ["prediction_type"] = diffusion.Prediction == PredictionType.V ? "v_prediction" : "epsilon",
            ["thresholding"] = false,
            ["dynamic_thresholding_ratio"] = 0.995,
            ["sample_max_value"] = 1.0,
            ["timestep_spacing"] = "leading",
            ["steps_offset"] = 0,
            ["rescale_betas_zero_snr"] = false,
        };
    }

    /// <summary>
    /// The diffusion of a <c>DDPMScheduler</c> configuration (absent fields take DDPMScheduler's defaults). A beta
    /// range other than ours becomes the same betas computed diffusers' way, given as custom betas.
    /// </summary>
    public static GaussianDiffusion FromJson(JsonObject json, string file = FileName)
    {
        var f = new Fields(json, file);
        f.Require("rescale_betas_zero_snr", false);
        var prediction = f.String("prediction_type", "epsilon") switch
        {
            "epsilon" => PredictionType.Epsilon,
            "v_prediction" => PredictionType.V,
            var other => throw f.Unsupported("prediction_type", other, "\"epsilon\" or \"v_prediction\""),
        };
        var timesteps = f.Int("num_train_timesteps", 1000);
        if (timesteps < 1) throw f.Unsupported("num_train_timesteps", timesteps.ToString(), "a positive count");
        if (f.Node("trained_betas") is not null)
            return Custom(f.Numbers("trained_betas"), timesteps, prediction, f, file);
        var name = f.String("beta_schedule", "linear");
        if (!NoiseSchedules.KnownNames.Contains(name) || !NoiseSchedules.TryParseKind(name, out var kind))
            throw f.Unsupported("beta_schedule", name, string.Join(", ", NoiseSchedules.KnownNames));
        var (start, end) = (f.Number("beta_start", 0.0001), f.Number("beta_end", 0.02));
        var ours = BetaRange(kind);
        var rangeMatters = !kind.IsSquaredCosCapV2;
        if (!rangeMatters || (Close(start, ours.Start) && Close(end, ours.End)))
            return GaussianDiffusion.Create(name, timesteps, prediction);
        return Custom(DiffusersBetas(kind, start, end, timesteps), timesteps, prediction, f, file);
    }

    /// <summary>diffusers' betas for a schedule over a beta range other than ours (DDPMScheduler.__init__).</summary>
    private static double[] DiffusersBetas(ScheduleKind kind, double start, double end, int timesteps)
    {
        if (kind.IsScaledLinear) return Schedule.linspace(Math.Sqrt(start), Math.Sqrt(end), timesteps).Select(b => b * b).ToArray();
        if (kind.IsSigmoid) return Schedule.linspace(-6, 6, timesteps).Select(x => 1 / (1 + Math.Exp(-x)) * (end - start) + start).ToArray();
        return Schedule.linspace(start, end, timesteps);
    }

    private static GaussianDiffusion Custom(double[] betas, int timesteps, PredictionType prediction, Fields f, string file)
    {
        if (betas.Length != timesteps) throw f.Unsupported("trained_betas", $"{betas.Length} values", $"one beta per timestep ({timesteps})");
        if (!NoiseSchedules.TryCreateCustom(betas, out var schedule, out var error)) throw new BadInputException($"{file}: {error}");
        return new GaussianDiffusion(schedule, prediction);
    }

    private static bool Close(double a, double b) => Math.Abs(a - b) <= 1e-12 * Math.Max(Math.Abs(a), Math.Abs(b));
}
