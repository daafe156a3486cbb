using TorchSharp;

namespace DiffusionFunctional.Backend;

/// <summary>Where tensors live, chosen once: CUDA when asked for and available, else the CPU; and libtorch's CPU threads.</summary>
public static class TorchBackend
{
    /// <summary>Thrown when a requested device cannot be used; the message says what to do.</summary>
    public sealed class DeviceUnavailableException(string message) : BadInputException(message);

    /// <summary>Resolves "cpu", "cuda" or "cuda:N" to a TorchSharp device.</summary>
    /// <exception cref="DeviceUnavailableException">The device is unknown or not available in this build.</exception>
    public static torch.Device Resolve(string? name)
    {
        NativeThreading.Configure();
        var requested = string.IsNullOrWhiteSpace(name) ? "cpu" : name.Trim().ToLowerInvariant();
        if (requested == "cpu") return torch.CPU;
        if (requested.StartsWith("cuda", StringComparison.Ordinal))
        {
            if (!torch.cuda.is_available())
                throw new DeviceUnavailableException(
                    "CUDA is not available in this build: rebuild with -p:TorchBackend=cuda on a machine with the TorchSharp-cuda-linux (or -windows) package and an NVIDIA driver, or use --device cpu");
            return torch.device(requested);
        }
        throw new DeviceUnavailableException($"unknown device '{name}' (expected cpu, cuda or cuda:N)");
    }

    /// <summary>True when <paramref name="a"/> and <paramref name="b"/> name the same device (TorchSharp's
    /// <see cref="torch.Device"/> compares by reference).</summary>
    public static bool SameDevice(torch.Device a, torch.Device b) => a.type == b.type && (a.type == DeviceType.CPU || a.index == b.index);

    /// <summary>Refuses a thread count outside 1 .. the number of logical processors: more threads than cores only
    /// make libtorch's spinning workers compete (a run slows to a crawl), and 0 or less means nothing.</summary>
    /// <exception cref="BadInputException">Out of range.</exception>
    public static void ValidateThreads(int threads)
    {
        var cores = Environment.ProcessorCount;
        if (threads < 1 || threads > cores)
            throw new BadInputException($"threads must lie in 1..{cores} (this machine has {cores} logical processors), got {threads}");
    }

    /// <summary>Fixes the number of CPU threads libtorch uses (results depend on it).</summary>
    /// <exception cref="BadInputException">Out of range (see <see cref="ValidateThreads"/>).</exception>
    public static void SetThreads(int threads)
    {
        NativeThreading.Configure();
        ValidateThreads(threads);
        torch.set_num_threads(threads);
    }
}
