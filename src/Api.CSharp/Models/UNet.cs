using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace DiffusionFunctional.Models;

/// <summary>One resolution level: residual blocks, optional attention after each, and a resampler.</summary>
public sealed class UNetLevel : nn.Module
{
    private readonly ModuleList<ResBlock> resnets;
    private readonly ModuleList<AttentionBlock> attentions;
    private readonly Downsample? downsampler;
    private readonly Upsample? upsampler;

    internal UNetLevel(ResBlock[] blocks, AttentionBlock[] attention, Downsample? down, Upsample? up) : base(nameof(UNetLevel))
    {
        resnets = ModuleList(blocks);
        attentions = ModuleList(attention);
        downsampler = down;
        upsampler = up;
        RegisterComponents();
    }

    /// <summary>Input widths of the level's residual blocks (for the routing tables).</summary>
    internal IEnumerable<int> BlockInputWidths => resnets.Select(r => r.InChannels);

    internal Tensor Down(Tensor h, Tensor emb, List<Tensor> skips, RoutingMasks? routing)
    {
        for (var j = 0; j < resnets.Count; j++)
        {
            h = resnets[j].forward(h, emb, routing);
            if (attentions.Count > 0) h = attentions[j].forward(h);
            skips.Add(h);
        }
        if (downsampler is not null)
        {
            h = downsampler.forward(h);
            skips.Add(h);
        }
        return h;
    }

    internal Tensor Up(Tensor h, Tensor emb, List<Tensor> skips, RoutingMasks? routing)
    {
        for (var j = 0; j < resnets.Count; j++)
        {
            var skip = skips[^1];
            skips.RemoveAt(skips.Count - 1);
            h = resnets[j].forward(cat([h, skip], 1), emb, routing);
            if (attentions.Count > 0) h = attentions[j].forward(h);
        }
        if (upsampler is not null) h = upsampler.forward(h, [skips[^1].shape[2], skips[^1].shape[3]]);
        return h;
    }
}

/// <summary>
/// An ADM-style UNet (Dhariwal and Nichol 2021) predicting noise (or v) from a noisy image and its timestep.
/// State-dict keys follow diffusers' <c>UNet2DModel</c> vocabulary: <c>conv_in</c>, <c>time_embedding.linear_1</c>,
/// <c>down_blocks.{i}.resnets.{j}.conv1</c>, <c>mid_block</c>, <c>up_blocks</c>, <c>conv_norm_out</c>, <c>conv_out</c>.
/// </summary>
public sealed class UNet : Denoiser
{
    private readonly Conv2d conv_in;
    private readonly TimestepEmbedding time_embedding;
    private readonly ModuleList<UNetLevel> down_blocks;
    private readonly MiddleBlock mid_block;
    private readonly ModuleList<UNetLevel> up_blocks;
    private readonly GroupNorm conv_norm_out;
    private readonly Conv2d conv_out;
    private readonly TaskRouter? router;

    /// <summary>The configuration this network was built from, typed: the same object as <see cref="Denoiser.Config"/>.</summary>
    public UNetConfig Shape { get; }

    /// <summary>Builds the network; weights are drawn from the global TorchSharp generator (seed it first).</summary>
    public UNet(UNetConfig config) : base(nameof(UNet), config)
    {
        // Before this network's first convolution, the kernels must be known to compute correct numbers (or replaced).
        Backend.ConvolutionKernels.Ensure();
        config.Validate();
        Shape = config;
        // TorchSharp's layer constructors leave temporaries behind (a Conv2d's bias initialisation, for one): build
        // inside a dispose scope that keeps the parameters and buffers and frees the rest.
        using var scope = NewDisposeScope();
        var c0 = config.BaseChannels;
        var embedDim = 4 * c0;
        var groups = config.NormGroups;
        conv_in = Conv2d(config.ImageChannels, c0, kernel_size: 3, padding: 1);
        time_embedding = new TimestepEmbedding(c0, embedDim);

        var skipChannels = new List<int> { c0 };
        var current = c0;
        var levels = config.ChannelMultipliers.Length;
        var down = new List<UNetLevel>();
        for (var i = 0; i < levels; i++)
        {
            var outCh = c0 * config.ChannelMultipliers[i];
            var blocks = new List<ResBlock>();
            var attention = new List<AttentionBlock>();
            for (var j = 0; j < config.ResBlocksPerLevel; j++)
            {
                blocks.Add(new ResBlock(current, outCh, embedDim, config.Dropout, groups));
                current = outCh;
                if (config.AttentionLevels.Contains(i)) attention.Add(new AttentionBlock(current, config.AttentionHeads, groups));
                skipChannels.Add(current);
            }
            Downsample? downsample = null;
            if (i < levels - 1)
            {
                downsample = new Downsample(current);
                skipChannels.Add(current);
            }
            down.Add(new UNetLevel([.. blocks], [.. attention], downsample, null));
        }
        down_blocks = ModuleList([.. down]);
        mid_block = new MiddleBlock(current, embedDim, config, groups);

        var up = new List<UNetLevel>();
        for (var i = levels - 1; i >= 0; i--)
        {
            var outCh = c0 * config.ChannelMultipliers[i];
            var blocks = new List<ResBlock>();
            var attention = new List<AttentionBlock>();
            for (var j = 0; j <= config.ResBlocksPerLevel; j++)
            {
                var skip = skipChannels[^1];
                skipChannels.RemoveAt(skipChannels.Count - 1);
                blocks.Add(new ResBlock(current + skip, outCh, embedDim, config.Dropout, groups));
                current = outCh;
                if (config.AttentionLevels.Contains(i)) attention.Add(new AttentionBlock(current, config.AttentionHeads, groups));
            }
            up.Add(new UNetLevel([.. blocks], [.. attention], null, i > 0 ? new Upsample(current) : null));
        }
        up_blocks = ModuleList([.. up]);
        conv_norm_out = Layers.GroupNorm(current, groups);
        conv_out = Conv2d(current, config.ImageChannels, kernel_size: 3, padding: 1);
        using (no_grad()) { conv_out.weight!.zero_(); conv_out.bias!.zero_(); }
        RegisterComponents();
        scope.Detach(parameters().Cast<IDisposable>().Concat(buffers()));
        // After the weights: routing draws no random numbers and registers nothing.
        router = TaskRouter.Create(config, down_blocks.Concat(up_blocks).SelectMany(l => l.BlockInputWidths).Concat(mid_block.BlockInputWidths));
    }

