using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using DiffusionFunctional.Core;
using DiffusionFunctional.Diffusion;

namespace DiffusionFunctional.Training;

/// <summary>
/// The settings that decide what a run trains, as named text values: model, diffusion, data, clusters, method and its
/// settings, timestep sampler, seed and optimiser. A checkpoint stores them; resuming with any of them changed would
/// silently train something else, so it is refused with the setting and both values. Settings that may change on
/// resume (total steps, checkpoint and sample intervals, threads, device, the divergence guard) are not part of it.
/// </summary>
public static class TrainingIdentity
{
    /// <summary>The identity of the run a trainer is set up for.</summary>
    public static JsonObject Of(Trainer trainer)
    {
        var o = trainer.Options;
        var d = trainer.Diffusion;
        // The seed and prediction type are compared on their own; the method's settings are the rest.
        var weightingSettings = o.WeightingSettings with { Seed = 0, VPrediction = false };
        var identity = ModelFields(JsonSerializer.SerializeToNode(trainer.Model.Config)!.AsObject());
        var settings = new JsonObject
        {
            ["schedule"] = d.ScheduleName,
            ["timesteps"] = Text(d.Timesteps),
            ["prediction"] = d.Prediction == PredictionType.V ? "v" : "eps",
            ["betas"] = d.ScheduleName == "custom" ? string.Join(",", d.Schedule.Betas.Select(b => b.ToString("R", CultureInfo.InvariantCulture))) : "",
            // What the data hold, not where they lie (older checkpoints recorded the path under "data": not compared).
            ["data_content"] = trainer.Data.ContentIdentity,
            ["clusters"] = string.Join(",", trainer.Plan.Boundaries),
            ["weighting"] = trainer.Weighting.Name,
            ["weighting_settings"] = JsonSerializer.Serialize(weightingSettings),
            ["timestep_sampler"] = trainer.TimestepSampler.Name,
            ["seed"] = Text(o.Seed),
            ["batch_size"] = Text(o.BatchSize),
            ["learning_rate"] = Text(o.LearningRate),
            ["weight_decay"] = Text(o.WeightDecay),
            ["warmup_steps"] = Text(o.WarmupSteps),
            ["gradient_clip_norm"] = o.GradientClipNorm is { } c ? Text(c) : "none",
            ["ema_decay"] = Text(o.EmaDecay),
            ["ema_warmup"] = o.EmaWarmup ? "true" : "false",
            ["precision"] = TrainingPrecision.Parse(o.Precision),
        };
        foreach (var (key, value) in settings) identity[key] = value!.DeepClone();
        return identity;
    }

    /// <summary>One entry per model configuration field ("model ImageSize"), so a mismatch names the field.</summary>
    static JsonObject ModelFields(JsonObject config)
    {
        var fields = new JsonObject();
        foreach (var (name, value) in config) fields[$"model {name}"] = value?.ToJsonString() ?? "null";
        return fields;
    }

    /// <summary>
    /// The first setting where <paramref name="stored"/> (a checkpoint's identity) and <paramref name="current"/>
    /// differ, as "setting: stored vs current"; null when they agree. Settings a checkpoint did not record (older
    /// formats) are not compared.
    /// </summary>
    public static string? FirstDifference(JsonObject stored, JsonObject current)
    {
        foreach (var (key, value) in current)
        {
            if (stored[key] is not { } old) continue;
            var before = old.GetValue<string>();
            var now = value!.GetValue<string>();
            if (before != now) return $"{Label(key)} {Shown(before)}, not {Shown(now)}";
        }
        return null;
    }

    /// <summary>The identity recorded by a format-2 checkpoint (before identities were stored whole).</summary>
    internal static JsonObject FromLegacyHeader(JsonObject header)
    {
        var identity = header["model"] is JsonObject model ? ModelFields(model) : new JsonObject();
        if (header["diffusion"] is JsonObject d)
        {
            identity["schedule"] = (string?)d["schedule"];
            identity["timesteps"] = Text(d["timesteps"]!.GetValue<int>());
            identity["prediction"] = (string?)d["prediction"];
        }
        if (header["plan"]?["boundaries"] is JsonArray b) identity["clusters"] = string.Join(",", b.Select(n => n!.GetValue<int>()));
        if (header["weighting"] is { } w) identity["weighting"] = (string?)w;
        if (header["options"] is JsonObject o)
        {
            identity["seed"] = Text(o["seed"]!.GetValue<long>());
            identity["batch_size"] = Text(o["batch_size"]!.GetValue<int>());
        }
        return identity;
    }

    static string Text(double v) => v.ToString("R", CultureInfo.InvariantCulture);
    static string Text(long v) => v.ToString(CultureInfo.InvariantCulture);

    static string Label(string key) => key switch
    {
        "clusters" => "cluster boundaries",
        "data_content" => "data",
        _ => key.Replace('_', ' '),
    };

    static string Shown(string value) => value.Length == 0 ? "(none)" : value.Length > 120 ? value[..117] + "..." : value;
}
