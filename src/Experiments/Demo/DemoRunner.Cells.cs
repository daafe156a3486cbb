using DiffusionFunctional.Experiments.Grid;

namespace DiffusionFunctional.Experiments.Demo;

public sealed partial class DemoRunner
{
    /// <summary>Every cell of this demo: each method with each seed (<see cref="Cell.All"/>).</summary>
    public IReadOnlyList<Cell> Grid => Cell.All(options.Methods, options.Seeds);

    /// <summary>After <see cref="Run"/>: the cells of the grid not finished (neither at the last evaluation point nor
    /// diverged), in the grid's order.</summary>
    public IReadOnlyList<Cell> MissingCells { get; private set; } = [];

    /// <summary>The lock file of a cell, in its run folder: whoever holds it is the only writer of the cell's files.</summary>
    public string CellLockPath(Cell cell) => Path.Combine(RunDirectory(cell.Method, cell.Seed), "cell.lock");

    /// <summary>The chosen cells whose locks this process got, holding them until disposed; a cell another process
    /// holds is left to it (and said), so two processes never train the same cell.</summary>
    HeldCells HoldCells(IReadOnlyList<Cell> chosen)
    {
        var held = new HeldCells();
        foreach (var cell in chosen)
        {
            if (FileLock.TryAcquire(CellLockPath(cell)) is { } fileLock) held.Add(cell, fileLock);
            else log($"{cell.Id}: another process is running this cell; left to it");
        }
        return held;
    }

    /// <summary>Reads what every process has written, names the unfinished cells, and writes the report when this
    /// process's selection does (a partial one when cells are missing).</summary>
    (DemoOutcome, DemoSummary) Finish(DemoResultStore store)
    {
        store.Reload();
        MissingCells = [.. Grid.Where(c => !IsFinished(store, c.Method, c.Seed))];
        var summary = Summarise(store, write: options.Cells.WritesReport);
        if (MissingCells.Count == 0) return (DemoOutcome.Completed, summary);
        log($"{MissingCells.Count} of {Grid.Count} cells unfinished: {string.Join(", ", MissingCells.Select(c => c.Id))}");
        return (DemoOutcome.CellsMissing, summary);
    }

    /// <summary>Cells and their locks, released together.</summary>
    sealed class HeldCells : IDisposable
    {
        readonly List<FileLock> locks = [];
        readonly List<(DemoMethod Method, long Seed)> cells = [];

        public IReadOnlyList<(DemoMethod Method, long Seed)> Cells => cells;

        public void Add(Cell cell, FileLock fileLock)
        {
            cells.Add((cell.Method, cell.Seed));
            locks.Add(fileLock);
        }

        public void Dispose()
        {
            foreach (var l in locks) l.Dispose();
        }
    }
}
