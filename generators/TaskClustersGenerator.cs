using System;
using System.Collections.Immutable;
using System.IO;
using System.Linq;
using System.Text;
using System.Threading;
using DiffusionFunctional.Generators.Emit;
using DiffusionFunctional.Generators.Model;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.Text;

namespace DiffusionFunctional.Generators;

/// <summary>
/// Emits a typed cluster facade for every partial type marked [TaskClusters]: the boundaries are computed at
/// compile time by DiffusionFunctional.Core's exact clustering. Invalid configurations become diagnostics
/// (DFN001..DFN020); the generator itself never throws.
/// </summary>
[Generator(LanguageNames.CSharp)]
public sealed class TaskClustersGenerator : IIncrementalGenerator
{
    /// <summary>Tracking names of the pipeline steps (for caching tests).</summary>
    public static class Steps
    {
        public const string Requests = "TaskClusters.Requests";
        public const string Specs = "TaskClusters.Specs";
        public const string ClusterRequests = "TaskClusters.ClusterRequests";
        public const string Outcomes = "TaskClusters.Outcomes";
        public const string Facades = "TaskClusters.Facades";
        public const string Diagnostics = "TaskClusters.Diagnostics";
    }

    private const string ClusterPlanMetadataName = "DiffusionFunctional.Core.ClusterPlan";

    public void Initialize(IncrementalGeneratorInitializationContext context)
    {
        context.RegisterPostInitializationOutput(static post =>
        {
            post.AddEmbeddedAttributeDefinition();
            post.AddSource(TaskClustersAttributeSource.HintName, SourceText.From(TaskClustersAttributeSource.Text, Encoding.UTF8));
        });

        var requests = context.SyntaxProvider
            .ForAttributeWithMetadataName(TaskClustersAttributeSource.MetadataName,
                static (node, _) => node is Microsoft.CodeAnalysis.CSharp.Syntax.TypeDeclarationSyntax,
                static (syntax, token) => SafeRead(syntax, token))
            .Where(static request => request is not null)
            .Select(static (request, _) => request!)
            .WithTrackingName(Steps.Requests);

        var specs = requests.Select(static (request, _) => request.Spec).WithTrackingName(Steps.Specs);

        var coreReferenced = context.CompilationProvider
            .Select(static (compilation, _) => compilation.GetTypeByMetadataName(ClusterPlanMetadataName) is not null);

        var additionalFiles = context.AdditionalTextsProvider.Collect();

        var clusterRequests = specs
            .Combine(coreReferenced)
            .Combine(additionalFiles)
            .Select(static (input, token) => ToClusterRequest(input.Left.Left, input.Left.Right, input.Right, token))
            .WithTrackingName(Steps.ClusterRequests);

        var outcomes = clusterRequests.Select(static (request, _) => FacadeComputer.Compute(request)).WithTrackingName(Steps.Outcomes);

        var facades = outcomes
            .Where(static outcome => outcome.Facade is not null)
            .Select(static (outcome, _) => outcome.Facade!)
            .WithTrackingName(Steps.Facades);
        // Collected so that a type marked on two partial declarations (CS0579) gets one facade, not a duplicate
        // hint name, which the driver would turn into a generator failure.
        context.RegisterSourceOutput(facades.Collect(), static (production, all) =>
        {
            var emitted = new System.Collections.Generic.HashSet<string>(StringComparer.Ordinal);
            foreach (var facade in all)
            {
                if (emitted.Add(facade.Target.HintName)) EmitFacade(production, facade);
            }
        });

        // Diagnostics pair each outcome (computed without locations) with its request's locations; both sides are
        // one-to-one projections of the same provider, so their order matches.
        var diagnostics = outcomes
            .Select(static (outcome, _) => outcome.Diagnostics)
            .Collect()
            .Combine(requests.Select(static (request, _) => request.Locations).Collect())
            .WithTrackingName(Steps.Diagnostics);
        context.RegisterSourceOutput(diagnostics, static (production, pair) => Report(production, pair.Left, pair.Right));
    }

