using DiffusionFunctional.Backend;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace DiffusionFunctional.Models;

/// <summary>Layer factories that work around TorchSharp quirks in one place.</summary>
internal static class Layers
{
    /// <summary>
    /// A GroupNorm with weight 1 and bias 0. TorchSharp 0.107's <c>nn.GroupNorm</c> leaves both uninitialised
    /// (NaN or garbage), so every GroupNorm in the project must come from here.
    /// </summary>
    public static GroupNorm GroupNorm(int channels, int maxGroups)
    {
        var groups = Math.Min(maxGroups, channels);
        while (channels % groups != 0) groups--;
        var norm = nn.GroupNorm(groups, channels, eps: 1e-5);
        using (no_grad())
        {
            norm.weight!.FillInPlace(1.0);
            norm.bias!.FillInPlace(0.0);
        }
        return norm;
    }

    /// <summary>
    /// The same values as <paramref name="x"/> [B,C,H,W] laid out channels-last (NHWC strides), which later operations
    /// keep. TorchSharp 0.107 has no <c>memory_format</c> argument, so the layout is made by permuting, copying and
    /// permuting back, which is what <c>contiguous(memory_format=channels_last)</c> does.
    /// </summary>
    public static Tensor ToChannelsLast(Tensor x)
    {
        using var nhwc = x.permute(0, 2, 3, 1).contiguous();
        return nhwc.permute(0, 3, 1, 2);
    }

    /// <summary>
    /// <paramref name="norm"/> applied to <paramref name="x"/>; a channels-last input is normalised in NCHW order and
    /// returned channels-last, because libtorch 2.10's CPU GroupNorm is about ten times slower on NHWC input than the
    /// two reorders (docs/benchmarks-history.md, "What was tried, kept or not").
    /// </summary>
    public static Tensor Normalise(GroupNorm norm, Tensor x)
    {
        if (x.is_contiguous()) return norm.forward(x);
        using var nchw = x.contiguous();
        using var normalised = norm.forward(nchw);
        return ToChannelsLast(normalised);
    }

    /// <summary>ADM's sinusoidal timestep features: [cos(t f_i), sin(t f_i)], f_i = 10000^(-i/half).</summary>
    public static Tensor TimestepFeatures(Tensor timesteps, int dim)
    {
        using var scope = NewDisposeScope();
        var half = dim / 2;
        var freqs = exp(Scalars.Arange(0, half, float32, timesteps.device).Times(-Math.Log(10000.0) / half));
        var args = timesteps.to_type(float32).unsqueeze(1) * freqs.unsqueeze(0);
        var features = cat([cos(args), sin(args)], 1);
        if (dim % 2 == 1) features = nn.functional.pad(features, [0, 1]);
        return features.MoveToOuterDisposeScope();
    }
}

/// <summary>ADM residual block: GroupNorm, SiLU, conv, plus a projected timestep embedding, GroupNorm, SiLU, dropout, conv; skip connection.</summary>
public sealed class ResBlock : Module<Tensor, Tensor, Tensor>
{
    private readonly GroupNorm norm1;
    private readonly Conv2d conv1;
    private readonly Linear time_emb_proj;
    private readonly GroupNorm norm2;
    private readonly Dropout dropout;
    private readonly Conv2d conv2;
    private readonly Conv2d? conv_shortcut;

    /// <summary>A block from <paramref name="inChannels"/> to <paramref name="outChannels"/> channels, conditioned on an
    /// <paramref name="embedDim"/>-wide timestep embedding; GroupNorm uses at most <paramref name="maxGroups"/> groups.</summary>
    public ResBlock(int inChannels, int outChannels, int embedDim, double dropout, int maxGroups) : base(nameof(ResBlock))
    {
        norm1 = Layers.GroupNorm(inChannels, maxGroups);
        conv1 = Conv2d(inChannels, outChannels, kernel_size: 3, padding: 1);
        time_emb_proj = Linear(embedDim, outChannels);
        norm2 = Layers.GroupNorm(outChannels, maxGroups);
        this.dropout = Dropout(dropout);
        conv2 = Conv2d(outChannels, outChannels, kernel_size: 3, padding: 1);
        // ADM zero-initialises the last conv so every block starts as the identity.
        using (no_grad()) { conv2.weight!.zero_(); conv2.bias!.zero_(); }
        if (inChannels != outChannels) conv_shortcut = Conv2d(inChannels, outChannels, kernel_size: 1);
        RegisterComponents();
    }

    /// <summary>The block's input channel count (the width its routing mask covers).</summary>
    internal int InChannels => (int)conv1.weight!.shape[1];