    /// <inheritdoc/>
    public override TaskRouter? Router => router;

    /// <summary>
    /// Run the feature maps in channels-last (NHWC) memory order, which oneDNN's CPU convolutions prefer over NCHW:
    /// the first feature map is reordered once and every later layer keeps the order (docs/benchmarks-history.md,
    /// "What was tried, kept or not"). Results equal NCHW's to float rounding; weights and state dicts are unchanged. Off by default.
    /// </summary>
    public override bool ChannelsLast { get; set; }

    /// <summary>Predicts the model output for noisy images <paramref name="x"/> [B,C,H,W] at integer timesteps [B].</summary>
    public override Tensor forward(Tensor x, Tensor timesteps)
    {
        using var scope = NewDisposeScope();
        // Features in the weights' type: a bf16 working copy (Training/MixedPrecision.cs) takes bf16 features.
        var features = Layers.TimestepFeatures(timesteps, Shape.BaseChannels);
        var emb = time_embedding.forward(features.dtype == x.dtype ? features : features.to_type(x.dtype));
        var routing = router?.ForBatch(timesteps, x.dtype);
        var h = conv_in.forward(x);
        if (ChannelsLast) h = Layers.ToChannelsLast(h);
        var skips = new List<Tensor> { h };
        foreach (var level in down_blocks) h = level.Down(h, emb, skips, routing);
        h = mid_block.forward(h, emb, routing);
        foreach (var level in up_blocks) h = level.Up(h, emb, skips, routing);
        var output = conv_out.forward(functional.silu(Layers.Normalise(conv_norm_out, h), inplace: true));
        return (ChannelsLast ? output.contiguous() : output).MoveToOuterDisposeScope();
    }

    /// <summary>Also frees the routing tables (they are not registered modules).</summary>
    protected override void Dispose(bool disposing)
    {
        if (disposing) router?.Dispose();
        base.Dispose(disposing);
    }
}

/// <summary>Sinusoidal features through a two-layer SiLU MLP (keys <c>linear_1</c>, <c>linear_2</c>, as in diffusers).</summary>
public sealed class TimestepEmbedding : Module<Tensor, Tensor>
{
    private readonly Linear linear_1;
    private readonly Linear linear_2;

    /// <summary>An MLP from <paramref name="inDim"/> sinusoidal features to an <paramref name="embedDim"/>-wide embedding.</summary>
    public TimestepEmbedding(int inDim, int embedDim) : base(nameof(TimestepEmbedding))
    {
        linear_1 = Linear(inDim, embedDim);
        linear_2 = Linear(embedDim, embedDim);
        RegisterComponents();
    }

    /// <summary>The embedding [B, embedDim] of sinusoidal features [B, inDim].</summary>
    public override Tensor forward(Tensor features)
    {
        using var hidden = functional.silu(linear_1.forward(features));
        return linear_2.forward(hidden);
    }
}

/// <summary>Residual block, attention, residual block at the lowest resolution.</summary>
public sealed class MiddleBlock : Module<Tensor, Tensor, Tensor>
{
    private readonly ModuleList<ResBlock> resnets;
    private readonly ModuleList<AttentionBlock> attentions;

    /// <summary>The middle of a UNet with <paramref name="channels"/> channels at its lowest resolution.</summary>
    public MiddleBlock(int channels, int embedDim, UNetConfig config, int groups) : base(nameof(MiddleBlock))
    {
        resnets = ModuleList(new ResBlock(channels, channels, embedDim, config.Dropout, groups),
                             new ResBlock(channels, channels, embedDim, config.Dropout, groups));
        attentions = ModuleList(new AttentionBlock(channels, config.AttentionHeads, groups));
        RegisterComponents();
    }

    /// <summary>Input widths of the two residual blocks (for the routing tables).</summary>
    internal IEnumerable<int> BlockInputWidths => resnets.Select(r => r.InChannels);

    /// <summary>The block without task routing.</summary>
    public override Tensor forward(Tensor x, Tensor emb) => forward(x, emb, null);

    internal Tensor forward(Tensor x, Tensor emb, RoutingMasks? routing)
    {
        using var scope = NewDisposeScope();
        var h = resnets[0].forward(x, emb, routing);
        h = attentions[0].forward(h);
        return resnets[1].forward(h, emb, routing).MoveToOuterDisposeScope();
    }
}
