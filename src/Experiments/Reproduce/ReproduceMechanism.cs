using DiffusionFunctional.Diffusion;
using DiffusionFunctional.Evaluation;
using DiffusionFunctional.Training;
using static TorchSharp.torch;

namespace DiffusionFunctional.Experiments.Reproduce;

/// <summary>Why a method ends where it does (docs/fidelity.md): its final EMA model's loss on held-out images in each
/// timestep interval, and its FD under both samplers.</summary>
/// <param name="Seed">The run's seed.</param>
/// <param name="Method">The method's id.</param>
/// <param name="Starts">First timestep of each interval (k equal intervals, least noisy first).</param>
/// <param name="Ends">One past the last timestep of each interval.</param>
/// <param name="HeldOutLoss">Mean training loss (eps- or v-MSE) on the held-out images per interval: the same images,
/// timesteps and noise for every model.</param>
/// <param name="FdDdim">FD-ResNet18 of samples drawn with DDIM (eta 0, <see cref="ReproduceMechanism.DdimSteps"/> steps).</param>
/// <param name="FdDdpm">FD-ResNet18 of samples drawn with DDPM ancestral sampling over every timestep.</param>
/// <param name="Samples">Images per FD (the same sampler noise seed for every model).</param>
public sealed record MechanismRecord(long Seed, string Method, int[] Starts, int[] Ends, double[] HeldOutLoss, double FdDdim, double FdDdpm, int Samples);

/// <summary>Measures a <see cref="MechanismRecord"/> for one final checkpoint.</summary>
public static class ReproduceMechanism
{
    /// <summary>DDIM steps of the DDIM score.</summary>
    public const int DdimSteps = 50;

    /// <summary>Seed of the held-out timesteps and noise (fixed: every model sees the same).</summary>
    public const long LossSeed = 4242;

    /// <summary>
    /// The mean loss of <paramref name="model"/> on <paramref name="images"/> (in [-1, 1]) in each of
    /// <paramref name="intervals"/> equal timestep intervals: each image gets one timestep drawn uniformly in the
    /// interval and one noise draw, both from <see cref="LossSeed"/>, so every model is judged on the same inputs.
    /// </summary>
    public static double[] HeldOutLoss(nn.Module<Tensor, Tensor, Tensor> model, GaussianDiffusion diffusion, Tensor images, int intervals)
    {
        var t = diffusion.Timesteps;
        var losses = new double[intervals];
        using var noGrad = no_grad();
        model.eval();
        for (var i = 0; i < intervals; i++)
        {
            var (start, end) = (i * t / intervals, (i + 1) * t / intervals);
            using var generator = new Generator((ulong)(LossSeed + i));
            var total = 0.0;
            const int chunk = 250;
            for (long first = 0; first < images.shape[0]; first += chunk)
            {
                using var scope = NewDisposeScope();
                var x0 = images.narrow(0, first, Math.Min(chunk, images.shape[0] - first));
                var steps = randint(start, end, [x0.shape[0]], dtype: int64, generator: generator);
                var noise = randn(x0.shape, dtype: float32, generator: generator);
                total += diffusion.PerSampleLoss(model, x0, steps, noise).sum().item<float>();
            }
            losses[i] = total / images.shape[0];
        }
        return losses;
    }

    /// <summary>Measures the record of the final checkpoint at <paramref name="checkpoint"/>: held-out loss on
    /// <paramref name="heldOut"/>, and FD against <paramref name="real"/> of <paramref name="samples"/> images drawn
    /// with DDIM and with DDPM from the evaluation noise seed.</summary>
    public static MechanismRecord Measure(string checkpoint, long seed, string method, ImageBatch heldOut, ImageBatch real, Evaluator evaluator,
        int intervals, int samples, Action<string> log)
    {
        using var loaded = CheckpointModel.Load(checkpoint);
        var (model, diffusion) = (loaded.Model, loaded.Diffusion);
        using var images = heldOut.ToSigned();
        var loss = HeldOutLoss(model, diffusion, images, intervals);
        var config = model.Config;
        long[] shape = [samples, config.ImageChannels, config.ImageSize, config.ImageSize];
        double Fd(SamplerOptions sampler)
        {
            using var generated = Samplers.Sample(diffusion, model, shape, sampler);
            return evaluator.Evaluate(real, ImageBatch.FromSigned(generated)).FdResNet18;
        }
        var ddim = Fd(new SamplerOptions { Kind = SamplerKind.Ddim, Steps = Math.Min(DdimSteps, diffusion.Timesteps), Seed = Demo.DemoRunner.EvaluationNoiseSeed });
        var ddpm = Fd(new SamplerOptions { Kind = SamplerKind.Ddpm, Seed = Demo.DemoRunner.EvaluationNoiseSeed });
        var t = diffusion.Timesteps;
        log(FormattableString.Invariant($"mechanism of {method} seed {seed}: held-out loss per interval [{string.Join(", ", loss.Select(l => l.ToString("F4", System.Globalization.CultureInfo.InvariantCulture)))}], FD DDIM-{DdimSteps} {ddim:F2}, DDPM {ddpm:F2}"));
        return new MechanismRecord(seed, method, [.. Enumerable.Range(0, intervals).Select(i => i * t / intervals)],
            [.. Enumerable.Range(0, intervals).Select(i => (i + 1) * t / intervals)], loss, ddim, ddpm, samples);
    }
}
