using DiffusionFunctional.Backend;
using DiffusionFunctional.Diffusion;
using TorchSharp;
using static TorchSharp.torch;

namespace DiffusionFunctional.Analysis;

/// <summary>Settings of a task-affinity measurement (ANT section 3.2, observation O1; docs/analysis.md).</summary>
/// <param name="Groups">G: the timesteps split into G equal groups (G must divide T); 20-100 is the paper author's advice.</param>
/// <param name="SketchDim">0 keeps each group's full gradient (memory G x P floats); d &gt; 0 keeps a d-dimensional
/// Gaussian random projection instead (memory G x d plus one exact gradient for the error check).</param>
/// <param name="Seed">Seeds the fixed noise, the timesteps inside each group and the projection.</param>
public sealed record TaskAffinityOptions(int Groups = 20, int SketchDim = 0, long Seed = 0);

/// <summary>One checkpoint's (or an average's) affinity, with the sketch's measured error when sketching.</summary>
/// <param name="Cosines">G x G cosine similarities between the groups' loss gradients.</param>
/// <param name="SketchMaxError">With a sketch: max |cos_sketch - cos_exact| over the pairs (0, j), measured exactly
/// against group 0's full gradient; NaN without a sketch (the values are exact).</param>
public sealed record AffinityMeasurement(double[,] Cosines, double SketchMaxError);

/// <summary>
/// Task affinity between timestep groups: for each group g, the full-model gradient of the mean diffusion loss on one
/// fixed image batch (the same images and the same noise for every group, timesteps spread evenly inside the group),
/// then the cosine similarity of every pair of groups. Memory never depends on T: gradients are kept per group
/// (or as sketches), never per timestep.
/// </summary>
public static class TaskAffinityAnalysis
{
    const long ProjectionChunk = 1 << 16;

    /// <summary>Measures the affinity matrix of one model on a fixed batch of clean images [N,C,H,W] in [-1, 1].</summary>
    public static AffinityMeasurement Measure(nn.Module<Tensor, Tensor, Tensor> model, GaussianDiffusion diffusion, Tensor images, TaskAffinityOptions options)
    {
        var groups = options.Groups;
        var timesteps = diffusion.Timesteps;
        if (groups < 2) throw new BadInputException($"--groups must be at least 2, got {groups}");
        if (timesteps % groups != 0) throw new BadInputException($"--groups {groups} does not divide the {timesteps} timesteps");
        if (options.SketchDim < 0) throw new BadInputException($"--sketch-dim must be 0 (exact) or positive, got {options.SketchDim}");
        var parameters = model.parameters().Where(p => p.requires_grad).ToList();
        var paramCount = parameters.Sum(p => p.numel());
        var device = images.device;
        var n = images.shape[0];
        var width = timesteps / groups;

        using var noiseGen = new Generator((ulong)options.Seed, device);
        using var noise = randn(images.shape, generator: noiseGen, device: device);
        var wasTraining = model.training;
        model.eval(); // dropout off: the gradient of the loss itself, not of a random sub-network

        var rows = options.SketchDim > 0 ? options.SketchDim : paramCount;
        using var store = zeros([groups, rows], dtype: float32, device: device);
        using var exactFirst = options.SketchDim > 0 ? zeros(paramCount, dtype: float32, device: device) : null;
        var exactDotWithFirst = new double[groups];
        var exactSquaredNorm = new double[groups];
        try
        {
            for (var g = 0; g < groups; g++)
            {
                using var scope = NewDisposeScope();
                // Timesteps spread evenly over the group: image i gets start + floor(i * width / n) (+ a fixed offset).
                var ts = Enumerable.Range(0, (int)n).Select(i => (long)(g * width + (i * (long)width / n) % width)).ToArray();
                var t = tensor(ts, dtype: int64, device: device);
                foreach (var p in parameters) p.grad?.zero_();
                var loss = diffusion.PerSampleLoss(model, images, t, noise).mean();
                loss.backward();
                var flat = cat(parameters.Select(p => (p.grad ?? zeros_like(p)).flatten()).ToList(), 0);
                if (options.SketchDim > 0)
                {
                    store[g].copy_(Project(flat, options.SketchDim, options.Seed));
                    if (g == 0) exactFirst!.copy_(flat);
                    // Exact inner products with group 0 cost one extra gradient of memory and measure the sketch's error.
                    exactDotWithFirst[g] = exactFirst!.to_type(float64).dot(flat.to_type(float64)).item<double>();
                    exactSquaredNorm[g] = flat.to_type(float64).dot(flat.to_type(float64)).item<double>();
                }
                else store[g].copy_(flat);
            }
        }
        finally
        {
            // Each .grad read is a new tensor handle: read them in a scope that frees them.
            using (NewDisposeScope()) foreach (var p in parameters) p.grad?.zero_();
            model.train(wasTraining);
        }

        double[,] gramValues;
        using (NewDisposeScope())
        {
            var wide = store.to_type(float64);
            gramValues = ToArray(wide.matmul(wide.t()));
        }
        var cosines = DiffusionFunctional.Core.TaskAffinity.cosines(gramValues);
        var error = double.NaN;
        if (options.SketchDim > 0) error = SketchError(cosines, exactDotWithFirst, exactSquaredNorm);
        return new AffinityMeasurement(cosines, error);
    }

