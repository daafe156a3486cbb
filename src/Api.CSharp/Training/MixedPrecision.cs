using DiffusionFunctional.Models;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DiffusionFunctional.Training;

/// <summary>The numeric precisions a <see cref="Trainer"/> trains in (<see cref="TrainerOptions.Precision"/>).</summary>
public static class TrainingPrecision
{
    /// <summary>Everything in float32 (the default).</summary>
    public const string Fp32 = "fp32";
    /// <summary>Mixed precision: forward and backward in bfloat16, fp32 master weights, optimiser, EMA and loss.</summary>
    public const string Bf16 = "bf16";

    /// <summary>The names <see cref="Parse"/> accepts.</summary>
    public static IReadOnlyList<string> Names { get; } = [Fp32, Bf16];

    /// <summary>"fp32"/"float32" or "bf16"/"bfloat16" (any case) to its canonical name.</summary>
    /// <exception cref="BadInputException">Any other text.</exception>
    public static string Parse(string? text) => (text ?? "").Trim().ToLowerInvariant() switch
    {
        "fp32" or "float32" => Fp32,
        "bf16" or "bfloat16" => Bf16,
        _ => throw new BadInputException($"unknown precision '{text}' (expected fp32 or bf16)"),
    };
}

/// <summary>
/// bf16 mixed-precision training made explicit, because TorchSharp 0.107 has no autocast. The trainer keeps its fp32
/// network (the master weights: what the optimiser updates, the EMA averages, checkpoints hold and resumes restore) and
/// this class keeps a bfloat16 working copy of the same shape. Each step (Micikevicius et al. 2018, "Mixed precision
/// training"; PyTorch's CPU autocast runs convolutions and matrix products in bf16 the same way):
/// <list type="number">
/// <item><see cref="LoadMasterWeights"/> rounds the master weights into the working copy and zeroes its gradients;</item>
/// <item>the forward pass runs the working copy on bf16 activations (<see cref="ForwardModel"/> casts the input to bf16
/// and the output back to fp32, so the per-sample losses and every reduction after them are fp32);</item>
/// <item>backward fills the working copy's bf16 gradients; <see cref="CopyGradientsToMaster"/> widens them into the
/// master weights' fp32 gradients, where clipping, AdamW and the EMA work as in fp32 training.</item>
/// </list>
/// bf16 keeps fp32's exponent range, so no loss scaling is needed (unlike fp16). Nothing here is saved: the working
/// copy is rebuilt from the master weights every step, so a resumed run continues exactly.
/// </summary>
internal sealed class Bf16WorkingCopy : IDisposable
{
    private readonly Denoiser working;
    private readonly FlatParameters master;
    private readonly FlatParameters copy;

    /// <summary>Builds the working copy of <paramref name="master"/> (whose parameters <paramref name="masterLayout"/> lays
    /// out) on its device; the global RNG is left as it was.</summary>
    public Bf16WorkingCopy(Denoiser master, FlatParameters masterLayout)
    {
        using var rngState = random.get_rng_state();
        working = master.Config.Build();
        working.ChannelsLast = master.ChannelsLast;
        random.set_rng_state(rngState);
        working.to(master.parameters().First().device);
        working.bfloat16();
        working.train(master.training);
        this.master = masterLayout;
        // The same layout in bf16: one cast copy each way per step instead of one per parameter tensor.
        copy = new FlatParameters(working.parameters(), withGradients: true);
        ForwardModel = new CastingForward(working);
    }

    /// <summary>The network to run forward: bf16 inside, fp32 input and output.</summary>
    public nn.Module<Tensor, Tensor, Tensor> ForwardModel { get; }

    /// <summary>The working copy's parameters: the ones a weighting differentiates (their gradients are bf16).</summary>
    public IReadOnlyList<Parameter> Parameters => copy.Parameters;

    /// <summary>Rounds the master weights into the working copy and zeroes its gradients.</summary>
    public void LoadMasterWeights()
    {
        using var noGrad = no_grad();
        copy.Values.copy_(master.Values);
        copy.Gradients!.zero_();
    }

    /// <summary>Widens the working copy's gradients into the master weights' (fp32) gradients.</summary>
    public void CopyGradientsToMaster()
    {
        using var noGrad = no_grad();
        master.Gradients!.copy_(copy.Gradients!);
    }

