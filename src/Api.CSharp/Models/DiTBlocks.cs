using DiffusionFunctional.Backend;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace DiffusionFunctional.Models;

/// <summary>
/// The pieces of a <see cref="DiT"/>. Submodule names follow the reference implementation's parameter layout
/// (facebookresearch/DiT <c>models.py</c>: <c>x_embedder.proj</c>, <c>t_embedder.mlp.N</c>, <c>blocks.N.attn.qkv</c>,
/// <c>blocks.N.adaLN_modulation.1</c>, <c>final_layer.linear</c>, ...), so a state_dict needs no key map
/// (docs/interop.md). The code is written from the paper (Peebles and Xie 2023).
/// </summary>
internal static class DiTLayers
{
    /// <summary>LayerNorm without learned scale or shift (adaLN supplies both), eps 1e-6 as in the paper's code.</summary>
    public static Tensor Normalise(Tensor x) => functional.layer_norm(x, [x.shape[^1]], null, null, 1e-6);

    /// <summary>x * (1 + scale) + shift, with per-sample [B, h] scale and shift broadcast over the tokens.</summary>
    public static Tensor Modulate(Tensor x, Tensor shift, Tensor scale) => torch.addcmul(shift.unsqueeze(1), x, scale.unsqueeze(1).Plus(1), Scalars.One);

    /// <summary>A linear layer with Xavier-uniform weights and zero bias (the transformer's initialisation).</summary>
    public static Linear XavierLinear(int inputs, int outputs)
    {
        var layer = Linear(inputs, outputs);
        using (no_grad())
        {
            init.xavier_uniform_(layer.weight!);
            layer.bias!.zero_();
        }
        return layer;
    }

    /// <summary>A linear layer whose weights and bias start at zero (adaLN-Zero's modulation, the output layer).</summary>
    public static Linear ZeroLinear(int inputs, int outputs)
    {
        var layer = Linear(inputs, outputs);
        using (no_grad())
        {
            layer.weight!.zero_();
            layer.bias!.zero_();
        }
        return layer;
    }

    /// <summary>SiLU then a linear layer to <paramref name="chunks"/> x h modulation values, zero-initialised
    /// (adaLN-Zero: every block starts as the identity). Indexed like the reference's <c>Sequential(SiLU, Linear)</c>.</summary>
    public static Sequential Modulation(int hidden, int chunks) => Sequential(SiLU(), ZeroLinear(hidden, chunks * hidden));
}

/// <summary>Non-overlapping p x p patches to tokens [B, N, h] with one strided convolution (key <c>proj</c>).</summary>
public sealed class PatchEmbed : Module<Tensor, Tensor>
{
    private readonly Conv2d proj;

    /// <summary>Patches of <paramref name="patch"/> pixels of <paramref name="channels"/> channels to <paramref name="hidden"/> features.</summary>
    public PatchEmbed(int channels, int hidden, int patch) : base(nameof(PatchEmbed))
    {
        proj = Conv2d(channels, hidden, kernel_size: patch, stride: patch);
        // Initialised as the linear map it is (Xavier over the flattened patch), not as a convolution.
        using (no_grad())
        {
            using var flat = proj.weight!.view(hidden, -1);
            init.xavier_uniform_(flat);
            proj.bias!.zero_();
        }
        RegisterComponents();
    }

    /// <summary>Images [B, C, H, W] to tokens [B, (H/p)(W/p), h], row by row.</summary>
    public override Tensor forward(Tensor x)
    {
        using var maps = proj.forward(x);
        return maps.flatten(2).transpose(1, 2);
    }
}

/// <summary>Sinusoidal timestep features through Linear, SiLU, Linear (keys <c>mlp.0</c>, <c>mlp.2</c>).</summary>
public sealed class DiTTimestepEmbedder : Module<Tensor, Tensor>
{
    private readonly Sequential mlp;

    /// <summary>An embedding of <paramref name="hidden"/> features.</summary>
    public DiTTimestepEmbedder(int hidden) : base(nameof(DiTTimestepEmbedder))
    {
        var first = Linear(DiTConfig.TimestepFeatures, hidden);
        var second = Linear(hidden, hidden);
        using (no_grad())
        {
            init.normal_(first.weight!, std: 0.02);
            init.normal_(second.weight!, std: 0.02);
            first.bias!.zero_();
            second.bias!.zero_();
        }
        mlp = Sequential(first, SiLU(), second);
        RegisterComponents();
    }

    /// <summary>The embedding [B, h] of integer timesteps [B], in <paramref name="type"/>.</summary>
    public Tensor forward(Tensor timesteps, ScalarType type)
    {
        using var features = Layers.TimestepFeatures(timesteps, DiTConfig.TimestepFeatures);
        using var typed = features.to_type(type);
        return mlp.forward(typed);
    }

    /// <summary>The embedding in float32.</summary>
    public override Tensor forward(Tensor timesteps) => forward(timesteps, ScalarType.Float32);
}

/// <summary>Multi-head self-attention over tokens through libtorch's fused kernel (keys <c>qkv</c>, <c>proj</c>).</summary>
public sealed class DiTAttention : Module<Tensor, Tensor>
{
    private readonly Linear qkv;
    private readonly Linear proj;
    private readonly int heads;

    /// <summary>Attention with <paramref name="heads"/> heads over <paramref name="hidden"/>-wide tokens.</summary>
    public DiTAttention(int hidden, int heads) : base(nameof(DiTAttention))
    {
        this.heads = heads;
        qkv = DiTLayers.XavierLinear(hidden, 3 * hidden);
        proj = DiTLayers.XavierLinear(hidden, hidden);
        RegisterComponents();
    }

    /// <summary>Tokens [B, N, h] attended to each other, same shape.</summary>
    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var (b, n, h) = (x.shape[0], x.shape[1], x.shape[2]);
        // [B, N, 3h] -> [3, B, heads, N, d]: q, k and v, each head's features contiguous as in the reference layout.
        var parts = qkv.forward(x).reshape(b, n, 3, heads, h / heads).permute(2, 0, 3, 1, 4);
        var attended = functional.scaled_dot_product_attention(parts[0], parts[1], parts[2]);
        return proj.forward(attended.transpose(1, 2).reshape(b, n, h)).MoveToOuterDisposeScope();
    }
}

/// <summary>Linear, GELU (tanh approximation), Linear (keys <c>fc1</c>, <c>fc2</c>).</summary>
public sealed class DiTMlp : Module<Tensor, Tensor>
{
    private readonly Linear fc1;
    private readonly Linear fc2;

    /// <summary>An MLP from <paramref name="hidden"/> through <paramref name="inner"/> features and back.</summary>
    public DiTMlp(int hidden, int inner) : base(nameof(DiTMlp))
    {
        fc1 = DiTLayers.XavierLinear(hidden, inner);
        fc2 = DiTLayers.XavierLinear(inner, hidden);
        RegisterComponents();
    }

    /// <summary>Tokens [B, N, h] through the MLP, same shape.</summary>
    public override Tensor forward(Tensor x)
    {
        using var inner = fc1.forward(x);
        using var activated = functional.gelu(inner, TorchSharp.Modules.GELU.Approximate.tanh);
        return fc2.forward(activated);
    }
}
