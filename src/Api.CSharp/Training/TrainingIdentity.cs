using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using DiffusionFunctional.Core;
using DiffusionFunctional.Diffusion;
using DiffusionFunctional.Models;

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
        // Only the chosen method's settings (with its defaults): another method's, or a new one, change nothing here.
        var weightingSettings = Weighting.WeightingRegistry.Find(o.Weighting) is { } method ? o.WeightingSettings.Describe(method) : "";
        var identity = ModelFields(Denoisers.ToJson(trainer.Model.Config));
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
            ["weighting_settings"] = weightingSettings,
            ["timestep_sampler"] = trainer.TimestepDistribution.Name,
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
        stored = WithoutLegacySettings(stored);
        foreach (var (key, value) in current)
        {
            if (stored[key] is not { } old) continue;
            var before = old.GetValue<string>();
            var now = value!.GetValue<string>();
            if (before != now) return $"{Label(key)} {Shown(before)}, not {Shown(now)}";
        }
        return null;
    }

    // Before settings were keyed by method (release 1.1), a checkpoint recorded every method's settings as one JSON
    // object of the old WeightingOptions record; these are its properties and the settings they became.
    static readonly (string Property, string Method, string Key)[] LegacySettings =
    [
        ("MinSnrGamma", "min-snr", "gamma"), ("P2K", "p2", "k"), ("P2Gamma", "p2", "gamma"), ("UncertaintyLearningRate", "uw", "lr"),
        ("UncertaintyLearningRate", "uw-bounded", "lr"), ("NashSolveEvery", "nash", "every"), ("CagradC", "cagrad", "c"),
    ];

    /// <summary><paramref name="stored"/> with an old-style <c>weighting_settings</c> (all methods' settings as JSON)
    /// rewritten as today's (the stored method's only), so checkpoints written before resume as before.</summary>
    static JsonObject WithoutLegacySettings(JsonObject stored)
    {
        // Before there were backbone kinds (release 3), every checkpoint held a UNet and recorded no kind.
        if (stored.Any(f => f.Key.StartsWith("model ", StringComparison.Ordinal)) && !stored.ContainsKey("model Kind"))
        {
            stored = stored.DeepClone().AsObject();
            stored["model Kind"] = JsonValue.Create(UNetConfig.KindName)!.ToJsonString();
        }
        if (stored["weighting_settings"]?.GetValue<string>() is not { } text || !text.TrimStart().StartsWith('{')
            || Weighting.WeightingRegistry.Find(stored["weighting"]?.GetValue<string>()) is not { } method)
            return stored;
        var legacy = JsonNode.Parse(text)!.AsObject();
        var settings = Weighting.WeightingSettings.Defaults;
        foreach (var (property, owner, key) in LegacySettings)
            if (owner == method.Name && legacy[property] is JsonValue v && v.TryGetValue<double>(out var value))
                settings = settings.With(owner, key, value);
        var copy = stored.DeepClone().AsObject();
        copy["weighting_settings"] = settings.Describe(method);
        return copy;
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
