using System.Collections.Generic;
using Microsoft.CodeAnalysis;

namespace DiffusionFunctional.Generators;

/// <summary>
/// Every diagnostic the TaskClusters generator reports. IDs are stable: never renumber or reuse one.
/// </summary>
public static class DiagnosticDescriptors
{
    private const string Category = "DiffusionFunctional.TaskClusters";

    /// <summary>The most timesteps a facade may cluster at compile time.</summary>
    public const int MaxTimesteps = 1_000_000;

    /// <summary>The most clusters a typed facade supports (one member and one constructor parameter each).</summary>
    public const int MaxClusters = 64;

    /// <summary>Upper bound on clusters x timesteps, which bounds the DP's time inside the compiler: measured on a
    /// 2-core machine, k x T = 2,000,000 takes 3 to 5 s (T = 100,000 with k = 20; T = 1,000,000 with k = 2).</summary>
    public const long MaxWork = 2_000_000;

    /// <summary>Upper bound on clusters x groups^2 for the affinity objective, whose DP is quadratic in the groups.</summary>
    public const long MaxAffinityWork = 20_000_000;

    public static readonly DiagnosticDescriptor NotPartial = Error("DFN001", "Facade type must be partial",
        "'{0}' must be declared partial for [TaskClusters] to add members, and so must every type containing it ('{1}' is not)");

    public static readonly DiagnosticDescriptor InvalidClusterCount = Error("DFN002", "Invalid cluster count",
        "Clusters = {0} is invalid: {1}");

    public static readonly DiagnosticDescriptor InvalidTimesteps = Error("DFN003", "Invalid number of timesteps",
        "Timesteps = {0} is invalid: it must lie in 1..{1}");

    public static readonly DiagnosticDescriptor UnknownSchedule = Error("DFN004", "Unknown noise schedule",
        "Unknown schedule '{0}' (expected one of: linear, scaled_linear, squaredcos_cap_v2, sigmoid)");

    public static readonly DiagnosticDescriptor UnknownObjective = Error("DFN005", "Unknown clustering objective",
        "Unknown objective '{0}' (expected one of: timestep, snr, snr-raw, affinity)");

    public static readonly DiagnosticDescriptor UnknownSnrScale = Error("DFN006", "Unknown SNR scale",
        "Unknown SNR scale '{0}' (expected log or raw)");

    public static readonly DiagnosticDescriptor AffinityFileNotNamed = Error("DFN007", "Affinity file not named",
        "Objective = \"affinity\" needs AffinityFile = \"<file name>\", naming an AdditionalFiles item that holds the matrix");

    public static readonly DiagnosticDescriptor AffinityFileNotFound = Error("DFN008", "Affinity file not found",
        "No AdditionalFiles item matches AffinityFile = \"{0}\" (add <AdditionalFiles Include=\"{0}\" /> to the project)");

    public static readonly DiagnosticDescriptor AffinityFileAmbiguous = Error("DFN009", "Affinity file is ambiguous",
        "AffinityFile = \"{0}\" matches {1} AdditionalFiles items; give a longer path to pick one");

    public static readonly DiagnosticDescriptor AffinityFileMalformed = Error("DFN010", "Affinity file is malformed",
        "Affinity file \"{0}\" is malformed: {1}");

    public static readonly DiagnosticDescriptor AffinityAsymmetric = Error("DFN011", "Affinity matrix is not symmetric",
        "Affinity file \"{0}\" is not symmetric: {1}");

    public static readonly DiagnosticDescriptor GroupsDoNotDivide = Error("DFN012", "Affinity groups do not divide the timesteps",
        "Affinity file \"{0}\" has {1} groups, which does not divide Timesteps = {2}");

    public static readonly DiagnosticDescriptor InvalidArgument = Error("DFN013", "Invalid TaskClusters argument",
        "TaskClusters argument '{0}' is invalid: {1}");

    public static readonly DiagnosticDescriptor CoreNotReferenced = Warning("DFN014", "DiffusionFunctional.Core is not referenced",
        "'{0}' gets no {1} because DiffusionFunctional.Core is not referenced");

    public static readonly DiagnosticDescriptor AffinityFileIgnored = Warning("DFN015", "Affinity file ignored",
        "AffinityFile = \"{0}\" is ignored because Objective is '{1}', not 'affinity'");

    public static readonly DiagnosticDescriptor TooMuchWork = Error("DFN016", "Clustering too large for compile time",
        "Clusters = {0} over {1} is too large to cluster at compile time ({2}); use Core's Objectives.cluster at run time instead");

    public static readonly DiagnosticDescriptor UnknownRouting = Error("DFN017", "Unknown task routing",
        "Unknown routing '{0}' (expected none or dtr)");

    public static readonly DiagnosticDescriptor InvalidRoutingShare = Error("DFN018", "Invalid routing share",
        "RoutingShare = {0} is invalid: the share of active channels must lie in (0, 1]");

    public static readonly DiagnosticDescriptor InvalidRoutingSharpness = Error("DFN019", "Invalid routing sharpness",
        "RoutingSharpness = {0} is invalid: it must be a positive finite number");

    public static readonly DiagnosticDescriptor RoutingOptionIgnored = Warning("DFN020", "Routing option ignored",
        "{0} = {1} is ignored because Routing is 'none' (set Routing = \"dtr\" to route)");

    public static readonly DiagnosticDescriptor GeneratorFailure = Error("DFN099", "TaskClusters generator failure",
        "The TaskClusters generator could not process '{0}': {1}");

    private static readonly Dictionary<string, DiagnosticDescriptor> ById = new()
    {
        [NotPartial.Id] = NotPartial, [InvalidClusterCount.Id] = InvalidClusterCount, [InvalidTimesteps.Id] = InvalidTimesteps,
        [UnknownSchedule.Id] = UnknownSchedule, [UnknownObjective.Id] = UnknownObjective, [UnknownSnrScale.Id] = UnknownSnrScale,
        [AffinityFileNotNamed.Id] = AffinityFileNotNamed, [AffinityFileNotFound.Id] = AffinityFileNotFound,
        [AffinityFileAmbiguous.Id] = AffinityFileAmbiguous, [AffinityFileMalformed.Id] = AffinityFileMalformed,
        [AffinityAsymmetric.Id] = AffinityAsymmetric, [GroupsDoNotDivide.Id] = GroupsDoNotDivide,
        [InvalidArgument.Id] = InvalidArgument, [CoreNotReferenced.Id] = CoreNotReferenced,
        [AffinityFileIgnored.Id] = AffinityFileIgnored, [TooMuchWork.Id] = TooMuchWork,
        [UnknownRouting.Id] = UnknownRouting, [InvalidRoutingShare.Id] = InvalidRoutingShare,
        [InvalidRoutingSharpness.Id] = InvalidRoutingSharpness, [RoutingOptionIgnored.Id] = RoutingOptionIgnored,
        [GeneratorFailure.Id] = GeneratorFailure,
    };

    /// <summary>The descriptor with this ID (the generator-failure descriptor for an unknown one).</summary>
    internal static DiagnosticDescriptor Get(string id) => ById.TryGetValue(id, out var descriptor) ? descriptor : GeneratorFailure;

    private static DiagnosticDescriptor Error(string id, string title, string message) =>
        new(id, title, message, Category, DiagnosticSeverity.Error, isEnabledByDefault: true);

    private static DiagnosticDescriptor Warning(string id, string title, string message) =>
        new(id, title, message, Category, DiagnosticSeverity.Warning, isEnabledByDefault: true);
}
