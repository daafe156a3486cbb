using DiffusionFunctional.Analysis;
using DiffusionFunctional.Core;
using DiffusionFunctional.Data;
using DiffusionFunctional.Diffusion;
using DiffusionFunctional.Evaluation;
using DiffusionFunctional.Experiments.Analysis;
using DiffusionFunctional.Experiments.Demo;
using DiffusionFunctional.Experiments.Grid;
using DiffusionFunctional.Training;
using static TorchSharp.torch;

namespace DiffusionFunctional.Experiments.Reproduce;

/// <summary>What <c>dfn reproduce</c> runs.</summary>
/// <param name="Profile">The budget.</param>
/// <param name="Seeds">Seeds 0 .. Seeds-1.</param>
/// <param name="OutputDirectory">Where everything goes; re-running with the same folder resumes.</param>
/// <param name="Data"><c>mnist</c>, <c>idx:PATH</c> or <c>folder:PATH</c>.</param>
/// <param name="Threads">libtorch CPU threads.</param>
/// <param name="Workers">Threads of the ResNet-18 (one OnnxRuntime session).</param>
/// <param name="ExtraMethods">Methods compared beside the recipe's four (<see cref="Recipe.Methods"/>, e.g.
/// <c>uw:snr:5+dtr</c>, <c>vanilla+logit-normal</c>): they train and are scored like the others and get the same
/// convergence verdicts; O1 and O2 stay on vanilla and ANT-UW.</param>
/// <param name="Recipe">Schedule, prediction, clusters, clipping, warm-up, learning rate, EMA and sampler (null: <see cref="Recipe.Ours"/>).</param>
/// <param name="Observations">Whether O1 and O2 are measured after the convergence runs (off: convergence only).</param>
/// <param name="Cells">Which convergence cells this process trains (null: every cell). A selection that does not write the
/// report (a shard, named cells) trains only (convergence cells and O2's specialists, <c>ntg/seed-S</c>); the report step
/// (<see cref="CellSelection.ReportOnly"/>) measures the floors, the mechanism, O1 and O2's scores once every cell is
/// finished, and writes the report.</param>
public sealed record ReproduceOptions(ReproduceProfile Profile, int Seeds, string OutputDirectory, string Data = "mnist", int Threads = 2, int Workers = 2,
    IReadOnlyList<DemoMethod>? ExtraMethods = null, Recipe? Recipe = null, bool Observations = true, CellSelection? Cells = null)
{
    /// <summary>The recipe in force.</summary>
    public Recipe RecipeInForce => Recipe ?? Reproduce.Recipe.Ours;

    /// <summary>The methods compared: vanilla, Min-SNR, ANT-UW, ANT-Nash on the recipe's clusters, then the extra ones
    /// (duplicates dropped).</summary>
    public IReadOnlyList<DemoMethod> Methods =>
        [.. DemoMethod.ParseList(RecipeInForce.Methods).Concat(ExtraMethods ?? []).DistinctBy(m => m.Id)];

    /// <summary>The diffusion every run and analysis uses: the recipe's schedule and prediction over the profile's T.</summary>
    public GaussianDiffusion Diffusion() => GaussianDiffusion.Create(RecipeInForce.Schedule, Profile.Timesteps, RecipeInForce.Prediction);
}

/// <summary>How a reproduce run ended.</summary>
public enum ReproduceOutcome
{
    /// <summary>Every part is done; the report is final.</summary>
    Completed,
    /// <summary>Stopped by cancellation; the report shows what is done, and a re-run continues.</summary>
    Interrupted,
    /// <summary>This process's cells are done (or it held none) but cells of the grid are unfinished
    /// (<see cref="ReproduceRunner.MissingCells"/>); the report step comes after them.</summary>
    CellsMissing,
}

/// <summary>
/// The paper's three claims on real data (issue 15): (1) convergence of vanilla, Min-SNR, ANT-UW and ANT-Nash through
/// the demo's runner (<see cref="DemoRunner"/>: same initial weights, data order and sampler noise per seed), with the
/// real-vs-real floor at the same sample counts; (2) observation O1, task affinity of the vanilla model's checkpoints
/// along training; (3) observation O2, the negative transfer gap of the vanilla and ANT-UW models against one set of
/// specialists per seed. Every part is resumable and nothing finished is redone; the report is rewritten at the end
/// (and on interruption) by <see cref="ReproduceReport"/>.
/// </summary>
public sealed partial class ReproduceRunner(ReproduceOptions options, Action<string>? log = null)
{
    readonly Action<string> log = log ?? (_ => { });

