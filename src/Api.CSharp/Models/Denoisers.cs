using System.Text.Json;
using System.Text.Json.Nodes;

namespace DiffusionFunctional.Models;

/// <summary>
/// The one place that knows every backbone: the kinds a checkpoint header can name (<c>unet</c>, <c>dit</c>, and any
/// registered with <see cref="RegisterKind{TConfig}"/>) and the named presets of <c>--model</c>
/// (<see cref="UNetConfig.Names"/>, <c>dit-mini</c>, <c>dit-small</c>, and any registered with
/// <see cref="RegisterPreset"/>). Checkpoints, the trainer, export, import and the command line all go through it.
/// </summary>
public static class Denoisers
{
    private static readonly object Gate = new();
    private static readonly Dictionary<string, Type> Kinds = new(StringComparer.Ordinal)
    {
        [UNetConfig.KindName] = typeof(UNetConfig),
        [DiTConfig.KindName] = typeof(DiTConfig),
    };
    private static readonly List<(string Name, Func<DenoiserConfig> Make)> Presets = BuiltInPresets();

    /// <summary>
    /// DiT presets sized against the UNets they stand beside: <c>dit-mini</c> (16x16, 0.33M parameters, about the
    /// forward cost of <c>mini</c>) and <c>dit-small</c> (28x28, 1.06M parameters, about the cost of <c>small</c>).
    /// </summary>
    private static List<(string, Func<DenoiserConfig>)> BuiltInPresets()
    {
        var presets = UNetConfig.Names.Select(n => (n, (Func<DenoiserConfig>)(() => UNetConfig.Named(n)))).ToList();
        presets.Add(("dit-mini", () => new DiTConfig { ImageSize = 16, PatchSize = 2, HiddenSize = 64, Depth = 4, Heads = 2 }));
        presets.Add(("dit-small", () => new DiTConfig { ImageSize = 28, PatchSize = 2, HiddenSize = 96, Depth = 6, Heads = 3 }));
        return presets;
    }

    /// <summary>Every preset name <see cref="Named"/> accepts, in the order help texts list them.</summary>
    public static IReadOnlyList<string> Names { get { lock (Gate) return Presets.Select(p => p.Name).ToArray(); } }

    /// <summary>Registers a backbone kind so that checkpoints naming it load (its config type must serialise with System.Text.Json).</summary>
    public static void RegisterKind<TConfig>(string kind) where TConfig : DenoiserConfig
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(kind);
        lock (Gate)
        {
            if (Kinds.TryGetValue(kind, out var known) && known != typeof(TConfig))
                throw new ArgumentException($"backbone kind '{kind}' is already registered to {known.Name}", nameof(kind));
            Kinds[kind] = typeof(TConfig);
        }
    }

    /// <summary>Registers a named preset for <c>--model</c>; its kind must be registered for its checkpoints to load.</summary>
    public static void RegisterPreset(string name, Func<DenoiserConfig> make)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        ArgumentNullException.ThrowIfNull(make);
        var key = name.Trim().ToLowerInvariant();
        lock (Gate)
        {
            if (Presets.Any(p => p.Name == key)) throw new ArgumentException($"model preset '{key}' already exists", nameof(name));
            Presets.Add((key, make));
        }
    }

    /// <summary>
    /// The preset <paramref name="name"/>, optionally for other image channels or size (validated: a UNet's size must
    /// halve through its levels, a DiT's must be a multiple of its patch).
    /// </summary>
    /// <exception cref="BadInputException">An unknown name or a size the preset cannot take.</exception>
    public static DenoiserConfig Named(string name, int? imageChannels = null, int? imageSize = null)
    {
        var key = (name ?? "").Trim().ToLowerInvariant();
        Func<DenoiserConfig>? make;
        lock (Gate) make = Presets.FirstOrDefault(p => p.Name == key).Make;
        if (make is null) throw new BadInputException($"unknown model '{name}' (expected one of: {string.Join(", ", Names)})");
        var config = make();
        config = config with { ImageChannels = imageChannels ?? config.ImageChannels, ImageSize = imageSize ?? config.ImageSize };
        config.Validate();
        return config;
    }

    /// <summary>The configuration as a checkpoint header stores it: every field of its runtime type, and <c>Kind</c>.</summary>
    public static JsonObject ToJson(DenoiserConfig config) =>
        JsonSerializer.SerializeToNode(config, config.GetType())!.AsObject();

    /// <summary>
    /// Reads a configuration written by <see cref="ToJson"/>; a header without <c>Kind</c> was written before there were
    /// kinds and is a UNet's.
    /// </summary>
    /// <exception cref="BadInputException">No configuration, an unknown kind, or fields that do not parse.</exception>
    public static DenoiserConfig FromJson(JsonNode? node, string source)
    {
        if (node is not JsonObject json) throw new BadInputException($"{source} has no model configuration");
        var kind = json["Kind"] is JsonValue v && v.TryGetValue<string>(out var k) ? k : UNetConfig.KindName;
        Type? type;
        lock (Gate) Kinds.TryGetValue(kind, out type);
        if (type is null) throw new BadInputException($"{source} holds a '{kind}' network, which this build does not know (known: {string.Join(", ", KindNames())})");
        try { return (DenoiserConfig)(json.Deserialize(type) ?? throw new BadInputException($"{source} has no model configuration")); }
        catch (JsonException e) { throw new BadInputException($"{source} has an unreadable model configuration ({e.Message})"); }
    }

    private static string[] KindNames() { lock (Gate) return Kinds.Keys.Order().ToArray(); }
}
