using Microsoft.ML.OnnxRuntime;

namespace DiffusionFunctional.Evaluation;

/// <summary>Options for <see cref="ResNet18Extractor"/>.</summary>
/// <param name="ModelDirectory">Folder holding <c>ResNetPrepOnnx/</c> and <c>ResNet18Onnx/</c>; default <see cref="ResNet18Extractor.DefaultModelDirectory"/>.</param>
/// <param name="Workers">Images run concurrently, each worker with its own sessions (the graph takes one image at a time).</param>
/// <param name="ThreadsPerWorker">OnnxRuntime intra-op threads per worker.</param>
public sealed record ResNet18Options(string? ModelDirectory = null, int Workers = 1, int ThreadsPerWorker = 1);

/// <summary>
/// The ImageNet-pretrained ResNet-18 that NuGet's Microsoft.ML.DnnImageFeaturizer.ResNet18 ships, run through
/// OnnxRuntime: 512 pooled features per image, the basis of FD-ResNet18.
/// </summary>
/// <remarks>
/// The package's <c>ResNetPreprocess.onnx</c> runs first: it takes RGB in 0..255, reorders to BGR and subtracts a
/// per-pixel mean image (the network was trained that way; ImageNet mean/std normalisation does not fit it).
/// Both graphs have a fixed batch of 1, so every worker keeps one pair of sessions and preallocated buffers.
/// </remarks>
public sealed class ResNet18Extractor : IFeatureExtractor
{
    /// <summary>The package version the build copies the model files from (paket.lock, group Models).</summary>
    public const string PackageVersion = "0.23.1";
    internal const string PreprocessPath = "ResNetPrepOnnx/ResNetPreprocess.onnx";
    internal const string NetworkPath = "ResNet18Onnx/ResNet18.onnx";
    internal const int Side = 224;
    const int FeatureCount = 512;
    const int ChunkImages = 32;

    readonly Worker[] workers;

    /// <summary>Loads both graphs once per worker and checks that they are the expected ones.</summary>
    /// <exception cref="BadInputException">The model files are missing or are not the expected graphs.</exception>
    public ResNet18Extractor(ResNet18Options? options = null)
    {
        options ??= new ResNet18Options();
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
        Id = $"resnet18-dnnimagefeaturizer-{PackageVersion}-{new FileInfo(network).Length}-{new FileInfo(preprocess).Length}";
        var created = new List<Worker>();
        try
        {
            for (var i = 0; i < options.Workers; i++) created.Add(new Worker(preprocess, network, options.ThreadsPerWorker));
        }
        catch
        {
            foreach (var w in created) w.Dispose();
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
        var perImage = 3 * Side * Side;
        var chunk = new float[Math.Min(ChunkImages, Math.Max(images.Count, 1)) * perImage];
        for (var start = 0; start < images.Count; start += ChunkImages)
        {
            var count = Math.Min(ChunkImages, images.Count - start);
            // The preprocessing graph expects RGB in 0..255.
            ImagePreprocessing.ToRgbSquare(images, start, count, Side, 255f, 0f, chunk);
            // Images are independent and each worker has its own sessions: the result does not depend on the worker count.
            Parallel.For(0, workers.Length, new ParallelOptions { MaxDegreeOfParallelism = workers.Length }, w =>
            {
                for (var i = w; i < count; i += workers.Length)
                    workers[w].Run(chunk.AsSpan(i * perImage, perImage), features, start + i);
            });
            progress?.Report(start + count);
        }
        return features;
    }

    /// <inheritdoc />
    public void Dispose()
    {
        foreach (var w in workers) w.Dispose();
    }

    /// <summary>One pair of sessions chained through preallocated tensors: image -> preprocessed -> features.</summary>
    sealed class Worker : IDisposable
    {
        readonly InferenceSession preprocess;
        readonly InferenceSession network;
        readonly RunOptions runOptions = new();
        readonly float[] input = new float[3 * Side * Side];
        readonly float[] prepared = new float[3 * Side * Side];
        readonly float[] output = new float[FeatureCount];
        readonly OrtValue inputValue;
        readonly OrtValue preparedValue;
        readonly OrtValue outputValue;
        readonly string[] preprocessInput, preprocessOutput, networkInput, networkOutput;

        public Worker(string preprocessFile, string networkFile, int threads)
        {
            using var options = new SessionOptions
            {
                IntraOpNumThreads = threads,
                InterOpNumThreads = 1,
                ExecutionMode = ExecutionMode.ORT_SEQUENTIAL,
                GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL,
            };
            preprocess = Load(preprocessFile, options);
            network = Load(networkFile, options);
            (preprocessInput, preprocessOutput) = CheckShapes(preprocess, preprocessFile, [1, 3, Side, Side], [1, 3, Side, Side]);
            (networkInput, networkOutput) = CheckShapes(network, networkFile, [1, 3, Side, Side], [1, FeatureCount, 1, 1]);
            long[] imageShape = [1, 3, Side, Side];
            inputValue = OrtValue.CreateTensorValueFromMemory(input, imageShape);
            preparedValue = OrtValue.CreateTensorValueFromMemory(prepared, imageShape);
            outputValue = OrtValue.CreateTensorValueFromMemory(output, [1, FeatureCount, 1, 1]);
        }

        static InferenceSession Load(string file, SessionOptions options)
        {
            try { return new InferenceSession(file, options); }
            catch (OnnxRuntimeException e)
            {
                throw new BadInputException($"cannot load ONNX model '{file}': {FirstLine(e.Message)}");
            }
        }

        static (string[] Input, string[] Output) CheckShapes(InferenceSession session, string file, int[] inputShape, int[] outputShape)
        {
            if (session.InputMetadata.Count != 1 || session.OutputMetadata.Count != 1)
                throw new BadInputException($"ONNX model '{file}' should have one input and one output, has {session.InputMetadata.Count} and {session.OutputMetadata.Count}");
            var (inName, inMeta) = session.InputMetadata.First();
            var (outName, outMeta) = session.OutputMetadata.First();
            if (!inMeta.Dimensions.SequenceEqual(inputShape) || !outMeta.Dimensions.SequenceEqual(outputShape))
                throw new BadInputException($"ONNX model '{file}' maps [{string.Join(",", inMeta.Dimensions)}] to [{string.Join(",", outMeta.Dimensions)}], expected [{string.Join(",", inputShape)}] to [{string.Join(",", outputShape)}]");
            return ([inName], [outName]);
        }

        public void Run(ReadOnlySpan<float> image, double[,] features, int row)
        {
            image.CopyTo(input);
            preprocess.Run(runOptions, preprocessInput, [inputValue], preprocessOutput, [preparedValue]);
            network.Run(runOptions, networkInput, [preparedValue], networkOutput, [outputValue]);
            for (var j = 0; j < FeatureCount; j++) features[row, j] = output[j];
        }

        public void Dispose()
        {
            inputValue.Dispose();
            preparedValue.Dispose();
            outputValue.Dispose();
            runOptions.Dispose();
            preprocess.Dispose();
            network.Dispose();
        }
    }

    internal static string FirstLine(string message) => message.ReplaceLineEndings("\n").Split('\n', 2)[0].Trim();
}
