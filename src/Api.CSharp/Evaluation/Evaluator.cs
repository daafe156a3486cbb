using DiffusionFunctional.Backend;
using DiffusionFunctional.Core;

namespace DiffusionFunctional.Evaluation;

/// <summary>How <see cref="Evaluator"/> computes its metrics.</summary>
/// <param name="Workers">Cores the ResNet-18 uses: one OnnxRuntime session with this many threads.</param>
/// <param name="InceptionFile">A TorchScript Inception-v3: when given, FID is computed too.</param>
/// <param name="InceptionRange">The pixel range that Inception module expects.</param>
/// <param name="K">Neighbours that define the k-NN manifolds of precision and recall (3 in the paper).</param>
/// <param name="CacheRealFeatures">Cache the real set's features on disk (see <see cref="FeatureCache"/>).</param>
/// <param name="CacheDirectory">The cache folder; default <see cref="FeatureCache.DefaultDirectory"/>.</param>
/// <param name="ModelDirectory">Where the ResNet-18 ONNX files are; default <see cref="ResNet18Extractor.DefaultModelDirectory"/>.</param>
/// <param name="Kid">KID's subsets (count, size, seed); null: <see cref="KidSettings.Default"/> (100 of 1,000, seed 0).</param>
public sealed record EvaluationOptions(
    int Workers = 1,
    string? InceptionFile = null,
    InceptionInputRange InceptionRange = InceptionInputRange.ZeroToOne,
    int K = 3,
    bool CacheRealFeatures = true,
    string? CacheDirectory = null,
    string? ModelDirectory = null,
    KidSettings? Kid = null);

/// <summary>Sample-quality metrics of generated images against real ones.</summary>
/// <param name="RealCount">Number of real images.</param>
/// <param name="FakeCount">Number of generated images.</param>
/// <param name="FdResNet18">Frechet distance on ResNet-18 pool features (lower is better).</param>
/// <param name="Precision">Share of generated images on the real k-NN manifold (ResNet-18 features).</param>
/// <param name="Recall">Share of real images on the generated k-NN manifold (ResNet-18 features).</param>
/// <param name="Fid">Frechet distance on Inception features; null without an Inception file.</param>
/// <param name="K">The k of the k-NN manifolds.</param>
/// <param name="RealFeaturesFromCache">Whether the real set's ResNet-18 features came from the cache (on disk, or this
/// evaluator's previous real set) rather than from the network.</param>
/// <param name="Kid">KID on the ResNet-18 features: mean unbiased MMD^2 over subsets (docs/statistics.md; ~0 for one distribution, may be slightly negative).</param>
/// <param name="KidStandardError">Standard deviation of KID over its subsets (as torch-fidelity reports it); 0 when the subsets are the whole sets.</param>
/// <param name="KidSubsetSize">Images per side in each KID subset: the configured size capped at both set sizes.</param>
public sealed record EvaluationResult(
    int RealCount,
    int FakeCount,
    double FdResNet18,
    double Precision,
    double Recall,
    double? Fid,
    int K,
    bool RealFeaturesFromCache,
    double Kid,
    double KidStandardError,
    int KidSubsetSize);

/// <summary>
/// FD-ResNet18, KID, precision and recall (and FID with a user-supplied Inception) of generated images against real
/// images (docs/evaluation.md). Holds the loaded networks: create once, evaluate many times, dispose.
/// </summary>
public sealed class Evaluator : IDisposable
{
    readonly IFeatureExtractor resnet;
    readonly IFeatureExtractor? inception;
    readonly FeatureCache? cache;
    readonly int k;
    readonly KidSettings kid;
    readonly bool ownsExtractors;
    // The last real set's ResNet-18 side, prepared once: along training every checkpoint is scored against it.
    RealSide? lastReal;

    sealed record RealSide(byte[] ContentHash, double[,] Features, bool FromCache, FrechetReference Frechet, PrecisionRecallReference Manifold);

    /// <summary>Loads the ResNet-18 (and the Inception file when given).</summary>
    /// <exception cref="BadInputException">A model file is missing or unloadable, or an option is out of range.</exception>
    public Evaluator(EvaluationOptions? options = null)
    {
        Backend.ConvolutionKernels.Ensure();
        options ??= new EvaluationOptions();
        if (options.K < 1) throw new BadInputException($"k must be at least 1, got {options.K}");
        k = options.K;
        kid = ValidKid(options.Kid);
        ownsExtractors = true;
        cache = options.CacheRealFeatures ? new FeatureCache(options.CacheDirectory) : null;
        // One session with several threads, not one session per thread: as fast and the same features to the bit
        // (dfn bench evaluation, docs/benchmarks.md, "Evaluation"), and each further session holds another ~250 MB of weights and
        // graph.
        resnet = new ResNet18Extractor(new ResNet18Options(options.ModelDirectory, Workers: 1, ThreadsPerWorker: options.Workers));
        try
        {
            inception = options.InceptionFile is null ? null : new InceptionExtractor(options.InceptionFile, options.InceptionRange);
        }
        catch
        {
            resnet.Dispose();
            throw;
        }
    }

