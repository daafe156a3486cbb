using System;
using System.Collections.Generic;
using System.Globalization;
using DiffusionFunctional.Core;
using DiffusionFunctional.Generators.Model;
using Microsoft.FSharp.Core;

namespace DiffusionFunctional.Generators;

/// <summary>
/// Validates a request and runs Core's exact clustering on it: the compile-time half of the facade.
/// Every problem becomes a <see cref="DiagnosticInfo"/>; nothing here may throw out of <see cref="Compute"/>.
/// </summary>
internal static class FacadeComputer
{
    public static FacadeOutcome Compute(ClusterRequest request)
    {
        var diagnostics = new List<DiagnosticInfo>();
        FacadeModel? facade = null;
        try
        {
            facade = Validate(request, diagnostics) is { } valid ? Cluster(request, valid, diagnostics) : null;
        }
        catch (Exception exception)
        {
            // Core throws only on inputs Validate rejects; this keeps any surprise a diagnostic, not CS8785.
            diagnostics.Add(Diagnostic(DiagnosticDescriptors.GeneratorFailure, DiagnosticInfo.AttributeAnchor,
                request.Spec.Target.DisplayName, exception.GetType().Name + ": " + exception.Message));
            facade = null;
        }
        return new FacadeOutcome(facade, diagnostics.ToEquatableArray());
    }

    private sealed record ValidConfig(ScheduleKind Schedule, ObjectiveChoice Objective, RoutingModel? Routing);

    private static ValidConfig? Validate(ClusterRequest request, List<DiagnosticInfo> diagnostics)
    {
        var target = request.Spec.Target;
        var config = request.Spec.Config;
        var before = diagnostics.Count;
        if (target.NonPartialType is { } nonPartial)
            diagnostics.Add(Diagnostic(DiagnosticDescriptors.NotPartial, DiagnosticInfo.TypeAnchor, target.DisplayName, nonPartial));
        foreach (var problem in config.Problems)
            diagnostics.Add(Diagnostic(DiagnosticDescriptors.InvalidArgument, problem.Argument, problem.Argument, problem.Problem));

        var timestepsValid = config.Timesteps >= 1 && config.Timesteps <= DiagnosticDescriptors.MaxTimesteps;
        if (!timestepsValid)
            diagnostics.Add(Diagnostic(DiagnosticDescriptors.InvalidTimesteps, "Timesteps", Number(config.Timesteps), Number(DiagnosticDescriptors.MaxTimesteps)));

        if (!NoiseSchedules.TryParseKind(config.Schedule ?? "", out var kind))
            diagnostics.Add(Diagnostic(DiagnosticDescriptors.UnknownSchedule, "Schedule", config.Schedule ?? "null"));

        // Core parses the objective (the library and the command line use the same parse); SnrScale only refines "snr".
        var objectiveKnown = TimestepClusterings.TryChooseObjective(config.Objective ?? "", "", out var choice, out _);
        if (!objectiveKnown) diagnostics.Add(Diagnostic(DiagnosticDescriptors.UnknownObjective, "Objective", config.Objective ?? "null"));
        var scaleKnown = TimestepClusterings.TryParseSnrScale(config.SnrScale ?? "", out _);
        if (!scaleKnown && choice is { Name: "snr" })
            diagnostics.Add(Diagnostic(DiagnosticDescriptors.UnknownSnrScale, "SnrScale", config.SnrScale ?? "null"));
        if (objectiveKnown && scaleKnown) TimestepClusterings.TryChooseObjective(config.Objective!, config.SnrScale ?? "", out choice, out _);
        var needsAffinity = choice is { NeedsAffinity: true };

        if (config.Clusters < 1)
            diagnostics.Add(Diagnostic(DiagnosticDescriptors.InvalidClusterCount, "Clusters", Number(config.Clusters), "it must be at least 1"));
        else if (config.Clusters > DiagnosticDescriptors.MaxClusters)
            diagnostics.Add(Diagnostic(DiagnosticDescriptors.InvalidClusterCount, "Clusters", Number(config.Clusters),
                $"a typed facade supports at most {Number(DiagnosticDescriptors.MaxClusters)} clusters"));
        else if (timestepsValid && !needsAffinity && config.Clusters > config.Timesteps)
            diagnostics.Add(Diagnostic(DiagnosticDescriptors.InvalidClusterCount, "Clusters", Number(config.Clusters),
                $"it cannot exceed the number of timesteps ({Number(config.Timesteps)})"));
        else if (timestepsValid && (long)config.Clusters * config.Timesteps > DiagnosticDescriptors.MaxWork)
            diagnostics.Add(Diagnostic(DiagnosticDescriptors.TooMuchWork, "Clusters", Number(config.Clusters), Number(config.Timesteps) + " timesteps",
                "clusters x timesteps must be at most " + Number(DiagnosticDescriptors.MaxWork)));

        if (needsAffinity)
        {
            if (string.IsNullOrWhiteSpace(config.AffinityFile))
                diagnostics.Add(Diagnostic(DiagnosticDescriptors.AffinityFileNotNamed, "Objective"));
            else if (request.Affinity is { Matches: 0 } missing)
                diagnostics.Add(Diagnostic(DiagnosticDescriptors.AffinityFileNotFound, "AffinityFile", missing.Name));
            else if (request.Affinity is { Matches: > 1 } ambiguous)
                diagnostics.Add(Diagnostic(DiagnosticDescriptors.AffinityFileAmbiguous, "AffinityFile", ambiguous.Name, Number(ambiguous.Matches)));
            else if (request.Affinity is { Text: null } unreadable)
                diagnostics.Add(Diagnostic(DiagnosticDescriptors.AffinityFileMalformed, "AffinityFile", unreadable.Name, "the file could not be read"));
        }
        else if (objectiveKnown && !string.IsNullOrEmpty(config.AffinityFile))
        {
            diagnostics.Add(Diagnostic(DiagnosticDescriptors.AffinityFileIgnored, "AffinityFile", config.AffinityFile!, choice!.Name));
        }

        var routing = RoutingValidator.Validate(config, diagnostics);

        if (HasErrors(diagnostics, before)) return null;
        return new ValidConfig(kind, choice!, routing);
    }