    /// <summary>Frees the working copy.</summary>
    public void Dispose()
    {
        copy.Dispose();
        working.Dispose();
    }

    /// <summary>bf16 in, fp32 out around the working copy.</summary>
    private sealed class CastingForward(Denoiser network) : nn.Module<Tensor, Tensor, Tensor>(nameof(CastingForward))
    {
        public override Tensor forward(Tensor x, Tensor timesteps)
        {
            using var scope = NewDisposeScope();
            return network.forward(x.to_type(bfloat16), timesteps).to_type(float32).MoveToOuterDisposeScope();
        }
    }
}

/// <summary>
/// Whether this machine can train in bf16: on the CPU only with native bfloat16 instructions (AVX512_BF16 or AMX_BF16),
/// where oneDNN runs bf16 convolutions and matrix products at up to twice fp32's speed; without them libtorch emulates
/// bf16 and training gets slower, so it is refused.
/// </summary>
public static class Bf16Support
{
    /// <summary>The CPU's bf16 features as CPUID reports them (x86-64; both false elsewhere).</summary>
    /// <param name="Avx512Bf16">AVX512_BF16 (CPUID leaf 7 sub-leaf 1, EAX bit 5), usable only with AVX-512 enabled by the OS.</param>
    /// <param name="AmxBf16">AMX_BF16 (CPUID leaf 7 sub-leaf 0, EDX bit 22).</param>
    public sealed record CpuFeatures(bool Avx512Bf16, bool AmxBf16)
    {
        /// <summary>True when either feature is present.</summary>
        public bool HasNativeBf16 => Avx512Bf16 || AmxBf16;
    }

    /// <summary>Reads this CPU's features with CPUID (no file, so it works on every OS).</summary>
    public static CpuFeatures Detect()
    {
        if (!System.Runtime.Intrinsics.X86.X86Base.IsSupported) return new CpuFeatures(false, false);
        var (maxLeaf, _, _, _) = System.Runtime.Intrinsics.X86.X86Base.CpuId(0, 0);
        if (maxLeaf < 7) return new CpuFeatures(false, false);
        var (_, _, _, edx0) = System.Runtime.Intrinsics.X86.X86Base.CpuId(7, 0);
        var (eax1, _, _, _) = System.Runtime.Intrinsics.X86.X86Base.CpuId(7, 1);
        var avx512Usable = System.Runtime.Intrinsics.X86.Avx512F.IsSupported;
        return new CpuFeatures(avx512Usable && (eax1 & (1 << 5)) != 0, (edx0 & (1 << 22)) != 0);
    }

    /// <summary>The precision <c>auto</c> stands for on <paramref name="device"/>: bf16 on a CPU with native bfloat16
    /// whose bf16 convolutions pass the kernel check (mixed precision trains about 1.7x faster there, with FD within
    /// seed noise: docs/benchmarks.md, "bf16 against fp32"), fp32 everywhere else (no native bf16, wrong bf16 kernels,
    /// CUDA).</summary>
    public static string Auto(Device device, CpuFeatures? features = null) =>
        device.type == DeviceType.CPU && (features ?? Detect()).HasNativeBf16 && Backend.ConvolutionKernels.Ensure().Bf16Correct == true
            ? TrainingPrecision.Bf16 : TrainingPrecision.Fp32;

    /// <summary>
    /// Refuses <paramref name="precision"/> on <paramref name="device"/> when it cannot run there: bf16 on a CPU whose
    /// <paramref name="features"/> (default: <see cref="Detect"/>) have no native bfloat16. fp32 and CUDA always pass.
    /// </summary>
    /// <exception cref="BadInputException">bf16 on a CPU without AVX512_BF16 and AMX_BF16, naming both.</exception>
    public static void Require(string precision, Device device, CpuFeatures? features = null)
    {
        if (TrainingPrecision.Parse(precision) != TrainingPrecision.Bf16 || device.type != DeviceType.CPU) return;
        if (!(features ?? Detect()).HasNativeBf16)
            throw new BadInputException("bf16 training needs a CPU with native bfloat16 (the avx512_bf16 or amx_bf16 feature) and this CPU has neither: use --precision fp32");
        if (Backend.ConvolutionKernels.Ensure() is { Bf16Correct: false } verdict)
            throw new BadInputException($"bf16 convolutions compute wrong results on this machine (kernel check, {verdict.Summary}): use --precision fp32");
    }
}
