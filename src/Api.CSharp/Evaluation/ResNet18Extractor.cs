using Microsoft.ML.OnnxRuntime;

namespace DiffusionFunctional.Evaluation;

/// <summary>Options for <see cref="ResNet18Extractor"/>.</summary>
/// <param name="ModelDirectory">Folder holding <c>ResNetPrepOnnx/</c> and <c>ResNet18Onnx/</c>; default <see cref="ResNet18Extractor.DefaultModelDirectory"/>.</param>
/// <param name="Workers">Batches run concurrently, each worker with its own session.</param>
/// <param name="ThreadsPerWorker">OnnxRuntime intra-op threads per worker.</param>
/// <param name="BatchSize">Images per session run; features do not depend on it (docs/benchmarks.md, "Evaluation", has the sweep).</param>
public sealed record ResNet18Options(string? ModelDirectory = null, int Workers = 1, int ThreadsPerWorker = 1, int BatchSize = ResNet18Options.DefaultBatchSize)
{
    /// <summary>Images per session run unless told otherwise: 8 was as fast as 16-64 and holds the least memory.</summary>
    public const int DefaultBatchSize = 8;
}

/// <summary>
/// The ImageNet-pretrained ResNet-18 that NuGet's Microsoft.ML.DnnImageFeaturizer.ResNet18 ships, run through
/// OnnxRuntime: 512 pooled features per image, the basis of FD-ResNet18.
/// </summary>
/// <remarks>
/// The package's <c>ResNetPreprocess.onnx</c> comes first: it takes RGB in 0..255, reorders to BGR and subtracts a
/// per-pixel mean image (the network was trained that way; ImageNet mean/std normalisation does not fit it). Both
/// graphs are fixed to one image; here the preprocessing is one pass over a batch (<see cref="ResNetMeanImage"/>)
/// and the network's batch dimension is made symbolic when it loads (<see cref="OnnxBatchDimension"/>), so a session
/// run takes <see cref="ResNet18Options.BatchSize"/> images. The features are the same bits as running the graphs one
/// image at a time (tested against <see cref="ResNet18SingleImage"/>), so the id, and cached features, stay valid.
/// </remarks>
public sealed class ResNet18Extractor : IFeatureExtractor
{
    /// <summary>The package version the build copies the model files from (paket.lock, group Models).</summary>
    public const string PackageVersion = "0.23.1";
    internal const string PreprocessPath = "ResNetPrepOnnx/ResNetPreprocess.onnx";
    internal const string NetworkPath = "ResNet18Onnx/ResNet18.onnx";
    internal const int Side = 224;
    internal const int FeatureCount = 512;
    const int MaxBatchSize = 256;
    const int ResizeImages = 32;

    readonly ResNetMeanImage mean;
    readonly Worker[] workers;
    readonly int batchSize;
    // The workers' sessions share one copy of the weights OnnxRuntime repacks for its kernels, not one each.
    readonly PrePackedWeightsContainer prePacked = new();

    /// <summary>Loads both graphs, makes the network's batch dynamic and opens one session per worker.</summary>
    /// <exception cref="BadInputException">An option is out of range, or the model files are missing or are not the expected graphs.</exception>
    public ResNet18Extractor(ResNet18Options? options = null)
    {
        options ??= new ResNet18Options();
        if (options.BatchSize is < 1 or > MaxBatchSize)
            throw new BadInputException($"batch size must be between 1 and {MaxBatchSize}, got {options.BatchSize}");
        var (preprocess, network) = ModelFiles(options);
        Id = IdOf(preprocess, network);
        batchSize = options.BatchSize;
        mean = ResNetMeanImage.Load(preprocess, Side);
        var model = OnnxBatchDimension.MakeBatchDynamic(File.ReadAllBytes(network));
        var created = new List<Worker>();
        try
        {
            for (var i = 0; i < options.Workers; i++) created.Add(new Worker(network, model, options.ThreadsPerWorker, batchSize, prePacked));
        }
        catch
        {
            foreach (var w in created) w.Dispose();
            prePacked.Dispose();
            throw;
        }
        workers = [.. created];
    }

    /// <summary><c>$DFN_MODELS_DIR</c> when set, else <c>DnnImageModels/</c> next to the application (where the build copies them).</summary>
    public static string DefaultModelDirectory =>
        Environment.GetEnvironmentVariable("DFN_MODELS_DIR") is { Length: > 0 } dir ? dir : Path.Combine(AppContext.BaseDirectory, "DnnImageModels");

    /// <inheritdoc />
    public string Id { get; }

    /// <inheritdoc />
    public int Dimension => FeatureCount;

