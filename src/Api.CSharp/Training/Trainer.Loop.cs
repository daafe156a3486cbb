using DiffusionFunctional.Timesteps;
using System.Diagnostics;
using DiffusionFunctional.Weighting;
using TorchSharp;
using static TorchSharp.torch;

namespace DiffusionFunctional.Training;

public sealed partial class Trainer
{
    /// <summary>Trains until <see cref="TrainerOptions.Steps"/> are done: <see cref="TrainUntil"/> with the run's length.</summary>
    public TrainingOutcome Train(CancellationToken cancellation = default, IProgress<StepMetrics>? progress = null) =>
        TrainUntil(Options.Steps, cancellation, progress);

    /// <summary>A NaN is either the method's or the machine's: say which kernels computed it.</summary>
    private static string KernelsNote() =>
        Backend.ConvolutionKernels.Current is { } verdict ? $"; convolution kernels {verdict.Configuration}, checked {(verdict.Fp32Correct ? "correct" : "WRONG")}" : "";

    /// <summary>What this process trains on, for the metrics file's header: the library version, the convolution
    /// kernels in force, the CPU, libtorch's threads, the device and the precision.</summary>
    private System.Text.Json.Nodes.JsonObject RunHeader() => new()
    {
        ["library"] = typeof(Trainer).Assembly.GetCustomAttributes(typeof(System.Reflection.AssemblyInformationalVersionAttribute), false)
            .OfType<System.Reflection.AssemblyInformationalVersionAttribute>().FirstOrDefault()?.InformationalVersion,
        ["kernels"] = Backend.ConvolutionKernels.Ensure().Summary,
        ["cpu"] = Backend.KernelVerdictCache.CpuModelName(),
        ["threads"] = get_num_threads(),
        ["device"] = Device.ToString(),
        ["precision"] = Options.Precision,
    };

    /// <summary>
    /// Runs steps until <see cref="Step"/> reaches <paramref name="targetStep"/> (at most <see cref="TrainerOptions.Steps"/>),
    /// reporting each step's metrics to <paramref name="progress"/> (on this thread) and writing checkpoints every
    /// <see cref="TrainerOptions.CheckpointEvery"/> steps and at the target (with an output directory), and the final
    /// sample grid when the run's last step is done. When <paramref name="cancellation"/> fires, the step in progress
    /// finishes, a checkpoint is written and the outcome is <see cref="TrainingOutcome.Interrupted"/>. A diverging
    /// step (see <see cref="TrainStep"/>) ends with <see cref="TrainingOutcome.Diverged"/>, <see cref="Divergence"/>
    /// set and no checkpoint written, so the last good one stays on disk; metrics.jsonl gets one line saying so.
    /// </summary>
    public TrainingOutcome TrainUntil(long targetStep, CancellationToken cancellation = default, IProgress<StepMetrics>? progress = null)
    {
        if (targetStep < 0) throw new ArgumentOutOfRangeException(nameof(targetStep), targetStep, "the target step must not be negative");
        var target = Math.Min(targetStep, Options.Steps);
        if (Step >= target) return TrainingOutcome.Completed;
        metrics ??= Options.OutputDirectory is { } dir ? MetricsLog.Open(Path.Combine(dir, "metrics.jsonl"), Step, RunHeader(), line => Warning?.Invoke(line)) : null;
        while (Step < target)
        {
            if (cancellation.IsCancellationRequested)
            {
                SaveCheckpointIfConfigured();
                return TrainingOutcome.Interrupted;
            }
            StepMetrics m;
            try { m = TrainStep(); }
            catch (TrainingDivergedException e)
            {
                metrics?.WriteDivergence(e.Divergence);
                return TrainingOutcome.Diverged;
            }
            metrics?.Write(m);
            progress?.Report(m);
            if (Step == target) break;
            if (Options.CheckpointEvery > 0 && Step % Options.CheckpointEvery == 0) SaveCheckpointIfConfigured();
            if (Options.SampleEvery > 0 && Step % Options.SampleEvery == 0) SaveSampleGrid();
        }
        SaveCheckpointIfConfigured();
        if (Step == Options.Steps) SaveSampleGrid();
        return TrainingOutcome.Completed;
    }

    /// <summary>
    /// One optimisation step; returns what it measured. Throws <see cref="TrainingDivergedException"/> (and sets
    /// <see cref="Divergence"/>) before touching the weights when the batch's plain loss is not finite or jumps past
    /// <see cref="TrainerOptions.DivergenceFactor"/> times its running median, or the method's loss or the gradient
    /// norm is not finite. A rejected step leaves nothing advanced (data position, random generators, weighting,
    /// sampler and guard state are restored), so a caller that catches the exception stands at the last good step.
    /// </summary>
    public StepMetrics TrainStep()
    {
        var clock = Profile.Start(Device);
        var before = TakeSnapshot();
        clock.Mark(StepPhase.Other);
        try { return TakeStep(ref clock); }
        catch (TrainingDivergedException)
        {
            Restore(before);
            throw;
        }
    }

