using System.Globalization;
using DiffusionFunctional.Experiments.Demo;

namespace DiffusionFunctional.Experiments.Grid;

/// <summary>
/// One independent unit of an experiment grid: one method trained with one seed, with its evaluation points. Cells
/// share nothing while they train (each has its own run folder and checkpoint), so processes on one machine or on many
/// can run them in any order; only the comparisons across cells (the report) need them all.
/// </summary>
/// <param name="Method">The method.</param>
/// <param name="Seed">The seed.</param>
public sealed record Cell(DemoMethod Method, long Seed)
{
    /// <summary>The cell's name, as <c>--cell</c> takes it and as its run folder is named: <c>METHOD-ID/seed-S</c>.</summary>
    public string Id => string.Create(CultureInfo.InvariantCulture, $"{Method.Id}/seed-{Seed}");

    /// <summary>Every cell of a grid, seed by seed and within a seed in the methods' order: the order every selection
    /// numbers them in, so shard i of n names the same cells in every process.</summary>
    public static IReadOnlyList<Cell> All(IReadOnlyList<DemoMethod> methods, int seeds) =>
        [.. Enumerable.Range(0, seeds).SelectMany(seed => methods.Select(m => new Cell(m, seed)))];
}

/// <summary>
/// Which cells a process trains, and whether it writes the report: every cell and then the report (a plain run), one
/// shard of them (<c>--shard i/n</c>: cells i-1, i-1+n, ...), some named ones (<c>--cell</c>), or none, only the
/// report (<c>--report</c>). A shard or named cells never write the report: several processes may be running, and the
/// comparisons need every cell; the report step says which are missing.
/// </summary>
public sealed class CellSelection
{
    readonly Func<int, string, bool> contains;

    CellSelection(string description, bool writesReport, Func<int, string, bool> contains, IReadOnlyList<string>? names = null)
    {
        Description = description;
        WritesReport = writesReport;
        this.contains = contains;
        Names = names ?? [];
    }

    /// <summary>Every cell, then the report.</summary>
    public static CellSelection Every { get; } = new("every cell", true, (_, _) => true);

    /// <summary>No cell: the report of what the cells have written (the final step after shards).</summary>
    public static CellSelection ReportOnly { get; } = new("the report", true, (_, _) => false);

    /// <summary>Cells whose position modulo <paramref name="count"/> is <paramref name="index"/> - 1.</summary>
    /// <exception cref="BadInputException">Not 1 &lt;= index &lt;= count.</exception>
    public static CellSelection Shard(int index, int count)
    {
        if (count < 1 || index < 1 || index > count)
            throw new BadInputException($"a shard is i/n with 1 <= i <= n, got {index}/{count}");
        return new($"shard {index}/{count}", false, (position, _) => position % count == index - 1);
    }

    /// <summary>The cells named (checked against the grid by <see cref="Choose"/>).</summary>
    public static CellSelection Named(IReadOnlyList<string> ids) =>
        new($"cell {string.Join(", ", ids)}", false, (_, id) => ids.Contains(id), ids);

    /// <summary>Reads <c>--shard i/n</c>, <c>--cell ID[,ID...]</c> and <c>--report</c> (at most one of them).</summary>
    /// <exception cref="BadInputException">Two of them, or a malformed shard.</exception>
    public static CellSelection Parse(string? shard, string? cells, bool report)
    {
        var given = new[] { shard is not null, cells is not null, report }.Count(b => b);
        if (given > 1) throw new BadInputException("--shard, --cell and --report choose the cells in different ways: give one of them");
        if (report) return ReportOnly;
        if (cells is not null)
        {
            var ids = cells.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
            if (ids.Length == 0) throw new BadInputException("--cell needs at least one cell id (METHOD-ID/seed-S)");
            return Named(ids);
        }
        if (shard is null) return Every;
        var parts = shard.Split('/');
        if (parts.Length != 2 || !int.TryParse(parts[0], CultureInfo.InvariantCulture, out var i) || !int.TryParse(parts[1], CultureInfo.InvariantCulture, out var n))
            throw new BadInputException($"--shard takes i/n (e.g. 1/4), got '{shard}'");
        return Shard(i, n);
    }

    /// <summary>What it selects, in words.</summary>
    public string Description { get; }

    /// <summary>Whether a process with this selection writes the report once its cells are done.</summary>
    public bool WritesReport { get; }

    /// <summary>The ids given to <see cref="Named"/> (empty otherwise).</summary>
    public IReadOnlyList<string> Names { get; }

    /// <summary>The cells of <paramref name="grid"/> this selection trains. <paramref name="others"/> names the grid's
    /// cells of other kinds (e.g. reproduce's O2 specialists), counted after the training cells (<see cref="ChooseOthers"/>).</summary>
    /// <exception cref="BadInputException">A named cell is not in the grid (the message lists the grid's cells).</exception>
    public IReadOnlyList<Cell> Choose(IReadOnlyList<Cell> grid, IReadOnlyList<string>? others = null)
    {
        IReadOnlyList<string> every = [.. grid.Select(c => c.Id), .. others ?? []];
        var unknown = Names.Where(id => !every.Contains(id)).ToList();
        if (unknown.Count > 0)
            throw new BadInputException($"no cell {string.Join(", ", unknown)} in this grid; its cells: {string.Join(", ", every)}");
        return [.. grid.Where((cell, position) => contains(position, cell.Id))];
    }

    /// <summary>The cells of other kinds this selection takes: <paramref name="others"/> sit at positions
    /// <paramref name="gridCount"/>, <paramref name="gridCount"/> + 1, ... after the grid's training cells, so shard i of n
    /// names the same ones in every process.</summary>
    public IReadOnlyList<string> ChooseOthers(int gridCount, IReadOnlyList<string> others) =>
        [.. others.Where((id, i) => contains(gridCount + i, id))];
}
