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
    /// <summary>The named network (<see cref="Denoisers.Named"/>).</summary>
    public string Model { get; init; } = "small";
    /// <summary>Images per training step.</summary>
    public int BatchSize { get; init; } = 64;
    /// <summary>Timed training steps (per round, with several variants).</summary>
    public int TrainSteps { get; init; } = 5;
    /// <summary>Untimed steps first.</summary>
    public int WarmupSteps { get; init; } = 2;
    /// <summary>Images sampled at once.</summary>
    public int SampleBatch { get; init; } = 64;
    /// <summary>DDIM steps timed.</summary>
    public int SampleSteps { get; init; } = 10;
    /// <summary>Side of the square matrices of the GEMM reference.</summary>
    public int GemmSize { get; init; } = 1024;
    /// <summary>libtorch threads for <see cref="ThroughputBenchmark.Run"/> (null: leave as is).</summary>
    public int? Threads { get; init; }
    /// <summary>"cpu" or "cuda".</summary>
    public string Device { get; init; } = "cpu";
    /// <summary>Task routing in the network (docs/routing-and-densities.md), to measure its step-time overhead.</summary>
    public TaskRoutingKind Routing { get; init; } = TaskRoutingKind.None;
    /// <summary>"fp32" or "bf16" (<see cref="TrainerOptions.Precision"/>).</summary>
    public string Precision { get; init; } = TrainingPrecision.Fp32;
    /// <summary>Channels-last feature maps (<see cref="TrainerOptions.ChannelsLast"/>).</summary>
    public bool ChannelsLast { get; init; }
}

/// <summary>Every figure of one throughput run (JSON names in snake_case by the CLI).</summary>
public sealed record ThroughputReport(
    string Model, int ImageSize, int ImageChannels, long Parameters, int BatchSize, int Threads, string Device,
    double TrainImagesPerSecond, double TrainSecondsPerStep,
    double SampleImagesPerSecondPerStep, double Ddim50ImagesPerSecond,
    double ForwardGflopPerImage, double TrainGflopPerImage, double AchievedTrainGflops,
    double GemmGflops, double RatioToGemm, double PeakResidentMegabytes)
{
    /// <summary>"fp32" or "bf16"; the GEMM reference is measured in the same precision.</summary>
    public string Precision { get; init; } = TrainingPrecision.Fp32;
    /// <summary>Whether the feature maps ran channels-last.</summary>
    public bool ChannelsLast { get; init; }
    /// <summary>Rounds the variants were interleaved over (1: a single variant, measured once).</summary>
    public int Rounds { get; init; } = 1;
    /// <summary>Training images/s relative to the first variant of the same run (1 for the first, and for a single one).</summary>
    public double RatioToFirst { get; init; } = 1.0;
    /// <summary>Seconds per step in each part of the step (<see cref="StepPhase"/>; they sum to about the step time).</summary>
    public double DataSeconds { get; init; }
    /// <inheritdoc cref="DataSeconds"/>
    public double ForwardSeconds { get; init; }
    /// <inheritdoc cref="DataSeconds"/>
    public double BackwardSeconds { get; init; }
    /// <inheritdoc cref="DataSeconds"/>
    public double OptimiserSeconds { get; init; }
    /// <inheritdoc cref="DataSeconds"/>
    public double EmaSeconds { get; init; }
    /// <inheritdoc cref="DataSeconds"/>
    public double OtherSeconds { get; init; }
    /// <summary>The PyTorch peer at this variant's thread count, timed in the same rounds (null without <c>--peer</c>).</summary>
    public PeerComparison? Peer { get; init; }
}

/// <summary>
/// Training and sampling throughput of a named network on synthetic data, compared with libtorch's own GEMM speed in
/// the same process: the ratio says how much of the machine's matrix throughput the training loop achieves.
/// </summary>
public static class ThroughputBenchmark
{
    /// <summary>Measures one configuration (see <see cref="TrainingSpeedBenchmark"/> for several, interleaved).</summary>
    public static ThroughputReport Run(ThroughputOptions o, Action<string>? log = null)
    {
        if (o.Threads is { } threads) TorchBackend.SetThreads(threads);
        var variant = new SpeedVariant(TrainingPrecision.Parse(o.Precision), o.ChannelsLast, get_num_threads());
        return TrainingSpeedBenchmark.Run(o, [variant], rounds: 1, log)[0];
    }

    /// <summary>n x n matrix product throughput in GFLOP/s (best of several timed repeats), fp32 unless <paramref name="type"/> says otherwise.</summary>
    public static double GemmGflops(int n, Device device, ScalarType type = ScalarType.Float32)
    {
        using var a = randn([n, n], dtype: type, device: device);
        using var b = randn([n, n], dtype: type, device: device);
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
