using DiffusionFunctional.Experiments.Grid;
using System.Diagnostics;
using System.Text.Json.Nodes;
using DiffusionFunctional.Backend;
using DiffusionFunctional.Data;
using DiffusionFunctional.Diffusion;
using DiffusionFunctional.Evaluation;
using DiffusionFunctional.Imaging;
using DiffusionFunctional.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace DiffusionFunctional.Experiments.Demo;

/// <summary>
/// The main job: trains every method of <see cref="DemoOptions.Methods"/> under one profile, model and seed,
/// scores FD-ResNet18 of EMA samples at the profile's evaluation points, and writes the report
/// (<see cref="DemoReport"/>). Resumable: results go to <c>results.jsonl</c> as they come, each run keeps its
/// trainer checkpoint, and a re-run continues where the last stopped.
/// </summary>
public sealed partial class DemoRunner
{
    /// <summary>Seed of the evaluation sampler's noise: the same for every method, seed and step, so FD differences
    /// come from the models rather than from the draw.</summary>
    public const long EvaluationNoiseSeed = 777;

    /// <summary>Sample grids draw each generated image at least this many pixels wide.</summary>
    public const int GridImageWidth = 64;

    readonly DemoOptions options;
    readonly Action<string> log;

    /// <summary>Checks the options (profile, threads, seeds, methods and their clusters); <paramref name="log"/> gets one line per event.</summary>
    public DemoRunner(DemoOptions options, Action<string>? log = null)
    {
        this.options = options;
        this.log = log ?? (_ => { });
        options.Profile.Validate();
        if (options.Threads < 1) throw new BadInputException($"threads must be positive, got {options.Threads}");
        if (options.Seeds < 1) throw new BadInputException($"seeds must be at least 1, got {options.Seeds}");
        if (options.Methods.Count == 0) throw new BadInputException("no methods to run");
        foreach (var m in options.Methods) TrainerOptions.CheckClusterCount(m.Clusters, options.Profile.BatchSize, options.Timesteps);
        options.Cells.Choose(Grid, options.OtherCells); // a named cell outside the grid is refused here, before anything is written
    }

    /// <summary>Where the JSON-lines results are.</summary>
    public string ResultsPath => Path.Combine(options.OutputDirectory, "results.jsonl");

    /// <summary>The run folder of a method and seed.</summary>
    public string RunDirectory(DemoMethod method, long seed) => Path.Combine(options.OutputDirectory, "runs", method.Id, $"seed-{seed}");

    /// <summary>The copy of a run's checkpoint kept at <paramref name="step"/> (see <see cref="DemoProfile.KeptCheckpoints"/>).</summary>
    public string KeptCheckpoint(DemoMethod method, long seed, long step) => Path.Combine(RunDirectory(method, seed), $"checkpoint-step-{step:D7}.dfn");

    /// <summary>Runs (or resumes) the cells of <see cref="DemoOptions.Cells"/> (every cell by default), then writes the
    /// report when the selection does. Cancellation finishes the step in progress, writes a checkpoint and returns
    /// <see cref="DemoOutcome.Interrupted"/> (with the report of what is done, for a selection that writes it).</summary>
    public (DemoOutcome Outcome, DemoSummary Summary) Run(CancellationToken cancellation = default, IProgress<WorkProgress>? progress = null)
    {
        var profile = options.Profile;
        var chosen = options.Cells.Choose(Grid, options.OtherCells);
        Directory.CreateDirectory(options.OutputDirectory);
        CheckOrWriteManifest(write: false);
        TorchBackend.SetThreads(options.Threads);
        TorchBackend.Resolve(options.Device);
        var split = LoadSplit();
        var (train, real) = (split.Train, split.Real);
        // Written once the data loaded: a demo refused for its data leaves nothing behind.
        CheckOrWriteManifest(write: true);
        var store = new DemoResultStore(ResultsPath);

        using (var held = HoldCells(chosen))
        using (train)
        using (var evaluator = new Evaluator(new EvaluationOptions(Workers: options.EvaluationWorkers)))
        {
            if (options.Cells.WritesReport) realFloor = RealFloor(split.Spare, real, evaluator);
            NativeMemory.ReturnFreePages(); // what reading the data and loading the ResNet-18 left, before training's peak
            var diffusion = GaussianDiffusion.Create(options.Schedule, options.Timesteps, options.Prediction);
            ScoreFirstSamplesOfOlderRecords(store, held.Cells, diffusion, train, real, evaluator, cancellation);
            // Round-robin over evaluation points: every cell reaches step s before any goes past it, so a demo
            // stopped early still compares all methods at the same budget.
            foreach (var evaluationStep in profile.EvaluationSteps)
            foreach (var (method, seed) in held.Cells)
            {
                if (IsFinished(store, method, seed) || store.Find(method.Id, seed, evaluationStep) is not null) continue;
                var outcome = TrainAndEvaluate(method, seed, evaluationStep, diffusion, train, real, evaluator, store, cancellation, progress);
                if (outcome == DemoOutcome.Interrupted)
                    return (DemoOutcome.Interrupted, Summarise(store, write: options.Cells.WritesReport));
            }
        }
        return Finish(store);
    }

