using DiffusionFunctional.Cli.Options;
using DiffusionFunctional.Experiments.Grid;

namespace DiffusionFunctional.Cli;

/// <summary>
/// What <c>dfn demo</c> and <c>dfn reproduce</c> share about grids of cells: <c>--jobs</c> launches the shards and then
/// leaves the report step to the command; after a run, one message and exit code per way it can end.
/// </summary>
internal static class GridRun
{
    /// <summary>With <c>--jobs N</c> (N &gt; 1): runs the N shards as child processes and returns null when all
    /// succeeded (the command then runs the report step, <see cref="Selection"/>), else the exit code to end with.</summary>
    public static int? RunJobs(GridSettings s, CancellationToken stop)
    {
        if (s.Jobs is not > 1) return null;
        Messages.Info($"running the cells as {s.Jobs} processes, shard i/{s.Jobs} each; the report follows");
        var code = CellJobs.Run(s.Jobs.Value, Environment.GetCommandLineArgs()[1..], Console.Out.WriteLine, stop);
        if (code == 0) return null;
        if (code == CellJobs.InterruptedCode)
        {
            Messages.Info("stopped; run the same command again to continue");
            return DfnApp.Interrupted;
        }
        Messages.Info($"a shard ended with exit code {code} (its lines above say why); the cells it finished are kept");
        return DfnApp.Failure;
    }

    /// <summary>The cells this process runs: after <c>--jobs</c> none (the report step), else the options'.</summary>
    public static CellSelection Selection(GridSettings s) => s.Jobs is > 1 ? CellSelection.ReportOnly : s.Cells;

    /// <summary>The exit code and message when cells of the grid are unfinished or this process writes no report;
    /// null when the command should print its results and succeed.</summary>
    public static int? Ending(CellSelection selection, bool cellsMissing, IReadOnlyList<string> missing)
    {
        var names = string.Join(", ", missing);
        if (!selection.WritesReport)
        {
            Messages.Info(cellsMissing
                ? $"{selection.Description}: done; {missing.Count} cell(s) of the grid unfinished ({names}); once they are, --report writes the report"
                : $"{selection.Description}: done; every cell is finished: --report writes the report");
            return DfnApp.Ok;
        }
        if (!cellsMissing) return null;
        Messages.Info($"the report is partial: {missing.Count} cell(s) unfinished ({names}); run them (or wait for the processes holding them), then --report");
        return DfnApp.Failure;
    }
}
