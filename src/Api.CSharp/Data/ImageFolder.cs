using SkiaSharp;
using static TorchSharp.torch;

namespace DiffusionFunctional.Data;

/// <summary>
/// A folder (searched recursively) of PNG/JPEG (and other formats Skia decodes) images, grayscale or RGB.
/// Each image is scaled so its shorter side is the target size, then centre-cropped to a square.
/// Unreadable files are skipped with a warning and counted.
/// </summary>
public static class ImageFolder
{
    private static readonly HashSet<string> Extensions = new(StringComparer.OrdinalIgnoreCase)
        { ".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp" };

    /// <summary>Loads every image as [N,channels,size,size] in [0, 1], sorted by path; returns the skipped count.</summary>
    public static (Tensor Images, int Skipped) LoadUnitRange(string folder, int channels, int size, Action<string>? warn = null)
    {
        var files = ImageFiles(folder);
        var pixels = new List<float>();
        var skipped = 0;
        var loaded = 0;
        foreach (var file in files)
        {
            var image = TryLoad(file, channels, size, out var problem);
            if (image is null)
            {
                skipped++;
                warn?.Invoke($"skipping unreadable image {file}: {problem}");
                continue;
            }
            pixels.AddRange(image);
            loaded++;
        }
        if (loaded == 0)
            throw new BadInputException($"no usable images in {folder} ({files.Count} image files, {skipped} unreadable)");
        using var flat = tensor(pixels.ToArray(), dtype: float32);
        return (flat.reshape(loaded, channels, size, size), skipped);
    }

    /// <summary>The image files under <paramref name="folder"/> (recursively), in ordinal order.</summary>
    /// <exception cref="BadInputException">The folder does not exist.</exception>
    public static IReadOnlyList<string> ImageFiles(string folder)
    {
        if (!Directory.Exists(folder)) throw new BadInputException($"image folder not found: {folder}");
        return Directory.EnumerateFiles(folder, "*", SearchOption.AllDirectories)
            .Where(f => Extensions.Contains(Path.GetExtension(f)))
            .Order(StringComparer.Ordinal)
            .ToList();
    }

    /// <summary>Decodes (completely: see <see cref="ImageDecoding"/>), resizes and crops one image to channel-major floats in
    /// [0, 1]; null with the reason when unreadable.</summary>
    public static float[]? TryLoad(string path, int channels, int size, out string? problem)
    {
        using var source = ImageDecoding.TryDecode(path, out problem);
        if (source is null) return null;
        var scale = (float)size / Math.Min(source.Width, source.Height);
        var (w, h) = (source.Width * scale, source.Height * scale);
        using var target = new SKBitmap(new SKImageInfo(size, size, SKColorType.Rgba8888, SKAlphaType.Unpremul));
        using (var canvas = new SKCanvas(target))
        using (var image = SKImage.FromBitmap(source))
        {
            canvas.Clear(SKColors.Black);
            var dest = SKRect.Create((size - w) / 2, (size - h) / 2, w, h);
            canvas.DrawImage(image, dest, new SKSamplingOptions(SKFilterMode.Linear, SKMipmapMode.Linear));
        }
        var result = new float[channels * size * size];
        var plane = size * size;
        for (var y = 0; y < size; y++)
        for (var x = 0; x < size; x++)
        {
            var c = target.GetPixel(x, y);
            var i = y * size + x;
            if (channels == 1)
                result[i] = (0.299f * c.Red + 0.587f * c.Green + 0.114f * c.Blue) / 255f;
            else
            {
                result[i] = c.Red / 255f;
                result[plane + i] = c.Green / 255f;
                result[2 * plane + i] = c.Blue / 255f;
            }
        }
        return result;
    }
}
