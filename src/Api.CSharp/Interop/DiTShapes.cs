using DiffusionFunctional.Models;

namespace DiffusionFunctional.Interop;

/// <summary>
/// Reads a <see cref="DiTConfig"/> from the tensor shapes of a DiT state_dict (dfn's keys, which are the DiT paper's
/// code's without the class embedding). Shapes give the patch, width, depth, MLP ratio, channels and image size; they
/// cannot give the number of attention heads, which a preset of the same shape (or <c>--model</c>) supplies.
/// </summary>
internal static class DiTShapes
{
    /// <summary>The patch embedding's convolution, present in every DiT state_dict.</summary>
    public const string PatchWeight = "x_embedder.proj.weight";

    /// <summary>Whether these keys are a DiT's.</summary>
    public static bool IsDiT(IEnumerable<string> keys) => keys.Contains(PatchWeight);

    /// <summary>The configuration the shapes describe and the preset that gave its heads.</summary>
    /// <exception cref="BadInputException">A missing tensor, or no preset of this shape to take the heads from.</exception>
    public static (DiTConfig Config, string Preset) Infer(IReadOnlyDictionary<string, long[]> shapes, string file, int? imageSize)
    {
        long[] Shape(string key) => shapes.TryGetValue(key, out var s) ? s
            : throw new BadInputException($"{file} looks like a DiT but has no {key}; pass --model NAME");
        var patch = Shape(PatchWeight);
        var (hidden, channels, side) = ((int)patch[0], (int)patch[1], (int)patch[2]);
        var tokens = Shape("pos_embed")[1];
        var grid = (int)Math.Round(Math.Sqrt(tokens));
        var depth = shapes.Keys.Where(k => k.StartsWith("blocks.", StringComparison.Ordinal)).Select(k => k.Split('.')[1]).Distinct().Count();
        var mlpRatio = (int)(Shape("blocks.0.mlp.fc1.weight")[0] / hidden);
        var shaped = new DiTConfig
        {
            ImageChannels = channels, ImageSize = imageSize ?? grid * side, PatchSize = side, HiddenSize = hidden, Depth = depth, MlpRatio = mlpRatio,
        };
        foreach (var name in Denoisers.Names)
            if (Denoisers.Named(name) is DiTConfig preset && preset.PatchSize == side && preset.HiddenSize == hidden && preset.Depth == depth && preset.MlpRatio == mlpRatio)
            {
                var config = shaped with { Heads = preset.Heads };
                config.Validate();
                return (config, name);
            }
        throw new BadInputException($"{file} is a DiT (patch {side}, width {hidden}, depth {depth}) whose attention heads the shapes cannot tell and no preset matches; pass --model NAME");
    }
}