    private static FacadeModel? Cluster(ClusterRequest request, ValidConfig valid, List<DiagnosticInfo> diagnostics)
    {
        var spec = request.Spec;
        var config = spec.Config;
        var schedule = Schedule.create(valid.Schedule, config.Timesteps);
        Objective objective;
        if (!valid.Objective.NeedsAffinity)
            objective = valid.Objective.UsesSnr ? Objective.NewSnrObjective(valid.Objective.Scale) : Objective.TimestepObjective;
        else if (ReadAffinity(request, diagnostics) is { } matrix)
        {
            var groups = (long)matrix.GetLength(0);
            if (config.Clusters * groups * groups > DiagnosticDescriptors.MaxAffinityWork)
            {
                diagnostics.Add(Diagnostic(DiagnosticDescriptors.TooMuchWork, "Clusters", Number(config.Clusters), Number(groups) + " affinity groups",
                    "clusters x groups^2 must be at most " + Number(DiagnosticDescriptors.MaxAffinityWork)));
                return null;
            }
            objective = Objective.NewAffinityObjective(matrix);
        }
        else return null;

        if (!TimestepClusterings.TryCluster(schedule, objective, config.Clusters, out var clusters, out var error))
        {
            diagnostics.Add(ClusteringDiagnostic(error, config));
            return null;
        }
        var bounds = clusters.Boundaries;
        var starts = new double[clusters.Count];
        var ends = new double[clusters.Count];
        for (var c = 0; c < clusters.Count; c++)
        {
            starts[c] = schedule.LogSnr[bounds[c]];
            ends[c] = schedule.LogSnr[bounds[c + 1] - 1];
        }
        if (!request.CoreReferenced)
            diagnostics.Add(Diagnostic(DiagnosticDescriptors.CoreNotReferenced, DiagnosticInfo.TypeAnchor, spec.Target.DisplayName,
                valid.Routing is null ? "Plan member" : "Plan, RoutingWindow or RoutingOverlap member"));
        return new FacadeModel(
            spec.Target, clusters.ScheduleName, clusters.ObjectiveName,
            valid.Objective.UsesSnr ? (valid.Objective.Scale.IsLogScale ? "log" : "raw") : null,
            valid.Objective.NeedsAffinity ? config.AffinityFile : null,
            clusters.Timesteps, bounds.ToEquatableArray(), clusters.Cost, starts.ToEquatableArray(), ends.ToEquatableArray(),
            request.CoreReferenced, ClusterPlan.OfClusters(clusters).Origin, valid.Routing);
    }

    private static double[,]? ReadAffinity(ClusterRequest request, List<DiagnosticInfo> diagnostics)
    {
        var name = request.Affinity?.Name ?? "";
        if (!AffinityMatrices.TryParseSquare(request.Affinity?.Text ?? "", out var matrix, out var parseError))
        {
            diagnostics.Add(Diagnostic(DiagnosticDescriptors.AffinityFileMalformed, "AffinityFile", name, parseError));
            return null;
        }
        if (!TimestepClusterings.TryValidateAffinity(matrix, out var error))
        {
            var descriptor = error.IsAffinityAsymmetric ? DiagnosticDescriptors.AffinityAsymmetric : DiagnosticDescriptors.AffinityFileMalformed;
            diagnostics.Add(Diagnostic(descriptor, "AffinityFile", name, error.Message));
            return null;
        }
        return matrix;
    }

    private static DiagnosticInfo ClusteringDiagnostic(ClusteringError error, ClusterConfig config)
    {
        var message = error.Message;
        if (error is ClusteringError.GroupsDoNotDivide groups)
            return Diagnostic(DiagnosticDescriptors.GroupsDoNotDivide, "AffinityFile", config.AffinityFile ?? "", Number(groups.groups), Number(groups.timesteps));
        if (error.IsInvalidClusterCount)
            return Diagnostic(DiagnosticDescriptors.InvalidClusterCount, "Clusters", Number(config.Clusters), message);
        return Diagnostic(DiagnosticDescriptors.GeneratorFailure, DiagnosticInfo.AttributeAnchor, "TaskClusters", message);
    }

    private static bool HasErrors(List<DiagnosticInfo> diagnostics, int from)
    {
        for (var i = from; i < diagnostics.Count; i++)
        {
            if (DiagnosticDescriptors.Get(diagnostics[i].Id).DefaultSeverity == Microsoft.CodeAnalysis.DiagnosticSeverity.Error) return true;
        }
        return false;
    }

    private static DiagnosticInfo Diagnostic(Microsoft.CodeAnalysis.DiagnosticDescriptor descriptor, string anchor, params string[] arguments) =>
        new(descriptor.Id, anchor, arguments.ToEquatableArray());

    private static string Number(long value) => value.ToString(CultureInfo.InvariantCulture);
}
