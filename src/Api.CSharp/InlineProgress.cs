namespace DiffusionFunctional;

/// <summary>
/// An <see cref="IProgress{T}"/> that reports on the calling thread, in order. <see cref="Progress{T}"/> posts to a
/// synchronisation context (the thread pool in a console program), so its reports can arrive late or out of order.
/// </summary>
/// <param name="report">What to do with each report.</param>
public sealed class InlineProgress<T>(Action<T> report) : IProgress<T>
{
    /// <inheritdoc/>
    public void Report(T value) => report(value);
}

/// <summary>One report of long work (training, sampling, scoring): which task, which stage, how far, and a detail.</summary>
/// <param name="Task">What the work belongs to, e.g. <c>vanilla seed 0</c> (empty for a single task).</param>
/// <param name="Stage">What is being done: <c>train</c>, <c>sample</c>, <c>features</c>, <c>score</c>, ...</param>
/// <param name="Done">Units finished in this stage.</param>
/// <param name="Total">Units in this stage.</param>
/// <param name="Detail">A short detail for a progress line (a loss, a step number); may be empty.</param>
public sealed record WorkProgress(string Task, string Stage, long Done, long Total, string Detail = "");