    private static FacadeRequest? SafeRead(GeneratorAttributeSyntaxContext syntax, CancellationToken token)
    {
        try
        {
            return FacadeRequestReader.Read(syntax, token);
        }
        catch (OperationCanceledException)
        {
            throw;
        }
        catch (Exception exception)
        {
            // Keep the failure visible as DFN013 on the attribute rather than crashing the generator.
            var problem = new ArgumentProblem("TaskClusters", "the attribute could not be read (" + exception.GetType().Name + ": " + exception.Message + ")");
            var name = syntax.TargetSymbol?.ToDisplayString() ?? "?";
            var target = new FacadeTarget("", EquatableArray<TypeHeader>.Empty, new TypeHeader("class", "?", ""), name, "?", null);
            var config = new ClusterConfig(null, 0, 0, null, null, null, null, null, null, EquatableArray.Of(problem));
            return new FacadeRequest(new FacadeSpec(target, config), new FacadeLocations(LocationInfo.From(syntax.TargetNode), null, EquatableArray<ArgumentLocation>.Empty));
        }
    }

    private static ClusterRequest ToClusterRequest(FacadeSpec spec, bool coreReferenced, ImmutableArray<AdditionalText> files, CancellationToken token)
    {
        var name = spec.Config.AffinityFile;
        if (string.IsNullOrWhiteSpace(name) || !string.Equals(spec.Config.Objective?.Trim(), "affinity", StringComparison.OrdinalIgnoreCase))
            return new ClusterRequest(spec, coreReferenced, null);
        try
        {
            var matches = files.Where(file => Matches(file.Path, name!)).ToArray();
            var text = matches.Length == 1 ? matches[0].GetText(token)?.ToString() : null;
            return new ClusterRequest(spec, coreReferenced, new AffinityInput(name!, matches.Length, text));
        }
        catch (Exception exception) when (exception is not OperationCanceledException)
        {
            return new ClusterRequest(spec, coreReferenced, new AffinityInput(name!, 1, null));
        }
    }

    /// <summary>An AdditionalFiles path matches a name when it equals it or ends with it at a directory separator.</summary>
    internal static bool Matches(string path, string name)
    {
        if (string.IsNullOrEmpty(path)) return false;
        var normalizedPath = path.Replace('\\', '/');
        var normalizedName = name.Trim().Replace('\\', '/');
        while (normalizedName.StartsWith("./", StringComparison.Ordinal)) normalizedName = normalizedName.Substring(2);
        if (normalizedName.Length == 0) return false;
        return string.Equals(normalizedPath, normalizedName, StringComparison.Ordinal)
               || normalizedPath.EndsWith("/" + normalizedName, StringComparison.Ordinal);
    }

    private static void EmitFacade(SourceProductionContext production, FacadeModel facade)
    {
        try
        {
            production.AddSource(facade.Target.HintName, SourceText.From(FacadeEmitter.Emit(facade), Encoding.UTF8));
        }
        catch (Exception exception)
        {
            production.ReportDiagnostic(Diagnostic.Create(DiagnosticDescriptors.GeneratorFailure, Location.None,
                facade.Target.DisplayName, exception.GetType().Name + ": " + exception.Message));
        }
    }

    private static void Report(SourceProductionContext production, ImmutableArray<EquatableArray<DiagnosticInfo>> outcomes, ImmutableArray<FacadeLocations> locations)
    {
        for (var i = 0; i < outcomes.Length; i++)
        {
            var where = i < locations.Length ? locations[i] : null;
            foreach (var info in outcomes[i])
            {
                try
                {
                    var location = where?.Resolve(info.Anchor) ?? Location.None;
                    production.ReportDiagnostic(Diagnostic.Create(DiagnosticDescriptors.Get(info.Id), location, info.Arguments.Cast<object>().ToArray()));
                }
                catch (Exception exception) when (exception is not OperationCanceledException)
                {
                    production.ReportDiagnostic(Diagnostic.Create(DiagnosticDescriptors.GeneratorFailure, Location.None, "?", exception.Message));
                }
            }
        }
    }
}
