namespace DiffusionFunctional.Models;

/// <summary>
/// The shape of a <see cref="DiT"/> (Peebles and Xie 2023): <see cref="DenoiserConfig.ImageSize"/> /
/// <see cref="PatchSize"/> squared tokens of <see cref="HiddenSize"/> features through <see cref="Depth"/> blocks of
/// <see cref="Heads"/>-head self-attention and an MLP <see cref="MlpRatio"/> times as wide.
/// </summary>
public sealed record DiTConfig : DenoiserConfig
{
    /// <summary>The kind stored in checkpoint headers.</summary>
    public const string KindName = "dit";
    /// <inheritdoc/>
    public override string Kind => KindName;

    /// <summary>Side of the square patches each token covers.</summary>
    public int PatchSize { get; init; } = 2;
    /// <summary>Token width (the paper's hidden size d).</summary>
    public int HiddenSize { get; init; } = 64;
    /// <summary>Number of DiT blocks.</summary>
    public int Depth { get; init; } = 4;
    /// <summary>Attention heads per block.</summary>
    public int Heads { get; init; } = 2;
    /// <summary>The MLP's hidden width as a multiple of <see cref="HiddenSize"/> (the paper's 4).</summary>
    public int MlpRatio { get; init; } = 4;

    /// <summary>Width of the sinusoidal timestep features fed to the timestep MLP (the paper's 256).</summary>
    public const int TimestepFeatures = 256;

    /// <summary>Tokens per image: (image size / patch size) squared.</summary>
    public int Tokens => (ImageSize / PatchSize) * (ImageSize / PatchSize);

    /// <inheritdoc/>
    public override DiT Build() => new(this);

    /// <inheritdoc/>
    public override double ForwardFlopsPerImage()
    {
        double n = Tokens, h = HiddenSize, patch = ImageChannels * PatchSize * PatchSize;
        var embed = 2 * n * patch * h + 2 * (TimestepFeatures * h + h * h);
        // Per block: the 6h modulation, q/k/v and output projections, two attention products, the 2-layer MLP.
        var block = 2 * h * 6 * h + 2 * n * (4 * h * h) + 2 * (2 * n * n * h) + 2 * n * (2 * MlpRatio * h * h);
        var final = 2 * h * 2 * h + 2 * n * h * patch;
        return embed + Depth * block + final;
    }

    /// <summary>Every block's input is <see cref="HiddenSize"/> wide.</summary>
    protected override int NarrowestRoutedWidth => HiddenSize;

    /// <inheritdoc/>
    public override string Describe() =>
        $"DiT depth {Depth}, width {HiddenSize}, patch {PatchSize} ({Tokens} tokens), {Heads} head{(Heads == 1 ? "" : "s")}";

    /// <inheritdoc/>
    public override void Validate()
    {
        if (PatchSize < 1) throw new BadInputException($"patch size must be at least 1, got {PatchSize}");
        if (ImageSize < PatchSize || ImageSize > MaxImageSize || ImageSize % PatchSize != 0)
            throw new BadInputException($"image size must be a multiple of the patch size {PatchSize} between {PatchSize} and {MaxImageSize}, got {ImageSize}");
        // The 2-D sin-cos positions give half the features to each axis, as sin and cos pairs.
        if (HiddenSize < 4 || HiddenSize % 4 != 0) throw new BadInputException($"hidden size must be a positive multiple of 4, got {HiddenSize}");
        if (Depth < 1) throw new BadInputException($"depth must be at least 1, got {Depth}");
        if (Heads < 1 || HiddenSize % Heads != 0) throw new BadInputException($"{HiddenSize} features do not split into {Heads} attention heads");
        if (MlpRatio < 1) throw new BadInputException($"MLP ratio must be at least 1, got {MlpRatio}");
        base.Validate();
    }
}