    /// <inheritdoc />
    public double[,] Extract(ImageBatch images, IProgress<int>? progress = null)
    {
        ArgumentNullException.ThrowIfNull(images);
        var features = new double[images.Count, FeatureCount];
        var perImage = images.Channels * Side * Side;
        // Resize a whole number of rounds of batches at once, at least ResizeImages: each libtorch call has a fixed cost.
        var round = workers.Length * batchSize;
        var chunkImages = (ResizeImages + round - 1) / round * round;
        var chunk = new float[Math.Min(chunkImages, Math.Max(images.Count, 1)) * perImage];
        for (var start = 0; start < images.Count; start += chunkImages)
        {
            var count = Math.Min(chunkImages, images.Count - start);
            ImagePreprocessing.Resize(images, start, count, Side, chunk);
            // Worker w runs batches w, w + workers, ... of the chunk, each with its own session. An image's features do
            // not depend on its batch or worker (tested), so neither the batch size nor the worker count changes them.
            var offset = start;
            Parallel.For(0, workers.Length, new ParallelOptions { MaxDegreeOfParallelism = workers.Length }, w =>
            {
                for (var first = w * batchSize; first < count; first += round)
                {
                    var n = Math.Min(batchSize, count - first);
                    workers[w].Run(mean, chunk.AsSpan(first * perImage, n * perImage), images.Channels, n, features, offset + first);
                }
            });
            progress?.Report(start + count);
        }
        return features;
    }

    /// <inheritdoc />
    public void Dispose()
    {
        foreach (var w in workers) w.Dispose();
        prePacked.Dispose();
    }

    /// <summary>The two model files after checking the options and that both files exist.</summary>
    internal static (string Preprocess, string Network) ModelFiles(ResNet18Options options)
    {
        if (options.Workers < 1) throw new BadInputException($"workers must be at least 1, got {options.Workers}");
        if (options.ThreadsPerWorker < 1) throw new BadInputException($"threads per worker must be at least 1, got {options.ThreadsPerWorker}");
        var directory = options.ModelDirectory ?? DefaultModelDirectory;
        var preprocess = Path.Combine(directory, PreprocessPath);
        var network = Path.Combine(directory, NetworkPath);
        foreach (var file in new[] { preprocess, network })
        {
            if (!File.Exists(file))
                throw new BadInputException($"ResNet-18 model file '{file}' not found: build the project (it copies the files from the NuGet package Microsoft.ML.DnnImageFeaturizer.ResNet18 {PackageVersion}) or set DFN_MODELS_DIR to a folder holding {PreprocessPath} and {NetworkPath}");
        }
        return (preprocess, network);
    }

    /// <summary>Names the package and both files; unchanged by batching, which leaves every feature bit as it was.</summary>
    internal static string IdOf(string preprocess, string network) =>
        $"resnet18-dnnimagefeaturizer-{PackageVersion}-{new FileInfo(network).Length}-{new FileInfo(preprocess).Length}";

    internal static string FirstLine(string message) => OnnxSessions.FirstLine(message);

    /// <summary>One session on the batch-dynamic network, with buffers for one batch of inputs and features.</summary>
    sealed class Worker : IDisposable
    {
        readonly InferenceSession network;
        readonly RunOptions runOptions = new();
        readonly float[] input;
        readonly float[] output;
        readonly string[] inputName, outputName;

        public Worker(string file, byte[] model, int threads, int batchSize, PrePackedWeightsContainer prePacked)
        {
            using var options = OnnxSessions.Options(threads);
            network = OnnxSessions.Load(file, options, model, prePacked);
            (inputName, outputName) = OnnxSessions.CheckShapes(network, file, [-1, 3, Side, Side], [-1, FeatureCount, 1, 1]);
            input = new float[batchSize * 3 * Side * Side];
            output = new float[batchSize * FeatureCount];
        }

        /// <summary>Features of <paramref name="count"/> resized images into rows <paramref name="row"/>.. of <paramref name="features"/>.</summary>
        public void Run(ResNetMeanImage mean, ReadOnlySpan<float> resized, int channels, int count, double[,] features, int row)
        {
            var values = count * 3 * Side * Side;
            mean.Prepare(resized, channels, input.AsSpan(0, values));
            using var inputValue = OrtValue.CreateTensorValueFromMemory(OrtMemoryInfo.DefaultInstance, input.AsMemory(0, values), [count, 3, Side, Side]);
            using var outputValue = OrtValue.CreateTensorValueFromMemory(OrtMemoryInfo.DefaultInstance, output.AsMemory(0, count * FeatureCount), [count, FeatureCount, 1, 1]);
            network.Run(runOptions, inputName, [inputValue], outputName, [outputValue]);
            for (var i = 0; i < count; i++)
                for (var j = 0; j < FeatureCount; j++) features[row + i, j] = output[i * FeatureCount + j];
        }

        public void Dispose()
        {
            runOptions.Dispose();
            network.Dispose();
        }
    }
}
