namespace DiffusionFunctional.Training;

/// <summary>Why a run was judged to diverge, and when.</summary>
/// <param name="Step">The step whose loss tripped the guard.</param>
/// <param name="Loss">That loss.</param>
/// <param name="Reason">One line: "non-finite loss NaN" or "loss 12.3 is 25.1x the running median 0.49".</param>
public sealed record Divergence(long Step, double Loss, string Reason);

/// <summary>
/// Detects a diverging run from its logged losses: a non-finite loss, or a loss above <see cref="JumpFactor"/>
/// times the median of the last <see cref="Window"/> losses (checked once <see cref="MinimumHistory"/> losses
/// are in). The median rather than the mean so that one earlier spike does not raise the bar. The trainer feeds it
/// each batch's plain loss before the update and stops when it returns a <see cref="Divergence"/>; a diverged run is a
/// result to report, not a crash.
/// </summary>
public sealed class DivergenceGuard
{
    private readonly Queue<double> recent = new();

    /// <summary>A guard that trips when a loss exceeds <paramref name="jumpFactor"/> times the median of the last <paramref name="window"/> losses (once it has <paramref name="minimumHistory"/> of them), or is not finite.</summary>
    public DivergenceGuard(double jumpFactor = TrainerOptions.DefaultDivergenceFactor, int window = 50, int minimumHistory = 10)
    {
        if (!(jumpFactor > 1)) throw new BadInputException($"the divergence jump factor must be above 1, got {jumpFactor}");
        if (window < 1) throw new BadInputException($"the divergence window must be at least 1 step, got {window}");
        if (minimumHistory < 1 || minimumHistory > window) throw new BadInputException($"the divergence guard's minimum history must lie in [1, {window}], got {minimumHistory}");
        JumpFactor = jumpFactor;
        Window = window;
        MinimumHistory = minimumHistory;
    }

    /// <summary>A loss above this multiple of the running median counts as divergence (infinity: only non-finite losses do).</summary>
    public double JumpFactor { get; }
    /// <summary>Losses the running median is taken over.</summary>
    public int Window { get; }
    /// <summary>Losses needed before jumps are judged (non-finite losses always are).</summary>
    public int MinimumHistory { get; }
    /// <summary>The first divergence seen, or null.</summary>
    public Divergence? Diverged { get; private set; }

    /// <summary>The median of the losses in the window (NaN when empty).</summary>
    public double RunningMedian
    {
        get
        {
            if (recent.Count == 0) return double.NaN;
            var sorted = recent.OrderBy(x => x).ToArray();
            var mid = sorted.Length / 2;
            return sorted.Length % 2 == 1 ? sorted[mid] : 0.5 * (sorted[mid - 1] + sorted[mid]);
        }
    }

    /// <summary>Records one step's loss; returns the divergence when this loss trips the guard, else null.
    /// A tripping loss is not added to the window.</summary>
    public Divergence? Observe(long step, double loss)
    {
        Divergence? found = null;
        if (double.IsNaN(loss) || double.IsInfinity(loss)) found = new Divergence(step, loss, $"non-finite loss {loss}");
        else if (recent.Count >= MinimumHistory)
        {
            var median = RunningMedian;
            if (loss > JumpFactor * median)
                found = new Divergence(step, loss, $"loss {loss:G4} is {loss / median:F1}x the running median {median:G4}");
        }
        if (found is not null)
        {
            Diverged ??= found;
            return found;
        }
        recent.Enqueue(loss);
        if (recent.Count > Window) recent.Dequeue();
        return null;
    }

    /// <summary>Writes the window (for checkpoints).</summary>
    public void Save(BinaryWriter writer)
    {
        writer.Write(recent.Count);
        foreach (var v in recent) writer.Write(v);
    }

    /// <summary>Restores what <see cref="Save"/> wrote.</summary>
    public void Load(BinaryReader reader)
    {
        recent.Clear();
        var n = reader.ReadInt32();
        for (var i = 0; i < n; i++) recent.Enqueue(reader.ReadDouble());
    }
}
