using DiffusionFunctional.Backend;
using TorchSharp;
using static TorchSharp.torch;

namespace DiffusionFunctional.Diffusion;

/// <summary>Which reverse process to run.</summary>
public enum SamplerKind
{
    /// <summary>DDPM ancestral sampling over every timestep (posterior variance beta-tilde).</summary>
    Ddpm,
    /// <summary>DDIM (Song et al. 2021) over a subsequence of timesteps; eta = 0 is deterministic given the start noise.</summary>
    Ddim,
    /// <summary>
    /// DPM-Solver++(2M) (Lu et al. 2022): the probability-flow ODE in data prediction, second order from the last two
    /// predictions, over the same subsequence as DDIM; deterministic given the start noise.
    /// </summary>
    DpmSolver2M,
}

/// <summary>How to sample: the sampler, DDIM's step count and eta, the seed of the starting noise.</summary>
public sealed record SamplerOptions
{
    /// <summary>DDIM (deterministic with eta 0) or DDPM.</summary>
    public SamplerKind Kind { get; init; } = SamplerKind.Ddim;
    /// <summary>DDIM steps (ignored by DDPM, which uses all T).</summary>
    public int Steps { get; init; } = 50;
    /// <summary>DDIM eta: 0 deterministic, 1 DDPM-like noise.</summary>
    public double Eta { get; init; }
    /// <summary>Seed of the sampler's own generator (the global generator is left alone).</summary>
    public long Seed { get; init; }
    /// <summary>Clip the x0 estimate to [-1, 1] at every step.</summary>
    public bool ClipDenoised { get; init; } = true;
    /// <summary>Images per network call: a batch is denoised in slices of this many (its noise is still drawn for the
    /// whole batch, so the images do not depend on it). Null: on the CPU, <see cref="Samplers.CpuPixelsPerCall"/>
    /// pixels per call; on a GPU, the whole batch.</summary>
    public int? ImagesPerCall { get; init; }

    /// <summary>Parses "ddim", "ddpm" or "dpm++2m"; throws <see cref="BadInputException"/> otherwise.</summary>
    public static SamplerKind ParseKind(string text) => (text ?? "").Trim().ToLowerInvariant() switch
    {
        "ddpm" => SamplerKind.Ddpm,
        "ddim" => SamplerKind.Ddim,
        "dpm++2m" or "dpmpp2m" => SamplerKind.DpmSolver2M,
        _ => throw new BadInputException($"unknown sampler '{text}' (expected ddim, ddpm or dpm++2m)"),
    };

    /// <summary>The sampler in words, as reports name it (e.g. "DPM-Solver++(2M), 25 steps").</summary>
    public string Description => Kind switch
    {
        SamplerKind.Ddpm => "DDPM over every timestep",
        SamplerKind.DpmSolver2M => $"DPM-Solver++(2M), {Steps} steps",
        // DDIM with eta 1 over a subsequence is DDPM over those timesteps (Song et al. 2021, eq. 16).
        _ when Eta == 1 => $"DDPM over {Steps} evenly spaced timesteps (DDIM with eta 1)",
        _ => FormattableString.Invariant($"DDIM, {Steps} steps, eta {Eta}"),
    };
}

/// <summary>DDPM, DDIM and DPM-Solver++(2M) reverse processes. Deterministic for a given seed, model and thread count.</summary>
public static class Samplers
{
    /// <summary>
    /// Pixels per network call when sampling on the CPU: the small UNets here run fastest when a call's feature maps
    /// stay near the cache (a 200-image forward at 16x16 in slices of 64-128: 0.85-0.9x the time of one call; at 28x28
    /// in slices of 40-64: 0.72x; outputs identical to the bit; docs/benchmarks.md, "Sampling speed").
    /// </summary>
    public const int CpuPixelsPerCall = 1 << 15;

    /// <summary>Images per network call for a batch of <paramref name="shape"/> [N,C,H,W] (see <see cref="SamplerOptions.ImagesPerCall"/>).</summary>
    public static long ImagesPerCall(long[] shape, SamplerOptions options, Device device)
    {
        if (options.ImagesPerCall is { } set)
            return set >= 1 ? set : throw new BadInputException($"images per sampler call must be at least 1, got {set}");
        return device.type == DeviceType.CPU ? Math.Max(1, CpuPixelsPerCall / (shape[2] * shape[3])) : shape[0];
    }

