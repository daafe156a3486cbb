using System.Runtime;
using System.Runtime.InteropServices;

namespace DiffusionFunctional.Backend;

/// <summary>
/// Hands memory that the C heap holds free back to the operating system between phases of a long run.
/// <para>
/// libtorch and OnnxRuntime allocate through glibc's malloc. glibc keeps freed blocks for reuse (and, after a large
/// block is freed, raises its own mmap threshold so later large blocks come from the heap too), and each thread
/// allocates from its own arena: the pages training's activations left free stay resident while OnnxRuntime's threads
/// fill their arenas during an evaluation, so the process's peak is the sum of both phases' high-water marks
/// (docs/benchmarks-history.md, "Memory and spinning, re-measured"). <c>malloc_trim(0)</c> returns the free pages of every arena.
/// Called at phase boundaries only (a few times per evaluation point), so allocation inside a phase keeps glibc's
/// fast reuse. glibc's own function, reached by P/Invoke: no served library wraps it. The managed heap is compacted
/// first, so that large arrays already dropped (a data set's raw bytes, feature matrices) go back too rather than wait
/// for the garbage collector's next turn.
/// </para>
/// </summary>
public static class NativeMemory
{
    private static bool unavailable = !OperatingSystem.IsLinux();

    /// <summary>Compacts the managed heap and returns the C heap's free pages to the system (the latter a no-op where
    /// the C library has no <c>malloc_trim</c>: not Linux, or not glibc). Never changes a result, only resident memory;
    /// costs milliseconds, so call it between phases, not inside one.</summary>
    public static void ReturnFreePages()
    {
        GCSettings.LargeObjectHeapCompactionMode = GCLargeObjectHeapCompactionMode.CompactOnce;
        GC.Collect(GC.MaxGeneration, GCCollectionMode.Forced, blocking: true, compacting: true);
        if (unavailable) return;
        try
        {
            Glibc.malloc_trim(UIntPtr.Zero);
        }
        catch (Exception e) when (e is EntryPointNotFoundException or DllNotFoundException)
        {
            unavailable = true;
        }
    }

    private static class Glibc
    {
        [DllImport("libc")]
        internal static extern int malloc_trim(UIntPtr pad);
    }
}