    /// <summary>Measures every model and averages the cosine matrices (ANT section 3.2: mean over checkpoints). Each model
    /// a loader returns is disposed once measured, so memory stays flat however many checkpoints there are.</summary>
    public static AffinityMeasurement MeasureAveraged(IEnumerable<Func<nn.Module<Tensor, Tensor, Tensor>>> models, GaussianDiffusion diffusion, Tensor images,
        TaskAffinityOptions options, Action<int>? progress = null)
    {
        var measured = new List<AffinityMeasurement>();
        foreach (var load in models)
        {
            using var model = load();
            measured.Add(Measure(model, diffusion, images, options));
            progress?.Invoke(measured.Count);
        }
        if (measured.Count == 0) throw new BadInputException("no checkpoints to measure affinity on");
        var mean = DiffusionFunctional.Core.TaskAffinity.average(measured.Select(m => m.Cosines));
        var errors = measured.Select(m => m.SketchMaxError).Where(e => !double.IsNaN(e)).ToList();
        return new AffinityMeasurement(mean, errors.Count > 0 ? errors.Max() : double.NaN);
    }

    // A Gaussian random projection R g / sqrt(d), R regenerated chunk by chunk from a fixed seed so that it is never
    // stored (d x P floats would be as large as d gradients). No served library sketches a vector this way.
    static Tensor Project(Tensor flat, int dim, long seed)
    {
        using var scope = NewDisposeScope();
        var total = flat.shape[0];
        var sketch = zeros(dim, dtype: float32, device: flat.device);
        for (long start = 0, chunk = 0; start < total; start += ProjectionChunk, chunk++)
        {
            var len = Math.Min(ProjectionChunk, total - start);
            using var gen = new Generator((ulong)(seed * 1_000_003 + chunk + 1), flat.device);
            var r = randn([dim, len], generator: gen, device: flat.device);
            sketch.AddInPlace(r.matmul(flat.narrow(0, start, len)));
        }
        return sketch.DivideInPlace(Math.Sqrt(dim)).MoveToOuterDisposeScope();
    }

    /// <summary>max over j of |cos_sketch(0, j) - cos_exact(0, j)|.</summary>
    static double SketchError(double[,] sketchCosines, double[] exactDot, double[] exactSquaredNorm)
    {
        var worst = 0.0;
        for (var j = 1; j < exactDot.Length; j++)
        {
            var d = Math.Sqrt(exactSquaredNorm[0] * exactSquaredNorm[j]);
            var exact = d > 0 ? exactDot[j] / d : 0.0;
            worst = Math.Max(worst, Math.Abs(sketchCosines[0, j] - exact));
        }
        return worst;
    }

    static double[,] ToArray(Tensor square)
    {
        var n = (int)square.shape[0];
        var data = square.cpu().data<double>().ToArray();
        var result = new double[n, n];
        for (var i = 0; i < n; i++)
            for (var j = 0; j < n; j++)
                result[i, j] = data[i * n + j];
        return result;
    }
}