    /// <summary>The DDIM timestep subsequence, descending: round(linspace(0, T-1, steps)) without repeats.</summary>
    public static int[] DdimTimesteps(int timesteps, int steps)
    {
        if (steps < 1 || steps > timesteps) throw new BadInputException($"sampler steps must lie in [1, {timesteps}], got {steps}");
        var ts = DiffusionFunctional.Core.Schedule.linspace(0, timesteps - 1, steps).Select(v => (int)Math.Round(v)).Distinct().ToArray();
        Array.Reverse(ts);
        return ts;
    }

    /// <summary>
    /// A descending subsequence of about <paramref name="steps"/> timesteps evenly spaced in lambda = log(alpha / sigma)
    /// from T-1 to 0 (each the timestep nearest its target, repeats dropped). DPM-Solver++(2M) extrapolates from the
    /// last step's prediction with r = h_last / h: on DDIM's steps, even in t, the linear schedule's last steps are
    /// 5-20x longer in lambda than the ones before, the extrapolation overshoots, and 20 steps came out worse than 10
    /// on Gaussian data (RMS error to the exact ODE solution 0.088 vs 0.069; even in lambda: 0.0045 and 0.0079).
    /// </summary>
    public static int[] LogSnrTimesteps(GaussianDiffusion diffusion, int steps)
    {
        var count = diffusion.Timesteps;
        if (steps < 1 || steps > count) throw new BadInputException($"sampler steps must lie in [1, {count}], got {steps}");
        var lambdas = Enumerable.Range(0, count).Select(t => LogSnrHalf(diffusion.AlphaBar(t))).ToArray();
        var targets = DiffusionFunctional.Core.Schedule.linspace(lambdas[count - 1], lambdas[0], steps);
        // lambda falls with t: the nearest timestep by binary search over the reversed (ascending) table.
        var ascending = lambdas.Reverse().ToArray();
        var chosen = targets.Select(l =>
        {
            var i = Array.BinarySearch(ascending, l);
            if (i < 0) i = ~i;
            var best = i == 0 ? 0 : i == count ? count - 1 : (l - ascending[i - 1] <= ascending[i] - l ? i - 1 : i);
            return count - 1 - best;
        });
        return chosen.Distinct().OrderDescending().ToArray();
    }

    /// <summary>Generates images of <paramref name="shape"/> [N,C,H,W] in [-1, 1].</summary>
    public static Tensor Sample(GaussianDiffusion diffusion, nn.Module<Tensor, Tensor, Tensor> model, long[] shape, SamplerOptions options, Device? device = null)
    {
        Backend.ConvolutionKernels.Ensure();
        device ??= CPU;
        var wasTraining = model.training;
        model.eval();
        try
        {
            using var noGrad = no_grad();
            using var generator = new Generator((ulong)options.Seed, device);
            var x = randn(shape, dtype: float32, device: device, generator: generator);
            var perCall = ImagesPerCall(shape, options, device);
            var schedule = options.Kind switch
            {
                SamplerKind.Ddpm => Enumerable.Range(0, diffusion.Timesteps).Reverse().ToArray(),
                SamplerKind.DpmSolver2M => LogSnrTimesteps(diffusion, options.Steps),
                _ => DdimTimesteps(diffusion.Timesteps, options.Steps),
            };
            var history = new MultistepHistory();
            try
            {
                for (var i = 0; i < schedule.Length; i++)
                {
                    var t = schedule[i];
                    var prev = options.Kind == SamplerKind.Ddpm ? t - 1 : (i + 1 < schedule.Length ? schedule[i + 1] : -1);
                    using var scope = NewDisposeScope();
                    var next = options.Kind == SamplerKind.DpmSolver2M
                        ? DpmSolver2MStep(diffusion, model, x, t, prev, options, perCall, history)
                        : Step(diffusion, model, x, t, prev, options, generator, perCall);
                    x.Dispose();
                    x = next.MoveToOuterDisposeScope();
                }
                return x;
            }
            finally
            {
                history.Dispose();
            }
        }
        finally
        {
            if (wasTraining) model.train();
        }
    }

