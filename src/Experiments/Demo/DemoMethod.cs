using System.Text.RegularExpressions;
using DiffusionFunctional.Clustering;
using DiffusionFunctional.Core;
using DiffusionFunctional.Models;
using DiffusionFunctional.Weighting;

namespace DiffusionFunctional.Experiments.Demo;

/// <summary>
/// One training recipe of a demo: a weighting method, the timestep clusters it works on, and optionally task routing
/// and a timestep density. Written <c>weighting[:objective[:k]][+dtr][+density]</c>: <c>vanilla</c>, <c>min-snr</c>,
/// <c>uw:snr</c>, <c>pcgrad:timestep:3</c>, <c>uw:snr:5+dtr</c>, <c>vanilla+logit-normal</c>, <c>vanilla+beta:2,2</c>.
/// Multi-task methods default to log-SNR clusters with k = 5 (our default: the paper reports SNR, timestep or affinity
/// clusters as best depending on data and backbone, and its released code trains equal timestep intervals); loss
/// weightings default to a single cluster (plain uniform timesteps). <c>+anneal:N</c> moves the method's cluster
/// weights to uniform over the first N steps.
/// </summary>
/// <param name="Weighting">A name <see cref="WeightingRegistry"/> holds.</param>
/// <param name="Objective">The clustering objective (<c>snr</c>, <c>snr-raw</c>, <c>timestep</c>) or null for one cluster.</param>
/// <param name="Clusters">k (1 without an objective).</param>
/// <param name="Routing">"dtr" for denoising task routing, null for none.</param>
/// <param name="Density">A timestep density spec (docs/routing-and-densities.md), null for uniform.</param>
/// <param name="Anneal">Steps over which the method's cluster weights move to uniform (<c>+anneal:N</c>;
/// <see cref="Weighting.AnnealedWeighting"/>), null for none.</param>
public sealed record DemoMethod(string Weighting, string? Objective, int Clusters, string? Routing = null, string? Density = null, long? Anneal = null)
{
    /// <summary>The default comparison: vanilla, Min-SNR (gamma 5) and ANT-UW on log-SNR clusters (k = 5).</summary>
    public const string DefaultList = "vanilla,min-snr,uw:snr:5";

    /// <summary>Short identifier used in file and folder names: <c>vanilla</c>, <c>uw-snr-k5</c>, <c>uw-snr-k5+dtr</c>.</summary>
    public string Id
    {
        get
        {
            var id = Objective is null ? Weighting : $"{Weighting}-{Objective}-k{Clusters}";
            if (Routing is not null) id += "+" + Routing;
            if (Density is not null) id += "+" + Regex.Replace(Density, "[^a-z0-9.-]", "-");
            if (Anneal is { } steps) id += $"+anneal-{steps}";
            return id;
        }
    }

    /// <summary>The specification as a user writes it.</summary>
    public override string ToString()
    {
        var spec = Objective is null ? Weighting : $"{Weighting}:{Objective}:{Clusters}";
        if (Routing is not null) spec += "+" + Routing;
        if (Density is not null) spec += "+" + Density;
        if (Anneal is { } steps) spec += $"+anneal:{steps}";
        return spec;
    }

    /// <summary>Parses one <c>weighting[:objective[:k]][+dtr][+density]</c> specification.</summary>
    /// <exception cref="BadInputException">An unknown weighting, objective, modifier or density, or a bad k.</exception>
    public static DemoMethod Parse(string spec)
    {
        var pieces = (spec ?? "").Trim().ToLowerInvariant().Split('+');
        var parts = pieces[0].Split(':');
        var weighting = parts[0];
        var descriptor = WeightingRegistry.Find(weighting)
            ?? throw new BadInputException($"unknown weighting '{parts[0]}' in method '{spec}' (expected one of: {string.Join(", ", WeightingRegistry.Names)})");
        if (parts.Length > 3) throw new BadInputException($"method '{spec}' has too many parts (expected weighting[:objective[:k]][+dtr][+density])");
        // Methods that balance clusters need k > 1 to mean anything: they get the default clusters when none are named.
        var objective = parts.Length > 1 ? parts[1] : descriptor.NeedsClusters ? "snr" : null;
        if (objective is not null) objective = DemoObjective(objective, $"method '{spec}'");
        var k = 5;
        if (parts.Length > 2 && (!int.TryParse(parts[2], out k) || k < 1))
            throw new BadInputException($"cluster count '{parts[2]}' in method '{spec}' is not a positive integer");
        if (objective is null) k = 1;
        string? routing = null, density = null;
        long? anneal = null;
        foreach (var modifier in pieces.Skip(1))
        {
            if (modifier == "dtr" && routing is null) routing = modifier;
            else if (modifier.StartsWith("anneal:", StringComparison.Ordinal) && anneal is null)
                anneal = long.TryParse(modifier["anneal:".Length..], out var n) && n >= 1 ? n
                    : throw new BadInputException($"'{modifier}' in method '{spec}': anneal:N needs a whole number of steps of at least 1");
            else if (density is null && TimestepDensities.TryParse(modifier, out _, out var error)) density = modifier;
            else throw new BadInputException($"'{modifier}' in method '{spec}' is not a routing (dtr), an anneal to uniform weights (anneal:N) or a timestep density (uniform, logit-normal[:m,s], beta[:a,b], speed), or is given twice");
        }
        return new DemoMethod(weighting, objective, k, routing, density, anneal);
    }

    /// <summary>The canonical name of an objective a demo method can use (Core's parse; affinity needs a matrix file,
    /// which a demo does not have).</summary>
    /// <exception cref="BadInputException">An unknown objective, or affinity.</exception>
    public static string DemoObjective(string objective, string context)
    {
        var usable = TimestepClusterings.ObjectiveNames.Where(n => n != "affinity");
        if (!TimestepClusterings.TryChooseObjective(objective, "", out var choice, out _) || choice.NeedsAffinity)
            throw new BadInputException($"unknown cluster objective '{objective}' in {context} (expected one of: {string.Join(", ", usable)})");
        return choice.Name;
    }

    /// <summary>Parses a comma-separated list (a comma followed by a digit or sign belongs to a density's parameters); rejects duplicates.</summary>
    public static IReadOnlyList<DemoMethod> ParseList(string specs)
    {
        var methods = Regex.Split(specs ?? "", @",(?=\s*[A-Za-z])")
            .Select(s => s.Trim().Trim(',').Trim()).Where(s => s.Length > 0).Select(Parse).ToList();
        if (methods.Count == 0) throw new BadInputException("no methods given (e.g. --methods vanilla,min-snr,uw:snr)");
        var duplicate = methods.GroupBy(m => m.Id).FirstOrDefault(g => g.Count() > 1);
        if (duplicate is not null) throw new BadInputException($"method '{duplicate.Key}' is listed twice");
        return methods;
    }

    /// <summary>The cluster plan of this method for a schedule of <paramref name="timesteps"/> steps.</summary>
    public ClusterPlan Plan(string schedule, int timesteps) =>
        Objective is null ? ClusterPlan.Single(timesteps) : ClusterPlans.FromObjective(schedule, timesteps, Clusters, Objective);

    /// <summary>The network of this method: <paramref name="model"/>, with DTR routing when the method asks for it.</summary>
    public DenoiserConfig Model(DenoiserConfig model, int timesteps) => model.WithRouting(Routing ?? "none", timesteps: timesteps);
}
