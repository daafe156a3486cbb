using System.Globalization;
using DiffusionFunctional.Data;
using DiffusionFunctional.Evaluation;
using DiffusionFunctional.Experiments.Analysis;
using DiffusionFunctional.Experiments.Demo;
using DiffusionFunctional.Experiments.Grid;
using DiffusionFunctional.Training;

namespace DiffusionFunctional.Experiments.Reproduce;

/// <summary>
/// O2 in the grid: the specialists of each seed are a cell of their own (<c>ntg/seed-S</c>). They need no convergence
/// model, so shards train them beside the convergence cells instead of leaving the longest part of O2 to the single
/// process of the report step; the report step only scores the vanilla and ANT-UW models against them.
/// </summary>
public sealed partial class ReproduceRunner
{
    /// <summary>The specialists' cells, seed by seed (none without observations), counted after the convergence cells.</summary>
    public IReadOnlyList<string> SpecialistCells => options.Observations ? [.. Enumerable.Range(0, options.Seeds).Select(s => SpecialistCell(s))] : [];

    static string SpecialistCell(long seed) => string.Create(CultureInfo.InvariantCulture, $"ntg/seed-{seed}");

    string NtgDirectory(long seed) => Path.Combine(options.OutputDirectory, "ntg", string.Create(CultureInfo.InvariantCulture, $"seed-{seed}"));

    // Written by the cell's holder once every specialist of the seed reached its last step, so that the report step
    // knows without opening five trainers.
    string SpecialistsDone(long seed) => Path.Combine(NtgDirectory(seed), "specialists.done");

    /// <summary>The models O2 scores: vanilla and ANT-UW.</summary>
    IReadOnlyList<DemoMethod> NtgMethods => [options.Methods[0], options.Methods[2]];

    /// <summary>Whether a seed's specialists are trained, or no longer needed (both scores recorded, as in folders that
    /// finished O2 before the specialists were cells).</summary>
    bool SpecialistsFinished(long seed, ReproduceStore store) =>
        File.Exists(SpecialistsDone(seed)) || NtgMethods.All(m => store.Ntg.Any(n => n.Seed == seed && n.Method == m.Id));

    /// <summary>The specialists' cells not finished, in the grid's order.</summary>
    IReadOnlyList<string> MissingSpecialistCells(ReproduceStore store) =>
        [.. Enumerable.Range(0, SpecialistCells.Count).Where(s => !SpecialistsFinished(s, store)).Select(s => SpecialistCell(s))];

    /// <summary>Trains the chosen specialists' cells whose lock this process gets; one another process holds is left to it.</summary>
    void RunSpecialistCells(DemoRunner convergence, IReadOnlyList<string> chosen, ReproduceStore store, CancellationToken cancellation,
        IProgress<WorkProgress>? progress)
    {
        var seeds = Enumerable.Range(0, SpecialistCells.Count).Where(s => chosen.Contains(SpecialistCell(s)) && !SpecialistsFinished(s, store)).ToList();
        if (seeds.Count == 0) return;
        using var train = convergence.LoadSplit().Train;
        foreach (var seed in seeds)
        {
            cancellation.ThrowIfCancellationRequested();
            using var held = FileLock.TryAcquire(Path.Combine(NtgDirectory(seed), "cell.lock"));
            if (held is null)
            {
                log($"{SpecialistCell(seed)}: another process is running this cell; left to it");
                continue;
            }
            TrainSpecialists(seed, train, cancellation, progress);
            AtomicFile.WriteAllText(SpecialistsDone(seed), string.Create(CultureInfo.InvariantCulture, $"{options.Profile.NtgIntervals} specialists of {options.Profile.SpecialistSteps} steps\n"));
        }
    }

    /// <summary>Trains (or resumes, or finds finished) the specialists of <paramref name="seed"/>; their checkpoints in
    /// interval order.</summary>
    IReadOnlyList<string> TrainSpecialists(long seed, ImageDataset train, CancellationToken cancellation, IProgress<WorkProgress>? progress)
    {
        var profile = options.Profile;
        var convergenceProfile = options.RecipeInForce.Apply(profile.Convergence, profile.Timesteps);
        var trainerOptions = convergenceProfile.Training(seed, "vanilla") with { Steps = profile.SpecialistSteps, CheckpointEvery = profile.Convergence.CheckpointEvery, SampleCount = 0 };
        return NegativeTransferGap.TrainSpecialists(profile.Convergence.Model, options.Diffusion(), train, trainerOptions, profile.NtgIntervals, NtgDirectory(seed),
            cancellation, log, (name, m) => progress?.Report(new WorkProgress($"{name} seed {seed}", "train", m.Step, profile.SpecialistSteps, FormattableString.Invariant($"loss {m.MeanLoss:F4}"))));
    }

    /// <summary>O2: NTG of the vanilla and ANT-UW final models against the seed's specialists (trained by their cell).</summary>
    void MeasureNtg(DemoRunner convergence, long seed, ImageDataset train, ImageBatch real, Evaluator evaluator,
        ReproduceStore store, CancellationToken cancellation, IProgress<WorkProgress>? progress)
    {
        var shared = NtgMethods
            .Where(m => store.Ntg.All(n => n.Seed != seed || n.Method != m.Id) && File.Exists(FinalCheckpoint(convergence, m, seed)))
            .ToList();
        if (shared.Count == 0) return;
        var specialists = TrainSpecialists(seed, train, cancellation, progress);
        var sampler = options.RecipeInForce.Apply(options.Profile.Convergence, options.Profile.Timesteps).Sampler(DemoRunner.EvaluationNoiseSeed);
        foreach (var method in shared)
        {
            cancellation.ThrowIfCancellationRequested();
            var scores = NegativeTransferGap.Score(FinalCheckpoint(convergence, method, seed), specialists, real, evaluator, options.Profile.NtgSamples, sampler,
                Path.Combine(NtgDirectory(seed), "scores.json"), method.Id + "/", log);
            store.Add(new NtgRecord(seed, method.Id, scores.FdShared, [.. scores.Intervals.Select(i => i.Start)], [.. scores.Intervals.Select(i => i.End)],
                [.. scores.Intervals.Select(i => i.FdHybrid)], [.. scores.Intervals.Select(i => i.Gap)]));
        }
    }
}
