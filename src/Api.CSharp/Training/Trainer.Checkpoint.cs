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
    /// <summary>
    /// Writes everything a run needs to continue exactly (model, EMA, optimiser, weighting and sampler state, both
    /// RNG states, data position, step, the divergence guard's window) and the run's <see cref="TrainingIdentity"/>,
    /// atomically (see <see cref="CheckpointFile"/>).
    /// </summary>
    public void SaveCheckpoint(string path)
    {
        var header = new JsonObject
        {
            ["format"] = CheckpointFile.CurrentFormat,
            ["step"] = Step,
            ["data_position"] = stream.Position,
            ["model"] = Denoisers.ToJson(Model.Config),
            ["diffusion"] = CheckpointHeaders.Diffusion(Diffusion),
            ["plan"] = new JsonObject { ["timesteps"] = Plan.Timesteps, ["boundaries"] = new JsonArray(Plan.Boundaries.Select(b => (JsonNode?)b).ToArray()), ["origin"] = Plan.Origin },
            ["weighting"] = Weighting.Name,
            ["timestep_sampler"] = TimestepDistribution.Name,
            ["identity"] = TrainingIdentity.Of(this),
            ["ema_initial_weight_share"] = Ema.InitialWeightShare,
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
            optimizer.Optimizer.save_state_dict(w);
            Weighting.Save(w);
            TimestepDistribution.Save(w);
            using var generatorState = generator.get_state();
            CheckpointFile.WriteBlob(w, generatorState.data<byte>().ToArray());
            using var globalState = random.get_rng_state();
            CheckpointFile.WriteBlob(w, globalState.data<byte>().ToArray());
            guard.Save(w);
        });
    }

    /// <summary>
    /// Restores a checkpoint written by <see cref="SaveCheckpoint"/>. Everything is checked before anything changes:
    /// a checkpoint of another run (any setting of its <see cref="TrainingIdentity"/> differs: model, schedule, T,
    /// prediction, data, clusters, method and its settings, sampler, seed, optimiser) is refused with one line naming
    /// the setting and both values, and the trainer is left as it was.
    /// </summary>
    /// <exception cref="BadInputException">Not a checkpoint, corrupt, of an unknown format, or of another run.</exception>
    public void LoadCheckpoint(string path)
    {
        var (header, r) = CheckpointFile.Read(path);
        using (r)
        {
            if (WeightsCheckpoint.IsWeightsOnly(header))
                throw new BadInputException($"checkpoint {path} holds imported weights only (no optimiser, weighting or data state): it can be sampled, exported and evaluated, not resumed");
            var stored = header["identity"] as JsonObject ?? TrainingIdentity.FromLegacyHeader(header);
            if (TrainingIdentity.FirstDifference(stored, TrainingIdentity.Of(this)) is { } difference)
            {
                // Data are compared by content; where they were read from helps the user see which is which.
                var where = difference.StartsWith("data ", StringComparison.Ordinal) && header["data"]?.GetValue<string>() is { } then
                    ? $" (the checkpoint's data were read from {then}, these from {Data.Description})" : "";
                throw new BadInputException($"checkpoint {path} was trained with {difference}{where}: resume only with the settings it was trained with, or choose another --out");
            }
            try
            {
                Model.load(r);
                Ema.Model.load(r);
                optimizer.Optimizer.load_state_dict(r);
                Weighting.Load(r);
                TimestepDistribution.Load(r);
                using (var state = tensor(CheckpointFile.ReadBlob(r), dtype: uint8)) generator.set_state(state);
                using (var state = tensor(CheckpointFile.ReadBlob(r), dtype: uint8)) random.set_rng_state(state);
                if (header["format"]!.GetValue<int>() >= 2) guard.Load(r);
            }
            catch (Exception e) when (e is EndOfStreamException or IOException or ArgumentException or InvalidOperationException)
            {
                // A library caller must not train on with a half-loaded state; the file is unusable either way.
                throw new BadInputException($"checkpoint {path} cannot be read ({e.Message.ReplaceLineEndings(" ")}): it is damaged; start a new run in another folder, or restore the file from a copy");
            }
            flatParameters.EnsureAttached();
            Ema.EnsureAttached();
            Step = header["step"]!.GetValue<long>();
            Ema.InitialWeightShare = CheckpointHeaders.InitialWeightShare(header);
            stream = new DataStream(Data, Options.Seed) { Position = header["data_position"]!.GetValue<long>() };
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
}