    /// <summary>The convergence experiment's own folder.</summary>
    public string ConvergenceDirectory => Path.Combine(options.OutputDirectory, "convergence");

    DemoRunner Convergence() => new(new DemoOptions
    {
        Profile = options.RecipeInForce.Apply(options.Profile.Convergence, options.Profile.Timesteps), Methods = options.Methods, Seeds = options.Seeds,
        OutputDirectory = ConvergenceDirectory, Data = options.Data, Threads = options.Threads, EvaluationWorkers = options.Workers,
        Timesteps = options.Profile.Timesteps, Schedule = options.RecipeInForce.Schedule, Prediction = options.RecipeInForce.Prediction,
        Recipe = options.RecipeInForce.Name, Cells = options.Cells ?? CellSelection.Every, OtherCells = SpecialistCells,
    }, log);

    /// <summary>After <see cref="Run"/>: the cells not finished (convergence cells, then the specialists' cells).</summary>
    public IReadOnlyList<string> MissingCells { get; private set; } = [];

    /// <summary>Runs (or resumes) every part, then writes report.md, report.json and the figures.</summary>
    public (ReproduceOutcome Outcome, ReproduceSummary Summary) Run(CancellationToken cancellation = default, IProgress<WorkProgress>? progress = null)
    {
        options.Profile.Validate();
        if (options.Seeds < 1) throw new BadInputException($"seeds must be at least 1, got {options.Seeds}");
        var convergence = Convergence(); // checks the methods and the named cells before anything is written
        OutputLocation.CheckDirectory(options.OutputDirectory);
        var store = new ReproduceStore(Path.Combine(options.OutputDirectory, "measurements.json"));
        var (outcome, demo) = convergence.Run(cancellation, progress);
        var selection = options.Cells ?? CellSelection.Every;
        if (outcome != DemoOutcome.Interrupted && !cancellation.IsCancellationRequested)
        {
            try { RunSpecialistCells(convergence, selection.ChooseOthers(convergence.Grid.Count, SpecialistCells), store, cancellation, progress); }
            catch (OperationCanceledException) { outcome = DemoOutcome.Interrupted; }
        }
        var missingSpecialists = MissingSpecialistCells(store);
        MissingCells = [.. convergence.MissingCells.Select(c => c.Id), .. missingSpecialists];
        if (outcome == DemoOutcome.Completed && missingSpecialists.Count > 0)
        {
            log($"{missingSpecialists.Count} of {SpecialistCells.Count} specialists' cells unfinished: {string.Join(", ", missingSpecialists)}");
            outcome = DemoOutcome.CellsMissing;
        }
        var reports = selection.WritesReport;
        if (outcome == DemoOutcome.Completed && reports && !cancellation.IsCancellationRequested)
        {
            try { RunObservations(convergence, store, cancellation, progress); }
            catch (OperationCanceledException) { outcome = DemoOutcome.Interrupted; }
        }
        var summary = ReproduceAnalysis.Summarise(options, demo, new DemoResultStore(convergence.ResultsPath).Records, store);
        if (reports) ReproduceReport.Write(summary, options, convergence);
        return (outcome switch
        {
            DemoOutcome.Completed => ReproduceOutcome.Completed,
            DemoOutcome.CellsMissing => ReproduceOutcome.CellsMissing,
            _ => ReproduceOutcome.Interrupted,
        }, summary);
    }

    void RunObservations(DemoRunner convergence, ReproduceStore store, CancellationToken cancellation, IProgress<WorkProgress>? progress)
    {
        var profile = options.Profile;
        var data = convergence.LoadSplit();
        using var train = data.Train;
        var diffusion = options.Diffusion();
        using var evaluator = new Evaluator(new EvaluationOptions(Workers: options.Workers));
        MeasureFloors(data, evaluator, store);
        MeasureMechanism(convergence, data, evaluator, store, cancellation);
        if (!options.Observations) return;
        for (long seed = 0; seed < options.Seeds; seed++)
        {
            cancellation.ThrowIfCancellationRequested();
            MeasureAffinity(convergence, seed, train, diffusion, store);
            MeasureNtg(convergence, seed, train, data.Real, evaluator, store, cancellation, progress);
        }
    }

