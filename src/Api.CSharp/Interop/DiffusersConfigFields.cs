using System.Text.Json;
using System.Text.Json.Nodes;

namespace DiffusionFunctional.Interop;

/// <summary>
/// Reads fields of a diffusers config file the way <c>ConfigMixin</c> does: an absent field takes the class's default
/// (given by the caller, from the class's <c>__init__</c>), a present <c>null</c> is None. Every refusal is one line
/// naming the file and the field.
/// </summary>
internal sealed class Fields(JsonObject given, string file = "config.json")
{
    // Re-parsed so every value is JSON-backed (a JsonValue built from a C# int refuses GetValue<double>).
    private readonly JsonObject json = JsonNode.Parse(given.ToJsonString())!.AsObject();

    /// <summary>The raw node, or null when the field is absent or null.</summary>
    public JsonNode? Node(string name) => json.TryGetPropertyValue(name, out var node) ? node : null;

    /// <summary>Whether the field is present (even as null).</summary>
    public bool Has(string name) => json.ContainsKey(name);

    /// <summary>A refusal naming the field, its value and what would be accepted.</summary>
    public BadInputException Unsupported(string name, string? value, string accepted) =>
        new($"{file}: {name} = {value ?? "null"} has no dfn equivalent (dfn supports {accepted})");

    /// <summary>A string field, or <paramref name="absent"/> when missing.</summary>
    public string String(string name, string absent) => Read(name, absent, n => n.GetValue<string>());

    /// <summary>A boolean field, or <paramref name="absent"/> when missing.</summary>
    public bool Bool(string name, bool absent) => Read(name, absent, n => n.GetValue<bool>());

    /// <summary>A number field, or <paramref name="absent"/> when missing.</summary>
    public double Number(string name, double absent) => Read(name, absent, n => n.GetValue<double>());

    /// <summary>An integer field, or <paramref name="absent"/> when missing.</summary>
    public int Int(string name, int absent) => Read(name, absent, AsInt);

    /// <summary>An integer that may be null; <paramref name="absent"/> when the field is missing.</summary>
    public int? OptionalInt(string name, int? absent = null) =>
        !Has(name) ? absent : Node(name) is { } n ? Read(name, 0, AsInt) : null;

    /// <summary>A list of integers, or <paramref name="absent"/> when missing.</summary>
    public int[] Ints(string name, int[] absent) => Read(name, absent, n => n.AsArray().Select(x => AsInt(x!)).ToArray());

    /// <summary>A list of numbers (empty when missing).</summary>
    public double[] Numbers(string name) => Read(name, Array.Empty<double>(), n => n.AsArray().Select(x => x!.GetValue<double>()).ToArray());

    /// <summary>A list of strings, or <paramref name="absent"/> when missing.</summary>
    public string[] Strings(string name, string[] absent) => Read(name, absent, n => n.AsArray().Select(x => x!.GetValue<string>()).ToArray());

    /// <summary>Refuses unless the field (or its default when absent) equals <paramref name="expected"/>.</summary>
    public void Require<T>(string name, T expected) where T : notnull
    {
        if (Has(name) && Node(name) is null) throw Unsupported(name, null, Show(expected));
        var value = Read(name, expected, n => n.GetValue<T>());
        if (!value.Equals(expected)) throw Unsupported(name, Show(value), Show(expected));
    }

    /// <summary>Refuses unless the number (or its default <paramref name="absent"/>) equals <paramref name="expected"/>.</summary>
    public void RequireNumber(string name, double absent, double expected)
    {
        var value = Number(name, absent);
        if (Math.Abs(value - expected) > 1e-12 * Math.Max(1, Math.Abs(expected))) throw Unsupported(name, value.ToString("R"), expected.ToString("R"));
    }

    /// <summary>Refuses unless the field is absent or null.</summary>
    public void RequireNull(string name)
    {
        if (Node(name) is { } n) throw Unsupported(name, n.ToJsonString(), "null");
    }

    private T Read<T>(string name, T absent, Func<JsonNode, T> read)
    {
        if (!json.TryGetPropertyValue(name, out var node)) return absent;
        if (node is null) throw new BadInputException($"{file}: {name} is null; a value is needed");
        try { return read(node); }
        catch (Exception e) when (e is InvalidOperationException or FormatException or JsonException or NullReferenceException)
        {
            throw new BadInputException($"{file}: {name} = {node.ToJsonString()} is not a {typeof(T).Name.ToLowerInvariant()}");
        }
    }

    private static int AsInt(JsonNode node)
    {
        var value = node.GetValue<double>();
        return value == Math.Floor(value) && Math.Abs(value) <= int.MaxValue ? (int)value : throw new FormatException("not an integer");
    }

    private static string Show<T>(T value) => value switch
    {
        bool b => b ? "true" : "false",
        string s => $"\"{s}\"",
        _ => value?.ToString() ?? "null",
    };
}
