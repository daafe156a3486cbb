using System.ComponentModel;
using Spectre.Console;
using Spectre.Console.Cli;

namespace DiffusionFunctional.Cli.Options;

/// <summary>
/// The option of every command that computes with tensors: libtorch's threads. Commands derive from
/// it (or from <see cref="DataSettings"/>, <see cref="ModelSettings"/>) instead of declaring them again, and add their
/// own checks in <see cref="OwnChecks"/>: every check runs in <see cref="Validate"/>, before any work.
/// </summary>
public abstract class RunSettings : CommandSettings, IComputesWithTensors
{
    /// <summary>Threads.</summary>
    [CommandOption("--threads <N>"), Description(OptionText.Threads)]
    public int? Threads { get; init; }

    /// <summary>The threads to use: the given count, else the command's default bounded by the cores.</summary>
    public int ThreadsOr(int fallback) => Threads ?? Math.Min(fallback, Environment.ProcessorCount);

    /// <inheritdoc/>
    public sealed override ValidationResult Validate() => Checks.First([.. AllChecks()]);

    /// <summary>The checks of every level, the shared ones first.</summary>
    protected virtual IEnumerable<ValidationResult?> AllChecks()
    {
        yield return Checks.Threads(Threads);
        foreach (var check in OwnChecks()) yield return check;
    }

    /// <summary>The command's own checks (options it declares itself).</summary>
    protected virtual IEnumerable<ValidationResult?> OwnChecks() => [];
}

/// <summary>Commands that read a data set: <c>--data</c>.</summary>
public abstract class DataSettings : RunSettings
{
    /// <summary>Data.</summary>
    [CommandOption("--data <SOURCE>"), Description(OptionText.Data), DefaultValue("mnist")]
    public string Data { get; init; } = "mnist";

    /// <inheritdoc/>
    protected override IEnumerable<ValidationResult?> AllChecks()
    {
        yield return Checks.DataSource(Data);
        foreach (var check in base.AllChecks()) yield return check;
    }
}

/// <summary>Commands that build a network from a preset: <c>--model</c>, with the presets listed from the registry.</summary>
public abstract class ModelSettings : DataSettings
{
    /// <summary>Model preset.</summary>
    [CommandOption("--model <NAME>"), ListedDescription(Listing.ModelPresets, "Network preset: {0}."), DefaultValue("small")]
    public string Model { get; init; } = "small";

    /// <inheritdoc/>
    protected override IEnumerable<ValidationResult?> AllChecks()
    {
        yield return Checks.Library(() => Models.Denoisers.Named(Model), "--model");
        foreach (var check in base.AllChecks()) yield return check;
    }
}
