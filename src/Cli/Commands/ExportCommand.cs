using System.ComponentModel;
using DiffusionFunctional.Interop;
using Spectre.Console.Cli;

namespace DiffusionFunctional.Cli.Commands;

/// <summary><c>dfn export</c>: writes a checkpoint's EMA (or live) weights for diffusers or PyTorch (docs/interop.md).</summary>
public sealed class ExportCommand : Command<ExportCommand.Settings>
{
    public sealed class Settings : CommandSettings
    {
        [CommandOption("--checkpoint <FILE>"), Description(Options.OptionText.Checkpoint)]
        public string? Checkpoint { get; init; }
        [CommandOption("--out <PATH>"), Description("diffusers: a folder for UNet2DModel.from_pretrained; pytorch: a file for torch.load.")]
        public string? Out { get; init; }
        [CommandOption("--format <FORMAT>"), Description("diffusers (config.json, scheduler_config.json, safetensors) or pytorch (one state_dict file)."), DefaultValue("diffusers")]
        public string Format { get; init; } = "diffusers";
        [CommandOption("--live"), Description(Options.OptionText.Live)]
        public bool Live { get; init; }

        /// <inheritdoc/>
        public override Spectre.Console.ValidationResult Validate() => Checks.First(
            Checks.Required(Checkpoint, "--checkpoint FILE"), Checks.Required(Out, "--out PATH"), Checks.Library(() => WeightsExport.ParseFormat(Format), "--format"));
    }

    public override int Execute(CommandContext context, Settings s, CancellationToken cancellationToken)
    {
        var format = WeightsExport.ParseFormat(s.Format);
        var result = WeightsExport.Run(s.Checkpoint!, s.Out!, format, useEma: !s.Live);
        foreach (var warning in result.Warnings) Messages.Warn(warning);
        foreach (var file in result.Files) Console.WriteLine(file);
        var kind = format == WeightsFormat.Diffusers ? "diffusers UNet2DModel folder" : $"PyTorch state_dict, {result.Keys}";
        Messages.Info($"{(s.Live ? "live" : "EMA")} weights of step {result.Step} written to {s.Out} ({kind})");
        return DfnApp.Ok;
    }
}
