using System.ComponentModel;
using DiffusionFunctional.Interop;
using DiffusionFunctional.Training;
using Spectre.Console.Cli;

namespace DiffusionFunctional.Cli.Commands;

/// <summary><c>dfn export</c>: writes a checkpoint's EMA (or live) weights as a PyTorch state_dict file.</summary>
public sealed class ExportCommand : Command<ExportCommand.Settings>
{
    public sealed class Settings : CommandSettings
    {
        [CommandOption("--checkpoint <FILE>")] public string? Checkpoint { get; init; }
        [CommandOption("--out <FILE>"), Description("Destination, e.g. unet.pt (load with torch.load).")]
        public string? Out { get; init; }
        [CommandOption("--live"), Description("Export the live weights instead of the EMA.")]
        public bool Live { get; init; }
    }

    public override int Execute(CommandContext context, Settings s, CancellationToken cancellationToken)
    {
        if (string.IsNullOrWhiteSpace(s.Checkpoint)) throw new BadInputException("--checkpoint FILE is required");
        if (string.IsNullOrWhiteSpace(s.Out)) throw new BadInputException("--out FILE is required");
        var checkpoint = CheckpointFile.Resolve(s.Checkpoint);
        OutputLocation.CheckFile(s.Out, "--out", checkpoint);
        using var loaded = CheckpointModel.Load(checkpoint, useEma: !s.Live);
        if (loaded.NoiseWarning() is { } warning) Messages.Warn(warning);
        PyTorchWeights.Export(loaded.Model, s.Out);
        Messages.Info($"{(s.Live ? "live" : "EMA")} weights of step {loaded.Step} written to {s.Out} (PyTorch state_dict)");
        return DfnApp.Ok;
    }
}
