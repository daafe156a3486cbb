using DiffusionFunctional.Backend;
using System.Security.Cryptography;
using System.Runtime.InteropServices;
using TorchSharp;
using static TorchSharp.torch;

namespace DiffusionFunctional.Evaluation;

/// <summary>
/// Images to evaluate: <see cref="Count"/> images of <see cref="Channels"/> (1 or 3) x <see cref="Height"/> x
/// <see cref="Width"/> pixels, stored row-major as [N, C, H, W] with values in [0, 1].
/// </summary>
public sealed class ImageBatch
{
    /// <summary>Wraps pixel data (not copied) after checking its shape and that every value lies in [0, 1].</summary>
    /// <exception cref="BadInputException">The shape does not match the data or a value is outside [0, 1].</exception>
    public ImageBatch(float[] pixels, int count, int channels, int height, int width)
    {
        ArgumentNullException.ThrowIfNull(pixels);
        if (count < 0 || height < 1 || width < 1)
            throw new BadInputException($"image batch shape [{count}, {channels}, {height}, {width}] is not valid");
        if (channels is not (1 or 3))
            throw new BadInputException($"images must have 1 (grayscale) or 3 (RGB) channels, got {channels}");
        if ((long)count * channels * height * width != pixels.LongLength)
            throw new BadInputException($"image batch shape [{count}, {channels}, {height}, {width}] needs {(long)count * channels * height * width} values, got {pixels.LongLength}");
        for (var i = 0; i < pixels.Length; i++)
        {
            // The negated test also catches NaN.
            if (!(pixels[i] >= 0f && pixels[i] <= 1f))
                throw new BadInputException($"pixel values must lie in [0, 1]: image {i / (channels * height * width)} has {pixels[i]} (clamp or rescale first)");
        }
        Pixels = pixels;
        Count = count;
        Channels = channels;
        Height = height;
        Width = width;
    }

    /// <summary>The pixel values, [N, C, H, W] row-major.</summary>
    public float[] Pixels { get; }

    /// <summary>Number of images N.</summary>
    public int Count { get; }

    /// <summary>Channels per image: 1 (grayscale) or 3 (RGB).</summary>
    public int Channels { get; }

    /// <summary>Image height in pixels.</summary>
    public int Height { get; }

    /// <summary>Image width in pixels.</summary>
    public int Width { get; }

    /// <summary>Values per image, C x H x W.</summary>
    public int ValuesPerImage => Channels * Height * Width;

    /// <summary>The pixel values of images [start, start + count).</summary>
    public ReadOnlySpan<float> Images(int start, int count) =>
        Pixels.AsSpan(start * ValuesPerImage, count * ValuesPerImage);

    /// <summary>The first <paramref name="count"/> images (a copy).</summary>
    public ImageBatch Take(int count)
    {
        if (count < 0 || count > Count) throw new BadInputException($"cannot take {count} images from a batch of {Count}");
        return new ImageBatch(Images(0, count).ToArray(), count, Channels, Height, Width);
    }

    /// <summary>
    /// Copies images in [-1, 1] (what samplers generate and data sets hold), mapped to [0, 1] and clamped, into a
    /// batch. The one conversion every evaluation uses; its temporaries are freed here.
    /// </summary>
    public static ImageBatch FromSigned(Tensor images)
    {
        using var scope = NewDisposeScope();
        return FromTensor(images.Plus(1).Over(2).Clamp(0, 1));
    }

    /// <summary>The images as a new CPU tensor [N, C, H, W] in [-1, 1] (the inverse of <see cref="FromSigned"/>).</summary>
    public Tensor ToSigned()
    {
        using var scope = NewDisposeScope();
        return (tensor(Pixels, dtype: ScalarType.Float32).reshape(Count, Channels, Height, Width).Times(2).Minus(1)).MoveToOuterDisposeScope();
    }

    /// <summary>Copies a CPU or GPU tensor [N, C, H, W] (any floating type, values in [0, 1]) into a batch.</summary>
    public static ImageBatch FromTensor(Tensor images)
    {
        ArgumentNullException.ThrowIfNull(images);
        if (images.dim() != 4) throw new BadInputException($"images must be a 4-D tensor [N, C, H, W], got shape [{string.Join(", ", images.shape)}]");
        using var scope = torch.NewDisposeScope();
        var values = images.detach().to(ScalarType.Float32).cpu().contiguous().data<float>().ToArray();
        return new ImageBatch(values, (int)images.shape[0], (int)images.shape[1], (int)images.shape[2], (int)images.shape[3]);
    }

    /// <summary>SHA-256 of the shape and the exact pixel values: equal hashes mean equal images, in the same order.</summary>
    public byte[] ContentHash()
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        Span<int> shape = [Count, Channels, Height, Width];
        hash.AppendData(MemoryMarshal.AsBytes(shape));
        hash.AppendData(MemoryMarshal.AsBytes(Pixels.AsSpan()));
        return hash.GetHashAndReset();
    }
}
