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

    /// <summary>Parses "ddim" or "ddpm"; throws <see cref="BadInputException"/> otherwise.</summary>
    public static SamplerKind ParseKind(string text) => (text ?? "").Trim().ToLowerInvariant() switch
    {
        "ddpm" => SamplerKind.Ddpm,
        "ddim" => SamplerKind.Ddim,
        _ => throw new BadInputException($"unknown sampler '{text}' (expected ddpm or ddim)"),
    };
}

/// <summary>DDPM and DDIM reverse processes. Deterministic for a given seed, model and thread count.</summary>
public static class Samplers
{
    /// <summary>
    /// Pixels per network call when sampling on the CPU: the small UNets here run fastest when a call's feature maps
    /// stay near the cache (a 200-image forward at 16x16 in slices of 64-128: 0.85-0.9x the time of one call; at 28x28
    /// in slices of 40-64: 0.72x; outputs identical to the bit; docs/benchmarks.md, "Sampling in slices").
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
            var schedule = options.Kind == SamplerKind.Ddpm
                ? Enumerable.Range(0, diffusion.Timesteps).Reverse().ToArray()
                : DdimTimesteps(diffusion.Timesteps, options.Steps);
            for (var i = 0; i < schedule.Length; i++)
            {
                var t = schedule[i];
                var prev = options.Kind == SamplerKind.Ddpm ? t - 1 : (i + 1 < schedule.Length ? schedule[i + 1] : -1);
                using var scope = NewDisposeScope();
                var next = Step(diffusion, model, x, t, prev, options, generator, perCall);
                x.Dispose();
                x = next.MoveToOuterDisposeScope();
            }
            return x;
        }
        finally
        {
            if (wasTraining) model.train();
        }
    }

    private static Tensor Step(GaussianDiffusion d, nn.Module<Tensor, Tensor, Tensor> model, Tensor x, int t, int prev, SamplerOptions o,
        Generator generator, long perCall)
    {
        var tVec = full(x.shape[0], t, dtype: int64, device: x.device);
        var (x0, eps) = d.Interpret(ForwardInSlices(model, x, tVec, perCall), x, t);
        var (aT, aPrev) = (d.AlphaBar(t), d.AlphaBar(prev));
        if (o.ClipDenoised)
        {
            x0 = x0.clamp(-1.0, 1.0);
            eps = (x - x0 * Math.Sqrt(aT)) / Math.Sqrt(1 - aT);
        }
        if (o.Kind == SamplerKind.Ddpm)
        {
            // Posterior q(x_{t-1} | x_t, x0) with beta_t = 1 - abar_t / abar_{t-1}.
            var beta = 1 - aT / aPrev;
            var mean = x0 * (Math.Sqrt(aPrev) * beta / (1 - aT)) + x * (Math.Sqrt(1 - beta) * (1 - aPrev) / (1 - aT));
            if (prev < 0) return mean;
            var variance = beta * (1 - aPrev) / (1 - aT);
            return mean + randn(x.shape, dtype: x.dtype, device: x.device, generator: generator) * Math.Sqrt(variance);
        }
        var sigma = o.Eta * Math.Sqrt((1 - aPrev) / (1 - aT)) * Math.Sqrt(1 - aT / aPrev);
        var direction = Math.Sqrt(Math.Max(0, 1 - aPrev - sigma * sigma));
        var result = x0 * Math.Sqrt(aPrev) + eps * direction;
        if (sigma > 0) result = result + randn(x.shape, dtype: x.dtype, device: x.device, generator: generator) * sigma;
        return result;
    }

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