    /// <summary>The block without task routing.</summary>
    public override Tensor forward(Tensor x, Tensor emb) => forward(x, emb, null);

    /// <summary>skip(x) + Block(m_t * x): with DTR masks the residual branch sees only each sample's channel window
    /// (docs/routing-and-densities.md); with none it is the plain block, op for op.</summary>
    internal Tensor forward(Tensor x, Tensor emb, RoutingMasks? routing)
    {
        using var scope = NewDisposeScope();
        var routed = routing is null ? x : routing.Apply(x);
        // In place where autograd allows it (GroupNorm's and a convolution's backward never read their outputs): the
        // same values without a fresh feature-map buffer per operation (docs/benchmarks-history.md, "What was tried, kept or not").
        var h = conv1.forward(functional.silu(Layers.Normalise(norm1, routed), inplace: true));
        h.AddInPlace(time_emb_proj.forward(functional.silu(emb)).unsqueeze(-1).unsqueeze(-1));
        h = conv2.forward(dropout.forward(functional.silu(Layers.Normalise(norm2, h), inplace: true)));
        var skip = conv_shortcut is null ? x : conv_shortcut.forward(x);
        return h.AddInPlace(skip).MoveToOuterDisposeScope();
    }
}

/// <summary>Multi-head self-attention over the pixels of a feature map, with a residual connection.</summary>
public sealed class AttentionBlock : Module<Tensor, Tensor>
{
    private readonly GroupNorm norm;
    private readonly Conv2d qkv;
    private readonly Conv2d proj_out;
    private readonly int heads;

    /// <summary>Attention with <paramref name="heads"/> heads over a <paramref name="channels"/>-channel map; the output
    /// projection starts at zero so the block starts as the identity.</summary>
    public AttentionBlock(int channels, int heads, int maxGroups) : base(nameof(AttentionBlock))
    {
        this.heads = heads;
        norm = Layers.GroupNorm(channels, maxGroups);
        qkv = Conv2d(channels, channels * 3, kernel_size: 1);
        proj_out = Conv2d(channels, channels, kernel_size: 1);
        using (no_grad()) { proj_out.weight!.zero_(); proj_out.bias!.zero_(); }
        RegisterComponents();
    }

    /// <summary>x plus attention over its pixels (same shape).</summary>
    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var (b, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3]);
        var headDim = c / heads;
        // [B, 3C, H, W] -> [3, B, heads, HW, d]
        var parts = qkv.forward(Layers.Normalise(norm, x)).reshape(b, 3, heads, headDim, h * w).permute(1, 0, 2, 4, 3);
        // In a bf16 network (Training/MixedPrecision.cs) attention over these few pixels runs in fp32: libtorch's CPU
        // kernel is about three times faster there than in bf16, and the softmax more precise (docs/benchmarks-history.md, "What was tried, kept or not").
        var qkvParts = parts.dtype == ScalarType.BFloat16 ? parts.to_type(ScalarType.Float32) : parts;
        var attended = functional.scaled_dot_product_attention(qkvParts[0], qkvParts[1], qkvParts[2]).to_type(parts.dtype);
        var merged = attended.permute(0, 1, 3, 2).reshape(b, c, h, w);
        return x.Plus(proj_out.forward(merged)).MoveToOuterDisposeScope();
    }
}

/// <summary>Halves the resolution with a stride-2 3x3 convolution.</summary>
public sealed class Downsample : Module<Tensor, Tensor>
{
    private readonly Conv2d conv;

    /// <summary>A downsampler keeping <paramref name="channels"/> channels.</summary>
    public Downsample(int channels) : base(nameof(Downsample))
    {
        conv = Conv2d(channels, channels, kernel_size: 3, stride: 2, padding: 1);
        RegisterComponents();
    }

    /// <summary>The map at half the resolution (rounded up).</summary>
    public override Tensor forward(Tensor x) => conv.forward(x);
}

/// <summary>Nearest-neighbour upsampling to a given size (so odd sizes such as 7 -> 14 -> 28 round-trip), then a 3x3 conv.</summary>
public sealed class Upsample : Module<Tensor, long[], Tensor>
{
    private readonly Conv2d conv;

    /// <summary>An upsampler keeping <paramref name="channels"/> channels.</summary>
    public Upsample(int channels) : base(nameof(Upsample))
    {
        conv = Conv2d(channels, channels, kernel_size: 3, padding: 1);
        RegisterComponents();
    }

    /// <summary>The map resized to <paramref name="size"/> (height, width), then convolved.</summary>
    public override Tensor forward(Tensor x, long[] size)
    {
        using var up = functional.interpolate(x, size: size, mode: InterpolationMode.Nearest);
        return conv.forward(up);
    }
}
