using System;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.Text;

namespace DiffusionFunctional.Generators.Model;

// Every model here is a record of strings, numbers and equatable arrays: the incremental pipeline compares
// them by value to decide what is cached. No symbol, syntax node or Location is ever stored (they would pin
// whole compilations in memory and never compare equal across edits).

/// <summary>A type declaration header: keyword ("class", "record struct", ...), identifier, type parameters.</summary>
internal sealed record TypeHeader(string Keyword, string Name, string TypeParameters)
{
    public string Declaration => $"partial {Keyword} {Name}{TypeParameters}";
}

/// <summary>The type a facade is generated into.</summary>
/// <param name="NonPartialType">The first type (the target or one that contains it) lacking <c>partial</c>, if any.</param>
internal sealed record FacadeTarget(
    string Namespace,
    EquatableArray<TypeHeader> ContainingTypes,
    TypeHeader Type,
    string DisplayName,
    string HintName,
    string? NonPartialType);

/// <summary>A TaskClusters argument that cannot be used, and why (in words).</summary>
internal sealed record ArgumentProblem(string Argument, string Problem);

/// <summary>The attribute's values as written (defaults filled in); not yet validated.</summary>
/// <param name="RoutingShare">Null when not written (Core's default applies), so that an option given with
/// Routing = "none" can be reported as ignored.</param>
internal sealed record ClusterConfig(
    string? Schedule,
    int Timesteps,
    int Clusters,
    string? Objective,
    string? SnrScale,
    string? AffinityFile,
    string? Routing,
    double? RoutingShare,
    double? RoutingSharpness,
    EquatableArray<ArgumentProblem> Problems);

/// <summary>What the user asked for, free of locations so that edits which only move code stay cached.</summary>
internal sealed record FacadeSpec(FacadeTarget Target, ClusterConfig Config);

/// <summary>Where a diagnostic points, as plain values.</summary>
internal sealed record LocationInfo(string FilePath, TextSpan Span, LinePositionSpan LineSpan)
{
    public Location ToLocation() => Location.Create(FilePath, Span, LineSpan);

    public static LocationInfo? From(SyntaxNode? node)
    {
        if (node is null) return null;
        var location = node.GetLocation();
        return location.SourceTree is null ? null : new LocationInfo(location.SourceTree.FilePath, location.SourceSpan, location.GetLineSpan().Span);
    }

    public static LocationInfo? From(SyntaxToken token)
    {
        var location = token.GetLocation();
        return location.SourceTree is null ? null : new LocationInfo(location.SourceTree.FilePath, location.SourceSpan, location.GetLineSpan().Span);
    }
}

/// <summary>The location of one named argument of the attribute.</summary>
internal sealed record ArgumentLocation(string Name, LocationInfo Location);

/// <summary>Where the attribute, the type's identifier and each argument sit in source.</summary>
internal sealed record FacadeLocations(LocationInfo? Attribute, LocationInfo? Identifier, EquatableArray<ArgumentLocation> Arguments)
{
    /// <summary>The location for an anchor: an argument name, <see cref="DiagnosticInfo.TypeAnchor"/> or the attribute.</summary>
    public Location Resolve(string anchor)
    {
        if (anchor == DiagnosticInfo.TypeAnchor && Identifier is not null) return Identifier.ToLocation();
        foreach (var argument in Arguments)
        {
            if (string.Equals(argument.Name, anchor, StringComparison.Ordinal)) return argument.Location.ToLocation();
        }
        return Attribute?.ToLocation() ?? Identifier?.ToLocation() ?? Location.None;
    }
}

/// <summary>One request from the syntax provider: the spec and, separately, its locations.</summary>
internal sealed record FacadeRequest(FacadeSpec Spec, FacadeLocations Locations);

/// <summary>The named AdditionalFiles item for the affinity objective, once looked up.</summary>
/// <param name="Matches">How many AdditionalFiles items matched the name (0, 1 or more).</param>
/// <param name="Text">The file's text when exactly one matched and it could be read.</param>
internal sealed record AffinityInput(string Name, int Matches, string? Text);

/// <summary>Everything the clustering step needs; equal requests reuse the previous result.</summary>
internal sealed record ClusterRequest(FacadeSpec Spec, bool CoreReferenced, AffinityInput? Affinity);

/// <summary>A diagnostic as data: descriptor ID, where it points (an anchor) and its message arguments.</summary>
internal sealed record DiagnosticInfo(string Id, string Anchor, EquatableArray<string> Arguments)
{
    /// <summary>Anchor for the type's identifier (argument names anchor to the argument, anything else to the attribute).</summary>
    public const string TypeAnchor = "#type";

    public const string AttributeAnchor = "#attribute";
}

/// <summary>The values a facade is emitted from: the compile-time clustering result.</summary>
internal sealed record FacadeModel(
    FacadeTarget Target,
    string Schedule,
    string Objective,
    string? SnrScale,
    string? AffinityFile,
    int Timesteps,
    EquatableArray<int> Boundaries,
    double Cost,
    EquatableArray<double> LogSnrStart,
    EquatableArray<double> LogSnrEnd,
    bool IncludePlan,
    string Origin,
    RoutingModel? Routing)
{
    public int Count => Boundaries.Count - 1;
}

/// <summary>Validated denoising task routing (docs/routing-and-densities.md): its canonical name and DTR's settings.</summary>
internal sealed record RoutingModel(string Name, double Share, double Sharpness);

/// <summary>The clustering step's result: a facade to emit (when the configuration is valid) and diagnostics.</summary>
internal sealed record FacadeOutcome(FacadeModel? Facade, EquatableArray<DiagnosticInfo> Diagnostics);
