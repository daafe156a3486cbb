using System.Collections.Generic;
using System.Globalization;
using DiffusionFunctional.Generators.Model;

namespace DiffusionFunctional.Generators;

/// <summary>
/// Validates the routing half of a [TaskClusters] configuration: Denoising Task Routing as Core's TaskRouting
/// defines it (Park et al., ICLR 2024; docs/routing-and-densities.md). Problems become DFN017..DFN020.
/// </summary>
internal static class RoutingValidator
{
    public const string None = "none";
    public const string Dtr = "dtr";

    /// <summary>
    /// The routing a valid configuration asks for (null for none), adding a diagnostic for every problem.
    /// The rules are Core's: share in (0, 1], sharpness positive and finite (TaskRouting.window rejects the rest).
    /// </summary>
    public static RoutingModel? Validate(ClusterConfig config, List<DiagnosticInfo> diagnostics)
    {
        // Null only when the reader already reported the argument (DFN013): the default, none, applies.
        var name = (config.Routing ?? None).Trim().ToLowerInvariant();
        if (name == None)
        {
            // As UNetConfig.WithRouting does, settings beside "none" change nothing: say so rather than fail.
            if (config.RoutingShare is { } share)
                diagnostics.Add(Diagnostic(DiagnosticDescriptors.RoutingOptionIgnored, "RoutingShare", "RoutingShare", Number(share)));
            if (config.RoutingSharpness is { } sharpness)
                diagnostics.Add(Diagnostic(DiagnosticDescriptors.RoutingOptionIgnored, "RoutingSharpness", "RoutingSharpness", Number(sharpness)));
            return null;
        }
        var known = name == Dtr;
        if (!known) diagnostics.Add(Diagnostic(DiagnosticDescriptors.UnknownRouting, "Routing", config.Routing ?? "null"));

        // Checked for an unknown name too, so that every problem is reported at once.
        var routingShare = config.RoutingShare ?? TaskClustersAttributeSource.DefaultRoutingShare;
        var routingSharpness = config.RoutingSharpness ?? TaskClustersAttributeSource.DefaultRoutingSharpness;
        var shareValid = routingShare > 0.0 && routingShare <= 1.0;
        if (!shareValid)
            diagnostics.Add(Diagnostic(DiagnosticDescriptors.InvalidRoutingShare, "RoutingShare", Number(routingShare)));
        var sharpnessValid = routingSharpness > 0.0 && !double.IsInfinity(routingSharpness);
        if (!sharpnessValid)
            diagnostics.Add(Diagnostic(DiagnosticDescriptors.InvalidRoutingSharpness, "RoutingSharpness", Number(routingSharpness)));

        return known && shareValid && sharpnessValid ? new RoutingModel(Dtr, routingShare, routingSharpness) : null;
    }

    private static DiagnosticInfo Diagnostic(Microsoft.CodeAnalysis.DiagnosticDescriptor descriptor, string anchor, params string[] arguments) =>
        new(descriptor.Id, anchor, arguments.ToEquatableArray());

    /// <summary>A double as a user reads it back: round-trip digits, invariant culture (NaN, Infinity, -Infinity).</summary>
    internal static string Number(double value) => value.ToString("R", CultureInfo.InvariantCulture);
}
