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

/// <summary>
/// Commands that run a grid of independent cells (method x seed: <c>dfn demo</c>, <c>dfn reproduce</c>): which cells this
/// process runs, or several processes at once (docs/grids.md).
/// </summary>
public abstract class GridSettings : DataSettings
{
    /// <summary>Shard.</summary>
    [CommandOption("--shard <I/N>"), Description("Run only shard I of N of the cells (method x seed) against the same --out, e.g. 1/4; a cell another process holds is left to it. Then --report writes the report.")]
    public string? Shard { get; init; }

    /// <summary>Cells.</summary>
    [CommandOption("--cell <IDS>"), Description("Run only these cells, comma-separated METHOD-ID/seed-S (e.g. uw-snr-k5/seed-0; reproduce's O2 specialists: ntg/seed-S; a wrong id lists the grid's).")]
    public string? Cell { get; init; }

    /// <summary>Report step.</summary>
    [CommandOption("--report"), Description("Train nothing: write the report from the cells in --out (after shards); names the cells still missing.")]
    public bool Report { get; init; }

    /// <summary>Processes.</summary>
    [CommandOption("--jobs <N>"), Description("Run the cells as N processes at once (shard i/N each, one thread each unless --threads), then the report.")]
    public int? Jobs { get; init; }

    /// <summary>The cells this process runs.</summary>
    public Experiments.Grid.CellSelection Cells => Experiments.Grid.CellSelection.Parse(Shard, Cell, Report);

    /// <inheritdoc/>
    protected override IEnumerable<ValidationResult?> AllChecks()
    {
        yield return CellsCheck();
        if (Jobs is { } jobs)
        {
            yield return Checks.Between(jobs, 1, 256, "--jobs");
            if (Shard is not null || Cell is not null || Report)
                yield return ValidationResult.Error("--jobs runs every cell in shards itself; it does not combine with --shard, --cell or --report");
        }
        foreach (var check in base.AllChecks()) yield return check;
    }

    // The selection's own messages name the option at fault.
    ValidationResult? CellsCheck()
    {
        try { _ = Cells; return null; }
        catch (BadInputException e) { return ValidationResult.Error(e.Message); }
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
