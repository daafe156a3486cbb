// A backbone: an MLP over the flattened image and sinusoidal timestep features. Poor at images, but it is all a
// backbone needs to train, checkpoint and sample through the library: a configuration record and a Denoiser.
using DiffusionFunctional;
using DiffusionFunctional.Backend;
using DiffusionFunctional.Models;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

/// <summary>The shape of a <see cref="PixelMlp"/>; checkpoint headers store it as JSON with its kind.</summary>
public sealed record PixelMlpConfig : DenoiserConfig
{
    public const string KindName = "pixel-mlp";
    public const int TimeFeatures = 32;
    public override string Kind => KindName;
    public int Hidden { get; init; } = 128;

    public override Denoiser Build() => new PixelMlp(this);

    // Two linear layers, a multiply-add counted as 2.
    public override double ForwardFlopsPerImage()
    {
        double pixels = ImageChannels * ImageSize * ImageSize;
        return 2 * ((pixels + TimeFeatures) * Hidden + Hidden * pixels);
    }

    protected override int NarrowestRoutedWidth => Hidden;

    public override string Describe() => $"pixel MLP of width {Hidden}";

    public override void Validate()
    {
        if (Hidden < 1) throw new BadInputException($"the hidden width must be at least 1, got {Hidden}");
        if (Routing != TaskRoutingKind.None) throw new BadInputException("a pixel MLP has no task routing");
        base.Validate();
    }
}

/// <summary>Noisy image and timestep features in, the noise prediction out: one hidden SiLU layer.</summary>
public sealed class PixelMlp : Denoiser
{
    private readonly Linear hidden;
    private readonly Linear output;

    public PixelMlp(PixelMlpConfig config) : base(nameof(PixelMlp), config)
    {
        config.Validate();
        var pixels = config.ImageChannels * config.ImageSize * config.ImageSize;
        hidden = Linear(pixels + PixelMlpConfig.TimeFeatures, config.Hidden);
        output = Linear(config.Hidden, pixels);
        RegisterComponents();
    }

    public override TaskRouter? Router => null;

    public override Tensor forward(Tensor x, Tensor timesteps)
    {
        using var scope = NewDisposeScope();
        const int half = PixelMlpConfig.TimeFeatures / 2;
        var frequencies = exp(Scalars.Arange(0, half, float32, x.device).Times(-Math.Log(10000.0) / half));
        var angles = timesteps.to_type(float32).unsqueeze(1) * frequencies.unsqueeze(0);
        var input = cat([x.flatten(1), cos(angles).to_type(x.dtype), sin(angles).to_type(x.dtype)], 1);
        var y = output.forward(functional.silu(hidden.forward(input)));
        return y.reshape(x.shape).MoveToOuterDisposeScope();
    }
}
