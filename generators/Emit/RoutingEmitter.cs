using DiffusionFunctional.Generators.Model;
using static DiffusionFunctional.Generators.Emit.SourceWriter;

namespace DiffusionFunctional.Generators.Emit;

/// <summary>
/// Writes a facade's routing members, only when the attribute asks for routing (so facades without it are
/// unchanged): the settings as constants and, when Core is referenced, the windows computed at run time by
/// Core's TaskRouting (docs/routing-and-densities.md), as <c>Plan</c> is computed by Core's ClusterPlan.
/// </summary>
internal static class RoutingEmitter
{
    private const string TaskRouting = "global::DiffusionFunctional.Core.TaskRouting";

    /// <summary>", Routing = ..., RoutingShare = ..., RoutingSharpness = ..." for the header comment.</summary>
    public static string AttributeArguments(RoutingModel routing) =>
        $", Routing = {Literal(routing.Name)}, RoutingShare = {Literal(routing.Share)}, RoutingSharpness = {Literal(routing.Sharpness)}";

    public static void Write(SourceWriter w, FacadeModel model, RoutingModel routing)
    {
        var self = Xml(model.Target.Type.Name + model.Target.Type.TypeParameters);
        w.Line("/// <summary>");
        w.Line("/// The denoising task routing declared beside the clusters: dtr, Denoising Task Routing (Park et al., ICLR 2024),");
        w.Line("/// where each timestep activates a sliding window of channels in every routed block. Pass it to the library");
        w.Line($"/// (DiffusionFunctional.Models.UNetConfig) with <c>UNetConfig.Named(\"small\").WithRouting({self}.Routing, {self}.RoutingShare, {self}.RoutingSharpness, {self}.Timesteps)</c>.");
        w.Line("/// </summary>");
        w.Line($"public const string Routing = {Literal(routing.Name)};");
        w.Line();
        w.Line("/// <summary>DTR's sharing ratio beta: each timestep activates floor(RoutingShare * C) of a block's C channels.</summary>");
        w.Line($"public const double RoutingShare = {Literal(routing.Share)};");
        w.Line();
        w.Line("/// <summary>DTR's sharpness alpha: the window of timestep t starts at round((C - floor(RoutingShare * C)) * (t / (T - 1))^alpha).</summary>");
        w.Line($"public const double RoutingSharpness = {Literal(routing.Sharpness)};");
        w.Line();
        // Without Core the windows cannot be computed by it: the constants stay, the methods go (DFN014 says so).
        if (model.IncludePlan) WriteWindows(w, model);
    }

    private static void WriteWindows(SourceWriter w, FacadeModel model)
    {
        w.Line("/// <summary>The active channels of timestep <paramref name=\"t\"/> in a block of <paramref name=\"channels\"/> channels:");
        w.Line("/// channels [Start, Start + Count), as DiffusionFunctional.Core's TaskRouting computes them.</summary>");
        WriteExceptions(w);
        w.Open("public static (int Start, int Count) RoutingWindow(int t, int channels)");
        WriteCheck(w, model, "t");
        WriteChannelsCheck(w);
        w.Line($"var window = {TaskRouting}.window(t, Timesteps, channels, RoutingShare, RoutingSharpness);");
        w.Line("return (window.Start, window.Width);");
        w.Close();
        w.Line();
        w.Line("/// <summary>How many active channels timesteps <paramref name=\"t1\"/> and <paramref name=\"t2\"/> share in a block of");
        w.Line("/// <paramref name=\"channels\"/> channels: the whole window when they are equal, never more as they move apart.</summary>");
        WriteExceptions(w);
        w.Open("public static int RoutingOverlap(int t1, int t2, int channels)");
        WriteCheck(w, model, "t1");
        WriteCheck(w, model, "t2");
        WriteChannelsCheck(w);
        w.Line($"return {TaskRouting}.overlap(t1, t2, Timesteps, channels, RoutingShare, RoutingSharpness);");
        w.Close();
        w.Line();
    }

    private static void WriteExceptions(SourceWriter w)
    {
        w.Line("/// <exception cref=\"global::System.ArgumentOutOfRangeException\">A timestep outside [0, Timesteps), or fewer than 1 channel.</exception>");
        w.Line("/// <exception cref=\"global::System.ArgumentException\">floor(RoutingShare * channels) is 0: no channel would be active.</exception>");
    }

    // The same check and message as ClusterOf, before Core's own (which throws a plain ArgumentException).
    private static void WriteCheck(SourceWriter w, FacadeModel model, string parameter) =>
        w.Line($"if ((uint){parameter} >= (uint)Timesteps) throw new global::System.ArgumentOutOfRangeException(nameof({parameter}), {parameter}, \"timestep must lie in [0, {model.Timesteps})\");");

    private static void WriteChannelsCheck(SourceWriter w) =>
        w.Line("if (channels < 1) throw new global::System.ArgumentOutOfRangeException(nameof(channels), channels, \"a block has at least 1 channel\");");
}
