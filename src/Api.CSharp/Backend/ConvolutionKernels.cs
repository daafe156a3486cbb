using static TorchSharp.torch;

namespace DiffusionFunctional.Backend;

/// <summary>
/// Makes sure, once per process and before any convolution runs, that libtorch's convolution kernels compute correct
/// numbers on this CPU, or switches to a configuration that does (docs/platform.md).
/// <para>
/// On a CPU where oneDNN read nonsense cache sizes, <see cref="OneDnnCacheRepair"/> gives it the true ones first; then
/// <see cref="KernelCheck"/> compares the convolutions with float64. If they still fail, ATen's own kernels take over
/// and are checked in turn; if nothing passes, <see cref="Ensure"/> refuses. The verdict is cached per machine (CPU,
/// flags, libtorch build, the oneDNN/ATen environment variables and the choice) under the cache root, so later
/// processes only apply it. <c>DFN_KERNELS</c> forces a configuration (<c>auto</c> by default, or one of
/// <see cref="KernelConfiguration.Names"/>); a forced one is checked the same way and refused when wrong.
/// </para>
/// <para>Called by the UNet's constructor, the trainer, the samplers and the evaluator, so library users get it
/// without asking; the CLI calls it before each command that computes, to print <see cref="KernelVerdict.Notice"/>.</para>
/// </summary>
public static class ConvolutionKernels
{
    /// <summary>The environment variable that forces a configuration.</summary>
    public const string ChoiceVariable = "DFN_KERNELS";

    private static readonly Lock Gate = new();
    private static KernelVerdict? current;
    private static OneDnnCacheRepair.Outcome? repair;

    /// <summary>This process's verdict, or null before <see cref="Ensure"/>.</summary>
    public static KernelVerdict? Current => current;

    /// <summary>Applies the cached verdict or checks (see the class); returns the verdict in force.</summary>
    /// <param name="recheck">Check even when a verdict is cached (only effective before the first call in a process).</param>
    /// <exception cref="KernelsUnusableException">No configuration computes correct fp32 convolutions.</exception>
    /// <exception cref="BadInputException"><c>DFN_KERNELS</c> holds an unknown name.</exception>
    public static KernelVerdict Ensure(bool recheck = false)
    {
        lock (Gate)
        {
            if (current is not null) return current;
            NativeThreading.Configure();
            LibTorchNative.QuietWarnings();
            var choice = Choice();
            var key = KernelVerdictCache.Key(choice);
            var verdict = (recheck ? null : FromCache(key)) ?? Decide(choice);
            if (!verdict.FromCache) KernelVerdictCache.Save(key, verdict);
            current = verdict;
            if (!verdict.Fp32Correct) throw new KernelsUnusableException(verdict);
            return verdict;
        }
    }

    /// <summary>The configuration <c>DFN_KERNELS</c> asks for: "auto" or one of <see cref="KernelConfiguration.Names"/>.</summary>
    public static string Choice()
    {
        var text = (Environment.GetEnvironmentVariable(ChoiceVariable) ?? "").Trim().ToLowerInvariant();
        if (text is "" or "auto") return "auto";
        if (KernelConfiguration.Names.Contains(text)) return text;
        throw new BadInputException($"{ChoiceVariable}='{text}' is not a kernel configuration (expected auto, {string.Join(", ", KernelConfiguration.Names)})");
    }

    private static KernelVerdict? FromCache(string key)
    {
        if (KernelVerdictCache.Load(key) is not { } cached) return null;
        // A cached verdict is only as good as this process's ability to apply it again.
        return Apply(cached.Configuration, cached.AccessorOffset) is null ? cached with { FromCache = true } : null;
    }

