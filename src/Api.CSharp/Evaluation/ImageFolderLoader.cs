using SkiaSharp;

namespace DiffusionFunctional.Evaluation;

/// <summary>
/// Reads a folder of PNG/JPEG images into an <see cref="ImageBatch"/> for evaluation: files in ordinal name order,
/// all of one size; one channel when every pixel of every image is gray (R = G = B), else RGB. Alpha is ignored.
/// Unlike the training loader (<see cref="DiffusionFunctional.Data.ImageFolder"/>), nothing is resized or cropped and
/// nothing is skipped: evaluated images must reach the feature network exactly as they were generated.
/// </summary>
public static class ImageFolderLoader
{
    static readonly string[] Extensions = [".png", ".jpg", ".jpeg"];

    /// <summary>Loads the first <paramref name="count"/> images (all when null) of a folder.</summary>
    /// <exception cref="BadInputException">The folder is missing, holds no images or too few, or sizes differ, or a file does not decode.</exception>
    public static ImageBatch Load(string directory, int? count = null)
    {
        if (!Directory.Exists(directory)) throw new BadInputException($"image folder '{directory}' not found");
        if (count is < 1) throw new BadInputException($"image count must be positive, got {count}");
        var files = Directory.EnumerateFiles(directory)
            .Where(f => Extensions.Contains(Path.GetExtension(f), StringComparer.OrdinalIgnoreCase))
            .Order(StringComparer.Ordinal)
            .ToList();
        if (files.Count == 0) throw new BadInputException($"image folder '{directory}' holds no .png, .jpg or .jpeg files");
        if (count is { } wanted)
        {
            if (files.Count < wanted) throw new BadInputException($"image folder '{directory}' holds {files.Count} images, fewer than the {wanted} asked for");
            files = files.Take(wanted).ToList();
        }

        int width = 0, height = 0;
        var rgba = new byte[files.Count][];
        var gray = true;
        for (var i = 0; i < files.Count; i++)
        {
            var (pixels, w, h) = Decode(files[i]);
            if (i == 0) (width, height) = (w, h);
            else if (w != width || h != height)
                throw new BadInputException($"image '{files[i]}' is {w}x{h} but '{files[0]}' is {width}x{height}; all images must have one size");
            for (var p = 0; gray && p < pixels.Length; p += 4)
                gray = pixels[p] == pixels[p + 1] && pixels[p] == pixels[p + 2];
            rgba[i] = pixels;
        }

        var channels = gray ? 1 : 3;
        var plane = width * height;
        var values = new float[files.Count * channels * plane];
        for (var i = 0; i < files.Count; i++)
        {
            var offset = i * channels * plane;
            for (var c = 0; c < channels; c++)
                for (var p = 0; p < plane; p++)
                    values[offset + c * plane + p] = rgba[i][4 * p + c] / 255f;
        }
        return new ImageBatch(values, files.Count, channels, height, width);
    }

    static (byte[] Rgba, int Width, int Height) Decode(string file)
    {
        using var codec = SKCodec.Create(file) ?? throw new BadInputException($"'{file}' is not a readable PNG or JPEG image");
        var info = new SKImageInfo(codec.Info.Width, codec.Info.Height, SKColorType.Rgba8888, SKAlphaType.Unpremul);
        using var bitmap = SKBitmap.Decode(codec, info) ?? throw new BadInputException($"'{file}' could not be decoded");
        return (bitmap.GetPixelSpan().ToArray(), info.Width, info.Height);
    }
}