    private static Tensor Step(GaussianDiffusion d, nn.Module<Tensor, Tensor, Tensor> model, Tensor x, int t, int prev, SamplerOptions o,
        Generator generator, long perCall)
    {
        var tVec = Scalars.Full([x.shape[0]], t, int64, x.device);
        var (x0, eps) = d.Interpret(ForwardInSlices(model, x, tVec, perCall), x, t);
        var (aT, aPrev) = (d.AlphaBar(t), d.AlphaBar(prev));
        if (o.ClipDenoised)
        {
            x0 = x0.Clamp(-1.0, 1.0);
            eps = (x - x0.Times(Math.Sqrt(aT))).Over(Math.Sqrt(1 - aT));
        }
        if (o.Kind == SamplerKind.Ddpm)
        {
            // Posterior q(x_{t-1} | x_t, x0) with beta_t = 1 - abar_t / abar_{t-1}.
            var beta = 1 - aT / aPrev;
            var mean = x0.Times(Math.Sqrt(aPrev) * beta / (1 - aT)).Plus(x.Times(Math.Sqrt(1 - beta) * (1 - aPrev) / (1 - aT)));
            if (prev < 0) return mean;
            var variance = beta * (1 - aPrev) / (1 - aT);
            return mean.Plus(randn(x.shape, dtype: x.dtype, device: x.device, generator: generator).Times(Math.Sqrt(variance)));
        }
        var sigma = o.Eta * Math.Sqrt((1 - aPrev) / (1 - aT)) * Math.Sqrt(1 - aT / aPrev);
        var direction = Math.Sqrt(Math.Max(0, 1 - aPrev - sigma * sigma));
        var result = x0.Times(Math.Sqrt(aPrev)).Plus(eps.Times(direction));
        if (sigma > 0) result = result.Plus(randn(x.shape, dtype: x.dtype, device: x.device, generator: generator).Times(sigma));
        return result;
    }

    /// <summary>The data prediction and log-SNR of the previous DPM-Solver++ step.</summary>
    private sealed class MultistepHistory : IDisposable
    {
        public Tensor? X0;
        public double Lambda;

        public void Keep(Tensor x0, double lambda)
        {
            X0?.Dispose();
            X0 = x0.MoveToOuterDisposeScope();
            Lambda = lambda;
        }

        public void Dispose() => X0?.Dispose();
    }

    /// <summary>
    /// One step of DPM-Solver++(2M) (Lu et al. 2022, "DPM-Solver++", Algorithm 2; timesteps from
    /// <see cref="LogSnrTimesteps"/>) from t to prev, with
    /// lambda = log(alpha / sigma), h = lambda_prev - lambda_t and alpha = sqrt(abar):
    /// x_prev = (sigma_prev / sigma_t) x - alpha_prev (e^-h - 1) D, where D is this step's data prediction x0 on the
    /// first step and (1 + 1/2r) x0 - (1/2r) x0_last after it (r = h_last / h). The last step, to sigma = 0, returns
    /// x0 itself (the limit of the update; the solver's usual first-order final step).
    /// </summary>
    private static Tensor DpmSolver2MStep(GaussianDiffusion d, nn.Module<Tensor, Tensor, Tensor> model, Tensor x, int t, int prev,
        SamplerOptions o, long perCall, MultistepHistory history)
    {
        var tVec = Scalars.Full([x.shape[0]], t, int64, x.device);
        var (x0, _) = d.Interpret(ForwardInSlices(model, x, tVec, perCall), x, t);
        if (o.ClipDenoised) x0 = x0.Clamp(-1.0, 1.0);
        if (prev < 0) return x0;
        var (aT, aPrev) = (d.AlphaBar(t), d.AlphaBar(prev));
        var (lambdaT, lambdaPrev) = (LogSnrHalf(aT), LogSnrHalf(aPrev));
        var h = lambdaPrev - lambdaT;
        var data = x0;
        if (history.X0 is { } last)
        {
            var r = (lambdaT - history.Lambda) / h;
            data = x0.Times(1 + 1 / (2 * r)) - last.Times(1 / (2 * r));
        }
        var next = x.Times(Math.Sqrt((1 - aPrev) / (1 - aT))) - data.Times(Math.Sqrt(aPrev) * double.ExpM1(-h));
        history.Keep(x0, lambdaT);
        return next;
    }

    /// <summary>lambda = log(alpha / sigma) = log(abar / (1 - abar)) / 2.</summary>
    private static double LogSnrHalf(double alphaBar) => 0.5 * Math.Log(alphaBar / (1 - alphaBar));

    /// <summary>The network's output for the whole batch, computed at most <paramref name="perCall"/> images at a time,
    /// in slices of equal size (200 images at 128 per call: 100 and 100, not 128 and 72). Every layer treats the images
    /// of a batch independently, so the slices give the whole batch's values.</summary>
    private static Tensor ForwardInSlices(nn.Module<Tensor, Tensor, Tensor> model, Tensor x, Tensor t, long perCall)
    {
        var count = x.shape[0];
        if (count <= perCall) return model.forward(x, t);
        var sliceCount = (count + perCall - 1) / perCall;
        var size = (count + sliceCount - 1) / sliceCount;
        var slices = new List<Tensor>();
        for (long start = 0; start < count; start += size)
        {
            var length = Math.Min(size, count - start);
            slices.Add(model.forward(x.narrow(0, start, length), t.narrow(0, start, length)));
        }
        return cat(slices, 0);
    }
}