    DemoSummary Summarise(DemoResultStore store, bool write)
    {
        var summary = DemoReport.Summarise(store.Records, options.Methods, options.Profile, options.Seeds) with { RealFloor = realFloor };
        if (!write) return summary;
        var grids = options.Methods.ToDictionary(m => m.Id, m => Path.Combine(RunDirectory(m, 0), "samples.png"));
        DemoReport.Write(summary, options, grids);
        return summary;
    }

    double realFloor = double.NaN;

    /// <summary>
    /// FD of the reference images against as many other held-out digits as the final evaluation samples: what a
    /// perfect model would score. Measured once and kept in <c>floor.json</c>; NaN when too few digits are spare.
    /// </summary>
    double RealFloor(ImageBatch? spare, ImageBatch real, Evaluator evaluator)
    {
        var n = options.Profile.SamplesAt(options.Profile.Steps);
        var path = Path.Combine(options.OutputDirectory, "floor.json");
        if (File.Exists(path) && JsonNode.Parse(File.ReadAllText(path)) is JsonObject kept
            && kept["samples"]?.GetValue<int>() == n && kept["fd_resnet18"] is JsonValue fd)
            return fd.GetValue<double>();
        if (spare is null || spare.Count < n) return double.NaN;
        var floor = evaluator.Evaluate(real, spare.Take(n)).FdResNet18;
        AtomicFile.WriteAllText(path, new JsonObject { ["samples"] = n, ["fd_resnet18"] = floor }.ToJsonString() + "\n");
        log(FormattableString.Invariant($"real-vs-real floor at {n} images: FD-ResNet18 {floor:F2}"));
        return floor;
    }

    bool IsFinished(DemoResultStore store, DemoMethod method, long seed) =>
        store.Divergence(method.Id, seed) is not null || store.Find(method.Id, seed, options.Profile.Steps) is not null;

    /// <summary>Trains one method and seed from its checkpoint up to <paramref name="evaluationStep"/> and scores it there.</summary>
    DemoOutcome TrainAndEvaluate(DemoMethod method, long seed, int evaluationStep, GaussianDiffusion diffusion, ImageDataset train, ImageBatch real,
        Evaluator evaluator, DemoResultStore store, CancellationToken cancellation, IProgress<WorkProgress>? progress)
    {
        var profile = options.Profile;
        using var trainer = OpenTrainer(method, seed, diffusion, train);
        trainer.Warning += line => log($"warning: {line}");
        if (!trainer.TryResume()) log($"{method} seed {seed}: {trainer.Plan}, {trainer.Model.ParameterCount:N0} parameters");
        if (trainer.Step > evaluationStep) return DemoOutcome.Completed; // cannot go back; only if results.jsonl was edited

        // The trainer's guard (a plain loss 20x its running median, or anything not finite) ends the run before a bad
        // update: divergence is a result to report, not a crash.
        var stepsRun = 0;
        var trainingSeconds = 0.0;
        var task = $"{method} seed {seed}";
        var outcome = trainer.TrainUntil(evaluationStep, cancellation, new InlineProgress<StepMetrics>(m =>
        {
            stepsRun++;
            trainingSeconds += m.Seconds;
            progress?.Report(new WorkProgress(task, "train", m.Step, profile.Steps, FormattableString.Invariant($"loss {m.MeanLoss:F4}")));
        }));
        if (outcome == TrainingOutcome.Interrupted) return DemoOutcome.Interrupted;
        if (outcome == TrainingOutcome.Diverged)
        {
            RecordDivergence(store, method, seed, trainer.Divergence!.Step, trainer.Divergence.Reason);
            return DemoOutcome.Completed;
        }
        var stepSeconds = stepsRun > 0 ? trainingSeconds / stepsRun : double.NaN;
        // The copy comes before the record: a run stopped in between redoes the evaluation rather than lose the copy.
        if (profile.KeptCheckpoints.Contains(evaluationStep))
            AtomicFile.Write(KeptCheckpoint(method, seed, evaluationStep), temporary => File.Copy(trainer.CheckpointPath!, temporary, overwrite: true));
        store.Add(Evaluate(trainer, method, seed, evaluationStep, stepSeconds, real, evaluator, progress));
        return DemoOutcome.Completed;
    }

