using DiffusionFunctional.Backend;
using SkiaSharp;
using static TorchSharp.torch;

namespace DiffusionFunctional.Imaging;

/// <summary>Writes images in [-1, 1] ([N,C,H,W], C = 1 or 3) as PNG files: one per image, or a grid.</summary>
public static class ImageWriter
{
    /// <summary>Writes image <paramref name="index"/> of the batch as a PNG.</summary>
    public static void SavePng(Tensor images, int index, string path)
    {
        using var one = images[index].unsqueeze(0);
        SaveGrid(one, path, columns: 1, padding: 0);
    }

    /// <summary>Writes every image of the batch as <c>{prefix}{i:D4}.png</c> in <paramref name="folder"/>.</summary>
    public static void SaveEach(Tensor images, string folder, string prefix = "sample-")
    {
        Directory.CreateDirectory(folder);
        for (var i = 0; i < images.shape[0]; i++) SavePng(images, i, Path.Combine(folder, $"{prefix}{i:D4}.png"));
    }

    /// <summary>
    /// Tiles the batch row by row into one PNG, <paramref name="columns"/> wide (default: a near-square grid). With
    /// <paramref name="minImageWidth"/>, each image is enlarged by a whole factor (nearest neighbour, so no pixel is
    /// invented) until it is at least that wide: a 16x16 digit drawn at 16 pixels cannot be judged by eye.
    /// </summary>
    public static void SaveGrid(Tensor images, string path, int? columns = null, int padding = 2, int minImageWidth = 0)
    {
        var factor = minImageWidth > images.shape[3] ? (int)Math.Ceiling(minImageWidth / (double)images.shape[3]) : 1;
        using var scope = NewDisposeScope();
        var scaled = factor > 1 ? images.repeat_interleave(factor, dim: 2).repeat_interleave(factor, dim: 3) : images.alias();
        SaveTiles(scaled, path, columns, padding * factor);
    }

    static void SaveTiles(Tensor images, string path, int? columns, int padding)
    {
        var (n, c, h, w) = ((int)images.shape[0], (int)images.shape[1], (int)images.shape[2], (int)images.shape[3]);
        var cols = columns ?? (int)Math.Ceiling(Math.Sqrt(n));
        var rows = (n + cols - 1) / cols;
        byte[] data;
        using (NewDisposeScope())
            data = images.detach().cpu().Clamp(-1, 1).Plus(1).Times(127.5).round().to_type(ScalarType.Byte).contiguous().data<byte>().ToArray();
        var width = cols * w + (cols + 1) * padding;
        var height = rows * h + (rows + 1) * padding;
        using var bitmap = new SKBitmap(new SKImageInfo(width, height, SKColorType.Rgba8888, SKAlphaType.Opaque));
        bitmap.Erase(SKColors.Black);
        var plane = h * w;
        for (var i = 0; i < n; i++)
        {
            var (x0, y0) = (padding + (i % cols) * (w + padding), padding + (i / cols) * (h + padding));
            var offset = i * c * plane;
            for (var y = 0; y < h; y++)
            for (var x = 0; x < w; x++)
            {
                var p = offset + y * w + x;
                var color = c == 1
                    ? new SKColor(data[p], data[p], data[p])
                    : new SKColor(data[p], data[p + plane], data[p + 2 * plane]);
                bitmap.SetPixel(x0 + x, y0 + y, color);
            }
        }
        using var encoded = bitmap.Encode(SKEncodedImageFormat.Png, 100);
        AtomicFile.Write(path, temporary =>
        {
            using var file = File.Create(temporary);
            encoded.SaveTo(file);
        });
    }
}
