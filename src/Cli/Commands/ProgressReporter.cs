using System.Diagnostics;
using System.Globalization;
using DiffusionFunctional.Training;
using Spectre.Console;

namespace DiffusionFunctional.Cli.Commands;

/// <summary>Shows training progress: a live bar on a terminal, plain lines when output is redirected (CI, logs).</summary>
internal static class ProgressReporter
{
    public static bool IsInteractive =>
        !Console.IsErrorRedirected && !Console.IsOutputRedirected && AnsiConsole.Profile.Capabilities.Interactive;

    public static TrainingOutcome RunWithBar(Trainer trainer, CancellationToken cancellation)
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
                outcome = trainer.Train(cancellation, m =>
                {
                    var rate = (m.Step - start) / Math.Max(1e-9, clock.Elapsed.TotalSeconds);
                    task.Description = string.Create(CultureInfo.InvariantCulture, $"step {m.Step} loss {m.MeanLoss:F4}{Objective(trainer, m)} {rate:F2} it/s");
                    task.Value = m.Step;
                });
            });
        return outcome;
    }

    public static TrainingOutcome RunWithLines(Trainer trainer, CancellationToken cancellation, int every)
    {
        var clock = Stopwatch.StartNew();
        var start = trainer.Step;
        var total = trainer.Options.Steps;
        return trainer.Train(cancellation, m =>
        {
            if (m.Step % every != 0 && m.Step != total) return;
            var rate = (m.Step - start) / Math.Max(1e-9, clock.Elapsed.TotalSeconds);
            var eta = TimeSpan.FromSeconds((total - m.Step) / Math.Max(1e-9, rate));
            Console.Out.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"step {m.Step}/{total} loss {m.MeanLoss:F5}{Objective(trainer, m)} {rate:F2} it/s eta {eta:hh\\:mm\\:ss}"));
        });
    }

    // "loss" is the plain batch mean, comparable across methods; a method's own objective (UW's can be negative) beside it.
    static string Objective(Trainer trainer, StepMetrics m) =>
        trainer.Weighting.Name == "vanilla" ? "" : string.Create(CultureInfo.InvariantCulture, $" ({trainer.Weighting.Name} objective {m.Loss:F5})");
}
