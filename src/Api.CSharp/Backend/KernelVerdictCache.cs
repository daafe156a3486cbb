using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using TorchSharp;

namespace DiffusionFunctional.Backend;

/// <summary>
/// Kernel verdicts kept under <c>kernels/</c> in the cache root, one JSON file per machine key, so that only the first
/// process on a machine pays for the check. The key holds everything that can change which kernels run or how they
/// block: the CPU (name, family, model, stepping, flags), the libtorch build, the environment variables oneDNN and ATen
/// read, the configuration asked for and the check's own version.
/// </summary>
public static class KernelVerdictCache
{
    /// <summary>Bumped whenever <see cref="KernelCheck"/> or a configuration changes (2: <c>aten</c> turns NNPACK off
    /// too), so older verdicts are not trusted.</summary>
    public const int CheckVersion = 2;

    private static readonly string[] KernelVariables = ["ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA", "ONEDNN_CPU_ISA_HINTS", "ATEN_CPU_CAPABILITY"];

    /// <summary>The folder of cached verdicts.</summary>
    public static string Folder => Path.Combine(CacheDirectory.Root, "kernels");

    /// <summary>A short hash of this machine's key for <paramref name="choice"/> ("auto" or a configuration).</summary>
    public static string Key(string choice)
    {
        var parts = new List<string> { $"check {CheckVersion}", $"choice {choice}", CpuDescription(), LibTorchBuild() };
        parts.AddRange(KernelVariables.Select(name => $"{name}={NativeThreading.Get(name)}"));
        return Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(string.Join("\n", parts))))[..20].ToLowerInvariant();
    }

    /// <summary>The cached verdict for <paramref name="key"/>, or null (none, or unreadable).</summary>
    public static KernelVerdict? Load(string key)
    {
        try
        {
            var path = Path.Combine(Folder, key + ".json");
            return File.Exists(path) ? JsonSerializer.Deserialize<KernelVerdict>(File.ReadAllText(path)) : null;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or JsonException)
        {
            return null;
        }
    }

    /// <summary>Keeps <paramref name="verdict"/>; a cache that cannot be written only means the next process checks again.</summary>
    public static void Save(string key, KernelVerdict verdict)
    {
        try
        {
            AtomicFile.Write(Path.Combine(Folder, key + ".json"), temp => File.WriteAllText(temp, JsonSerializer.Serialize(verdict)), uniqueTemporary: true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
        }
    }

    /// <summary>The CPU as /proc/cpuinfo describes its first processor (model name, family, model, stepping, flags), or
    /// the runtime's description elsewhere.</summary>
    public static string CpuDescription()
    {
        const string cpuinfo = "/proc/cpuinfo";
        if (!File.Exists(cpuinfo)) return System.Runtime.InteropServices.RuntimeInformation.ProcessArchitecture.ToString();
        string[] fields = ["model name", "cpu family", "model", "stepping", "flags"];
        return string.Join("\n", File.ReadLines(cpuinfo).TakeWhile(line => line.Length > 0)
            .Where(line => fields.Contains(line.Split(':')[0].Trim())));
    }

    /// <summary>The CPU's model name as /proc/cpuinfo gives it (or the architecture elsewhere).</summary>
    public static string CpuModelName() =>
        CpuDescription().Split('\n').FirstOrDefault(line => line.StartsWith("model name", StringComparison.Ordinal))?.Split(':', 2)[1].Trim()
        ?? System.Runtime.InteropServices.RuntimeInformation.ProcessArchitecture.ToString();

    private static string LibTorchBuild()
    {
        var library = LibTorchNative.CpuLibrary();
        var size = library is { Path: var path } && File.Exists(path) ? new FileInfo(path).Length : 0;
        return $"TorchSharp {typeof(torch).Assembly.GetName().Version}, libtorch_cpu {size} bytes";
    }
}
