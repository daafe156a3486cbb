using System.ComponentModel;
using DiffusionFunctional.Interop;
using Spectre.Console.Cli;

namespace DiffusionFunctional.Cli.Commands;

/// <summary><c>dfn import</c>: reads diffusers or PyTorch weights into a weights-only checkpoint (docs/interop.md).</summary>
public sealed class ImportCommand : Command<ImportCommand.Settings>
{
    public sealed class Settings : CommandSettings
    {
        [CommandOption("--from <PATH>"), Description("A diffusers folder (config.json + safetensors or .bin), a pipeline folder with unet/, or a weights file (.safetensors, torch.save .pt/.bin).")]
        public string? From { get; init; }
        [CommandOption("--out <FILE>"), Description("The checkpoint to write, or a run folder (an existing folder or a path ending in /: writes FOLDER/checkpoint.dfn).")]
        public string? Out { get; init; }
        [CommandOption("--model <NAME>"), Options.ListedDescription(Options.Listing.ModelPresets, "Network preset: {0}.")]
        public string? Model { get; init; }
        [CommandOption("--image-size <PX>"), Description(Options.OptionText.ImageSize + " Needed when config.json has no sample_size.")]
        public int? ImageSize { get; init; }
        [CommandOption("--schedule <NAME>"), Description(Options.OptionText.Schedule + " Default: scheduler_config.json's, else linear.")]
        public string? Schedule { get; init; }
        [CommandOption("--timesteps <T>"), Description(Options.OptionText.Timesteps + " Default: scheduler_config.json's, else 1000.")]
        public int? Timesteps { get; init; }
        [CommandOption("--prediction <TYPE>"), Description(Options.OptionText.Prediction + " Default: scheduler_config.json's, else eps.")]
        public string? Prediction { get; init; }
        [CommandOption("--force"), Description("Replace an existing --out file.")]
        public bool Force { get; init; }

        /// <inheritdoc/>
        public override Spectre.Console.ValidationResult Validate() => Checks.First(
            Checks.Required(From, "--from PATH"), Checks.Required(Out, "--out FILE"),
            Model is { } model ? Checks.Library(() => Models.Denoisers.Named(model), "--model") : null,
            Timesteps is { } t ? Checks.Between(t, 1, 1_000_000, "--timesteps") : null,
            Prediction is { } p && p.Trim().ToLowerInvariant() is not ("eps" or "epsilon" or "v" or "v_prediction") ? Checks.Error($"--prediction: unknown prediction type '{p}' (expected eps or v)") : null);
    }

    public override int Execute(CommandContext context, Settings s, CancellationToken cancellationToken)
    {
        var options = new ImportOptions { Model = s.Model, ImageSize = s.ImageSize, Schedule = s.Schedule, Timesteps = s.Timesteps, Prediction = s.Prediction };
        var (imported, checkpoint) = WeightsImport.Run(s.From!, s.Out!, options, s.Force);
        using (imported)
        {
            Console.WriteLine(checkpoint);
            Messages.Info($"{imported.WeightsFile} ({imported.KeyScheme} keys) imported to {checkpoint}; model from {imported.ConfigOrigin}, diffusion from {imported.DiffusionOrigin}");
        }
        return DfnApp.Ok;
    }
}
