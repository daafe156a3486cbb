using DiffusionFunctional.Data;
using DiffusionFunctional.Diffusion;
using DiffusionFunctional.Imaging;
using DiffusionFunctional.Models;
using DiffusionFunctional.Training;
using static TorchSharp.torch;

namespace DiffusionFunctional.Samples;

/// <summary>The whole API in a few lines: data, a UNet, a diffusion, a trainer; train, then sample.</summary>
public static class TinyTraining
{
    /// <summary>Trains the tiny UNet for <paramref name="steps"/> steps and writes samples; returns the loss of every step.</summary>
    public static IReadOnlyList<double> Run(string outputDirectory, int steps = 200, string? dataSource = null)
    {
        using var data = dataSource is null ? Blobs() : DataSources.Load(dataSource, channels: 1, size: 8);
        using var trainer = Trainer.Create(UNetConfig.Named("tiny"), GaussianDiffusion.Create("linear", 1000), data,
            new TrainerOptions { Steps = steps, BatchSize = 32, LearningRate = 2e-3, OutputDirectory = outputDirectory, Threads = 1, SampleCount = 0 });
        var losses = new List<double>();
        trainer.Train(onStep: m => losses.Add(m.Loss));
        using var images = trainer.Sample(16, new SamplerOptions { Kind = SamplerKind.Ddim, Steps = 50, Seed = 1 });
        ImageWriter.SaveGrid(images, Path.Combine(outputDirectory, "grid.png"));
        return losses;
    }

    /// <summary>Synthetic stand-in for real data: 256 8x8 images of one bright Gaussian blob each.</summary>
    private static ImageDataset Blobs()
    {
        using var scope = NewDisposeScope();
        using var generator = new Generator(7);
        var centres = rand([256, 2, 1, 1], generator: generator) * 5 + 1.5;
        var grid = arange(8, dtype: float32);
        var dy = (grid.reshape(1, 8, 1) - centres[.., 0]).square();
        var dx = (grid.reshape(1, 1, 8) - centres[.., 1]).square();
        var images = exp(-(dy + dx) / 2).unsqueeze(1);
        return ImageDataset.FromUnitRange(images, channels: 1, size: 8, "synthetic blobs");
    }
}
