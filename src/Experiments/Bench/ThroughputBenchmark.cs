using System.Diagnostics;
using DiffusionFunctional.Backend;
using DiffusionFunctional.Data;
using DiffusionFunctional.Diffusion;
using DiffusionFunctional.Models;
using DiffusionFunctional.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace DiffusionFunctional.Experiments.Bench;

/// <summary>What to measure.</summary>
public sealed record ThroughputOptions
{
    public string Model { get; init; } = "small";
    public int BatchSize { get; init; } = 64;
    public int TrainSteps { get; init; } = 5;
    public int WarmupSteps { get; init; } = 2;
    public int SampleBatch { get; init; } = 64;
    public int SampleSteps { get; init; } = 10;
    public int GemmSize { get; init; } = 1024;
    public int? Threads { get; init; }
    public string Device { get; init; } = "cpu";
    /// <summary>Task routing in the UNet (docs/routing-and-densities.md), to measure its step-time overhead.</summary>
    public TaskRoutingKind Routing { get; init; } = TaskRoutingKind.None;
}

/// <summary>Every figure of one throughput run (JSON names in snake_case by the CLI).</summary>
public sealed record ThroughputReport(
    string Model, int ImageSize, int ImageChannels, long Parameters, int BatchSize, int Threads, string Device,
    double TrainImagesPerSecond, double TrainSecondsPerStep,
    double SampleImagesPerSecondPerStep, double Ddim50ImagesPerSecond,
    double ForwardGflopPerImage, double TrainGflopPerImage, double AchievedTrainGflops,
    double GemmGflops, double RatioToGemm, double PeakResidentMegabytes);

/// <summary>
/// Training and sampling throughput of a named UNet on synthetic data, compared with libtorch's own GEMM speed in
/// the same process: the ratio says how much of the machine's matrix throughput the training loop achieves.
/// </summary>
public static class ThroughputBenchmark
{
    public static ThroughputReport Run(ThroughputOptions o, Action<string>? log = null)
    {
        if (o.TrainSteps < 1 || o.BatchSize < 1 || o.SampleBatch < 1 || o.SampleSteps < 1)
            throw new BadInputException("steps and batch sizes must be positive");
        if (o.Threads is { } threads) TorchBackend.SetThreads(threads);
        var device = TorchBackend.Resolve(o.Device);
        var config = UNetConfig.Named(o.Model) with { Routing = o.Routing };

        var gemm = GemmGflops(o.GemmSize, device);
        log?.Invoke($"libtorch GEMM {o.GemmSize}x{o.GemmSize}: {gemm:F1} GFLOP/s");

        random.manual_seed(0);
        using var images = rand([Math.Max(o.BatchSize * 2, 128), config.ImageChannels, config.ImageSize, config.ImageSize]) * 2 - 1;
        using var data = new ImageDataset(images.alias(), "synthetic");
        var options = new TrainerOptions { Steps = int.MaxValue, BatchSize = o.BatchSize, Device = o.Device, CheckpointEvery = 0, SampleCount = 0, Threads = o.Threads };
        using var trainer = Trainer.Create(config, GaussianDiffusion.Create(), data, options);
        trainer.TrainUntil(o.WarmupSteps);
        var clock = Stopwatch.StartNew();
        trainer.TrainUntil(trainer.Step + o.TrainSteps);
        Synchronize(device);
        var stepSeconds = clock.Elapsed.TotalSeconds / o.TrainSteps;
        log?.Invoke($"training: {stepSeconds:F3} s/step at batch {o.BatchSize}");

        clock.Restart();
        using (trainer.Sample(o.SampleBatch, new SamplerOptions { Steps = o.SampleSteps })) Synchronize(device);
        var sampleSeconds = clock.Elapsed.TotalSeconds;
        var perStep = o.SampleBatch * o.SampleSteps / sampleSeconds;
        log?.Invoke($"sampling: {perStep:F1} image-steps/s");

        var forward = UNetFlops.ForwardPerImage(config) / 1e9;
        var trainImages = o.BatchSize / stepSeconds;
        var achieved = trainImages * 3 * forward;
        return new ThroughputReport(o.Model, config.ImageSize, config.ImageChannels, trainer.Model.ParameterCount, o.BatchSize,
            get_num_threads(), device.type.ToString(), trainImages, stepSeconds, perStep, perStep / 50, forward, 3 * forward,
            achieved, gemm, achieved / gemm, PeakResidentMegabytes());
    }

    /// <summary>fp32 n x n matrix product throughput in GFLOP/s (best of several timed repeats).</summary>
    public static double GemmGflops(int n, Device device)
    {
        using var a = randn([n, n], device: device);
        using var b = randn([n, n], device: device);
        using (a.matmul(b)) Synchronize(device);
        var best = double.MaxValue;
        for (var r = 0; r < 5; r++)
        {
            var clock = Stopwatch.StartNew();
            using (a.matmul(b)) Synchronize(device);
            best = Math.Min(best, clock.Elapsed.TotalSeconds);
        }
        return 2.0 * n * n * n / best / 1e9;
    }

    /// <summary>Peak resident set size of this process (VmHWM on Linux; the current working set elsewhere).</summary>
    public static double PeakResidentMegabytes()
    {
        const string status = "/proc/self/status";
        if (File.Exists(status))
            foreach (var line in File.ReadLines(status))
                if (line.StartsWith("VmHWM:", StringComparison.Ordinal))
                    return double.Parse(line[6..].Trim().Split(' ')[0], System.Globalization.CultureInfo.InvariantCulture) / 1024;
        return Environment.WorkingSet / 1048576.0;
    }

    private static void Synchronize(Device device)
    {
        if (device.type == DeviceType.CUDA) cuda.synchronize();
    }
}
