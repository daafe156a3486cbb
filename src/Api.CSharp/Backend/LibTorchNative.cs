using System.Runtime.InteropServices;
using TorchSharp;

namespace DiffusionFunctional.Backend;

/// <summary>
/// The few libtorch settings TorchSharp 0.107 does not bind, reached through libtorch's exported C++ functions:
/// whether ATen sends convolutions to oneDNN (<c>torch.backends.mkldnn.enabled</c> in PyTorch) and libtorch's own log
/// level. Small hand-written P/Invoke: no served library wraps them.
/// </summary>
public static class LibTorchNative
{
    /// <summary>The environment variable libtorch's logging reads for its level; <see cref="QuietWarnings"/> sets it to
    /// ERROR unless the user chose a level.</summary>
    public const string LogLevelVariable = "TORCH_CPP_LOG_LEVEL";

    [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
    private delegate IntPtr GlobalContext();
    [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
    private delegate void SetFlag(IntPtr context, byte enabled);
    [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
    private delegate byte GetFlag(IntPtr context);
    [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
    private delegate void InitLogging();

    /// <summary>Loads libtorch (TorchSharp loads it on first use) and returns the path and load address of
    /// <c>libtorch_cpu.so</c> from this process's memory map; null off Linux or when it is not mapped.</summary>
    public static (string Path, nint Base)? CpuLibrary()
    {
        _ = torch.get_num_threads();
        const string maps = "/proc/self/maps";
        if (!OperatingSystem.IsLinux() || !File.Exists(maps)) return null;
        foreach (var line in File.ReadLines(maps))
        {
            var fields = line.Split(' ', 6, StringSplitOptions.RemoveEmptyEntries);
            if (fields.Length < 6 || fields[2] != "00000000" || !fields[5].EndsWith("/libtorch_cpu.so", StringComparison.Ordinal)) continue;
            return (fields[5], (nint)Convert.ToInt64(fields[0].Split('-')[0], 16));
        }
        return null;
    }

    /// <summary>Whether ATen sends float convolutions to oneDNN (true unless <see cref="SetOneDnnEnabled"/> turned it off).</summary>
    public static bool OneDnnEnabled => Call<GetFlag>("_ZNK2at7Context17userEnabledMkldnnEv")(Context()) != 0;

    /// <summary>Sends ATen's convolutions to oneDNN (true, libtorch's default) or to its own kernels (false); takes
    /// effect for the next convolution.</summary>
    public static void SetOneDnnEnabled(bool enabled) => Call<SetFlag>("_ZN2at7Context20setUserEnabledMkldnnEb")(Context(), enabled ? (byte)1 : (byte)0);

    /// <summary>Whether ATen may send convolutions with a batch of 16 or more to NNPACK (true unless
    /// <see cref="SetNnpackEnabled"/> turned it off; used only where NNPACK initialises).</summary>
    public static bool NnpackEnabled => Call<GetFlag>("_ZNK2at7Context17userEnabledNNPACKEv")(Context()) != 0;

    /// <summary>Lets ATen use NNPACK's fast convolutions (true, libtorch's default; <c>torch.backends.nnpack.set_flags</c>
    /// in PyTorch) or not (false); takes effect for the next convolution.</summary>
    public static void SetNnpackEnabled(bool enabled) => Call<SetFlag>("_ZN2at7Context20setUserEnabledNNPACKEb")(Context(), enabled ? (byte)1 : (byte)0);

    /// <summary>
    /// Hides libtorch's warnings (for example NNPACK's "Could not initialize NNPACK! Reason: Unsupported hardware.",
    /// printed dozens of times per training step on CPUs its cpuinfo does not know) by giving its logging the level
    /// ERROR, unless the user set <see cref="LogLevelVariable"/>; errors still print. Idempotent.
    /// </summary>
    public static void QuietWarnings()
    {
        if (string.IsNullOrEmpty(NativeThreading.Get(LogLevelVariable))) NativeThreading.Set(LogLevelVariable, "ERROR");
        _ = torch.get_num_threads();
        Call<InitLogging>("_ZN3c1011initLoggingEv", "libc10")();
    }

    private static IntPtr Context() => Call<GlobalContext>("_ZN2at13globalContextEv")();

    private static T Call<T>(string symbol, string library = "libtorch_cpu") where T : Delegate
    {
        _ = torch.get_num_threads();
        var handle = NativeLibrary.Load(library + (OperatingSystem.IsWindows() ? ".dll" : OperatingSystem.IsMacOS() ? ".dylib" : ".so"),
            typeof(torch).Assembly, null);
        return Marshal.GetDelegateForFunctionPointer<T>(NativeLibrary.GetExport(handle, symbol));
    }
}
