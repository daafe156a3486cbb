using System.Runtime.InteropServices;

namespace DiffusionFunctional;

/// <summary>
/// Whether a path is a regular file. .NET reports a device such as <c>/dev/full</c> as an ordinary file, and renaming a
/// temporary over it (what <see cref="AtomicFile"/> does) would replace the device node itself. .NET has no public API
/// for the file type, so this asks the runtime's own native shim (libSystem.Native, the library .NET's file APIs call)
/// for the stat mode; where that is unavailable (Windows) every existing file counts as regular.
/// </summary>
internal static class FileKind
{
    const int TypeMask = 0xF000;
    const int Regular = 0x8000;

    /// <summary>True for a regular file, or a path that does not exist; false for a device, FIFO or socket.</summary>
    public static bool IsRegularOrMissing(string path)
    {
        if (!File.Exists(path) || OperatingSystem.IsWindows()) return true;
        try
        {
            var status = new byte[256]; // FileStatus: Flags (int32), then Mode (int32) at offset 4; the rest unused
            if (Stat(path, status) != 0) return true;
            return (BitConverter.ToInt32(status, 4) & TypeMask) == Regular;
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException) { return true; }
    }

    [DllImport("libSystem.Native", EntryPoint = "SystemNative_Stat")]
    private static extern int Stat([MarshalAs(UnmanagedType.LPUTF8Str)] string path, byte[] status);
}
