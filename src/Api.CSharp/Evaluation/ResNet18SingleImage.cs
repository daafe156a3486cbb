using DiffusionFunctional.Backend;
using Microsoft.ML.OnnxRuntime;
using TorchSharp;
using static TorchSharp.torch;

namespace DiffusionFunctional.Evaluation;

/// <summary>
/// The package's two graphs run as shipped, one image per session run: how <see cref="ResNet18Extractor"/> worked
/// before its batch was made dynamic. Kept as the reference its features are tested against and the baseline of
/// <c>dfn bench evaluation</c> (docs/benchmarks.md, "Evaluation").
/// </summary>
internal sealed class ResNet18SingleImage : IFeatureExtractor
{
    const int ChunkImages = 32;
    readonly Worker[] workers;

    /// <summary>Loads both graphs once per worker, with OnnxRuntime's default (spinning) thread pool as before.</summary>
    public ResNet18SingleImage(ResNet18Options? options = null)
    {
        options ??= new ResNet18Options();
        var (preprocess, network) = ResNet18Extractor.ModelFiles(options);
        Id = ResNet18Extractor.IdOf(preprocess, network);
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

    /// <inheritdoc />
    public string Id { get; }

    /// <inheritdoc />
    public int Dimension => ResNet18Extractor.FeatureCount;

    /// <inheritdoc />
    public double[,] Extract(ImageBatch images, IProgress<int>? progress = null)
    {
        ArgumentNullException.ThrowIfNull(images);
        const int side = ResNet18Extractor.Side;
        var features = new double[images.Count, Dimension];
        var perImage = 3 * side * side;
        var chunk = new float[Math.Min(ChunkImages, Math.Max(images.Count, 1)) * perImage];
        for (var start = 0; start < images.Count; start += ChunkImages)
        {
            var count = Math.Min(ChunkImages, images.Count - start);
            ToRgbSquareAsBefore(images, start, count, chunk);
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

    /// <summary>
    /// <see cref="ImagePreprocessing.ToRgbSquare"/> as it was, with the element-by-element copy out of the tensor, so
    /// that this baseline costs what the extractor cost before; same values.
    /// </summary>
    static void ToRgbSquareAsBefore(ImageBatch images, int start, int count, Span<float> destination)
    {
        const int side = ResNet18Extractor.Side;
        using var scope = torch.NewDisposeScope();
        var x = torch.tensor(images.Images(start, count).ToArray(), [count, images.Channels, images.Height, images.Width]);
        if (images.Height != side || images.Width != side)
            x = nn.functional.interpolate(x, size: [side, side], mode: InterpolationMode.Bilinear, align_corners: false, antialias: true);
        if (images.Channels == 1) x = x.expand(count, 3, side, side);
        x = x.Times(255f).Plus(0f).contiguous();
        x.data<float>().CopyTo(destination);
    }

    /// <summary>One pair of sessions chained through preallocated tensors: image -> preprocessed -> features.</summary>
    sealed class Worker : IDisposable
    {
        const int Side = ResNet18Extractor.Side, FeatureCount = ResNet18Extractor.FeatureCount;
        readonly InferenceSession preprocess;
        readonly InferenceSession network;
        readonly RunOptions runOptions = new();
        readonly float[] input = new float[3 * Side * Side];
        readonly float[] prepared = new float[3 * Side * Side];
        readonly float[] output = new float[FeatureCount];
        readonly OrtValue inputValue, preparedValue, outputValue;
        readonly string[] preprocessInput, preprocessOutput, networkInput, networkOutput;

        public Worker(string preprocessFile, string networkFile, int threads)
        {
            using var options = OnnxSessions.Options(threads, allowSpinning: true);
            preprocess = OnnxSessions.Load(preprocessFile, options);
            network = OnnxSessions.Load(networkFile, options);
            (preprocessInput, preprocessOutput) = OnnxSessions.CheckShapes(preprocess, preprocessFile, [1, 3, Side, Side], [1, 3, Side, Side]);
            (networkInput, networkOutput) = OnnxSessions.CheckShapes(network, networkFile, [1, 3, Side, Side], [1, FeatureCount, 1, 1]);
            long[] imageShape = [1, 3, Side, Side];
            inputValue = OrtValue.CreateTensorValueFromMemory(input, imageShape);
            preparedValue = OrtValue.CreateTensorValueFromMemory(prepared, imageShape);
            outputValue = OrtValue.CreateTensorValueFromMemory(output, [1, FeatureCount, 1, 1]);
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
}