    private static KernelVerdict Decide(string choice)
    {
        var forced = choice != "auto";
        var first = forced ? choice : OneDnnCacheRepair.Inspect(write: false) is { Found: true, Before: var sizes } && sizes.Any(s => s < 1024)
            ? KernelConfiguration.OneDnnRepaired
            : KernelConfiguration.OneDnn;
        var findings = new List<string>();
        var seconds = 0.0;
        foreach (var configuration in forced ? [first] : new[] { first, KernelConfiguration.Aten })
        {
            if (Apply(configuration, null) is { } reason)
            {
                findings.Add($"{configuration} cannot be applied: {reason}");
                continue;
            }
            var (fp32, bf16) = (Check(ScalarType.Float32), Training.Bf16Support.Detect().HasNativeBf16 ? Check(ScalarType.BFloat16) : null);
            seconds += fp32.Elapsed.TotalSeconds + (bf16?.Elapsed.TotalSeconds ?? 0);
            findings.Add(Describe(configuration, fp32, bf16));
            if (fp32.Correct || forced) return new(configuration, forced, fp32.Correct, bf16?.Correct, string.Join("; ", findings), seconds, AccessorOffset: OneDnnCacheRepair.AccessorOffset);
        }
        return new(forced ? choice : KernelConfiguration.Aten, forced, false, null, string.Join("; ", findings), seconds);
    }

    /// <summary>Puts <paramref name="configuration"/> in force; returns why it cannot be, or null.</summary>
    private static string? Apply(string configuration, ulong? accessorOffset)
    {
        try
        {
            switch (configuration)
            {
                case KernelConfiguration.Aten:
                    // ATen's direct kernels only: with oneDNN off, ATen sends batches of 16 or more to NNPACK where it
                    // initialises (Zen 4 here), and NNPACK's transform-based convolutions miss the check's bound
                    // (docs/platform.md, "ATen's kernels and NNPACK").
                    LibTorchNative.SetOneDnnEnabled(false);
                    LibTorchNative.SetNnpackEnabled(false);
                    return null;
                case KernelConfiguration.OneDnnRepaired:
                    repair = OneDnnCacheRepair.Inspect(write: true, accessorOffset);
                    return repair.Found ? null : repair.Reason;
                default:
                    return null;
            }
        }
        catch (Exception e) when (e is EntryPointNotFoundException or DllNotFoundException)
        {
            return $"libtorch lacks what it needs ({e.Message})";
        }
    }

    private static KernelCheck.Result Check(ScalarType precision) =>
        KernelCheck.Run(precision, new[] { 1, Environment.ProcessorCount }.Distinct().ToList());

    private static string Describe(string configuration, KernelCheck.Result fp32, KernelCheck.Result? bf16)
    {
        string Part(KernelCheck.Result r) => r.Correct
            ? $"{r.Comparisons} comparisons within {r.WorstExcess:G2} of the bound"
            : $"{r.Failures.Count} of {r.Comparisons} wrong, first: {r.Failures[0]}";
        var repaired = configuration == KernelConfiguration.OneDnnRepaired && repair is { Found: true } o
            ? $" (oneDNN's per-core cache sizes {Bytes(o.Before)} -> {Bytes(o.After)}, {o.Reason})" : "";
        return $"{configuration}{repaired}: fp32 {Part(fp32)}" + (bf16 is null ? "" : $", bf16 {Part(bf16)}");
    }

    private static string Bytes(IReadOnlyList<long> sizes) =>
        string.Join("/", sizes.Select(s => s >= 1 << 20 ? $"{s >> 20} MiB" : s >= 1024 ? $"{s >> 10} KiB" : $"{s} B"));
}

/// <summary>No kernel configuration computes correct fp32 convolutions on this machine (exit code 2 in <c>dfn</c>).</summary>
public sealed class KernelsUnusableException(KernelVerdict verdict)
    : BadInputException((verdict.Forced
        ? $"the convolution kernels forced by {ConvolutionKernels.ChoiceVariable}={verdict.Configuration} compute wrong results on this machine"
        : "the convolution kernels compute wrong results on this machine and no configuration passes the check")
        + $" ({verdict.Finding}); see docs/platform.md")
{
    /// <summary>The failing verdict.</summary>
    public KernelVerdict Verdict { get; } = verdict;
}
