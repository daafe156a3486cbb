using System.Runtime.InteropServices;
using System.Runtime.Intrinsics.X86;

namespace DiffusionFunctional.Backend;

/// <summary>
/// Gives libtorch's oneDNN the cache sizes of this CPU when it read nonsense (docs/platform.md).
/// <para>
/// oneDNN sizes the blocks of its JIT convolutions from the per-core cache sizes that its bundled Xbyak reads with
/// CPUID. On AMD CPUs Xbyak reads leaf 0x8000001D (cache topology), one sub-leaf per cache level, and multiplies the
/// fields it finds (line size, partitions, ways, sets, each stored minus one). Some virtual machines return zeros for
/// that leaf: Xbyak then records three data caches of 1 byte each, and several convolution kernels blocked for 1-byte
/// caches return wrong numbers or leave output unwritten (NaN) whenever a channel count is not a multiple of the
/// 16-channel vector block. The older leaves 0x80000005/0x80000006 still report the true sizes on such machines.
/// </para>
/// <para>
/// The repair writes those sizes into the Xbyak CPU description inside <c>libtorch_cpu.so</c> before oneDNN creates
/// its first primitive (primitives are cached with the blocking they were built with). The description is found by
/// calling the library's own accessor <c>dnnl::impl::cpu::x64::cpu()</c>, located through the library's symbol table,
/// and written only when seven of its fields match this CPU's family and model as CPUID reports them: a libtorch with
/// another layout is left alone (and the kernel check then chooses another configuration).
/// </para>
/// </summary>
public static class OneDnnCacheRepair
{
    /// <summary>The accessor's mangled name (a function-local static Xbyak::util::Cpu, built on first call).</summary>
    public const string AccessorSymbol = "_ZN4dnnl4impl3cpu3x643cpuEv";

    // Byte offsets in Xbyak::util::Cpu as bundled by oneDNN 3.7 (Xbyak 7): a 16-byte feature set, a flag, the core
    // counts, then the cache description, then the family fields that serve as the layout's signature.
    private const int SizesAt = 28, SharingAt = 68, LevelsAt = 108, SignatureAt = 116, MaxLevels = 10;

    /// <summary>What the CPU description held and what, if anything, was written.</summary>
    /// <param name="Found">Whether the description was found and its layout recognised.</param>
    /// <param name="Before">Per-core data cache sizes in bytes as oneDNN would see them.</param>
    /// <param name="After">The same after the repair (equal to <paramref name="Before"/> when nothing was written).</param>
    /// <param name="Reason">Why nothing was written, or where the written sizes came from.</param>
    public sealed record Outcome(bool Found, IReadOnlyList<long> Before, IReadOnlyList<long> After, string Reason)
    {
        /// <summary>Whether sizes were written.</summary>
        public bool Repaired => Found && !Before.SequenceEqual(After);
    }

