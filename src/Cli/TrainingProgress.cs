using System.Diagnostics;
using System.Globalization;
using DiffusionFunctional.Training;
using Spectre.Console;

namespace DiffusionFunctional.Cli;

/// <summary>Shows a trainer's progress: a live bar on a terminal, plain lines when output is redirected (CI, logs).</summary>
internal static class TrainingProgress
{
    /// <summary>Trains with a progress bar.</summary>
    public static TrainingOutcome WithBar(Trainer trainer, CancellationToken stop)
    {
        TrainingOutcome outcome = default;
        AnsiConsole.Progress()
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new RemainingTimeColumn(), new SpinnerColumn())
            .Start(ctx =>
            {
                var task = ctx.AddTask("training", maxValue: trainer.Options.Steps);
                task.Value = trainer.Step;
                var clock = Stopwatch.StartNew();
                var start = trainer.Step;
                outcome = trainer.Train(stop, new InlineProgress<StepMetrics>(m =>
                {
                    var rate = (m.Step - start) / Math.Max(1e-9, clock.Elapsed.TotalSeconds);
                    task.Description = Markup.Escape(string.Create(CultureInfo.InvariantCulture, $"step {m.Step} loss {m.MeanLoss:F4}{Objective(trainer, m)} {rate:F2} it/s"));
                    task.Value = m.Step;
                }));
            });
        return outcome;
    }

    /// <summary>Trains printing one line every <paramref name="every"/> steps to standard output.</summary>
    public static TrainingOutcome WithLines(Trainer trainer, CancellationToken stop, int every)
    {
        var clock = Stopwatch.StartNew();
        var start = trainer.Step;
        var total = trainer.Options.Steps;
        return trainer.Train(stop, new InlineProgress<StepMetrics>(m =>
        {
            if (m.Step % every != 0 && m.Step != total) return;
            var rate = (m.Step - start) / Math.Max(1e-9, clock.Elapsed.TotalSeconds);
            var eta = TimeSpan.FromSeconds((total - m.Step) / Math.Max(1e-9, rate));
            Console.Out.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"step {m.Step}/{total} loss {m.MeanLoss:F5}{Objective(trainer, m)} {rate:F2} it/s eta {eta:hh\\:mm\\:ss}"));
        }));
    }

    // "loss" is the plain batch mean, comparable across methods; a method's own objective (UW's can be negative) beside it.
    static string Objective(Trainer trainer, StepMetrics m) =>
        trainer.Weighting.Name == "vanilla" ? "" : string.Create(CultureInfo.InvariantCulture, $" ({trainer.Weighting.Name} objective {m.Loss:F5})");
}
