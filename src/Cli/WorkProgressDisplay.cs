using System.Globalization;
using Spectre.Console;

namespace DiffusionFunctional.Cli;

/// <summary>
/// Shows <see cref="WorkProgress"/> reports of long work (demo, reproduce): live bars on a terminal (one per task, one
/// for evaluation), plain lines on standard output when redirected (training every <c>every</c> steps, other stages
/// when they start).
/// </summary>
internal static class WorkProgressDisplay
{
    /// <summary>Runs <paramref name="work"/> with the display that suits the console.</summary>
    public static T Run<T>(int every, Func<IProgress<WorkProgress>, T> work) => Messages.IsInteractive ? WithBars(work) : work(Lines(every));

    static IProgress<WorkProgress> Lines(int every)
    {
        var lastStage = "";
        return new InlineProgress<WorkProgress>(p =>
        {
            if (p.Stage == "train" && (p.Done % every == 0 || p.Done == p.Total))
                Console.Out.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{p.Task}: step {p.Done}/{p.Total} {p.Detail}"));
            else if (p.Stage != "train" && p.Stage + p.Detail != lastStage && p.Done == 0)
                Console.Out.WriteLine($"{p.Task}: {p.Stage} {p.Detail}");
            lastStage = p.Stage + p.Detail;
        });
    }

    static T WithBars<T>(Func<IProgress<WorkProgress>, T> work)
    {
        T result = default!;
        AnsiConsole.Progress()
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new RemainingTimeColumn(), new SpinnerColumn())
            .Start(ctx =>
            {
                var tasks = new Dictionary<string, ProgressTask>();
                ProgressTask? scoring = null;
                result = work(new InlineProgress<WorkProgress>(p =>
                {
                    var key = p.Task;
                    if (!tasks.TryGetValue(key, out var task)) tasks[key] = task = ctx.AddTask(Markup.Escape(key), maxValue: p.Stage == "train" ? p.Total : 1);
                    if (p.Stage == "train")
                    {
                        task.MaxValue = p.Total;
                        task.Value = p.Done;
                        task.Description = Markup.Escape($"{key}: {p.Detail}");
                        return;
                    }
                    scoring ??= ctx.AddTask("evaluation", maxValue: 1);
                    scoring.MaxValue = Math.Max(1, p.Total);
                    scoring.Value = p.Done;
                    scoring.Description = Markup.Escape($"{key}: {p.Stage} {p.Detail}");
                }));
            });
        return result;
    }
}
