using System.ComponentModel;
using DiffusionFunctional.Interop;
using Spectre.Console.Cli;

namespace DiffusionFunctional.Cli.Commands;

/// <summary><c>dfn export</c>: writes a checkpoint's EMA (or live) weights for diffusers or PyTorch (docs/interop.md).</summary>
public sealed class ExportCommand : Command<ExportCommand.Settings>
{
    public sealed class Settings : CommandSettings
    {
        [CommandOption("--checkpoint <FILE>"), Description("A checkpoint.dfn, or the run folder that holds it.")]
        public string? Checkpoint { get; init; }
        [CommandOption("--out <PATH>"), Description("diffusers: a folder for UNet2DModel.from_pretrained; pytorch: a file for torch.load.")]
        public string? Out { get; init; }
        [CommandOption("--format <FORMAT>"), Description("diffusers (config.json, scheduler_config.json, safetensors) or pytorch (one state_dict file)."), DefaultValue("diffusers")]
        public string Format { get; init; } = "diffusers";
        [CommandOption("--live"), Description("Export the live weights instead of the EMA.")]
        public bool Live { get; init; }
    }

    public override int Execute(CommandContext context, Settings s, CancellationToken cancellationToken)
    {
        if (string.IsNullOrWhiteSpace(s.Checkpoint)) throw new BadInputException("--checkpoint FILE is required");
        if (string.IsNullOrWhiteSpace(s.Out)) throw new BadInputException("--out PATH is required");
        var format = WeightsExport.ParseFormat(s.Format);
        var result = WeightsExport.Run(s.Checkpoint, s.Out, format, useEma: !s.Live);
        foreach (var warning in result.Warnings) Messages.Warn(warning);
        foreach (var file in result.Files) Console.WriteLine(file);
        var kind = format == WeightsFormat.Diffusers ? "diffusers UNet2DModel folder" : "PyTorch state_dict, diffusers keys";
        Messages.Info($"{(s.Live ? "live" : "EMA")} weights of step {result.Step} written to {s.Out} ({kind})");
        return DfnApp.Ok;
    }
}
