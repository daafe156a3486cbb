using DiffusionFunctional.Data;
using DiffusionFunctional.Diffusion;
using DiffusionFunctional.Evaluation;

namespace DiffusionFunctional.Experiments.Demo;

public sealed partial class DemoRunner
{
    /// <summary>
    /// Results written before <see cref="DemoRecord.FdOfFirst"/> existed have a final point scored on more images than
    /// the curve and nothing to compare it with at the curve's count. When the run's checkpoint is still at that step,
    /// its first <see cref="DemoProfile.EvaluationSamples"/> images are drawn again (same sampler noise) and scored, so
    /// an older run gains the comparable value without training anything again.
    /// </summary>
    void ScoreFirstSamplesOfOlderRecords(DemoResultStore store, IReadOnlyList<(DemoMethod Method, long Seed)> held, GaussianDiffusion diffusion,
        ImageDataset train, ImageBatch real, Evaluator evaluator, CancellationToken cancellation)
    {
        var n = options.Profile.EvaluationSamples;
        var older = store.Records.Where(r => !r.Diverged && r.Samples > n && double.IsNaN(r.FdOfFirst) && r.Seed < options.Seeds).ToList();
        foreach (var record in older)
        {
            if (cancellation.IsCancellationRequested) return;
            // Only a cell this process holds: its checkpoint is not being written by another.
            if (held.FirstOrDefault(c => c.Method.Id == record.Method && c.Seed == record.Seed).Method is not { } method) continue;
            using var trainer = OpenTrainer(method, record.Seed, diffusion, train);
            if (!trainer.TryResume() || trainer.Step != record.Step)
            {
                log($"{method} seed {record.Seed}: no checkpoint at step {record.Step}, so its FD on the first {n} samples stays unmeasured");
                continue;
            }
            using var images = SampleInChunks(trainer, n);
            var fd = FdOfFirst(images, n, real, evaluator);
            log(FormattableString.Invariant($"{method} seed {record.Seed} step {record.Step}: FD-ResNet18 of the first {n} samples {fd:F2} (scored for a result written before it was recorded)"));
            store.Add(record with { FdOfFirst = fd });
        }
    }
}
