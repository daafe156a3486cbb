using System.ComponentModel;
using DiffusionFunctional.Backend;
using DiffusionFunctional.Diffusion;
using DiffusionFunctional.Imaging;
using DiffusionFunctional.Training;
using Spectre.Console.Cli;
using TorchSharp;

namespace DiffusionFunctional.Cli.Commands;

/// <summary><c>dfn sample</c>: loads a checkpoint's EMA weights and writes a PNG grid and one PNG per image.</summary>
public sealed class SampleCommand : Command<SampleCommand.Settings>
{
    public sealed class Settings : CommandSettings
    {
        [CommandOption("--checkpoint <FILE>"), Description("A checkpoint.dfn written by dfn train.")]
        public string? Checkpoint { get; init; }
        [CommandOption("--count <N>"), DefaultValue(16)] public int Count { get; init; } = 16;
        [CommandOption("--sampler <NAME>"), Description("ddim or ddpm."), DefaultValue("ddim")]
        public string Sampler { get; init; } = "ddim";
        [CommandOption("--steps <N>"), Description("DDIM steps."), DefaultValue(50)] public int Steps { get; init; } = 50;
        [CommandOption("--eta <ETA>"), Description("DDIM eta (0: deterministic)."), DefaultValue(0.0)] public double Eta { get; init; }
        [CommandOption("--seed <S>"), DefaultValue(0L)] public long Seed { get; init; }
        [CommandOption("--out <DIR>"), Description("Writes grid.png and images/sample-NNNN.png here.")]
        public string? Out { get; init; }
        [CommandOption("--live"), Description("Use the live weights instead of the EMA.")]
        public bool Live { get; init; }
        [CommandOption("--device <DEVICE>"), DefaultValue("cpu")] public string Device { get; init; } = "cpu";
        [CommandOption("--threads <N>")] public int? Threads { get; init; }
    }

    public override int Execute(CommandContext context, Settings s, CancellationToken cancellationToken)
    {
        if (string.IsNullOrWhiteSpace(s.Checkpoint)) throw new BadInputException("--checkpoint FILE is required");
        if (string.IsNullOrWhiteSpace(s.Out)) throw new BadInputException("--out DIR is required");
        if (s.Count <= 0) throw new BadInputException($"--count must be positive, got {s.Count}");
        TorchSharp.torch.Device device;
        try { device = TorchBackend.Resolve(s.Device); }
        catch (TorchBackend.DeviceUnavailableException e) { throw new BadInputException(e.Message); }
        if (s.Threads is { } threads) TorchBackend.SetThreads(threads);
        var options = new SamplerOptions { Kind = SamplerOptions.ParseKind(s.Sampler), Steps = s.Steps, Eta = s.Eta, Seed = s.Seed };
        var (model, diffusion, step) = Trainer.LoadForSampling(s.Checkpoint, useEma: !s.Live);
        using (model)
        {
            model.to(device);
            var c = model.Config;
            using var images = Samplers.Sample(diffusion, model, [s.Count, c.ImageChannels, c.ImageSize, c.ImageSize], options, device);
            Directory.CreateDirectory(s.Out);
            ImageWriter.SaveGrid(images, Path.Combine(s.Out, "grid.png"));
            ImageWriter.SaveEach(images, Path.Combine(s.Out, "images"));
        }
        Console.Error.WriteLine($"dfn: {s.Count} samples of step {step} ({s.Sampler}) written to {s.Out}");
        return DfnApp.Ok;
    }
}
