namespace DiffusionFunctional.Evaluation;

/// <summary>
/// Reads a folder of PNG/JPEG images into an <see cref="ImageBatch"/> for evaluation: all of one size; one channel when
/// every pixel of every image is gray (R = G = B), else RGB. Alpha is ignored. Unlike the training loader
/// (<see cref="DiffusionFunctional.Data.ImageFolder"/>), nothing is resized or cropped: evaluated images must reach the
/// feature network exactly as they were generated. Like it, files that do not decode completely are skipped and counted.
/// </summary>
public static class ImageFolderLoader
{
    static readonly string[] Extensions = [".png", ".jpg", ".jpeg"];

    /// <summary>
    /// Loads a folder's images: all of them in file-name order, or a random subset of <paramref name="count"/> drawn with
    /// <paramref name="seed"/> (files are often named by class or by order of generation, so the first N would not be
    /// a fair sample). A file that does not decode completely is skipped with a warning and counted.
    /// </summary>
    /// <exception cref="BadInputException">The folder is missing, holds too few usable images, or sizes differ.</exception>
    public static (ImageBatch Images, int Skipped) Load(string directory, int? count = null, long seed = 0, Action<string>? warn = null)
    {
        if (!Directory.Exists(directory)) throw new BadInputException($"image folder '{directory}' not found");
        if (count is < 1) throw new BadInputException($"image count must be positive, got {count}");
        var files = Directory.EnumerateFiles(directory)
            .Where(f => Extensions.Contains(Path.GetExtension(f), StringComparer.OrdinalIgnoreCase))
            .Order(StringComparer.Ordinal)
            .ToList();
        if (files.Count == 0) throw new BadInputException($"image folder '{directory}' holds no .png, .jpg or .jpeg files");
        IEnumerable<int> order = count is null ? Enumerable.Range(0, files.Count) : DiffusionFunctional.Data.DataStream.Permutation(files.Count, (ulong)seed, 0);
        var images = new List<(byte[] Rgba, string File)>();
        int width = 0, height = 0, skipped = 0;
        // Walk the seeded order until enough images decode, so a skipped file is replaced by the next one drawn.
        foreach (var index in order)
        {
            if (count is { } wanted && images.Count == wanted) break;
            using var bitmap = DiffusionFunctional.Data.ImageDecoding.TryDecode(files[index], out var problem);
            if (bitmap is null)
            {
                skipped++;
                warn?.Invoke($"skipping unreadable image {files[index]}: {problem}");
                continue;
            }
            if (images.Count == 0) (width, height) = (bitmap.Width, bitmap.Height);
            else if (bitmap.Width != width || bitmap.Height != height)
                throw new BadInputException($"image '{files[index]}' is {bitmap.Width}x{bitmap.Height} but '{images[0].File}' is {width}x{height}; all images must have one size");
            images.Add((bitmap.GetPixelSpan().ToArray(), files[index]));
        }
        if (count is { } n && images.Count < n)
            throw new BadInputException($"image folder '{directory}' holds {images.Count} usable images ({skipped} unreadable), fewer than the {n} asked for");
        return (ToBatch(images.Select(i => i.Rgba).ToList(), width, height), skipped);
    }

    // One channel when every pixel of every image is grey (R = G = B), else RGB; alpha ignored.
    static ImageBatch ToBatch(IReadOnlyList<byte[]> rgba, int width, int height)
    {
        var gray = rgba.All(pixels =>
        {
            for (var p = 0; p < pixels.Length; p += 4)
                if (pixels[p] != pixels[p + 1] || pixels[p] != pixels[p + 2]) return false;
            return true;
        });
        var channels = gray ? 1 : 3;
        var plane = width * height;
        var values = new float[rgba.Count * channels * plane];
        for (var i = 0; i < rgba.Count; i++)
        {
            var offset = i * channels * plane;
            for (var c = 0; c < channels; c++)
                for (var p = 0; p < plane; p++)
                    values[offset + c * plane + p] = rgba[i][4 * p + c] / 255f;
        }
        return new ImageBatch(values, rgba.Count, channels, height, width);
    }
}
