using System.Text.Json;
using System.Text.Json.Nodes;
using DiffusionFunctional.Core;
using DiffusionFunctional.Diffusion;
using DiffusionFunctional.Models;

namespace DiffusionFunctional.Training;

/// <summary>
/// A network loaded from a checkpoint for sampling, evaluation, analysis or export, with what is needed to use it
/// honestly: its diffusion, the step, and which weights (EMA or live) with the EMA's remaining share of the random
/// initial weights. The caller owns <see cref="Model"/> and disposes it (or this object).
/// </summary>
/// <param name="Model">The network in eval mode.</param>
/// <param name="Diffusion">The schedule and prediction type it was trained with.</param>
/// <param name="Step">Training steps behind it.</param>
/// <param name="UsesEma">True for the EMA weights, false for the live ones.</param>
/// <param name="InitialWeightShare">With EMA weights: the share the random initial weights still have in them (0 for live weights).</param>
/// <param name="Path">The checkpoint file read.</param>
public sealed record CheckpointModel(Denoiser Model, GaussianDiffusion Diffusion, long Step, bool UsesEma, double InitialWeightShare, string Path) : IDisposable
{
    /// <summary>Above this share of the initial weights, EMA samples are mostly noise: commands warn.</summary>
    public const double NoisyInitialShare = 0.05;

    /// <summary>
    /// Loads the EMA (or live) network of a checkpoint file or run folder. Throws <see cref="BadInputException"/>
    /// for a missing, corrupt or unknown-format checkpoint.
    /// </summary>
    public static CheckpointModel Load(string path, bool useEma = true)
    {
        var (header, r) = CheckpointFile.Read(path);
        var file = CheckpointFile.Resolve(path);
        using (r)
        {
            var config = CheckpointHeaders.ReadConfig(header, file);
            var diffusion = CheckpointHeaders.ReadDiffusion(header, file);
            var model = config.Build();
            try
            {
                model.load(r);
                if (useEma) model.load(r);
            }
            catch (Exception e) when (e is EndOfStreamException or IOException or ArgumentException or InvalidOperationException)
            {
                model.Dispose();
                throw new BadInputException($"checkpoint {file} cannot be read ({e.Message.ReplaceLineEndings(" ")})");
            }
            model.eval();
            var share = useEma ? CheckpointHeaders.InitialWeightShare(header) : 0.0;
            return new CheckpointModel(model, diffusion, header["step"]!.GetValue<long>(), useEma, share, file);
        }
    }

    /// <summary>
    /// One warning line when these are EMA weights that still hold more than <see cref="NoisyInitialShare"/> of the
    /// random initial weights (their samples are mostly noise, and any score of them measures that); null otherwise.
    /// </summary>
    public string? NoiseWarning() => UsesEma && InitialWeightShare > NoisyInitialShare
        ? FormattableString.Invariant($"the EMA weights of {Path} (step {Step}) still hold {InitialWeightShare:P0} of the random initial weights, so their samples are mostly noise: train longer, train with EMA warm-up or a smaller --ema-decay, or use --live")
        : null;

    /// <summary>Disposes the network.</summary>
    public void Dispose() => Model.Dispose();
}

/// <summary>Reads and writes the parts of a checkpoint header that describe the network and its diffusion.</summary>
internal static class CheckpointHeaders
{
    public static JsonObject Diffusion(GaussianDiffusion d)
    {
        var json = new JsonObject { ["schedule"] = d.ScheduleName, ["timesteps"] = d.Timesteps, ["prediction"] = d.Prediction == PredictionType.V ? "v" : "eps" };
        if (d.ScheduleName == "custom") json["betas"] = new JsonArray(d.Schedule.Betas.Select(b => (JsonNode?)b).ToArray());
        return json;
    }

    public static DenoiserConfig ReadConfig(JsonObject header, string path) => Denoisers.FromJson(header["model"], $"checkpoint {path}");

    public static GaussianDiffusion ReadDiffusion(JsonObject header, string path)
    {
        var d = header["diffusion"] ?? throw new BadInputException($"checkpoint {path} has no diffusion settings");
        var prediction = GaussianDiffusion.ParsePrediction((string)d["prediction"]!);
        var name = (string)d["schedule"]!;
        var timesteps = d["timesteps"]!.GetValue<int>();
        if (name != "custom") return GaussianDiffusion.Create(name, timesteps, prediction);
        var betas = d["betas"]!.AsArray().Select(n => n!.GetValue<double>()).ToArray();
        if (!NoiseSchedules.TryCreateCustom(betas, out var schedule, out var error)) throw new BadInputException($"checkpoint {path}: {error}");
        return new GaussianDiffusion(schedule, prediction);
    }

    /// <summary>The EMA's initial-weight share: recorded since format 3, computed exactly from the options before.</summary>
    public static double InitialWeightShare(JsonObject header)
    {
        if (header["ema_initial_weight_share"] is JsonValue v && v.TryGetValue<double>(out var share)) return share;
        var options = header["options"];
        var decay = options?["ema_decay"]?.GetValue<double>() ?? 0.999;
        var warmup = options?["ema_warmup"]?.GetValue<bool>() ?? false;
        return ExponentialMovingAverage.InitialWeightShareAfter(decay, warmup, header["step"]!.GetValue<long>());
    }
}
