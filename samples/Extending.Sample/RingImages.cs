using DiffusionFunctional.Backend;
using DiffusionFunctional.Data;
using static TorchSharp.torch;

/// <summary>A new data source: images made by code (rings of random radius), as the trainer takes any data set.</summary>
public static class RingImages
{
    /// <summary>count grey size x size rings in [-1, 1], drawn with seed.</summary>
    public static ImageDataset Load(int count, int size, long seed)
    {
        using var scope = NewDisposeScope();
        using var generator = new Generator((ulong)seed);
        var axis = linspace(-1, 1, size);
        var radius = sqrt(axis.reshape(1, -1).Squared().Plus(axis.reshape(-1, 1).Squared()));
        var r = rand([count, 1, 1, 1], generator: generator).Times(0.6).Plus(0.2);
        var rings = (-(radius.unsqueeze(0).unsqueeze(0) - r).Squared()).Over(0.01).exp().Times(2).Minus(1);
        return new ImageDataset(rings.MoveToOuterDisposeScope(), $"rings ({count} images, seed {seed})");
    }
}
