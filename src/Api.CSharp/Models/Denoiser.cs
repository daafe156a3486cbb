using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace DiffusionFunctional.Models;

/// <summary>
/// The network a diffusion model trains: from noisy images x_t [B, C, H, W] and integer timesteps [B] to the
/// prediction (noise or v) of x_t's shape. The trainer, the EMA, mixed precision, checkpoints, export and import,
/// evaluation and the analyses depend on this contract only; <see cref="UNet"/> and <see cref="DiT"/> implement it,
/// and <see cref="Denoisers"/> names their presets and reads their configurations back.
/// </summary>
public abstract class Denoiser : Module<Tensor, Tensor, Tensor>
{
    /// <summary>A denoiser registered under <paramref name="name"/> (TorchSharp's module name) built from <paramref name="config"/>.</summary>
    protected Denoiser(string name, DenoiserConfig config) : base(name) => Config = config;

    /// <summary>
    /// The configuration this network was built from; <see cref="DenoiserConfig.Build"/> builds it again. Not overridden
    /// with a narrower type in subclasses (they offer a typed <c>Shape</c>): TorchSharp's <c>Module.to</c> indexes a
    /// module's properties by name and fails on the two a covariant override would leave.
    /// </summary>
    public DenoiserConfig Config { get; }

    /// <summary>The DTR masks (null when <see cref="DenoiserConfig.Routing"/> is none).</summary>
    public abstract TaskRouter? Router { get; }

    /// <summary>
    /// A memory-layout hint for networks of convolutions over feature maps (NHWC instead of NCHW, e.g.
    /// <see cref="UNet.ChannelsLast"/>). Results are the same to float rounding; a network without feature maps
    /// ignores it.
    /// </summary>
    public virtual bool ChannelsLast { get; set; }

    /// <summary>Number of trainable scalars (fixed tables such as DiT's positions are buffers, not parameters).</summary>
    public long ParameterCount => parameters().Sum(p => p.numel());
}

/// <summary>
/// What builds a <see cref="Denoiser"/>: its kind (<c>unet</c>, <c>dit</c>, or a kind registered with
/// <see cref="Denoisers.RegisterKind{TConfig}"/>), the image it denoises, and task routing. Checkpoint headers store it
/// as JSON with its <see cref="Kind"/> (<see cref="Denoisers.ToJson"/>); a header without one (written before there
/// were kinds) is a UNet's.
/// </summary>
public abstract record DenoiserConfig
{
    /// <summary>The kind of network, as stored in checkpoint headers.</summary>
    public abstract string Kind { get; }
    /// <summary>Image channels (1 for MNIST, 3 for RGB).</summary>
    public int ImageChannels { get; init; } = 1;
    /// <summary>Square image side in pixels.</summary>
    public int ImageSize { get; init; } = 28;
    /// <summary>Task routing (<see cref="TaskRouter"/>); a configuration without it (older checkpoints) has none.</summary>
    public TaskRoutingKind Routing { get; init; } = TaskRoutingKind.None;
    /// <summary>DTR's sharing ratio beta in (0, 1]: the fraction of each block's input channels a timestep activates.</summary>
    public double RoutingShare { get; init; } = Core.TaskRouting.DefaultShare;
    /// <summary>DTR's alpha &gt; 0: how the window slides with t (alpha &gt; 1: slowly for small t, fast for large t).</summary>
    public double RoutingSharpness { get; init; } = Core.TaskRouting.DefaultSharpness;
    /// <summary>The T the routing masks are laid over; must equal the diffusion's number of timesteps.</summary>
    public int RoutingTimesteps { get; init; } = 1000;

    /// <summary>The largest image side accepted (memory grows with its square; nothing here trains beyond it).</summary>
    public const int MaxImageSize = 512;

    /// <summary>Builds the network; weights are drawn from the global TorchSharp generator (seed it first).</summary>
    public abstract Denoiser Build();

    /// <summary>Floating-point operations of one forward pass for one image (multiply-adds counted as 2; normalisation
    /// and activations, which are memory-bound, left out). A training step costs about 3x this.</summary>
    public abstract double ForwardFlopsPerImage();

    /// <summary>The narrowest input width a routing mask covers (every block needs one active channel).</summary>
    protected abstract int NarrowestRoutedWidth { get; }

    /// <summary>One line for reports, e.g. "UNet base 16 x [1, 2, 2]" or "DiT depth 6, width 128, patch 2, 4 heads".</summary>
    public abstract string Describe();

    /// <summary>Throws <see cref="BadInputException"/> when a field cannot build a network.</summary>
    public virtual void Validate()
    {
        if (ImageChannels is not (1 or 3)) throw new BadInputException($"image channels must be 1 (grey) or 3 (RGB), got {ImageChannels}");
        if (Routing != TaskRoutingKind.None) ValidateRouting();
    }

    private void ValidateRouting()
    {
        if (!Enum.IsDefined(Routing)) throw new BadInputException($"unknown routing {(int)Routing}");
        if (!(RoutingShare > 0 && RoutingShare <= 1)) throw new BadInputException($"routing share must lie in (0, 1], got {RoutingShare}");
        if (!(RoutingSharpness > 0) || double.IsInfinity(RoutingSharpness))
            throw new BadInputException($"routing sharpness must be a positive number, got {RoutingSharpness}");
        if (RoutingTimesteps < 1) throw new BadInputException($"routing timesteps must be at least 1, got {RoutingTimesteps}");
        if (Math.Floor(RoutingShare * NarrowestRoutedWidth) < 1)
            throw new BadInputException($"routing share {RoutingShare} activates no channel of the {NarrowestRoutedWidth}-channel blocks");
    }

    /// <summary>
    /// This configuration with task routing chosen by name (<c>none</c> or <c>dtr</c>) for a diffusion of
    /// <paramref name="timesteps"/> steps, with DTR's share and sharpness.
    /// </summary>
    /// <exception cref="BadInputException">An unknown routing name or invalid DTR settings.</exception>
    public DenoiserConfig WithRouting(string routing, double share = Core.TaskRouting.DefaultShare, double sharpness = Core.TaskRouting.DefaultSharpness, int timesteps = 1000)
    {
        var kind = (routing ?? "").Trim().ToLowerInvariant() switch
        {
            "none" or "" => TaskRoutingKind.None,
            "dtr" => TaskRoutingKind.Dtr,
            _ => throw new BadInputException($"unknown routing '{routing}' (expected none or dtr)"),
        };
        if (kind == TaskRoutingKind.None) return this with { Routing = kind };
        var routed = this with { Routing = kind, RoutingShare = share, RoutingSharpness = sharpness, RoutingTimesteps = timesteps };
        routed.Validate();
        return routed;
    }
}
