namespace DiffusionFunctional.Models;

/// <summary>
/// The shape of an ADM-style UNet. Channel counts per level are <c>BaseChannels * ChannelMultipliers[i]</c>;
/// self-attention runs at the levels listed in <see cref="AttentionLevels"/> (0 = full resolution) and in the middle.
/// </summary>
public sealed record UNetConfig : DenoiserConfig
{
    /// <summary>The kind stored in checkpoint headers.</summary>
    public const string KindName = "unet";
    /// <inheritdoc/>
    public override string Kind => KindName;
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

    /// <summary>Names accepted by <see cref="Named"/>.</summary>
    public static IReadOnlyList<string> Names { get; } = ["tiny", "mini", "small", "mnist", "base32"];

    /// <summary>
    /// A named configuration: <c>tiny</c> (tests: 8x8, 8 channels), <c>mini</c> (16x16, 16 channels: long CPU runs such
    /// as <c>dfn reproduce --profile quick</c>), <c>small</c> (28x28, about 0.8M parameters),
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
            "mini" => new UNetConfig { ImageSize = 16, BaseChannels = 16, ChannelMultipliers = [1, 2, 2], AttentionLevels = [2], NormGroups = 8 },
            "base32" => new UNetConfig { ImageChannels = 3, ImageSize = 32, BaseChannels = 128, ChannelMultipliers = [1, 2, 2, 2], ResBlocksPerLevel = 2, AttentionLevels = [1], AttentionHeads = 4, Dropout = 0.1 },
            _ => throw new BadInputException($"unknown model '{name}' (expected one of: {string.Join(", ", Names)})"),
        };
        config = config with { ImageChannels = imageChannels ?? config.ImageChannels, ImageSize = imageSize ?? config.ImageSize };
        config.Validate();
        return config;
    }

    /// <inheritdoc/>
    public override UNet Build() => new(this);

    /// <inheritdoc/>
    public override double ForwardFlopsPerImage() => UNetFlops.ForwardPerImage(this);

    /// <summary>The first level's blocks take <see cref="BaseChannels"/> channels, the narrowest routed input.</summary>
    protected override int NarrowestRoutedWidth => BaseChannels;

    /// <inheritdoc/>
    public override string Describe() => $"UNet base {BaseChannels} x [{string.Join(", ", ChannelMultipliers)}], {ResBlocksPerLevel} block{(ResBlocksPerLevel == 1 ? "" : "s")} per level, attention at level(s) [{string.Join(", ", AttentionLevels)}]";

    /// <inheritdoc/>
    public override void Validate()
    {
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
        base.Validate();
    }
}
