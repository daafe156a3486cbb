using System.ComponentModel;
using DiffusionFunctional.Models;
using DiffusionFunctional.Weighting;

namespace DiffusionFunctional.Cli.Options;

/// <summary>
/// The help text of every option that several commands share, in one place, so that one option means one thing
/// everywhere (a test compares the commands' help). Lists that registries own (weightings, model presets, clustering
/// objectives) are read from them when the help is printed (<see cref="ListedDescriptionAttribute"/>).
/// </summary>
internal static class OptionText
{
    public const string Threads = "libtorch CPU threads, 1..cores (results depend on it; default: the command's, at most 2).";
    public const string Device = "cpu, or cuda / cuda:N in a build with -p:TorchBackend=cuda (docs/platform.md).";
    public const string Seed = "Seed of everything the command draws at random (weights, data order, timesteps, noise, subsets).";
    public const string Data = "mnist (fetched on first use), idx:PATH (IDX images, .gz or not) or folder:PATH (PNG/JPEG).";
    public const string Precision = "fp32, or bf16: mixed precision with fp32 master weights, on CPUs with native bfloat16 whose kernels pass the check.";
    /// <summary>--precision of the grids (demo, reproduce).</summary>
    public const string PrecisionAuto = Precision + " Default here: auto, which is bf16 on a CPU with native bfloat16 whose bf16 kernels pass the check, else fp32.";
    public const string Workers = "Threads of the ResNet-18 (one OnnxRuntime session).";
    public const string SamplerSteps = "Steps of the sampler (DDIM, DPM-Solver++), 1..T.";
    /// <summary>--sampler.</summary>
    public const string Sampler = "ddim, ddpm (every timestep) or dpm++2m (DPM-Solver++(2M), over --sampler-steps like ddim).";
    public const string Clusters = "Timestep clusters k, 1..T (1: uniform timesteps, vanilla).";
    public const string Json = "Print one JSON object instead of a table.";
    public const string Batch = "Images per training step.";
    public const string Lr = "AdamW learning rate after warm-up.";
    public const string Warmup = "Linear learning-rate warm-up steps.";
    public const string Clip = "Gradient-norm clip (0: none).";
    public const string Timesteps = "Diffusion timesteps T.";
    public const string Schedule = "Noise schedule: linear, scaled_linear, squaredcos_cap_v2 or sigmoid.";
    public const string Seeds = "Seeds 0..N-1.";
    public const string Steps = "Training steps per run.";
    public const string Profile = "Budget profile.";
    public const string LogEvery = "Steps between plain progress lines (redirected output).";
    /// <summary>The start of a sentence each command completes (to draw, per timed extraction, ...).</summary>
    public const string Count = "Number of images";
    public const string ImageSize = "Image side in pixels.";
    public const string Checkpoint = "A checkpoint.dfn, or the run folder that holds it.";
    public const string Live = "The live weights instead of the EMA.";
    public const string Affinity = "Affinity CSV (dfn affinity's output: G rows of G numbers, G dividing T) for --cluster-objective affinity.";
    public const string Prediction = "eps or v.";
    /// <summary>The format of a methods list's help ({0}: the weightings).</summary>
    public const string MethodsFormat = "Methods, comma-separated weighting[[:objective[[:k]]]][[+dtr]][[+density]][[+anneal:N]], with weighting one of: {0} (docs/weightings.md).";
}

/// <summary>Which registry a <see cref="ListedDescriptionAttribute"/> lists.</summary>
internal enum Listing
{
    /// <summary>The model presets (<see cref="Denoisers.Names"/>).</summary>
    ModelPresets,
    /// <summary>The weighting methods (<see cref="WeightingRegistry"/>).</summary>
    Weightings,
    /// <summary>The clustering objectives (Core's <c>Objectives.names</c>).</summary>
    Objectives,
}

/// <summary>
/// A help text whose list comes from a registry when the help is printed, so that a method, preset or objective added
/// anywhere appears in every help text that lists them; <c>{0}</c> in the format is replaced by the list.
/// </summary>
[AttributeUsage(AttributeTargets.Property)]
internal sealed class ListedDescriptionAttribute(Listing listing, string format) : DescriptionAttribute
{
    /// <inheritdoc/>
    public override string Description => string.Format(System.Globalization.CultureInfo.InvariantCulture, format, string.Join(", ", Items(listing)));

    /// <summary>The names a listing holds now.</summary>
    public static IReadOnlyList<string> Items(Listing listing) => listing switch
    {
        Listing.ModelPresets => Denoisers.Names,
        Listing.Weightings => WeightingRegistry.Names,
        _ => Core.TimestepClusterings.ObjectiveNames,
    };
}
