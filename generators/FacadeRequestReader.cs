using System;
using System.Collections.Generic;
using System.Linq;
using System.Text;
using System.Threading;
using DiffusionFunctional.Generators.Model;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.CSharp.Syntax;

namespace DiffusionFunctional.Generators;

/// <summary>Turns one [TaskClusters] use into a <see cref="FacadeRequest"/>: plain values, never symbols.</summary>
internal static class FacadeRequestReader
{
    private static readonly SymbolDisplayFormat NamespaceFormat =
        SymbolDisplayFormat.FullyQualifiedFormat.WithGlobalNamespaceStyle(SymbolDisplayGlobalNamespaceStyle.Omitted);

    /// <summary>Null for targets that cannot carry a facade at all (the compiler already rejects them).</summary>
    public static FacadeRequest? Read(GeneratorAttributeSyntaxContext context, CancellationToken cancellationToken)
    {
        if (context.TargetNode is not TypeDeclarationSyntax declaration || declaration is InterfaceDeclarationSyntax) return null;
        if (context.TargetSymbol is not INamedTypeSymbol symbol || context.Attributes.IsDefaultOrEmpty) return null;

        var attribute = context.Attributes[0];
        var attributeSyntax = attribute.ApplicationSyntaxReference?.GetSyntax(cancellationToken) as AttributeSyntax;
        var target = ReadTarget(declaration, symbol);
        var (config, argumentLocations) = ReadConfig(attribute, attributeSyntax, context.SemanticModel, cancellationToken);
        var locations = new FacadeLocations(LocationInfo.From(attributeSyntax), LocationInfo.From(declaration.Identifier), argumentLocations);
        return new FacadeRequest(new FacadeSpec(target, config), locations);
    }

    private static FacadeTarget ReadTarget(TypeDeclarationSyntax declaration, INamedTypeSymbol symbol)
    {
        var containing = new List<TypeHeader>();
        string? nonPartial = IsPartial(declaration) ? null : declaration.Identifier.Text;
        for (var parent = declaration.Parent as TypeDeclarationSyntax; parent is not null; parent = parent.Parent as TypeDeclarationSyntax)
        {
            containing.Insert(0, Header(parent));
            if (!IsPartial(parent)) nonPartial = parent.Identifier.Text;
        }
        var ns = symbol.ContainingNamespace is { IsGlobalNamespace: false } space ? space.ToDisplayString(NamespaceFormat) : "";
        return new FacadeTarget(ns, containing.ToEquatableArray(), Header(declaration), symbol.ToDisplayString(), HintName(symbol), nonPartial);
    }

    private static bool IsPartial(TypeDeclarationSyntax declaration) => declaration.Modifiers.Any(SyntaxKind.PartialKeyword);

    private static TypeHeader Header(TypeDeclarationSyntax declaration)
    {
        var keyword = declaration switch
        {
            RecordDeclarationSyntax record when record.ClassOrStructKeyword.IsKind(SyntaxKind.StructKeyword) => "record struct",
            RecordDeclarationSyntax => "record",
            StructDeclarationSyntax => "struct",
            InterfaceDeclarationSyntax => "interface",
            _ => "class",
        };
        var parameters = declaration.TypeParameterList is { Parameters.Count: > 0 } list
            ? "<" + string.Join(", ", list.Parameters.Select(p => p.Identifier.Text)) + ">"
            : "";
        return new TypeHeader(keyword, declaration.Identifier.Text, parameters);
    }

    // Metadata names made safe for a hint name: namespace dots kept, nested types joined by '+' (so that
    // NS.Outer+Inner never meets namespace NS.Outer's Inner), anything but ASCII letters and digits as '_'.
    private static string HintName(INamedTypeSymbol symbol)
    {
        var types = new List<string>();
        for (ISymbol? s = symbol; s is INamedTypeSymbol type; s = type.ContainingType) types.Insert(0, Sanitize(type.MetadataName));
        var name = string.Join("+", types);
        if (symbol.ContainingNamespace is { IsGlobalNamespace: false } ns)
            name = string.Join(".", ns.ToDisplayString().Split('.').Select(Sanitize)) + "." + name;
        return name + ".TaskClusters.g.cs";
    }

    private static string Sanitize(string part)
    {
        var builder = new StringBuilder(part.Length);
        foreach (var c in part) builder.Append(c < 128 && char.IsLetterOrDigit(c) ? c : '_');
        return builder.ToString();
    }

