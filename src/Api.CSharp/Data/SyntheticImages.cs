using DiffusionFunctional.Backend;
using TorchSharp;
using static TorchSharp.torch;

namespace DiffusionFunctional.Data;

/// <summary>
/// Small synthetic training sets for tests and benchmarks that must not depend on a download: each image is one
/// Gaussian blob of random centre and width, 1 channel, in [-1, 1], a pure function of the seed.
/// </summary>
public static class SyntheticImages
{
    /// <summary><paramref name="count"/> blob images of <paramref name="size"/> x <paramref name="size"/> pixels drawn from <paramref name="seed"/>.</summary>
    public static ImageDataset Blobs(int count, int size, long seed)
    {
        using var generator = new Generator((ulong)seed);
        return new ImageDataset(Blobs(count, size, generator), $"synthetic blobs ({count} images, seed {seed})");
    }

    /// <summary>Blob images [count, 1, size, size] drawn from <paramref name="generator"/>.</summary>
    public static Tensor Blobs(int count, int size, Generator generator)
    {
        using var scope = NewDisposeScope();
        var centres = rand([count, 2, 1, 1], generator: generator).Times(size - 3).Plus(1.5);
        var widths = rand([count, 1, 1], generator: generator).Times(0.15).Times(size).Plus(0.1 * size);
        var grid = Scalars.Arange(0, size, float32);
        var dy = (grid.view(1, size, 1) - centres[.., 0]).Squared();
        var dx = (grid.view(1, 1, size) - centres[.., 1]).Squared();
        var image = (-dx.Plus(dy) / widths.Squared().Times(2)).exp().Times(2).Minus(1);
        return image.unsqueeze(1).MoveToOuterDisposeScope();
    }
}