    /// <summary>Uses the given extractors (owned by the caller); <paramref name="cache"/> null disables caching;
    /// <paramref name="kid"/> null means <see cref="KidSettings.Default"/>.</summary>
    /// <exception cref="BadInputException">k or a KID setting is out of range.</exception>
    public Evaluator(IFeatureExtractor resnet, IFeatureExtractor? inception, FeatureCache? cache, int k = 3, KidSettings? kid = null)
    {
        Backend.ConvolutionKernels.Ensure();
        ArgumentNullException.ThrowIfNull(resnet);
        if (k < 1) throw new BadInputException($"k must be at least 1, got {k}");
        this.resnet = resnet;
        this.inception = inception;
        this.cache = cache;
        this.k = k;
        this.kid = ValidKid(kid);
    }

    static KidSettings ValidKid(KidSettings? settings)
    {
        settings ??= KidSettings.Default;
        if (settings.Subsets < 1) throw new BadInputException($"KID needs at least 1 subset, got {settings.Subsets}");
        if (settings.SubsetSize < 2) throw new BadInputException($"KID subsets need at least 2 images, got {settings.SubsetSize}");
        return settings;
    }

    /// <summary>Computes the metrics. Both sets need more than k images (the covariance needs at least 2).</summary>
    /// <exception cref="BadInputException">Too few images in a set.</exception>
    public EvaluationResult Evaluate(ImageBatch real, ImageBatch fake, IProgress<WorkProgress>? progress = null)
    {
        ArgumentNullException.ThrowIfNull(real);
        ArgumentNullException.ThrowIfNull(fake);
        var needed = Math.Max(k + 1, 2);
        if (real.Count < needed) throw new BadInputException($"the real set has {real.Count} images; the metrics need at least {needed}");
        if (fake.Count < needed) throw new BadInputException($"the generated set has {fake.Count} images; the metrics need at least {needed}");
        // Training's and sampling's freed pages go back before OnnxRuntime's threads allocate, and the evaluation's own
        // after it: the two phases' working memory then does not add up in the process's peak (NativeMemory).
        NativeMemory.ReturnFreePages();
        try
        {
            return Score(real, fake, progress);
        }
        finally
        {
            NativeMemory.ReturnFreePages();
        }
    }

    EvaluationResult Score(ImageBatch real, ImageBatch fake, IProgress<WorkProgress>? progress)
    {
        var realSide = PrepareReal(real, progress);
        var realFeatures = realSide.Features;
        var fakeFeatures = fake.ContentHash().AsSpan().SequenceEqual(realSide.ContentHash) ? realFeatures
            : resnet.Extract(fake, Reporter("generated, ResNet-18", fake.Count, progress));
        var fd = FrechetDistance.ofFeaturesAgainst(realSide.Frechet, fakeFeatures);
        var pr = PrecisionRecall.computeAgainst(realSide.Manifold, fakeFeatures);
        var kernelDistance = KernelDistance.estimate(kid, realFeatures, fakeFeatures);

        double? fid = null;
        if (inception is not null)
        {
            var (realInception, _) = Features(inception, real, "real, Inception", progress);
            var fakeInception = inception.Extract(fake, Reporter("generated, Inception", fake.Count, progress));
            fid = FrechetDistance.ofFeatures(realInception, fakeInception);
        }
        return new EvaluationResult(real.Count, fake.Count, fd, pr.Precision, pr.Recall, fid, k, realSide.FromCache,
            kernelDistance.Value, kernelDistance.StandardError, kernelDistance.SubsetSize);
    }

    RealSide PrepareReal(ImageBatch real, IProgress<WorkProgress>? progress)
    {
        var hash = real.ContentHash();
        if (lastReal is { } known && known.ContentHash.AsSpan().SequenceEqual(hash)) return known with { FromCache = true };
        var (features, fromCache) = Features(resnet, real, "real, ResNet-18", progress);
        return lastReal = new RealSide(hash, features, fromCache, FrechetDistance.reference(features), PrecisionRecall.reference(k, features));
    }

    (double[,] Features, bool FromCache) Features(IFeatureExtractor extractor, ImageBatch images, string stage, IProgress<WorkProgress>? progress)
    {
        var reporter = Reporter(stage, images.Count, progress);
        return cache is null ? (extractor.Extract(images, reporter), false) : cache.GetOrExtract(extractor, images, reporter);
    }

    static IProgress<int>? Reporter(string stage, int total, IProgress<WorkProgress>? progress) =>
        progress is null ? null : new InlineProgress<int>(done => progress.Report(new WorkProgress("", stage, done, total)));

    /// <inheritdoc />
    public void Dispose()
    {
        if (!ownsExtractors) return;
        resnet.Dispose();
        inception?.Dispose();
    }
}
