using System.Text.Json.Nodes;
using DiffusionFunctional.Models;

namespace DiffusionFunctional.Interop;

/// <summary>
/// Where imported weights come from: the weights file, and the config.json and scheduler_config.json that describe
/// them when present. A folder may be a diffusers model folder, or a pipeline folder with <c>unet/</c> and
/// <c>scheduler/</c> (as <c>DDPMPipeline.save_pretrained</c> writes); a file may be safetensors or any torch.save file.
/// </summary>
public sealed record WeightsSource(string WeightsFile, string? ConfigFile, string? SchedulerFile)
{
    private static readonly string[] PreferredNames = [WeightsExport.SafetensorsName, "diffusion_pytorch_model.bin"];
    private static readonly string[] WeightExtensions = [".safetensors", ".bin", ".pt", ".pth", ".ckpt"];

    /// <summary>Finds the files of <paramref name="from"/> (a folder or a weights file).</summary>
    public static WeightsSource Locate(string from)
    {
        if (string.IsNullOrWhiteSpace(from)) throw new BadInputException("a weights folder or file is required");
        if (File.Exists(from))
        {
            var folder = Path.GetDirectoryName(Path.GetFullPath(from))!;
            return new WeightsSource(from, Beside(folder, DiffusersUNetConfig.FileName), Beside(folder, DiffusersSchedulerConfig.FileName));
        }
        if (!Directory.Exists(from)) throw new BadInputException($"weights not found: {from}");
        var unet = Path.Combine(from, "unet");
        if (!HasWeights(from) && Directory.Exists(unet))
        {
            var pipeline = Locate(unet);
            return pipeline with { SchedulerFile = Beside(Path.Combine(from, "scheduler"), DiffusersSchedulerConfig.FileName) ?? pipeline.SchedulerFile };
        }
        return new WeightsSource(FindWeights(from), Beside(from, DiffusersUNetConfig.FileName), Beside(from, DiffusersSchedulerConfig.FileName));
    }

    /// <summary>Reads the weights, whatever the format (safetensors by its header, torch.save otherwise).</summary>
    public StateDict ReadWeights() => LooksLikeSafetensors(WeightsFile) ? SafetensorsFile.Read(WeightsFile) : TorchFile.Read(WeightsFile);

    /// <summary>The parsed config.json, or null when there is none.</summary>
    public JsonObject? ReadConfig() => ReadJson(ConfigFile);

    /// <summary>The parsed scheduler_config.json, or null when there is none.</summary>
    public JsonObject? ReadScheduler() => ReadJson(SchedulerFile);

    /// <summary>
    /// The configuration of a file without config.json, from its tensor shapes: the structure (widths, blocks, attention
    /// levels) is read from the shapes and must be that of a named model, which supplies what shapes cannot tell (GroupNorm
    /// groups, attention heads, image size, dropout).
    /// </summary>
    public static (UNetConfig Config, string Name) InferConfig(IReadOnlyDictionary<string, long[]> shapes, string file, int? imageSize)
    {
        long[] Shape(string key) => shapes.TryGetValue(key, out var s) ? s
            : throw new BadInputException($"{file} has no config.json and no {key} to read the model's shape from; pass --model NAME");
        var conv = Shape("conv_in.weight");
        var (c0, channels) = ((int)conv[0], (int)conv[1]);
        var levels = CountIndices(shapes.Keys, "down_blocks.");
        var multipliers = Enumerable.Range(0, levels).Select(i => (int)(Shape($"down_blocks.{i}.resnets.0.conv1.weight")[0] / c0)).ToArray();
        var blocks = CountIndices(shapes.Keys, "down_blocks.0.resnets.");
        var attention = Enumerable.Range(0, levels).Where(i => shapes.Keys.Any(k => k.StartsWith($"down_blocks.{i}.attentions.", StringComparison.Ordinal))).ToArray();
        foreach (var name in UNetConfig.Names)
        {
            var named = UNetConfig.Named(name, channels, imageSize);
            if (named.BaseChannels == c0 && named.ChannelMultipliers.SequenceEqual(multipliers) && named.ResBlocksPerLevel == blocks && named.AttentionLevels.SequenceEqual(attention))
                return (named, name);
        }
        throw new BadInputException($"{file} has no config.json and its shapes (base channels {c0}, multipliers [{string.Join(", ", multipliers)}], {blocks} blocks per level, attention at [{string.Join(", ", attention)}]) match no named model; pass --model NAME or add a config.json");
    }

    private static int CountIndices(IEnumerable<string> keys, string prefix) =>
        keys.Where(k => k.StartsWith(prefix, StringComparison.Ordinal))
            .Select(k => k[prefix.Length..].Split('.')[0])
            .Where(s => int.TryParse(s, out _)).Distinct().Count();

    private static bool HasWeights(string folder) =>
        Directory.EnumerateFiles(folder).Any(f => WeightExtensions.Contains(Path.GetExtension(f).ToLowerInvariant()));

    private static string FindWeights(string folder)
    {
        var index = Directory.EnumerateFiles(folder, "*.index.json").FirstOrDefault();
        if (index is not null) throw new BadInputException($"{folder} holds sharded weights ({Path.GetFileName(index)}); only single-file weights are supported");
        foreach (var name in PreferredNames)
            if (File.Exists(Path.Combine(folder, name))) return Path.Combine(folder, name);
        var candidates = Directory.EnumerateFiles(folder).Where(f => WeightExtensions.Contains(Path.GetExtension(f).ToLowerInvariant())).Order().ToList();
        return candidates.Count switch
        {
            1 => candidates[0],
            0 => throw new BadInputException($"{folder} holds no weights file ({WeightsExport.SafetensorsName}, diffusion_pytorch_model.bin, *.pt)"),
            _ => throw new BadInputException($"{folder} holds {candidates.Count} weights files ({string.Join(", ", candidates.Select(Path.GetFileName))}); name one"),
        };
    }

    private static string? Beside(string folder, string name) => File.Exists(Path.Combine(folder, name)) ? Path.Combine(folder, name) : null;

    private static bool LooksLikeSafetensors(string path)
    {
        using var file = File.OpenRead(path);
        Span<byte> head = stackalloc byte[9];
        if (file.Read(head) < 9) return path.EndsWith(".safetensors", StringComparison.OrdinalIgnoreCase);
        var length = BitConverter.ToUInt64(head[..8]);
        return head[8] == (byte)'{' && length < (ulong)file.Length || path.EndsWith(".safetensors", StringComparison.OrdinalIgnoreCase);
    }

    private static JsonObject? ReadJson(string? path)
    {
        if (path is null) return null;
        try { return JsonNode.Parse(File.ReadAllText(path)) as JsonObject ?? throw new BadInputException($"{path} is not a JSON object"); }
        catch (System.Text.Json.JsonException e) { throw new BadInputException($"{path} is not valid JSON: {e.Message}"); }
    }
}
