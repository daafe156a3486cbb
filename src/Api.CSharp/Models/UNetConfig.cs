namespace DiffusionFunctional.Models;

/// <summary>
/// The shape of an ADM-style UNet. Channel counts per level are <c>BaseChannels * ChannelMultipliers[i]</c>;
/// self-attention runs at the levels listed in <see cref="AttentionLevels"/> (0 = full resolution) and in the middle.
/// </summary>
public sealed record UNetConfig
{
    /// <summary>Image channels (1 for MNIST, 3 for RGB).</summary>
    public int ImageChannels { get; init; } = 1;
    /// <summary>Square image side in pixels.</summary>
    public int ImageSize { get; init; } = 28;
    /// <summary>Channels at the first level.</summary>
    public int BaseChannels { get; init; } = 32;
    /// <summary>Per-level channel multipliers; one downsampling between consecutive levels.</summary>
    public int[] ChannelMultipliers { get; init; } = [1, 2, 2];
    /// <summary>Residual blocks per level on the way down (the way up has one more, as in ADM).</summary>
    public int ResBlocksPerLevel { get; init; } = 1;
    /// <summary>Levels (0-based) that get self-attention after each residual block.</summary>
    public int[] AttentionLevels { get; init; } = [2];
    /// <summary>Attention heads.</summary>
    public int AttentionHeads { get; init; } = 1;
    /// <summary>Dropout inside residual blocks.</summary>
    public double Dropout { get; init; }
    /// <summary>Upper bound on GroupNorm groups (the largest divisor of the channel count up to this is used).</summary>
    public int NormGroups { get; init; } = 32;
    /// <summary>Task routing in the residual blocks (<see cref="TaskRouter"/>); a config without it (older checkpoints) has none.</summary>
    public TaskRoutingKind Routing { get; init; } = TaskRoutingKind.None;
    /// <summary>DTR's sharing ratio beta in (0, 1]: the fraction of each block's input channels a timestep activates.</summary>
    public double RoutingShare { get; init; } = Core.TaskRouting.DefaultShare;
    /// <summary>DTR's alpha &gt; 0: how the window slides with t (alpha &gt; 1: slowly for small t, fast for large t).</summary>
    public double RoutingSharpness { get; init; } = Core.TaskRouting.DefaultSharpness;
    /// <summary>The T the routing masks are laid over; must equal the diffusion's number of timesteps.</summary>
    public int RoutingTimesteps { get; init; } = 1000;

    /// <summary>Names accepted by <see cref="Named"/>.</summary>
    public static IReadOnlyList<string> Names { get; } = ["tiny", "small", "mnist", "base32"];

    /// <summary>
    /// A named configuration: <c>tiny</c> (tests: 8x8, 8 channels), <c>small</c> (28x28, about 0.8M parameters),
    /// <c>mnist</c> (28x28, 64 channels, 2 blocks, the default for real MNIST runs), <c>base32</c> (32x32 RGB,
    /// 128 channels, ADM's CIFAR-10 shape).
    /// </summary>
    public static UNetConfig Named(string name, int? imageChannels = null, int? imageSize = null)
    {
        var config = (name ?? "").Trim().ToLowerInvariant() switch
        {
            "tiny" => new UNetConfig { ImageSize = 8, BaseChannels = 8, ChannelMultipliers = [1, 2], AttentionLevels = [1], NormGroups = 4 },
            "small" => new UNetConfig { ImageSize = 28, BaseChannels = 32, ChannelMultipliers = [1, 2, 2], AttentionLevels = [2] },
            "mnist" => new UNetConfig { ImageSize = 28, BaseChannels = 64, ChannelMultipliers = [1, 2, 2], ResBlocksPerLevel = 2, AttentionLevels = [2], Dropout = 0.1 },
            "base32" => new UNetConfig { ImageChannels = 3, ImageSize = 32, BaseChannels = 128, ChannelMultipliers = [1, 2, 2, 2], ResBlocksPerLevel = 2, AttentionLevels = [1], AttentionHeads = 4, Dropout = 0.1 },
            _ => throw new BadInputException($"unknown model '{name}' (expected one of: {string.Join(", ", Names)})"),
        };
        config = config with { ImageChannels = imageChannels ?? config.ImageChannels, ImageSize = imageSize ?? config.ImageSize };
        config.Validate();
        return config;
    }