    /// <summary>The trainer of a method and seed, not yet resumed; the same seed gives every method the same initial
    /// weights, so they differ only in weighting and clusters.</summary>
    Trainer OpenTrainer(DemoMethod method, long seed, GaussianDiffusion diffusion, ImageDataset train)
    {
        var profile = options.Profile;
        var trainerOptions = profile.Training(seed, method.Weighting) with
        {
            Plan = method.Plan(options.Schedule, options.Timesteps), Weighting = method.Weighting, TimestepDensity = method.Density,
            AnnealToUniformSteps = method.Anneal,
            OutputDirectory = RunDirectory(method, seed), CheckpointEvery = profile.CheckpointEvery, SampleCount = 0, Device = options.Device,
            Sampler = profile.Sampler(EvaluationNoiseSeed),
        };
        return Trainer.Create(method.Model(profile.Model, options.Timesteps), diffusion, train, trainerOptions);
    }

    void RecordDivergence(DemoResultStore store, DemoMethod method, long seed, long step, string reason)
    {
        log($"{method} seed {seed}: diverged ({reason}); recorded as a result");
        store.Add(new DemoRecord(method.Id, seed, step, double.NaN, double.NaN, double.NaN, double.NaN, 0, Diverged: true));
    }

    DemoRecord Evaluate(Trainer trainer, DemoMethod method, long seed, long step, double stepSeconds, ImageBatch real,
        Evaluator evaluator, IProgress<WorkProgress>? progress)
    {
        var profile = options.Profile;
        var clock = Stopwatch.StartNew();
        var task = $"{method} seed {seed}";
        var samples = profile.SamplesAt(step);
        progress?.Report(new WorkProgress(task, "sample", 0, samples, $"step {step}"));
        NativeMemory.ReturnFreePages(); // training's freed activations, so that sampling's do not add to them
        using var images = SampleInChunks(trainer, samples);
        if (step == profile.Steps)
        {
            using var grid = images[..Math.Min(profile.GridSamples, samples)];
            ImageWriter.SaveGrid(grid, Path.Combine(RunDirectory(method, seed), "samples.png"), minImageWidth: GridImageWidth);
        }
        var fake = ImageBatch.FromSigned(images);
        var scored = evaluator.Evaluate(real, fake, new InlineProgress<WorkProgress>(p =>
            progress?.Report(p with { Task = task, Stage = "score", Detail = p.Stage })));
        var fdOfFirst = samples > profile.EvaluationSamples ? FdOfFirst(images, profile.EvaluationSamples, real, evaluator) : double.NaN;
        var seconds = clock.Elapsed.TotalSeconds;
        log(FormattableString.Invariant($"{method} seed {seed} step {step}: FD-ResNet18 {scored.FdResNet18:F2}, KID {scored.Kid:G3} (precision {scored.Precision:F3}, recall {scored.Recall:F3}; {samples} samples; {StepTime(stepSeconds)}, evaluation {seconds:F0} s)"));
        if (double.IsFinite(fdOfFirst)) log(FormattableString.Invariant($"{method} seed {seed} step {step}: FD-ResNet18 of the first {profile.EvaluationSamples} samples {fdOfFirst:F2}"));
        return new DemoRecord(method.Id, seed, step, scored.FdResNet18, scored.Precision, scored.Recall, stepSeconds, seconds,
            Kid: scored.Kid, KidStandardError: scored.KidStandardError, Samples: samples, FdOfFirst: fdOfFirst);
    }

    // A cell resumed at its evaluation step (stopped between its checkpoint and its record) trains no step here.
    static string StepTime(double stepSeconds) =>
        double.IsFinite(stepSeconds) ? FormattableString.Invariant($"{stepSeconds:F3} s/step") : "no step trained in this run";

    // The first n images come from the same sampler noise as every n-image point (SampleInChunks), so their FD lies on
    // the curve; scoring them again costs n ResNet-18 passes, a few seconds next to sampling the rest.
    static double FdOfFirst(Tensor images, int n, ImageBatch real, Evaluator evaluator)
    {
        using var first = images[..n];
        return evaluator.Evaluate(real, ImageBatch.FromSigned(first)).FdResNet18;
    }

    /// <summary>EMA samples in chunks (bounded memory); chunk i uses noise seed base + i, so the set is the same every time.</summary>
    static Tensor SampleInChunks(Trainer trainer, int count)
    {
        const int chunk = 250;
        var parts = new List<Tensor>();
        try
        {
            for (var start = 0; start < count; start += chunk)
            {
                var sampler = trainer.Options.Sampler with { Seed = EvaluationNoiseSeed + start / chunk };
                using var scope = NewDisposeScope();
                using (no_grad()) parts.Add(trainer.Sample(Math.Min(chunk, count - start), sampler).cpu().MoveToOuterDisposeScope());
            }
            return cat(parts, 0);
        }
        finally
        {
            foreach (var p in parts) p.Dispose();
        }
    }
}
