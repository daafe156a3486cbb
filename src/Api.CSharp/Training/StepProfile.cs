using System.Diagnostics;
using TorchSharp;
using static TorchSharp.torch;

namespace DiffusionFunctional.Training;

/// <summary>The parts of a training step that <see cref="StepProfile"/> times.</summary>
public enum StepPhase
{
    /// <summary>Batch, timesteps, noise, zeroed gradients, the bf16 working copy of the weights.</summary>
    Data,
    /// <summary>The network's forward pass and the per-sample losses.</summary>
    Forward,
    /// <summary>The weighting's backward pass(es), and (bf16) the gradients copied to the fp32 master weights.</summary>
    Backward,
    /// <summary>Gradient clipping, the learning-rate schedule and the AdamW update.</summary>
    Optimiser,
    /// <summary>The EMA update.</summary>
    Ema,
    /// <summary>Everything else: the divergence guard's host reads, metrics, the sampler's bookkeeping, the snapshot
    /// that lets a rejected step be undone.</summary>
    Other,
}

/// <summary>
/// Wall time a <see cref="Trainer"/> spent in each <see cref="StepPhase"/>, summed over the steps since the last
/// <see cref="Reset"/> (docs/benchmarks.md, "Training speed"). The trainer always records it: a few timestamps per step
/// cost nothing next to a step. On the CPU every operation has finished when the call returns, so the split is exact;
/// on CUDA work runs ahead of the host, and only <see cref="Synchronise"/> makes the parts honest (at some cost).
/// </summary>
public sealed class StepProfile
{
    private static readonly int PhaseCount = Enum.GetValues<StepPhase>().Length;
    private readonly long[] ticks = new long[PhaseCount];

    /// <summary>Wait for the device at each phase boundary (matters on CUDA only; off by default).</summary>
    public bool Synchronise { get; set; }

    /// <summary>Steps recorded since the last <see cref="Reset"/>.</summary>
    public long Steps { get; private set; }

    /// <summary>Total seconds spent in <paramref name="phase"/>.</summary>
    public double Seconds(StepPhase phase) => ticks[(int)phase] / (double)Stopwatch.Frequency;

    /// <summary>Total seconds over every phase.</summary>
    public double TotalSeconds => ticks.Sum() / (double)Stopwatch.Frequency;

    /// <summary>Mean seconds per step of each phase (zeros before any step).</summary>
    public IReadOnlyDictionary<StepPhase, double> PerStep() =>
        Enum.GetValues<StepPhase>().ToDictionary(p => p, p => Steps == 0 ? 0.0 : Seconds(p) / Steps);

    /// <summary>Forgets everything recorded.</summary>
    public void Reset()
    {
        Array.Clear(ticks);
        Steps = 0;
    }

    /// <summary>Starts timing one step's phases.</summary>
    internal Clock Start(Device device) => new(this, device);

    /// <summary>One step's running timestamp; each <see cref="Mark"/> books the time since the previous mark.</summary>
    internal struct Clock(StepProfile owner, Device device)
    {
        private long last = Stopwatch.GetTimestamp();

        /// <summary>Books the time since the previous mark to <paramref name="phase"/>.</summary>
        public void Mark(StepPhase phase)
        {
            if (owner.Synchronise && device.type == DeviceType.CUDA) cuda.synchronize();
            var now = Stopwatch.GetTimestamp();
            owner.ticks[(int)phase] += now - last;
            last = now;
        }

        /// <summary>Counts the step as done.</summary>
        public readonly void Finish() => owner.Steps++;
    }
}
