using System.Collections.Immutable;
using System.Globalization;

namespace DiffusionFunctional.Weighting;

/// <summary>
/// The hyper-parameters chosen for weighting methods, keyed by method and setting (<c>min-snr.gamma</c>,
/// <c>nash.every</c>): only what differs from a method's defaults (<see cref="WeightingSetting.Default"/>) needs to be
/// given. A method reads only its own keys, so adding a method, or a setting of one, changes nothing for the others
/// (nor the identity of their checkpoints).
/// </summary>
public sealed record WeightingSettings
{
    /// <summary>No setting changed: every method at its defaults.</summary>
    public static WeightingSettings Defaults { get; } = new();

    /// <summary>The values given, by <c>method.setting</c>.</summary>
    public ImmutableSortedDictionary<string, double> Values { get; init; } = ImmutableSortedDictionary<string, double>.Empty;

    /// <summary>These settings with <paramref name="method"/>'s <paramref name="setting"/> set to <paramref name="value"/>.</summary>
    public WeightingSettings With(string method, string setting, double value) =>
        this with { Values = Values.SetItem(Key(method, setting), value) };

    /// <summary>The value of <paramref name="method"/>'s <paramref name="setting"/>, or <paramref name="fallback"/>.</summary>
    public double Get(string method, string setting, double fallback) => Values.TryGetValue(Key(method, setting), out var v) ? v : fallback;

    /// <summary>The key of a method's setting: <c>method.setting</c>, lower case.</summary>
    public static string Key(string method, string setting) => $"{method.Trim().ToLowerInvariant()}.{setting.Trim().ToLowerInvariant()}";

    /// <summary>The settings of <paramref name="method"/> as "key=value,..." with its defaults filled in (what a
    /// checkpoint's identity records for it); empty for a method without settings.</summary>
    public string Describe(WeightingDescriptor method) => string.Join(",", method.Settings
        .Select(s => $"{s.Key}={Get(method.Name, s.Key, s.Default).ToString("R", CultureInfo.InvariantCulture)}"));

    /// <summary>Equal when the same values are given (the dictionary compared by content).</summary>
    public bool Equals(WeightingSettings? other) => other is not null && Values.Count == other.Values.Count && !Values.Except(other.Values).Any();

    /// <inheritdoc/>
    public override int GetHashCode() => Values.Aggregate(0, (h, p) => HashCode.Combine(h, p.Key, p.Value));
}