    /// <summary>The largest image side accepted (memory grows with its square; nothing here trains beyond it).</summary>
    public const int MaxImageSize = 512;

    /// <summary>Throws <see cref="BadInputException"/> when a field cannot build a network.</summary>
    public void Validate()
    {
        if (ImageChannels is not (1 or 3)) throw new BadInputException($"image channels must be 1 (grey) or 3 (RGB), got {ImageChannels}");
        if (ChannelMultipliers.Length == 0 || ChannelMultipliers.Any(m => m < 1))
            throw new BadInputException("channel multipliers must be one or more positive integers");
        // Each level but the last halves the resolution, and the way up must meet the same sizes again.
        var divisor = 1 << (ChannelMultipliers.Length - 1);
        if (ImageSize < divisor || ImageSize > MaxImageSize || ImageSize % divisor != 0)
            throw new BadInputException($"image size must be a multiple of {divisor} between {divisor} and {MaxImageSize} for this model ({ChannelMultipliers.Length} levels), got {ImageSize}");
        if (BaseChannels < 1) throw new BadInputException($"base channels must be at least 1, got {BaseChannels}");
        if (ResBlocksPerLevel < 1) throw new BadInputException($"residual blocks per level must be at least 1, got {ResBlocksPerLevel}");
        if (AttentionLevels.Any(l => l < 0 || l >= ChannelMultipliers.Length))
            throw new BadInputException($"attention levels must lie in [0, {ChannelMultipliers.Length})");
        if (Dropout < 0 || Dropout >= 1) throw new BadInputException($"dropout must lie in [0, 1), got {Dropout}");
        if (AttentionHeads < 1) throw new BadInputException($"attention heads must be at least 1, got {AttentionHeads}");
        foreach (var m in ChannelMultipliers)
            if (BaseChannels * m % AttentionHeads != 0)
                throw new BadInputException($"{BaseChannels * m} channels do not split into {AttentionHeads} attention heads");
        if (Routing != TaskRoutingKind.None) ValidateRouting();
    }

    private void ValidateRouting()
    {
        if (!Enum.IsDefined(Routing)) throw new BadInputException($"unknown routing {(int)Routing}");
        if (!(RoutingShare > 0 && RoutingShare <= 1)) throw new BadInputException($"routing share must lie in (0, 1], got {RoutingShare}");
        if (!(RoutingSharpness > 0) || double.IsInfinity(RoutingSharpness))
            throw new BadInputException($"routing sharpness must be a positive number, got {RoutingSharpness}");
        if (RoutingTimesteps < 1) throw new BadInputException($"routing timesteps must be at least 1, got {RoutingTimesteps}");
        // The narrowest block input is the first level's BaseChannels; every block needs one active channel.
        if (Math.Floor(RoutingShare * BaseChannels) < 1)
            throw new BadInputException($"routing share {RoutingShare} activates no channel of the {BaseChannels}-channel blocks");
    }

    /// <summary>
    /// This configuration with task routing chosen by name (<c>none</c> or <c>dtr</c>) for a diffusion of
    /// <paramref name="timesteps"/> steps, with DTR's share and sharpness.
    /// </summary>
    /// <exception cref="BadInputException">An unknown routing name or invalid DTR settings.</exception>
    public UNetConfig WithRouting(string routing, double share = Core.TaskRouting.DefaultShare, double sharpness = Core.TaskRouting.DefaultSharpness, int timesteps = 1000)
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
