using System.Text.Json;
using System.Text.Json.Nodes;
using DiffusionFunctional.Core;
using DiffusionFunctional.Data;
using DiffusionFunctional.Diffusion;
using DiffusionFunctional.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace DiffusionFunctional.Training;

public sealed partial class Trainer
{
    // 2: the divergence guard's window follows the RNG states (1 had none; it still loads, with an empty window).
    private const int FormatVersion = 2;

    /// <summary>
    /// Writes everything a run needs to continue exactly (model, EMA, optimiser, weighting and sampler state, both
    /// RNG states, data position, step), atomically (see <see cref="CheckpointFile"/>).
    /// </summary>
    public void SaveCheckpoint(string path)
    {
        var header = new JsonObject
        {
            ["format"] = FormatVersion,
            ["step"] = Step,
            ["data_position"] = stream.Position,
            ["model"] = JsonSerializer.SerializeToNode(Model.Config),
            ["diffusion"] = DiffusionHeader(Diffusion),
            ["plan"] = new JsonObject { ["timesteps"] = Plan.Timesteps, ["boundaries"] = new JsonArray(Plan.Boundaries.Select(b => (JsonNode?)b).ToArray()), ["origin"] = Plan.Origin },
            ["weighting"] = Weighting.Name,
            ["timestep_sampler"] = TimestepSampler.Name,
            ["options"] = new JsonObject
            {
                ["steps"] = Options.Steps, ["batch_size"] = Options.BatchSize, ["learning_rate"] = Options.LearningRate,
                ["seed"] = Options.Seed, ["ema_decay"] = Options.EmaDecay, ["ema_warmup"] = Options.EmaWarmup, ["warmup_steps"] = Options.WarmupSteps,
                ["gradient_clip_norm"] = Options.GradientClipNorm, ["threads"] = torch.get_num_threads(),
            },
            ["data"] = Data.Description,
        };
        CheckpointFile.Write(path, header, w =>
        {
            Model.save(w);
            Ema.Model.save(w);
            optimizer.save_state_dict(w);
            Weighting.Save(w);
            TimestepSampler.Save(w);
            using var generatorState = generator.get_state();
            CheckpointFile.WriteBlob(w, generatorState.data<byte>().ToArray());
            using var globalState = random.get_rng_state();
            CheckpointFile.WriteBlob(w, globalState.data<byte>().ToArray());
            guard.Save(w);
        });
    }

    /// <summary>Restores a checkpoint written by <see cref="SaveCheckpoint"/> for the same model, schedule, plan and weighting.</summary>
    public void LoadCheckpoint(string path)
    {
        var (header, r) = CheckpointFile.Read(path);
        using (r)
        {
            if (WeightsCheckpoint.IsWeightsOnly(header))
                throw new BadInputException($"checkpoint {path} holds imported weights only (no optimiser, weighting or data state): it can be sampled, exported and evaluated, not resumed");
            var config = ReadConfig(header, path);
            if (JsonSerializer.Serialize(config) != JsonSerializer.Serialize(Model.Config))
                throw new BadInputException($"checkpoint {path} holds another model configuration");
            var boundaries = header["plan"]?["boundaries"]?.AsArray().Select(n => n!.GetValue<int>()).ToArray() ?? [];
            if (!Plan.SameAs(ClusterPlan.Create(Diffusion.Timesteps, boundaries, "checkpoint")))
                throw new BadInputException($"checkpoint {path} was trained with another cluster plan");
            if ((string?)header["weighting"] != Weighting.Name)
                throw new BadInputException($"checkpoint {path} was trained with weighting '{header["weighting"]}', not '{Weighting.Name}'");
            Model.load(r);
            Ema.Model.load(r);
            optimizer.load_state_dict(r);
            Weighting.Load(r);
            TimestepSampler.Load(r);
            using (var state = tensor(CheckpointFile.ReadBlob(r), dtype: uint8)) generator.set_state(state);
            using (var state = tensor(CheckpointFile.ReadBlob(r), dtype: uint8)) random.set_rng_state(state);
            if ((header["format"]?.GetValue<int>() ?? 1) >= 2) guard.Load(r);
            Step = header["step"]!.GetValue<long>();
            // The data order is a function of the run's seed: follow the checkpoint's, whatever these options say.
            stream = new DataStream(Data, header["options"]!["seed"]!.GetValue<long>())
            {
                Position = header["data_position"]!.GetValue<long>(),
            };
        }
        metrics?.Dispose();
        metrics = null;
    }

    /// <summary>Loads the output directory's checkpoint when there is one; returns whether it did.</summary>
    public bool TryResume()
    {
        if (CheckpointPath is not { } path || !File.Exists(path)) return false;
        LoadCheckpoint(path);
        return true;
    }

    /// <summary>The model configuration, diffusion and EMA network of a checkpoint, for sampling or export.</summary>
    public static (UNet Ema, GaussianDiffusion Diffusion, long Step) LoadForSampling(string path, bool useEma = true)
    {
        var (header, r) = CheckpointFile.Read(path);
        using (r)
        {
            var config = ReadConfig(header, path);
            var diffusion = ReadDiffusion(header, path);
            var model = new UNet(config);
            model.load(r);
            if (useEma) model.load(r);
            model.eval();
            return (model, diffusion, header["step"]!.GetValue<long>());
        }
    }

    /// <summary>The header entry that records a diffusion (schedule, T, prediction; betas when custom).</summary>
    internal static JsonObject DiffusionHeader(GaussianDiffusion d)
    {
        var json = new JsonObject { ["schedule"] = d.ScheduleName, ["timesteps"] = d.Timesteps, ["prediction"] = d.Prediction == PredictionType.V ? "v" : "eps" };
        if (d.ScheduleName == "custom") json["betas"] = new JsonArray(d.Schedule.Betas.Select(b => (JsonNode?)b).ToArray());
        return json;
    }

    private static UNetConfig ReadConfig(JsonObject header, string path) =>
        header["model"]?.Deserialize<UNetConfig>() ?? throw new BadInputException($"checkpoint {path} has no model configuration");

    private static GaussianDiffusion ReadDiffusion(JsonObject header, string path)
    {
        var d = header["diffusion"] ?? throw new BadInputException($"checkpoint {path} has no diffusion settings");
        var prediction = GaussianDiffusion.ParsePrediction((string)d["prediction"]!);
        var name = (string)d["schedule"]!;
        var timesteps = d["timesteps"]!.GetValue<int>();
        if (name != "custom") return GaussianDiffusion.Create(name, timesteps, prediction);
        var betas = d["betas"]!.AsArray().Select(n => n!.GetValue<double>()).ToArray();
        return new GaussianDiffusion(Schedule.create(ScheduleKind.NewCustomBetas(betas), timesteps), prediction);
    }
}
