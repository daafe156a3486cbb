using System.Diagnostics;
using DiffusionFunctional.Backend;
using DiffusionFunctional.Data;
using DiffusionFunctional.Diffusion;
using DiffusionFunctional.Models;
using DiffusionFunctional.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace DiffusionFunctional.Experiments.Bench;

/// <summary>One configuration of the training step to time: precision, memory format, libtorch threads.</summary>
/// <param name="Precision">"fp32" or "bf16" (<see cref="TrainerOptions.Precision"/>).</param>
/// <param name="ChannelsLast">Channels-last feature maps (<see cref="TrainerOptions.ChannelsLast"/>).</param>
/// <param name="Threads">libtorch CPU threads while this variant runs.</param>
public sealed record SpeedVariant(string Precision, bool ChannelsLast, int Threads)
{
    /// <summary>"fp32, NCHW, 2 threads".</summary>
    public override string ToString() => $"{Precision}, {(ChannelsLast ? "NHWC" : "NCHW")}, {Threads} thread{(Threads == 1 ? "" : "s")}";
}

/// <summary>
/// Times several <see cref="SpeedVariant"/>s of the same training step in one process, interleaved round by round
/// (each round times, for every variant in turn, libtorch's GEMM in the variant's precision and threads, its training
/// steps and its sampling), so that on a shared machine the load falls on all of them alike and
/// their ratios mean something even when the absolute figures do not (docs/benchmarks.md, "Training speed"). Each
/// variant is a real <see cref="Trainer"/> (same seed, data and model shape) whose <see cref="Trainer.Profile"/> splits
/// the step into data, forward, backward, optimiser, EMA and other.
/// </summary>
public static class TrainingSpeedBenchmark
{
    /// <summary>
    /// Measures every variant; the reports come in the variants' order, ratios against the first. A
    /// <paramref name="companion"/> (the PyTorch peer, <see cref="PeerBenchmark"/>) sees the trainers before the warm-up
    /// and takes its turn after each variant's turn in each round, so that it is interleaved with them.
    /// </summary>
    public static IReadOnlyList<ThroughputReport> Run(ThroughputOptions o, IReadOnlyList<SpeedVariant> variants, int rounds,
                                                      Action<string>? log = null, ISpeedCompanion? companion = null)
    {
        if (o.TrainSteps < 1 || o.BatchSize < 1 || o.SampleBatch < 1 || o.SampleSteps < 1 || rounds < 1)
            throw new BadInputException("steps, rounds and batch sizes must be positive");
        if (variants.Count == 0) throw new BadInputException("nothing to measure: no variant");
        var device = TorchBackend.Resolve(o.Device);
        foreach (var v in variants)
        {
            TorchBackend.ValidateThreads(v.Threads);
            Bf16Support.Require(v.Precision, device);
        }
        var config = Denoisers.Named(o.Model) with { Routing = o.Routing };

        random.manual_seed(0);
        using var images = rand([Math.Max(o.BatchSize * 2, 128), config.ImageChannels, config.ImageSize, config.ImageSize]).Times(2).Minus(1);
        using var data = new ImageDataset(images.alias(), "synthetic");
        var trainers = variants.Select(v => Trainer.Create(config, GaussianDiffusion.Create(), data, new TrainerOptions
        {
            Steps = int.MaxValue, BatchSize = o.BatchSize, Device = o.Device, CheckpointEvery = 0, SampleCount = 0,
            Precision = v.Precision, ChannelsLast = v.ChannelsLast,
        })).ToArray();
        try
        {
            var trainSeconds = new double[variants.Count];
            var sampleSeconds = new double[variants.Count];
            var gemm = new double[variants.Count];
            companion?.Prepare(trainers);
            for (var i = 0; i < variants.Count; i++) WithThreads(variants[i].Threads, () => trainers[i].TrainUntil(o.WarmupSteps));
            foreach (var t in trainers) t.Profile.Reset();
            for (var r = 0; r < rounds; r++)
                for (var i = 0; i < variants.Count; i++)
                {
                    var trainer = trainers[i];
                    // The GEMM reference is timed in the same window as the steps it is compared with.
                    gemm[i] += WithThreads(variants[i].Threads, () => ThroughputBenchmark.GemmGflops(o.GemmSize, device, DType(variants[i].Precision))) / rounds;
                    var seconds = Timed(variants[i].Threads, device, () => trainer.TrainUntil(trainer.Step + o.TrainSteps));
                    trainSeconds[i] += seconds;
                    sampleSeconds[i] += Timed(variants[i].Threads, device, () => trainer.Sample(o.SampleBatch, new SamplerOptions { Steps = o.SampleSteps }).Dispose());
                    log?.Invoke($"round {r + 1}, {variants[i]}: {o.BatchSize * o.TrainSteps * (r + 1) / trainSeconds[i]:F1} img/s so far, GEMM {gemm[i] * rounds / (r + 1):F1} GFLOP/s");
                    companion?.AfterTraining(r, i, seconds);
                }
            var peak = ThroughputBenchmark.PeakResidentMegabytes();
            var reports = variants.Select((v, i) => Report(o, config, v, trainers[i], trainSeconds[i] / (rounds * o.TrainSteps),
                o.SampleBatch * o.SampleSteps * rounds / sampleSeconds[i], gemm[i], peak, rounds)).ToArray();
            return [.. reports.Select(r => r with { RatioToFirst = r.TrainImagesPerSecond / reports[0].TrainImagesPerSecond })];
        }
        finally
        {
            foreach (var t in trainers) t.Dispose();
        }
    }

