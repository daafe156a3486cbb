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
        trainer.Train(progress: new InlineProgress<StepMetrics>(m => losses.Add(m.Loss)));
        using var images = trainer.Sample(16, new SamplerOptions { Kind = SamplerKind.Ddim, Steps = 50, Seed = 1 });
        ImageWriter.SaveGrid(images, Path.Combine(outputDirectory, "grid.png"));
        return losses;
    }

    /// <summary>Synthetic stand-in for real data: 256 8x8 images of one bright Gaussian blob each (<see cref="SyntheticImages"/>).</summary>
    private static ImageDataset Blobs() => SyntheticImages.Blobs(256, 8, 7);
}