    /// <summary>Real-vs-real FD and KID at every sample count the convergence runs scored: the floor a perfect model would reach.</summary>
    void MeasureFloors(DemoData data, Evaluator evaluator, ReproduceStore store)
    {
        var p = options.Profile.Convergence;
        foreach (var n in new[] { p.EvaluationSamples, p.SamplesAt(p.Steps), options.Profile.NtgSamples }.Distinct())
        {
            if (store.Floors.Any(f => f.Samples == n) || data.Spare is null || data.Spare.Count < n) continue;
            var scored = evaluator.Evaluate(data.Real, data.Spare.Take(n));
            log(FormattableString.Invariant($"real-vs-real floor at {n} images: FD-ResNet18 {scored.FdResNet18:F2}, KID {scored.Kid:G3}"));
            store.Add(new FloorRecord(n, scored.FdResNet18, scored.Kid, scored.KidStandardError));
        }
    }

    /// <summary>The mechanism behind the verdicts: every final model's held-out loss per interval (k of the recipe) and
    /// its FD under DDIM and DDPM (<see cref="ReproduceMechanism"/>), on the held-out images outside the reference set.</summary>
    void MeasureMechanism(DemoRunner convergence, DemoData data, Evaluator evaluator, ReproduceStore store, CancellationToken cancellation)
    {
        if (data.Spare is null) return;
        var samples = options.Profile.Convergence.EvaluationSamples;
        for (long seed = 0; seed < options.Seeds; seed++)
            foreach (var method in options.Methods)
            {
                cancellation.ThrowIfCancellationRequested();
                var checkpoint = FinalCheckpoint(convergence, method, seed);
                if (store.Mechanism.Any(m => m.Seed == seed && m.Method == method.Id) || !File.Exists(checkpoint)) continue;
                store.Add(ReproduceMechanism.Measure(checkpoint, seed, method.Id, data.Spare, data.Real, evaluator,
                    options.RecipeInForce.Clusters, samples, log));
            }
    }

    /// <summary>O1: affinity of the vanilla run's kept checkpoints (early, middle, final) on a fixed batch of training images.</summary>
    void MeasureAffinity(DemoRunner convergence, long seed, ImageDataset train, GaussianDiffusion diffusion, ReproduceStore store)
    {
        var profile = options.Profile;
        var vanilla = options.Methods[0];
        var order = DataStream.Permutation(train.Count, (ulong)seed, ulong.MaxValue - 1);
        using var index = tensor(order.Take(profile.AffinityImages).Select(i => (long)i).ToArray(), dtype: int64);
        using var images = train.Images.index_select(0, index);
        var folder = Path.Combine(options.OutputDirectory, "affinity");
        foreach (var step in profile.Convergence.KeptCheckpoints)
        {
            var checkpoint = convergence.KeptCheckpoint(vanilla, seed, step);
            if (store.Affinity.Any(a => a.Seed == seed && a.Step == step) || !File.Exists(checkpoint)) continue;
            using var model = CheckpointModel.Load(checkpoint, useEma: false);
            var measured = TaskAffinityAnalysis.Measure(model.Model, diffusion, images, new TaskAffinityOptions(profile.AffinityGroups, 0, seed));
            var csv = Path.Combine(folder, $"affinity-seed-{seed}-step-{step:D7}.csv");
            AtomicFile.WriteAllText(csv, AffinityMatrices.Format(measured.Cosines));
            var groupLogSnr = TaskAffinity.groupLogSnr(diffusion.Schedule, profile.AffinityGroups);
            var decay = ReproductionStatistics.AffinityDecay(measured.Cosines, groupLogSnr, profile.DecayBins);
            log(FormattableString.Invariant($"affinity of vanilla seed {seed} at step {step}: Spearman rho {decay.Correlation.Rho:F3} (p = {decay.Correlation.PValue:G3})"));
            store.Add(new AffinityRecord(seed, step, decay.Correlation.Rho, decay.Correlation.PValue,
                decay.Bins.Select(b => (b.Lower + b.Upper) / 2).ToArray(), decay.Bins.Select(b => b.MeanAffinity).ToArray(), csv));
        }
    }

    // The copy kept at the final step exists once the run got there; a diverged run has none and gets no NTG.
    string FinalCheckpoint(DemoRunner convergence, DemoMethod method, long seed) =>
        convergence.KeptCheckpoint(method, seed, options.Profile.Convergence.Steps);
}
