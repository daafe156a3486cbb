using System.Runtime.InteropServices;

namespace DiffusionFunctional.Backend;

/// <summary>
/// How libtorch's OpenMP worker threads wait, set before libtorch is loaded. libtorch's CPU build ships GNU OpenMP,
/// whose idle workers spin for a while after every parallel region (about 300,000 iterations unless told otherwise).
/// On cores shared with other processes that spinning competes with the work itself, and each parallel region waits
/// for its slowest thread: two threads on a loaded 2-core machine ran 7x slower than one (docs/benchmarks.md,
/// "Spinning on idle cores"). Sleeping at once (<c>OMP_WAIT_POLICY=PASSIVE</c>) never collapses, but on idle cores each of a
/// step's many small parallel regions then pays a wake-up: a quarter of the two-thread step. A short spin
/// (<c>GOMP_SPINCOUNT</c>, a few microseconds) keeps nearly all of the idle gain and costs little on a shared machine
/// (docs/benchmarks.md, "Spinning on idle cores"), so both are set, as one choice: a user who sets either keeps
/// exactly their own.
/// <para>
/// OpenMP reads its environment once, when the runtime is loaded (with libtorch, at TorchSharp's first use), from the
/// C library's environment. .NET's <see cref="Environment.SetEnvironmentVariable(string, string)"/> does not reach that
/// environment on Unix (the runtime keeps its own copy), so on Linux and macOS the variables are set with the C
/// library's <c>setenv</c>; on Windows the process environment is the native one. No served library wraps
/// <c>setenv</c>, hence this small hand-written P/Invoke.
/// </para>
/// </summary>
public static class NativeThreading
{
    /// <summary>The settings applied when the user's environment sets none of them (theirs always win, as a whole):
    /// idle workers spin about <c>GOMP_SPINCOUNT</c> iterations, then sleep.</summary>
    public static IReadOnlyDictionary<string, string> Defaults { get; } = new Dictionary<string, string>
    {
        ["OMP_WAIT_POLICY"] = "PASSIVE",
        ["GOMP_SPINCOUNT"] = "1000",
    };

    private static readonly Lock Gate = new();
    private static bool? configured;

    /// <summary>
    /// Sets <see cref="Defaults"/> in the native environment unless the user set any of them, once per process. Call it before
    /// the first TorchSharp call (the CLI does so first thing; <see cref="Training.Trainer"/> calls it too). Returns
    /// true when the settings can still take effect, false when the OpenMP runtime was already loaded (then they apply
    /// to child processes only) or the platform is not supported.
    /// </summary>
    public static bool Configure()
    {
        lock (Gate)
        {
            if (configured is { } done) return done;
            var loadedAlready = OpenMpLoaded();
            // libgomp lets GOMP_SPINCOUNT override OMP_WAIT_POLICY: setting ours beside a user's policy would undo it.
            if (Defaults.Keys.All(name => string.IsNullOrEmpty(Get(name))))
                foreach (var (name, value) in Defaults) Set(name, value);
            configured = !loadedAlready;
            return configured.Value;
        }
    }

    /// <summary>The wait settings in force in the native environment (ours after <see cref="Configure"/>, or the user's),
    /// for a child process to wait the same way; only the variables that are set.</summary>
    public static IReadOnlyDictionary<string, string> WaitSettings() =>
        Defaults.Keys.Select(name => (name, value: Get(name))).Where(p => !string.IsNullOrEmpty(p.value))
            .ToDictionary(p => p.name, p => p.value!);

    /// <summary>The value of <paramref name="name"/> in the native (C library) environment, or null.</summary>
    public static string? Get(string name)
    {
        if (OperatingSystem.IsWindows()) return Environment.GetEnvironmentVariable(name);
        var pointer = Unix.getenv(name);
        return pointer == IntPtr.Zero ? null : Marshal.PtrToStringUTF8(pointer);
    }

    internal static void Set(string name, string value)
    {
        if (OperatingSystem.IsWindows()) Environment.SetEnvironmentVariable(name, value);
        else if (Unix.setenv(name, value, 0) != 0) throw new InvalidOperationException($"setenv({name}) failed");
    }

    /// <summary>Whether an OpenMP runtime is mapped into this process already (Linux; elsewhere assumed not).</summary>
    private static bool OpenMpLoaded()
    {
        const string maps = "/proc/self/maps";
        if (!OperatingSystem.IsLinux() || !File.Exists(maps)) return false;
        return File.ReadLines(maps).Any(line => line.Contains("libgomp", StringComparison.Ordinal) || line.Contains("libomp", StringComparison.Ordinal));
    }

    private static class Unix
    {
        [DllImport("libc", CharSet = CharSet.Ansi, BestFitMapping = false, ThrowOnUnmappableChar = true)]
        internal static extern IntPtr getenv(string name);

        [DllImport("libc", CharSet = CharSet.Ansi, BestFitMapping = false, ThrowOnUnmappableChar = true)]
        internal static extern int setenv(string name, string value, int overwrite);
    }
}
