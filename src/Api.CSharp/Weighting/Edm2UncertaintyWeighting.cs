using DiffusionFunctional.Backend;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DiffusionFunctional.Weighting;

/// <summary>
/// EDM2-style learned uncertainty (Karras et al. 2024), docs/weightings.md, name <c>edm2-uncertainty</c>:
/// loss = mean over samples of L_t / exp(u(t)) + u(t), with u a small MLP on Fourier features of log SNR(t)
/// (the continuous-in-t limit of UW). u's parameters are an extra AdamW group (lr 0.01 by default, no weight
/// decay); its last layer starts at zero so training starts as vanilla. Per sample, no clusters, one backward.
/// </summary>
public sealed class Edm2UncertaintyWeighting : IWeighting, IDeviceResidentWeighting
{
    /// <summary>Default learning rate of u's parameters.</summary>
    public const double DefaultLearningRate = 0.01;
    private const int Frequencies = 8;
    // log SNR of the usual schedules spans about [-10, 10]; dividing by this maps it to about [-1, 1].
    private const double LogSnrScale = 10.0;

    private readonly Sequential mlp;
    private readonly double learningRate;

    /// <summary>u as an MLP with <paramref name="hidden"/> SiLU units, trained at <paramref name="learningRate"/>.</summary>
    public Edm2UncertaintyWeighting(int hidden = 32, double learningRate = DefaultLearningRate)
    {
        if (hidden < 1) throw new BadInputException($"the uncertainty MLP needs at least one hidden unit, got {hidden}");
        var output = nn.Linear(hidden, 1);
        using (no_grad())
        {
            output.weight!.zero_();
            output.bias!.zero_();
        }
        mlp = nn.Sequential(("in", nn.Linear(2 * Frequencies + 1, hidden)), ("act", nn.SiLU()), ("out", output));
        this.learningRate = learningRate;
        ExtraParameterGroups = [new ParameterGroupSpec(mlp.parameters().ToArray(), learningRate, 0.0)];
    }

    /// <inheritdoc/>
    public string Name => "edm2-uncertainty";

    /// <inheritdoc/>
    public IReadOnlyList<ParameterGroupSpec> ExtraParameterGroups { get; private set; }

    /// <inheritdoc/>
    public void MoveTo(Device device)
    {
        if (Backend.TorchBackend.SameDevice(mlp.parameters().First().device, device)) return;
        mlp.to(device);
        ExtraParameterGroups = [new ParameterGroupSpec(mlp.parameters().ToArray(), learningRate, 0.0)];
    }

    /// <summary>u(t) for the given SNRs (float32 [B], graph attached to u's parameters).</summary>
    public Tensor LogUncertainty(Tensor signalToNoise)
    {
        using var scope = NewDisposeScope();
        var device = mlp.parameters().First().device;
        var x = signalToNoise.to_type(float64).log().Over(LogSnrScale).to_type(float32).to(device).unsqueeze(1);
        var n = Scalars.Arange(1, Frequencies + 1, float32, device).unsqueeze(0).Times(Math.PI);
        var features = cat([x, (x * n).sin(), (x * n).cos()], 1);
        return mlp.forward(features).squeeze(1).MoveToOuterDisposeScope();
    }

    /// <inheritdoc/>
    public double Backward(WeightingBatch batch, IReadOnlyList<Parameter> modelParameters)
    {
        using var scope = NewDisposeScope();
        var u = LogUncertainty(batch.SignalToNoise).to(batch.PerSampleLoss.dtype).to(batch.PerSampleLoss.device);
        (batch.PerSampleLoss / u.exp()).Plus(u).mean().backward();
        return batch.PerSampleLoss.detach().mean().item<float>();
    }

    /// <inheritdoc/>
    public void Save(BinaryWriter writer)
    {
        WeightingState.WriteHeader(writer, Name, 0);
        foreach (var p in mlp.parameters()) WeightingState.Write(writer, p);
    }

    /// <inheritdoc/>
    public void Load(BinaryReader reader)
    {
        WeightingState.ReadHeader(reader, Name, 0);
        foreach (var p in mlp.parameters()) WeightingState.ReadInto(reader, p);
    }

    /// <inheritdoc/>
    public void Dispose() => mlp.Dispose();
}