    private static (ClusterConfig, EquatableArray<ArgumentLocation>) ReadConfig(
        AttributeData attribute, AttributeSyntax? syntax, SemanticModel model, CancellationToken cancellationToken)
    {
        var values = new ConfigValues();
        var problems = new List<ArgumentProblem>();
        var locations = new List<ArgumentLocation>();

        // The compiler's bound values (conversions and constant folding applied) are the truth; syntax only
        // supplies locations and the text of arguments the compiler could not bind.
        var bound = new Dictionary<string, TypedConstant>(StringComparer.Ordinal);
        foreach (var pair in attribute.NamedArguments) bound[pair.Key] = pair.Value;

        var written = syntax?.ArgumentList?.Arguments ?? default;
        for (var i = 0; i < written.Count; i++)
        {
            var argument = written[i];
            if (argument.NameEquals is null)
            {
                var position = "argument " + (i + 1).ToString(System.Globalization.CultureInfo.InvariantCulture);
                if (LocationInfo.From(argument) is { } where) locations.Add(new ArgumentLocation(position, where));
                problems.Add(new ArgumentProblem(position, $"TaskClusters takes named properties only (Schedule = ..., Timesteps = ...), got '{Shorten(argument.ToString())}'"));
                continue;
            }
            var name = argument.NameEquals.Name.Identifier.ValueText;
            if (LocationInfo.From(argument) is { } location) locations.Add(new ArgumentLocation(name, location));
            bound.TryGetValue(name, out var value);
            // An argument the compiler rejects (Clusters = 2.5) may still carry a converted value: never use it.
            if (HasErrors(model, argument, cancellationToken)) value = default;
            if (!values.Assign(name, value, Shorten(argument.Expression.ToString()), problems))
                problems.Add(new ArgumentProblem(name, "TaskClusters has no such property (expected Schedule, Timesteps, Clusters, Objective, SnrScale, AffinityFile, Routing, RoutingShare or RoutingSharpness)"));
        }
        // Without syntax (not expected for source attributes) fall back to the bound values alone.
        if (syntax is null)
        {
            foreach (var pair in bound)
            {
                var text = pair.Value.Kind == TypedConstantKind.Primitive ? pair.Value.Value?.ToString() ?? "null" : "?";
                values.Assign(pair.Key, pair.Value, text, problems);
            }
        }
        return (values.ToConfig(problems.ToEquatableArray()), locations.ToEquatableArray());
    }

    /// <summary>The attribute's values while they are read, starting from the defaults.</summary>
    private sealed class ConfigValues
    {
        private string? schedule = TaskClustersAttributeSource.DefaultSchedule, objective = TaskClustersAttributeSource.DefaultObjective;
        private string? snrScale = TaskClustersAttributeSource.DefaultSnrScale, affinityFile;
        private string? routing = TaskClustersAttributeSource.DefaultRouting;
        private double? routingShare, routingSharpness;
        private int timesteps = TaskClustersAttributeSource.DefaultTimesteps, clusters = TaskClustersAttributeSource.DefaultClusters;

        /// <summary>Reads one named argument; false for a name TaskClusters does not have.</summary>
        public bool Assign(string name, TypedConstant value, string text, List<ArgumentProblem> problems)
        {
            switch (name)
            {
                case "Schedule": schedule = ReadString(name, value, text, problems, nullable: false) ?? schedule; return true;
                case "Objective": objective = ReadString(name, value, text, problems, nullable: false) ?? objective; return true;
                case "SnrScale": snrScale = ReadString(name, value, text, problems, nullable: false) ?? snrScale; return true;
                case "AffinityFile": affinityFile = ReadString(name, value, text, problems, nullable: true); return true;
                case "Routing": routing = ReadString(name, value, text, problems, nullable: false) ?? routing; return true;
                case "Timesteps": timesteps = ReadInt(name, value, text, problems) ?? timesteps; return true;
                case "Clusters": clusters = ReadInt(name, value, text, problems) ?? clusters; return true;
                case "RoutingShare": routingShare = ReadDouble(name, value, text, problems) ?? routingShare; return true;
                case "RoutingSharpness": routingSharpness = ReadDouble(name, value, text, problems) ?? routingSharpness; return true;
                default: return false;
            }
        }

        public ClusterConfig ToConfig(EquatableArray<ArgumentProblem> problems) =>
            new(schedule, timesteps, clusters, objective, snrScale, affinityFile, routing, routingShare, routingSharpness, problems);
    }

    private static bool HasErrors(SemanticModel model, SyntaxNode node, CancellationToken cancellationToken)
    {
        foreach (var diagnostic in model.GetDiagnostics(node.Span, cancellationToken))
        {
            if (diagnostic.Severity == DiagnosticSeverity.Error) return true;
        }
        return false;
    }

    // TypedConstant.Value throws for arrays: only Primitive constants are read.
    private static string? ReadString(string name, TypedConstant value, string text, List<ArgumentProblem> problems, bool nullable)
    {
        if (value.Kind == TypedConstantKind.Primitive && value.Value is string s) return s;
        if (value.Kind != TypedConstantKind.Error && value.IsNull)
        {
            if (!nullable) problems.Add(new ArgumentProblem(name, "it must be a string, got null"));
            return null;
        }
        problems.Add(new ArgumentProblem(name, $"it must be a constant string, got '{text}'"));
        return null;
    }

    private static int? ReadInt(string name, TypedConstant value, string text, List<ArgumentProblem> problems)
    {
        if (value.Kind == TypedConstantKind.Primitive && value.Value is int i) return i;
        problems.Add(new ArgumentProblem(name, $"it must be a constant int, got '{text}'"));
        return null;
    }

    // The compiler converts an int literal (RoutingSharpness = 4) to the property's double; any other numeric
    // constant is accepted too in case a binding leaves it unconverted.
    private static double? ReadDouble(string name, TypedConstant value, string text, List<ArgumentProblem> problems)
    {
        if (value.Kind == TypedConstantKind.Primitive)
        {
            switch (value.Value)
            {
                case double d: return d;
                case float f: return f;
                case int or long or short or sbyte or byte or ushort or uint or ulong:
                    return Convert.ToDouble(value.Value, System.Globalization.CultureInfo.InvariantCulture);
            }
        }
        problems.Add(new ArgumentProblem(name, $"it must be a constant double, got '{text}'"));
        return null;
    }

    private static string Shorten(string text) => text.Length <= 60 ? text : text.Substring(0, 57) + "...";
}