    [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
    private delegate IntPtr CpuAccessor();

    /// <summary>Reads oneDNN's CPU description and, when <paramref name="write"/> is set and a cache level is implausible
    /// (under 1 KiB), replaces the sizes with CPUID's legacy report. <paramref name="accessorOffset"/>: the accessor's
    /// offset in the library when known (a cached verdict keeps it), else it is looked up.</summary>
    public static Outcome Inspect(bool write, ulong? accessorOffset = null)
    {
        if (!OperatingSystem.IsLinux() || !X86Base.IsSupported) return NotFound("not an x86-64 Linux process");
        if (LibTorchNative.CpuLibrary() is not { } library) return NotFound("libtorch_cpu.so is not loaded");
        var offset = accessorOffset ?? ElfSymbols.Find(library.Path, AccessorSymbol);
        if (offset is null) return NotFound($"{AccessorSymbol} is not in libtorch_cpu.so's symbol table");
        AccessorOffset = offset;
        var cpu = Marshal.GetDelegateForFunctionPointer<CpuAccessor>(library.Base + (nint)offset.Value)();
        if (!SignatureMatches(cpu)) return NotFound("the CPU description's layout is not the one this repair knows (another oneDNN)");
        var before = PerCoreSizes(cpu);
        if (before.Count > 0 && before.All(size => size >= 1024)) return new Outcome(true, before, before, "plausible cache sizes");
        if (!write) return new Outcome(true, before, before, "implausible cache sizes, not repaired");
        var reason = WriteLegacySizes(cpu);
        return new Outcome(true, before, PerCoreSizes(cpu), reason);
    }

    /// <summary>The accessor offset found by the last <see cref="Inspect"/> (for the verdict cache).</summary>
    public static ulong? AccessorOffset { get; private set; }

    private static Outcome NotFound(string reason) => new(false, [], [], reason);

    private static bool SignatureMatches(IntPtr cpu)
    {
        var eax = (uint)X86Base.CpuId(1, 0).Eax;
        int Bits(int from, int count) => (int)((eax >> from) & ((1u << count) - 1));
        var (model, family, stepping, extModel, extFamily) = (Bits(4, 4), Bits(8, 4), Bits(0, 4), Bits(16, 4), Bits(20, 8));
        var displayFamily = family == 0xF ? family + extFamily : family;
        var displayModel = family is 6 or 0xF ? (extModel << 4) + model : model;
        int[] expected = [model, family, stepping, extModel, extFamily, displayFamily, displayModel];
        var levels = Marshal.ReadInt32(cpu, LevelsAt);
        return levels is >= 0 and <= MaxLevels
            && expected.Select((value, i) => Marshal.ReadInt32(cpu, SignatureAt + 4 * i) == value).All(same => same);
    }

    private static List<long> PerCoreSizes(IntPtr cpu)
    {
        var levels = Marshal.ReadInt32(cpu, LevelsAt);
        return Enumerable.Range(0, levels)
            .Select(i => (long)(uint)Marshal.ReadInt32(cpu, SizesAt + 4 * i) / Math.Max(1, Marshal.ReadInt32(cpu, SharingAt + 4 * i)))
            .ToList();
    }

    /// <summary>Writes L1d, L2 and L3 from CPUID 0x80000005/0x80000006 (AMD's legacy cache leaves); when they report
    /// nothing, records no cache levels at all, which makes oneDNN use its own default sizes.</summary>
    private static string WriteLegacySizes(IntPtr cpu)
    {
        var maxExtended = (uint)X86Base.CpuId(unchecked((int)0x80000000), 0).Eax;
        long l1 = 0, l2 = 0, l3 = 0;
        if (maxExtended >= 0x80000006)
        {
            l1 = ((uint)X86Base.CpuId(unchecked((int)0x80000005), 0).Ecx >> 24) * 1024L;
            var (_, _, ecx, edx) = X86Base.CpuId(unchecked((int)0x80000006), 0);
            l2 = ((uint)ecx >> 16) * 1024L;
            l3 = ((uint)edx >> 18) * 512L * 1024;
        }
        if (l1 < 1024 || l2 < 1024)
        {
            Marshal.WriteInt32(cpu, LevelsAt, 0);
            return "CPUID reports no cache sizes either: oneDNN's default sizes";
        }
        long[] sizes = l3 >= 1024 ? [l1, l2, l3] : [l1, l2];
        for (var i = 0; i < sizes.Length; i++)
        {
            Marshal.WriteInt32(cpu, SizesAt + 4 * i, (int)Math.Min(sizes[i], int.MaxValue));
            Marshal.WriteInt32(cpu, SharingAt + 4 * i, i == 2 ? L3Sharers(l3) : 1);
        }
        Marshal.WriteInt32(cpu, LevelsAt, sizes.Length);
        return "sizes from CPUID 0x80000005/0x80000006";
    }

    /// <summary>The cores to count the L3 as shared by. A virtual machine reports the L3 of the whole package (508 MiB
    /// on the Zen 5 VM of docs/platform.md) while the cores sharing it are hidden, so each core's share is taken as at
    /// most 4 MiB, what AMD's Zen cores get (32 MiB per 8-core chiplet), and at most the L3 over this process's cores.</summary>
    private static int L3Sharers(long l3)
    {
        const long perCore = 4L << 20;
        return (int)Math.Max(Environment.ProcessorCount, (l3 + perCore - 1) / perCore);
    }
}
