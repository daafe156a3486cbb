namespace DiffusionFunctional.Backend;

/// <summary>The convolution configurations a process can run with (<see cref="ConvolutionKernels"/>).</summary>
public static class KernelConfiguration
{
    /// <summary>libtorch as shipped: oneDNN's JIT convolutions, blocked by the cache sizes oneDNN read.</summary>
    public const string OneDnn = "onednn";
    /// <summary>oneDNN's convolutions after <see cref="OneDnnCacheRepair"/> gave it this CPU's cache sizes.</summary>
    public const string OneDnnRepaired = "onednn-repaired";
    /// <summary>ATen's own direct convolutions (oneDNN and NNPACK off, as <c>torch.backends.mkldnn.enabled = False</c> and
    /// <c>torch.backends.nnpack.set_flags(False)</c>): slower, no JIT.</summary>
    public const string Aten = "aten";
    /// <summary>What <c>DFN_KERNELS</c> accepts besides <c>auto</c>, fastest first.</summary>
    public static IReadOnlyList<string> Names { get; } = [OneDnn, OneDnnRepaired, Aten];
}

/// <summary>
/// What the kernel check decided for this machine: the configuration in force and whether its convolutions compute
/// correct numbers, in fp32 and (on CPUs with native bfloat16) in bf16.
/// </summary>
/// <param name="Configuration">One of <see cref="KernelConfiguration.Names"/>.</param>
/// <param name="Forced">Whether the user chose it (<c>DFN_KERNELS</c>) rather than the check.</param>
/// <param name="Fp32Correct">Whether fp32 convolutions passed the check.</param>
/// <param name="Bf16Correct">Whether bf16 convolutions passed; null when the CPU has no native bfloat16 (not checked).</param>
/// <param name="Finding">What the check found on the way, one phrase (e.g. the shipped configuration's first failure).</param>
/// <param name="CheckSeconds">Wall time of the checks that decided it (when it was decided, not now).</param>
/// <param name="FromCache">Whether this process read it from the cache rather than checking.</param>
/// <param name="AccessorOffset">Where <see cref="OneDnnCacheRepair"/> found oneDNN's CPU description (saves the lookup
/// in later processes).</param>
public sealed record KernelVerdict(
    string Configuration, bool Forced, bool Fp32Correct, bool? Bf16Correct, string Finding, double CheckSeconds,
    bool FromCache = false, ulong? AccessorOffset = null)
{
    /// <summary>One line for <c>dfn --version</c>, metrics headers and messages: the configuration and its verdict.</summary>
    [System.Text.Json.Serialization.JsonIgnore]
    public string Summary =>
        $"{Configuration}{(Forced ? " (forced by DFN_KERNELS)" : "")}: fp32 {Word(Fp32Correct)}" +
        (Bf16Correct is { } bf16 ? $", bf16 {Word(bf16)}" : "") + $"; {Finding}";

    /// <summary>The one line a command prints when the machine needed something other than libtorch as shipped; null
    /// when the shipped kernels are correct and were not forced.</summary>
    [System.Text.Json.Serialization.JsonIgnore]
    public string? Notice => Configuration == KernelConfiguration.OneDnn && !Forced && Fp32Correct && Bf16Correct != false
        ? null
        : $"convolution kernels: {Summary} (docs/platform.md)";

    private static string Word(bool correct) => correct ? "correct" : "WRONG";
}
