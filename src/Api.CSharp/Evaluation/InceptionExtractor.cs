using System.Security.Cryptography;
using TorchSharp;
using static TorchSharp.torch;

namespace DiffusionFunctional.Evaluation;

/// <summary>The value range a user-supplied Inception module expects its input pixels in.</summary>
public enum InceptionInputRange
{
    /// <summary>[0, 1], as torchvision-style modules that normalise internally (pytorch-fid's FIDInceptionA..E wrapper).</summary>
    ZeroToOne,
    /// <summary>[-1, 1].</summary>
    MinusOneToOne,
    /// <summary>[0, 255], as the TorchScript Inception of the StyleGAN/ADM evaluation suites.</summary>
    ZeroTo255,
}

/// <summary>
/// FID features from an Inception-v3 TorchScript file the user supplies (no registry here ships the weights).
/// The module gets float [N, 3, 299, 299] RGB in the chosen <see cref="InceptionInputRange"/> and must return one
/// tensor whose first dimension is N (e.g. [N, 2048] or [N, 2048, 1, 1] pool features), flattened per image.
/// </summary>
public sealed class InceptionExtractor : IFeatureExtractor
{
    /// <summary>The input side Inception-v3 was trained at.</summary>
    public const int DefaultSide = 299;
    const int ChunkImages = 16;

    readonly jit.ScriptModule<Tensor, Tensor> module;
    readonly InceptionInputRange range;
    readonly int side;

    /// <summary>Loads the TorchScript file and runs it once on a blank image to learn the feature dimension.</summary>
    /// <exception cref="BadInputException">The file is missing, is not TorchScript, or its forward does not map images to features.</exception>
    public InceptionExtractor(string path, InceptionInputRange range = InceptionInputRange.ZeroToOne, int side = DefaultSide)
    {
        if (string.IsNullOrWhiteSpace(path) || !File.Exists(path))
            throw new BadInputException($"Inception TorchScript file '{path}' not found: FID needs an Inception-v3 saved with torch.jit.save that you supply (--inception FILE); no registry here ships one");
        if (side < 1) throw new BadInputException($"Inception input side must be positive, got {side}");
        this.range = range;
        this.side = side;
        try
        {
            module = jit.load<Tensor, Tensor>(path);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            throw new BadInputException($"'{path}' is not a loadable TorchScript module: {ResNet18Extractor.FirstLine(e.Message)}");
        }
        module.eval();
        using var probe = torch.zeros(1, 3, side, side);
        Dimension = Forward(probe).GetLength(1);
        string digest;
        using (var stream = File.OpenRead(path)) digest = Convert.ToHexString(SHA256.HashData(stream))[..16];
        Id = $"inception-torchscript-{digest}-{range}-{side}";
    }

    /// <inheritdoc />
    public string Id { get; }

    /// <inheritdoc />
    public int Dimension { get; }

    /// <inheritdoc />
    public double[,] Extract(ImageBatch images, IProgress<int>? progress = null)
    {
        ArgumentNullException.ThrowIfNull(images);
        var features = new double[images.Count, Dimension];
        var perImage = 3 * side * side;
        var (scale, offset) = range switch
        {
            InceptionInputRange.MinusOneToOne => (2f, -1f),
            InceptionInputRange.ZeroTo255 => (255f, 0f),
            _ => (1f, 0f),
        };
        var chunk = new float[Math.Min(ChunkImages, Math.Max(images.Count, 1)) * perImage];
        for (var start = 0; start < images.Count; start += ChunkImages)
        {
            var count = Math.Min(ChunkImages, images.Count - start);
            ImagePreprocessing.ToRgbSquare(images, start, count, side, scale, offset, chunk);
            using var x = torch.tensor(chunk.AsSpan(0, count * perImage).ToArray(), [count, 3, side, side]);
            var rows = Forward(x);
            for (var i = 0; i < count; i++)
                for (var j = 0; j < Dimension; j++)
                    features[start + i, j] = rows[i, j];
            progress?.Report(start + count);
        }
        return features;
    }

    float[,] Forward(Tensor x)
    {
        using var scope = torch.NewDisposeScope();
        using var _ = torch.no_grad();
        Tensor y;
        try { y = module.call(x); }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            throw new BadInputException($"the Inception module's forward failed on [{string.Join(", ", x.shape)}] images: {ResNet18Extractor.FirstLine(e.Message)}");
        }
        if (y.dim() < 1 || y.shape[0] != x.shape[0])
            throw new BadInputException($"the Inception module returned shape [{string.Join(", ", y.shape)}] for {x.shape[0]} images; expected [N, D] features");
        var n = (int)x.shape[0];
        var flat = y.reshape(n, -1).to(ScalarType.Float32).contiguous();
        var d = (int)flat.shape[1];
        var values = flat.data<float>().ToArray();
        var rows = new float[n, d];
        Buffer.BlockCopy(values, 0, rows, 0, values.Length * sizeof(float));
        return rows;
    }

    /// <inheritdoc />
    public void Dispose() => module.Dispose();
}
