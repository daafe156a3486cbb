using System.ComponentModel;
using System.Text.Json;
using DiffusionFunctional.Backend;
using Spectre.Console.Cli;

namespace DiffusionFunctional.Cli.Commands;

/// <summary>Options of <c>dfn kernels</c>.</summary>
public sealed class KernelsSettings : CommandSettings
{
    /// <summary>Check again even when a verdict is cached for this machine.</summary>
    [CommandOption("--recheck")]
    [Description("Check again instead of using the verdict cached for this machine.")]
    public bool Recheck { get; init; }

    /// <summary>Print the verdict as JSON.</summary>
    [CommandOption("--json")]
    [Description(Options.OptionText.Json)]
    public bool Json { get; init; }
}

/// <summary><c>dfn kernels</c>: whether libtorch's convolution kernels compute correct numbers on this CPU, and the
/// configuration in force (<see cref="ConvolutionKernels"/>); exit 2 when none does.</summary>
public sealed class KernelsCommand : Command<KernelsSettings>
{
    /// <inheritdoc/>
    public override int Execute(CommandContext context, KernelsSettings settings, CancellationToken cancellationToken)
    {
        var verdict = ConvolutionKernels.Ensure(settings.Recheck);
        Console.Out.WriteLine(settings.Json
            ? JsonSerializer.Serialize(new { verdict.Configuration, verdict.Forced, verdict.Fp32Correct, verdict.Bf16Correct, verdict.Finding, verdict.CheckSeconds, verdict.FromCache })
            : $"kernels: {verdict.Summary}{(verdict.FromCache ? " (cached verdict)" : $" (checked in {verdict.CheckSeconds:F1} s)")}");
        return DfnApp.Ok;
    }
}