    private StepMetrics TakeStep(ref StepProfile.Clock clock)
    {
        var started = Stopwatch.StartNew();
        using var scope = NewDisposeScope();
        var batchSize = Options.BatchSize;
        var x0 = stream.NextBatch(batchSize, Device);
        var draw = TimestepDistribution.Sample(batchSize, Plan, generator, Device);
        var noise = randn(x0.shape, dtype: float32, generator: generator).to(Device);
        optimizer.ZeroGrad();
        bf16?.LoadMasterWeights();
        clock.Mark(StepPhase.Data);

        var perSample = Diffusion.PerSampleLoss(bf16?.ForwardModel ?? Model, x0, draw.Timesteps, noise);
        clock.Mark(StepPhase.Forward);
        // An importance-weighted density hands every weighting the losses uniform sampling would have given on average.
        var losses = TimestepDistribution is IImportanceWeightedTimesteps { ImportanceWeighted: true } weighted
            ? perSample * weighted.ImportanceWeights(draw.Timesteps, Plan).to(perSample.dtype)
            : perSample;
        var batch = new WeightingBatch(losses, draw.Timesteps, draw.Clusters, Plan, Step, snrTable.index_select(0, draw.Timesteps));
        // One read from the device for the guard (the plain mean loss, needed before the update) and the metrics.
        var (meanLoss, clusterLosses) = ReadLosses(perSample, batch);
        if (guard.Observe(Step + 1, meanLoss) is { } jump) Diverge(jump);
        clock.Mark(StepPhase.Other);

        var loss = Weighting.Backward(batch, bf16?.Parameters ?? modelParameters);
        bf16?.CopyGradientsToMaster();
        clock.Mark(StepPhase.Backward);
        if (!double.IsFinite(loss)) Diverge(new Divergence(Step + 1, loss, $"the {Weighting.Name} loss is {loss}{KernelsNote()}"));

        var gradientNorm = nn.utils.clip_grad_norm_(modelParameters, Options.GradientClipNorm ?? double.PositiveInfinity);
        // A finite loss can still overflow the gradient; stepping on it would poison every weight.
        if (!double.IsFinite(gradientNorm)) Diverge(new Divergence(Step + 1, meanLoss, $"the gradient norm is {gradientNorm}{KernelsNote()}"));
        var warmup = Options.WarmupSteps > 0 ? Math.Min(1.0, (Step + 1.0) / Options.WarmupSteps) : 1.0;
        var groupIndex = 0;
        foreach (var group in optimizer.Optimizer.ParamGroups) group.LearningRate = baseLearningRates[groupIndex++] * warmup;
        optimizer.Step();
        clock.Mark(StepPhase.Optimiser);
        Ema.Update(Options.EmaWarmup ? ExponentialMovingAverage.WarmupDecay(Options.EmaDecay, Step) : Options.EmaDecay);
        clock.Mark(StepPhase.Ema);
        using (no_grad()) TimestepDistribution.Observe(draw, perSample.detach());
        Step++;
        clock.Mark(StepPhase.Other);
        clock.Finish();
        return new StepMetrics(Step, loss, meanLoss, Options.LearningRate * warmup, gradientNorm, clusterLosses, started.Elapsed.TotalSeconds,
            (Weighting as IReportsClusterWeights)?.LastClusterWeights);
    }

    /// <summary>The batch's plain mean loss and its per-cluster mean losses, fetched from the device in one read.</summary>
    private static (double Mean, double[] Clusters) ReadLosses(Tensor perSample, WeightingBatch batch)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var detached = perSample.detach();
        var both = cat([detached.mean().unsqueeze(0), batch.ClusterLosses()], 0).to_type(float64).cpu();
        var values = both.data<double>().ToArray();
        return (values[0], values[1..]);
    }

    private void Diverge(Divergence divergence)
    {
        Divergence = divergence;
        throw new TrainingDivergedException(divergence);
    }

    /// <summary>Everything a step advances before the guard can reject it, captured to undo a rejected step.</summary>
    private sealed record StepSnapshot(long DataPosition, byte[] Generator, byte[] GlobalGenerator, byte[] Weighting, byte[] Sampler, byte[] Guard);

    private StepSnapshot TakeSnapshot()
    {
        using var generatorState = generator.get_state();
        using var globalState = random.get_rng_state();
        return new StepSnapshot(stream.Position, generatorState.data<byte>().ToArray(), globalState.data<byte>().ToArray(),
            Serialise(Weighting.Save), Serialise(TimestepDistribution.Save), Serialise(guard.Save));
    }

    private void Restore(StepSnapshot s)
    {
        stream.Position = s.DataPosition;
        using (var state = tensor(s.Generator, dtype: uint8)) generator.set_state(state);
        using (var state = tensor(s.GlobalGenerator, dtype: uint8)) random.set_rng_state(state);
        Deserialise(s.Weighting, Weighting.Load);
        Deserialise(s.Sampler, TimestepDistribution.Load);
        Deserialise(s.Guard, guard.Load);
        optimizer.ZeroGrad();
    }

    private static byte[] Serialise(Action<BinaryWriter> save)
    {
        using var memory = new MemoryStream();
        using (var writer = new BinaryWriter(memory, System.Text.Encoding.UTF8, leaveOpen: true)) save(writer);
        return memory.ToArray();
    }

    private static void Deserialise(byte[] bytes, Action<BinaryReader> load)
    {
        using var reader = new BinaryReader(new MemoryStream(bytes, writable: false));
        load(reader);
    }
}
