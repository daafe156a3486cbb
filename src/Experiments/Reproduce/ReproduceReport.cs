using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using DiffusionFunctional.Core;
using DiffusionFunctional.Experiments.Demo;
using DiffusionFunctional.Experiments.Plots;

namespace DiffusionFunctional.Experiments.Reproduce;

/// <summary>Writes <c>report.md</c>, <c>report.json</c> and the figures of a reproduce run from its summary.</summary>
public static class ReproduceReport
{
    static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    /// <summary>The JSON form of the summary: snake_case, non-finite numbers as null.</summary>
    public static readonly JsonSerializerOptions Json = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        WriteIndented = true,
        Converters = { new FiniteOrNull() },
    };

    /// <summary>Writes everything into <see cref="ReproduceOptions.OutputDirectory"/>.</summary>
    public static void Write(ReproduceSummary s, ReproduceOptions options, DemoRunner convergence)
    {
        var dir = options.OutputDirectory;
        Figure(dir, "convergence-fd", ReproducePlots.Convergence(s, kid: false), 900, 560);
        Figure(dir, "convergence-kid", ReproducePlots.Convergence(s, kid: true), 900, 560);
        foreach (var m in options.Methods)
            if (Path.Combine(convergence.RunDirectory(m, 0), "samples.png") is var grid && File.Exists(grid))
                AtomicFile.Write(Path.Combine(dir, $"samples-{m.Id}.png"), temporary => File.Copy(grid, temporary, overwrite: true));
        if (s.Affinity.Count > 0)
        {
            var final = s.Affinity[^1];
            var matrices = final.CsvPaths.Where(File.Exists).Select(p => AffinityMatrices.TryParse(File.ReadAllText(p), out var m, out _) ? m : null).OfType<double[,]>().ToList();
            if (matrices.Count > 0)
                AtomicFile.Write(Path.Combine(dir, "affinity-heatmap.png"), p => AffinityHeatmap.Create(TaskAffinity.average(matrices),
                    $"Task affinity, vanilla at step {final.Step} ({matrices.Count} seed(s))").SavePng(p, 640, 560));
            AtomicFile.Write(Path.Combine(dir, "affinity-decay.png"), p => ReproducePlots.Decay(s).SavePng(p, 800, 500));
        }
        if (s.Ntg.Count > 0) AtomicFile.Write(Path.Combine(dir, "ntg.png"), p => ReproducePlots.Ntg(s).SavePng(p, 800, 500));
        if (s.Mechanism is { Count: > 0 }) Figure(dir, "mechanism-loss", MechanismPlots.HeldOutLoss(s), 900, 500);
        if (MechanismPlots.ClusterWeights(options.Methods, m => Path.Combine(convergence.RunDirectory(m, 0), "metrics.jsonl")) is { } weights)
            Figure(dir, "cluster-weights", weights, 1000, 560);
        AtomicFile.WriteAllText(Path.Combine(dir, "report.json"), JsonSerializer.Serialize(s, Json));
        AtomicFile.WriteAllText(Path.Combine(dir, "report.md"), Markdown(s, options));
    }

    // The study's figures as PNG for reading and as SVG, which is text: a page such as docs/fidelity.md can keep a run's
    // figures in the repository after the run folder is gone.
    static void Figure(string dir, string name, ScottPlot.Plot plot, int width, int height)
    {
        AtomicFile.Write(Path.Combine(dir, name + ".png"), p => plot.SavePng(p, width, height));
        AtomicFile.Write(Path.Combine(dir, name + ".svg"), p => plot.SaveSvg(p, width, height));
    }

    static string Markdown(ReproduceSummary s, ReproduceOptions o)
    {
        var p = o.Profile.Convergence;
        var b = new StringBuilder();
        b.Append(Inv, $"# dfn reproduce: ANT's claims on {o.Data} ({s.Profile} profile)\n\n");
        b.Append(Inv, $"{p.Model.Describe()} at {p.Model.ImageSize}x{p.Model.ImageSize}; {p.Steps} steps of batch {p.BatchSize}, AdamW; T = {o.Profile.Timesteps}; ");
        b.Append(Inv, $"every method from the same initial weights, data order and sampler noise per seed; {s.Seeds} seed(s). ");
        b.Append(Inv, $"Metrics on EMA samples: FD-ResNet18 and KID against {p.RealSamples} held-out digits, {p.EvaluationSamples} samples per point and {p.SamplesAt(p.Steps)} at the final one.\n\n");
        Recipe(b, o);
        if (!s.Complete) b.Append("**Incomplete**: the run was stopped before every part finished; the figures below are what is measured so far. Run the same command again to continue.\n\n");
        b.Append("## Summary\n\n| claim | paper | ours | verdict |\n|---|---|---|---|\n");
        foreach (var c in s.Claims) b.Append(Inv, $"| {c.Claim} | {c.Paper} | {c.Ours} | {c.Verdict} |\n");
        b.Append('\n');
        ReproduceSections.Convergence(b, s, o);
        ReproduceSections.Mechanism(b, s);
        ReproduceSections.Affinity(b, s);
        ReproduceSections.Ntg(b, s, o.Profile);
        return b.ToString();
    }

    /// <summary>The recipe every method trained under, as a table, and what of the original it could not follow.</summary>
    static void Recipe(StringBuilder b, ReproduceOptions o)
    {
        var recipe = o.RecipeInForce;
        b.Append(Inv, $"## Recipe: `{recipe.Name}`\n\nThe same for every method; nothing is tuned per method.\n\n| setting | value |\n|---|---|\n");
        foreach (var (setting, value) in recipe.Describe(o.Profile.Convergence, o.Profile.Timesteps)) b.Append(Inv, $"| {setting} | {value} |\n");
        if (recipe.NotFollowed.Count > 0)
            b.Append("\nNot followed, because our models cannot:\n").Append(string.Concat(recipe.NotFollowed.Select(n => $"- {n}\n")));
        b.Append('\n');
    }

    /// <summary>JSON has no NaN or infinity: such numbers are written as null.</summary>
    sealed class FiniteOrNull : JsonConverter<double>
    {
        public override double Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options) =>
            reader.TokenType == JsonTokenType.Null ? double.NaN : reader.GetDouble();

        public override void Write(Utf8JsonWriter writer, double value, JsonSerializerOptions options)
        {
            if (double.IsFinite(value)) writer.WriteNumberValue(value);
            else writer.WriteNullValue();
        }
    }
}
