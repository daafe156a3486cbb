// The worked examples of docs/extending.md, run for a few steps each: dotnet run --project samples/Extending.Sample -- [STEPS]
using DiffusionFunctional.Diffusion;
using DiffusionFunctional.Models;
using DiffusionFunctional.Training;
using DiffusionFunctional.Weighting;

var steps = args.Length > 0 ? int.Parse(args[0], System.Globalization.CultureInfo.InvariantCulture) : 20;

// A weighting: register it once, then name it like a built-in one.
WeightingRegistry.Register(ScaledWeighting.Descriptor);

// An objective and a data source: a plan and a data set are what the trainer takes.
var plan = SqrtSnrObjective.Plan("linear", 1000, k: 4);
using var data = RingImages.Load(count: 64, size: 8, seed: 1);

using var trainer = Trainer.Create(UNetConfig.Named("tiny"), GaussianDiffusion.Create("linear", 1000), data, new TrainerOptions
{
    Steps = steps, BatchSize = 16, Plan = plan, Weighting = "scaled",
    WeightingSettings = WeightingSettings.Defaults.With("scaled", "factor", 0.25),
});
trainer.Train();
Console.WriteLine($"trained {trainer.Step} steps of {data.Description} with '{trainer.Weighting.Name}' on {plan}");

// A backbone: register its kind (so its checkpoints load) and a preset (so Denoisers.Named and --model find it).
Denoisers.RegisterKind<PixelMlpConfig>(PixelMlpConfig.KindName);
Denoisers.RegisterPreset("pixel-mlp-8", () => new PixelMlpConfig { ImageSize = 8, Hidden = 64 });
using var mlp = Trainer.Create(Denoisers.Named("pixel-mlp-8"), GaussianDiffusion.Create("linear", 1000), data,
    new TrainerOptions { Steps = steps, BatchSize = 16 });
mlp.Train();
Console.WriteLine($"trained {mlp.Step} steps of a {mlp.Model.Config.Describe()} ({mlp.Model.ParameterCount} parameters)");
