using DiffusionFunctional.Backend;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace DiffusionFunctional.Models;

/// <summary>
/// A DiT block with adaLN-Zero conditioning: from the timestep embedding c, six [B, h] vectors shift, scale and gate the
/// attention and MLP branches, x + gate1 * Attn(modulate(LN(x))), then + gate2 * MLP(modulate(LN(.))). The gates start
/// at zero, so a fresh block is the identity.
/// </summary>
public sealed class DiTBlock : Module<Tensor, Tensor, Tensor>
{
    private readonly DiTAttention attn;
    private readonly DiTMlp mlp;
    private readonly Sequential adaLN_modulation;

    /// <summary>A block over <paramref name="hidden"/>-wide tokens.</summary>
    public DiTBlock(int hidden, int heads, int mlpRatio) : base(nameof(DiTBlock))
    {
        attn = new DiTAttention(hidden, heads);
        mlp = new DiTMlp(hidden, hidden * mlpRatio);
        adaLN_modulation = DiTLayers.Modulation(hidden, 6);
        RegisterComponents();
    }

    /// <summary>The block without task routing.</summary>
    public override Tensor forward(Tensor x, Tensor c) => forward(x, c, null);

    /// <summary>
    /// With DTR masks m (per sample, over the features): (1 - m) * x + Block(m * x), the block's residual stream
    /// included, as the DTR paper routes a DiT block (docs/routing-and-densities.md); without, the plain block.
    /// </summary>
    internal Tensor forward(Tensor x, Tensor c, RoutingMasks? routing)
    {
        using var scope = NewDisposeScope();
        var mask = routing?.ForTokens(x);
        var h = mask is null ? x : x * mask;
        var m = adaLN_modulation.forward(c).chunk(6, 1);
        h = h.Plus(m[2].unsqueeze(1) * attn.forward(DiTLayers.Modulate(DiTLayers.Normalise(h), m[0], m[1])));
        h = h.Plus(m[5].unsqueeze(1) * mlp.forward(DiTLayers.Modulate(DiTLayers.Normalise(h), m[3], m[4])));
        if (mask is not null) h = h.Plus(x * mask.SubtractedFrom(1));
        return h.MoveToOuterDisposeScope();
    }
}

/// <summary>The last layer: adaLN (shift, scale; zero-initialised) and a zero-initialised linear map to the patches.</summary>
public sealed class DiTFinalLayer : Module<Tensor, Tensor, Tensor>
{
    private readonly Linear linear;
    private readonly Sequential adaLN_modulation;

    /// <summary>From <paramref name="hidden"/>-wide tokens to <paramref name="patch"/>^2 x <paramref name="channels"/> values each.</summary>
    public DiTFinalLayer(int hidden, int patch, int channels) : base(nameof(DiTFinalLayer))
    {
        linear = DiTLayers.ZeroLinear(hidden, patch * patch * channels);
        adaLN_modulation = DiTLayers.Modulation(hidden, 2);
        RegisterComponents();
    }

    /// <summary>Tokens [B, N, h] to patch values [B, N, p*p*C].</summary>
    public override Tensor forward(Tensor x, Tensor c)
    {
        using var scope = NewDisposeScope();
        var m = adaLN_modulation.forward(c).chunk(2, 1);
        return linear.forward(DiTLayers.Modulate(DiTLayers.Normalise(x), m[0], m[1])).MoveToOuterDisposeScope();
    }
}

/// <summary>
/// A diffusion transformer (Peebles and Xie 2023), unconditional: patchify, fixed 2-D sin-cos positions, a timestep
/// embedding, <see cref="DiTConfig.Depth"/> adaLN-Zero blocks, a final adaLN layer and a linear unpatchify, predicting
/// noise (or v) of the input's shape. Parameters are laid out as in the reference implementation, whose
/// class-conditional <c>DiT</c> (one class, a zero label row, learn_sigma off) computes the same outputs from them.
/// </summary>
public sealed class DiT : Denoiser
{
    private readonly PatchEmbed x_embedder;
    private readonly DiTTimestepEmbedder t_embedder;
    private readonly Tensor pos_embed;
    private readonly ModuleList<DiTBlock> blocks;
    private readonly DiTFinalLayer final_layer;
    private readonly TaskRouter? router;

    /// <summary>Builds the network; weights are drawn from the global TorchSharp generator (seed it first).</summary>
    public DiT(DiTConfig config) : base(nameof(DiT), config)
    {
        // The patch embedding is a convolution: the kernels must be known to compute correct numbers first.
        Backend.ConvolutionKernels.Ensure();
        config.Validate();
        Shape = config;
        using var scope = NewDisposeScope();
        x_embedder = new PatchEmbed(config.ImageChannels, config.HiddenSize, config.PatchSize);
        t_embedder = new DiTTimestepEmbedder(config.HiddenSize);
        // A buffer, not a parameter: fixed, saved with the weights (the reference stores it in its state_dict too).
        pos_embed = Patches.SinCosPositions(config.ImageSize / config.PatchSize, config.HiddenSize).unsqueeze(0);
        blocks = ModuleList([.. Enumerable.Range(0, config.Depth).Select(_ => new DiTBlock(config.HiddenSize, config.Heads, config.MlpRatio))]);
        final_layer = new DiTFinalLayer(config.HiddenSize, config.PatchSize, config.ImageChannels);
        RegisterComponents();
        scope.Detach(parameters().Cast<IDisposable>().Concat(buffers()));
        router = TaskRouter.Create(config, [config.HiddenSize]);
    }

    /// <summary>The configuration this network was built from, typed: the same object as <see cref="Denoiser.Config"/>.</summary>
    public DiTConfig Shape { get; }

    /// <inheritdoc/>
    public override TaskRouter? Router => router;

    /// <summary>Predicts the model output for noisy images <paramref name="x"/> [B,C,H,W] at integer timesteps [B].</summary>
    public override Tensor forward(Tensor x, Tensor timesteps)
    {
        using var scope = NewDisposeScope();
        var routing = router?.ForBatch(timesteps, x.dtype);
        var positions = pos_embed.dtype == x.dtype ? pos_embed : pos_embed.to_type(x.dtype);
        var h = x_embedder.forward(x).Plus(positions);
        var c = t_embedder.forward(timesteps, x.dtype);
        foreach (var block in blocks) h = block.forward(h, c, routing);
        var patches = final_layer.forward(h, c);
        return Patches.Unpatchify(patches, Shape.PatchSize, Shape.ImageChannels).MoveToOuterDisposeScope();
    }

    /// <summary>Also frees the routing tables (they are not registered modules).</summary>
    protected override void Dispose(bool disposing)
    {
        if (disposing) router?.Dispose();
        base.Dispose(disposing);
    }
}
