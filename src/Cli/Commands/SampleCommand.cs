using System.ComponentModel;
using DiffusionFunctional.Backend;
using DiffusionFunctional.Diffusion;
using DiffusionFunctional.Imaging;
using DiffusionFunctional.Training;
using TorchSharp;
using Spectre.Console;
using Spectre.Console.Cli;

namespace DiffusionFunctional.Cli.Commands;

/// <summary><c>dfn sample</c>: loads a checkpoint's EMA (or live) weights and writes a PNG grid and one PNG per image.</summary>
public sealed class SampleCommand : Command<SampleCommand.Settings>
{
    /// <summary>Options of <c>dfn sample</c>.</summary>
    public sealed class Settings : Options.RunSettings, Options.IHasDeprecatedOptions
    {
        /// <summary>Checkpoint file or run folder.</summary>
        [CommandOption("--checkpoint <FILE>"), Description(Options.OptionText.Checkpoint)]
        public string? Checkpoint { get; init; }
        /// <summary>Images to draw.</summary>
        [CommandOption("--count <N>"), Description(Options.OptionText.Count + "."), DefaultValue(16)] public int Count { get; init; } = 16;
        /// <summary>Sampler.</summary>
        [CommandOption("--sampler <NAME>"), Description(Options.OptionText.Sampler), DefaultValue("ddim")]
        public string Sampler { get; init; } = "ddim";
        /// <summary>DDIM steps.</summary>
        [CommandOption("--sampler-steps <N>"), Description(Options.OptionText.SamplerSteps), DefaultValue(50)] public int SamplerSteps { get; init; } = 50;
        /// <summary>The old spelling of <see cref="SamplerSteps"/>.</summary>
        [CommandOption("--steps <N>", IsHidden = true)] public int? OldSteps { get; init; }
        /// <summary>DDIM eta.</summary>
        [CommandOption("--eta <ETA>"), Description("DDIM eta in [[0, 1]] (0: deterministic, 1: DDPM over the chosen timesteps)."), DefaultValue(0.0)] public double Eta { get; init; }
        /// <summary>Noise seed.</summary>
        [CommandOption("--seed <S>"), Description(Options.OptionText.Seed), DefaultValue(0L)] public long Seed { get; init; }
        /// <summary>Output folder.</summary>
        [CommandOption("--out <DIR>"), Description("Writes grid.png and images/sample-NNNN.png here (required).")]
        public string? Out { get; init; }
        /// <summary>Device.</summary>
        [CommandOption("--device <DEVICE>"), Description(Options.OptionText.Device), DefaultValue("cpu")] public string Device { get; init; } = "cpu";
        /// <summary>Live weights.</summary>
        [CommandOption("--live"), Description(Options.OptionText.Live)]
        public bool Live { get; init; }

        /// <summary>The sampler steps, given under either name.</summary>
        public int Steps => OldSteps ?? SamplerSteps;

        /// <inheritdoc/>
        public IReadOnlyList<(string Old, string New)> Renamed => [("--steps", "--sampler-steps")];

        /// <inheritdoc/>
        protected override IEnumerable<ValidationResult?> OwnChecks() =>
        [
            Checks.Required(Checkpoint, "--checkpoint FILE"), Checks.Required(Out, "--out DIR"), Checks.Device(Device),
            Checks.Between(Count, 1, 100_000, "--count"), Checks.Positive(Steps, OldSteps is null ? "--sampler-steps" : "--steps"),
            Checks.Library(() => SamplerOptions.ParseKind(Sampler), "--sampler"),
            !(Eta >= 0 && Eta <= 1) ? Checks.Error($"--eta must lie in [0, 1], got {Eta}") : null,
        ];
    }

    /// <inheritdoc/>
    public override int Execute(CommandContext context, Settings s, CancellationToken stop)
    {
        var device = TorchBackend.Resolve(s.Device);
        if (s.Threads is { } threads) TorchBackend.SetThreads(threads);
        var options = new SamplerOptions { Kind = SamplerOptions.ParseKind(s.Sampler), Steps = s.Steps, Eta = s.Eta, Seed = s.Seed };
        var checkpoint = CheckpointFile.Resolve(s.Checkpoint!);
        OutputLocation.CheckDirectory(s.Out!);
        using var loaded = CheckpointModel.Load(checkpoint, useEma: !s.Live);
        if (loaded.NoiseWarning() is { } warning) Messages.Warn(warning);
        if (options.Kind != SamplerKind.Ddpm && s.Steps > loaded.Diffusion.Timesteps)
            throw new BadInputException($"--sampler-steps {s.Steps} exceeds the model's T = {loaded.Diffusion.Timesteps}");
        loaded.Model.to(device);
        var c = loaded.Model.Config;
        using var images = Samplers.Sample(loaded.Diffusion, loaded.Model, [s.Count, c.ImageChannels, c.ImageSize, c.ImageSize], options, device);
        ImageWriter.SaveGrid(images, Path.Combine(s.Out!, "grid.png"));
        ImageWriter.SaveEach(images, Path.Combine(s.Out!, "images"));
        Messages.Info($"{s.Count} samples of step {loaded.Step} ({s.Sampler}, {(s.Live ? "live" : "EMA")} weights) written to {s.Out}");
        return DfnApp.Ok;
    }
}
