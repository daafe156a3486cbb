using DiffusionFunctional.Backend;
using DiffusionFunctional.Core;
using TorchSharp;
using static TorchSharp.torch;

namespace DiffusionFunctional.Diffusion;

/// <summary>What the network is trained to output.</summary>
public enum PredictionType
{
    /// <summary>The noise eps that was added (DDPM's parameterisation).</summary>
    Epsilon,
    /// <summary>v = sqrt(abar) eps - sqrt(1 - abar) x0 (Salimans and Ho 2022).</summary>
    V,
}

/// <summary>
/// The discrete Gaussian forward process of a Core <see cref="NoiseSchedule"/>:
/// x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) eps, t = 0..T-1 (t = 0 least noisy), and the training target
/// for the chosen <see cref="PredictionType"/>. Samplers live in <see cref="Samplers"/>.
/// </summary>
public sealed class GaussianDiffusion
{
    private readonly double[] abar;
    private readonly CoefficientTables coefficientTables;

    /// <summary>The schedule (betas, alphas_cumprod, SNR).</summary>
    public NoiseSchedule Schedule { get; }
    /// <summary>What the network predicts.</summary>
    public PredictionType Prediction { get; }
    /// <summary>Number of timesteps T.</summary>
    public int Timesteps => Schedule.Timesteps;
    /// <summary>The diffusers name of the schedule ("linear", ...).</summary>
    public string ScheduleName { get; }

    /// <summary>The forward process and samplers of <paramref name="schedule"/> for a network predicting <paramref name="prediction"/>.</summary>
    public GaussianDiffusion(NoiseSchedule schedule, PredictionType prediction = PredictionType.Epsilon)
    {
        Schedule = schedule;
        Prediction = prediction;
        abar = schedule.AlphasCumprod;
        coefficientTables = new CoefficientTables(abar);
        ScheduleName = DiffusionFunctional.Core.Schedule.name(schedule.Kind);
    }

    /// <summary>A diffusion over a named schedule ("linear", "scaled_linear", "squaredcos_cap_v2", "sigmoid").</summary>
    public static GaussianDiffusion Create(string schedule = "linear", int timesteps = 1000, PredictionType prediction = PredictionType.Epsilon)
    {
        if (!NoiseSchedules.TryCreate(schedule, timesteps, out var created, out var error)) throw new BadInputException(error);
        return new GaussianDiffusion(created, prediction);
    }

    /// <summary>Parses "eps"/"epsilon" or "v"/"v_prediction".</summary>
    public static PredictionType ParsePrediction(string text) => (text ?? "").Trim().ToLowerInvariant() switch
    {
        "eps" or "epsilon" => PredictionType.Epsilon,
        "v" or "v_prediction" => PredictionType.V,
        _ => throw new BadInputException($"unknown prediction type '{text}' (expected eps or v)"),
    };

    /// <summary>abar_t as a double, for t in [0, T); 1 for t = -1 (the clean image).</summary>
    public double AlphaBar(int t) => t < 0 ? 1.0 : abar[t];

    /// <summary>
    /// Per-sample coefficients sqrt(abar_t) and sqrt(1 - abar_t) shaped [B,1,1,1] like <paramref name="like"/>: rows
    /// of <see cref="CoefficientTables"/>, looked up on the device (no copy of the timesteps to the host).
    /// </summary>
    private (Tensor SqrtAlphaBar, Tensor SqrtOneMinusAlphaBar) Coefficients(Tensor t, Tensor like)
    {
        var tables = coefficientTables.On(like.device);
        var index = (t.dtype == int64 ? t : t.to_type(int64)).to(like.device);
        Tensor Lookup(Tensor table)
        {
            var rows = table.index_select(0, index);
            return (rows.dtype == like.dtype ? rows : rows.to_type(like.dtype)).reshape(-1, 1, 1, 1);
        }
        return (Lookup(tables.SqrtAlphaBar), Lookup(tables.SqrtOneMinusAlphaBar));
    }

    /// <summary>Samples q(x_t | x0) with the given noise.</summary>
    public Tensor AddNoise(Tensor x0, Tensor noise, Tensor t)
    {
        using var scope = NewDisposeScope();
        var (a, s) = Coefficients(t, x0);
        return (a * x0).Plus(s * noise).MoveToOuterDisposeScope();
    }

    /// <summary>The regression target: eps itself, or v = sqrt(abar) eps - sqrt(1 - abar) x0.</summary>
    public Tensor Target(Tensor x0, Tensor noise, Tensor t)
    {
        if (Prediction == PredictionType.Epsilon) return noise.alias();
        using var scope = NewDisposeScope();
        var (a, s) = Coefficients(t, x0);
        return (a * noise - s * x0).MoveToOuterDisposeScope();
    }

    /// <summary>Mean squared error per sample, shape [B], with the graph attached (what a weighting consumes).</summary>
    public Tensor PerSampleLoss(nn.Module<Tensor, Tensor, Tensor> model, Tensor x0, Tensor t, Tensor noise)
    {
        using var scope = NewDisposeScope();
        var xt = AddNoise(x0, noise, t);
        var output = model.forward(xt, t);
        var loss = (output - Target(x0, noise, t)).Squared().flatten(1).mean([1]);
        return loss.MoveToOuterDisposeScope();
    }

    /// <summary>Turns a network output at one timestep into (x0 estimate, eps estimate).</summary>
    public (Tensor X0, Tensor Eps) Interpret(Tensor output, Tensor xt, int t)
    {
        var a = abar[t];
        var (sa, s1a) = (Math.Sqrt(a), Math.Sqrt(1 - a));
        if (Prediction == PredictionType.Epsilon)
            return ((xt - output.Times(s1a)).Over(sa), output.alias());
        return (xt.Times(sa) - output.Times(s1a), xt.Times(s1a).Plus(output.Times(sa)));
    }
}
