using TorchSharp;

namespace DiffusionFunctional.Backend;

/// <summary>Where tensors live, chosen once: CUDA when asked for and available, else the CPU.</summary>
public static class TorchBackend
{
    /// <summary>Thrown when a requested device cannot be used; the message says what to do.</summary>
    public sealed class DeviceUnavailableException(string message) : Exception(message);

    /// <summary>Resolves "cpu", "cuda" or "cuda:N" to a TorchSharp device.</summary>
    public static torch.Device Resolve(string? name)
    {
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

    /// <summary>Fixes the number of CPU threads libtorch uses (results depend on it).</summary>
    public static void SetThreads(int threads)
    {
        if (threads > 0) torch.set_num_threads(threads);
    }
}