    private static ThroughputReport Report(ThroughputOptions o, DenoiserConfig config, SpeedVariant v, Trainer trainer, double stepSeconds,
                                           double sampleImageSteps, double gemm, double peak, int rounds)
    {
        var forward = config.ForwardFlopsPerImage() / 1e9;
        var trainImages = o.BatchSize / stepSeconds;
        var achieved = trainImages * 3 * forward;
        var phases = trainer.Profile.PerStep();
        return new ThroughputReport(o.Model, config.ImageSize, config.ImageChannels, trainer.Model.ParameterCount, o.BatchSize,
            v.Threads, trainer.Device.type.ToString(), trainImages, stepSeconds, sampleImageSteps, sampleImageSteps / 50, forward, 3 * forward,
            achieved, gemm, achieved / gemm, peak)
        {
            Precision = v.Precision, ChannelsLast = v.ChannelsLast, Rounds = rounds,
            DataSeconds = phases[StepPhase.Data], ForwardSeconds = phases[StepPhase.Forward], BackwardSeconds = phases[StepPhase.Backward],
            OptimiserSeconds = phases[StepPhase.Optimiser], EmaSeconds = phases[StepPhase.Ema], OtherSeconds = phases[StepPhase.Other],
        };
    }

    private static ScalarType DType(string precision) =>
        TrainingPrecision.Parse(precision) == TrainingPrecision.Bf16 ? ScalarType.BFloat16 : ScalarType.Float32;

    private static T WithThreads<T>(int threads, Func<T> work)
    {
        set_num_threads(threads);
        return work();
    }

    private static void WithThreads(int threads, Action work)
    {
        set_num_threads(threads);
        work();
    }

    private static double Timed(int threads, Device device, Action work)
    {
        set_num_threads(threads);
        var clock = Stopwatch.StartNew();
        work();
        if (device.type == DeviceType.CUDA) cuda.synchronize();
        return clock.Elapsed.TotalSeconds;
    }
}

/// <summary>Something timed alongside the variants of <see cref="TrainingSpeedBenchmark"/>, in the same rounds.</summary>
public interface ISpeedCompanion
{
    /// <summary>Called once with every variant's trainer (in the variants' order), before any step: initial weights.</summary>
    void Prepare(IReadOnlyList<Trainer> trainers);

    /// <summary>Called when variant <paramref name="variant"/> has had its turn in round <paramref name="round"/> (0-based):
    /// GEMM, timed steps (which took <paramref name="trainSeconds"/>) and sampling.</summary>
    void AfterTraining(int round, int variant, double trainSeconds);
}
