using System.Collections.Concurrent;

namespace DiffusionFunctional.Weighting;

/// <summary>How a method turns cluster losses into an update, which decides its cost.</summary>
public enum WeightingKind
{
    /// <summary>One backward pass of a weighted loss.</summary>
    Loss,
    /// <summary>k backward passes every step (one per cluster), combined by the method.</summary>
    Gradient,
    /// <summary>k backward passes every few steps to refresh its weights, one weighted backward in between (Nash-MTL).</summary>
    AmortisedGradient,
}

/// <summary>One hyper-parameter of a method: its key, the <c>dfn train</c> option that sets it, its default and a check.</summary>
/// <param name="Key">The key within the method (<c>gamma</c>, <c>every</c>).</param>
/// <param name="Option">The command-line option that sets it (<c>--snr-gamma</c>); null when only the API does.</param>
/// <param name="Default">The value used when none is given.</param>
/// <param name="Description">One line for help texts and docs.</param>
/// <param name="Check">Null when a value is acceptable, else why not (without the option's name).</param>
public sealed record WeightingSetting(string Key, string? Option, double Default, string Description, Func<double, string?> Check)
{
    /// <summary>A positive finite number.</summary>
    public static string? Positive(double v) => v > 0 && double.IsFinite(v) ? null : $"must be a finite number above 0, got {v}";
    /// <summary>A whole number of at least 1.</summary>
    public static string? PositiveInteger(double v) => v >= 1 && v == Math.Floor(v) && v <= int.MaxValue ? null : $"must be a whole number of at least 1, got {v}";
    /// <summary>A number in [0, 1).</summary>
    public static string? Fraction(double v) => v >= 0 && v < 1 ? null : $"must lie in [0, 1), got {v}";
}

/// <summary>What a method's factory is given: the clusters, the run's seed and prediction type, and the settings.</summary>
/// <param name="Clusters">k.</param>
/// <param name="Seed">The run's seed (for a method's own generator).</param>
/// <param name="VPrediction">Whether the network predicts v (Min-SNR's weight depends on it).</param>
/// <param name="Method">The method being built.</param>
/// <param name="Settings">The chosen settings (defaults for the rest).</param>
public sealed record WeightingContext(int Clusters, long Seed, bool VPrediction, WeightingDescriptor Method, WeightingSettings Settings)
{
    /// <summary>The value of this method's <paramref name="key"/>: the one chosen, else its default.</summary>
    /// <exception cref="ArgumentException">The method declares no such setting.</exception>
    public double Setting(string key) =>
        Settings.Get(Method.Name, key, Method.Settings.FirstOrDefault(s => s.Key == key)?.Default
            ?? throw new ArgumentException($"weighting '{Method.Name}' declares no setting '{key}'", nameof(key)));
}

/// <summary>Everything the project knows about a weighting method, in one place: name, kind, whether it balances
/// clusters, its settings, how to build it, and a one-line description for help texts.</summary>
/// <param name="Name">The name users choose it by (<c>--weighting</c>, <c>dfn demo --methods</c>).</param>
/// <param name="Kind">How it computes its update.</param>
/// <param name="NeedsClusters">Whether it balances clusters (with k = 1 it would be plain vanilla): <c>dfn demo</c>
/// gives such methods the default clusters when none are named.</param>
/// <param name="Description">One line: what it does, with its source.</param>
/// <param name="Settings">Its hyper-parameters.</param>
/// <param name="Create">Builds it.</param>
public sealed record WeightingDescriptor(
    string Name, WeightingKind Kind, bool NeedsClusters, string Description, IReadOnlyList<WeightingSetting> Settings,
    Func<WeightingContext, IWeighting> Create);

/// <summary>
/// The registry of weighting methods: the built-in ones, and any a program adds with <see cref="Register"/> (one class
/// and one registration: docs/extending.md). The trainer, <c>dfn train</c>'s help, the demo, reproduce and the
/// benchmarks all read it.
/// </summary>
public static class WeightingRegistry
{
    private static readonly ConcurrentDictionary<string, WeightingDescriptor> Registered = new(StringComparer.Ordinal);
    private static readonly List<string> Order = [];
    private static readonly Lock Gate = new();

    static WeightingRegistry()
    {
        foreach (var descriptor in BuiltInWeightings.All) Register(descriptor);
    }

    /// <summary>The registered methods, built-in ones first, in registration order.</summary>
    public static IReadOnlyList<WeightingDescriptor> All
    {
        get { lock (Gate) return [.. Order.Select(n => Registered[n])]; }
    }

    /// <summary>Their names.</summary>
    public static IReadOnlyList<string> Names => [.. All.Select(d => d.Name)];

    /// <summary>Adds a method (or replaces one of the same name registered by the program itself; a built-in name is
    /// refused so that checkpoints keep meaning what they say).</summary>
    /// <exception cref="ArgumentException">A blank or badly formed name, or a built-in one taken again.</exception>
    public static void Register(WeightingDescriptor descriptor)
    {
        ArgumentNullException.ThrowIfNull(descriptor);
        var name = descriptor.Name;
        if (string.IsNullOrWhiteSpace(name) || name != name.Trim().ToLowerInvariant() || name.Any(c => c is ':' or '+' or ',' or '~' or ' '))
            throw new ArgumentException($"a weighting name must be lower case without ':', '+', ',', '~' or spaces, got '{name}'", nameof(descriptor));
        lock (Gate)
        {
            if (Registered.TryGetValue(name, out var existing) && BuiltInWeightings.All.Contains(existing))
                throw new ArgumentException($"'{name}' is a built-in weighting and cannot be replaced", nameof(descriptor));
            if (!Registered.ContainsKey(name)) Order.Add(name);
            Registered[name] = descriptor;
        }
    }

    /// <summary>The method named <paramref name="name"/> (any case, surrounding spaces ignored), or null.</summary>
    public static WeightingDescriptor? Find(string? name) =>
        Registered.TryGetValue((name ?? "").Trim().ToLowerInvariant(), out var d) ? d : null;

    /// <summary>The method named <paramref name="name"/>.</summary>
    /// <exception cref="BadInputException">No such method, naming the registered ones.</exception>
    public static WeightingDescriptor Get(string? name) =>
        Find(name) ?? throw new BadInputException($"unknown weighting '{name}' (expected one of: {string.Join(", ", Names)})");

    /// <summary>Builds the method <paramref name="name"/> for <paramref name="clusters"/> clusters.</summary>
    /// <exception cref="BadInputException">An unknown method, or a setting its check refuses.</exception>
    public static IWeighting Create(string name, int clusters, WeightingSettings? settings = null, long seed = 0, bool vPrediction = false)
    {
        var descriptor = Get(name);
        settings ??= WeightingSettings.Defaults;
        Validate(descriptor, settings);
        return descriptor.Create(new WeightingContext(clusters, seed, vPrediction, descriptor, settings));
    }

    /// <summary>Refuses a value of one of the method's settings that its check does not accept.</summary>
    /// <exception cref="BadInputException">Naming the option (or the key) and the value.</exception>
    public static void Validate(WeightingDescriptor descriptor, WeightingSettings settings)
    {
        foreach (var s in descriptor.Settings)
            if (s.Check(settings.Get(descriptor.Name, s.Key, s.Default)) is { } problem)
                throw new BadInputException($"{s.Option ?? WeightingSettings.Key(descriptor.Name, s.Key)} {problem}");
    }
}
