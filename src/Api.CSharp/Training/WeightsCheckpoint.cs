using System.Text.Json;
using System.Text.Json.Nodes;
using DiffusionFunctional.Diffusion;
using DiffusionFunctional.Models;

namespace DiffusionFunctional.Training;

/// <summary>
/// A checkpoint that holds weights only (from <c>dfn import</c>): the same container, header and first two sections as a
/// training checkpoint (model and EMA, here the same weights), so everything that samples, exports or evaluates a
/// checkpoint reads it unchanged through <see cref="CheckpointModel.Load"/>. It carries no optimiser, weighting,
/// RNG or data state, so it cannot be resumed: its header says <c>"kind": "weights"</c> and
/// <see cref="Trainer.LoadCheckpoint"/> refuses it with one line.
/// </summary>
public static class WeightsCheckpoint
{
    /// <summary>The header's <c>kind</c> of a weights-only checkpoint.</summary>
    public const string Kind = "weights";

    /// <summary>Writes <paramref name="model"/>'s weights (as both model and EMA) and the diffusion, atomically.</summary>
    public static void Write(string path, Denoiser model, GaussianDiffusion diffusion, string source)
    {
        var header = new JsonObject
        {
            ["format"] = CheckpointFile.CurrentFormat,
            ["kind"] = Kind,
            ["step"] = 0,
            ["model"] = Denoisers.ToJson(model.Config),
            ["diffusion"] = CheckpointHeaders.Diffusion(diffusion),
            // The "EMA" is the imported weights themselves: no share of random initial weights (CheckpointModel's warning).
            ["ema_initial_weight_share"] = 0.0,
            ["source"] = source,
        };
        CheckpointFile.Write(path, header, w =>
        {
            model.save(w);
            model.save(w);
        });
    }

    /// <summary>True when a checkpoint header is that of a weights-only checkpoint.</summary>
    public static bool IsWeightsOnly(JsonObject header) => (string?)header["kind"] == Kind;
}
