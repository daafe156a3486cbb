using SkiaSharp;

namespace DiffusionFunctional.Data;

/// <summary>
/// Decodes one image file completely or not at all: a file Skia can only partly decode (a truncated PNG decodes
/// its first rows and leaves the rest blank) counts as unreadable, so that training and evaluation never see half an
/// image. Both folder loaders (<see cref="ImageFolder"/>, <see cref="Evaluation.ImageFolderLoader"/>) use it and
/// skip such files with a warning and a count.
/// </summary>
internal static class ImageDecoding
{
    /// <summary>The file's pixels as RGBA bytes (unpremultiplied), or null with <paramref name="problem"/> saying why.</summary>
    public static SKBitmap? TryDecode(string path, out string? problem)
    {
        SKCodec? codec;
        try { codec = SKCodec.Create(path, out var status); problem = codec is null ? $"not a readable image ({status})" : null; }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException)
        {
            problem = e.Message;
            return null;
        }
        if (codec is null) return null;
        using (codec)
        {
            var info = new SKImageInfo(codec.Info.Width, codec.Info.Height, SKColorType.Rgba8888, SKAlphaType.Unpremul);
            if (info.Width <= 0 || info.Height <= 0)
            {
                problem = "the image has no pixels";
                return null;
            }
            var bitmap = new SKBitmap(info);
            var result = codec.GetPixels(info, bitmap.GetPixels());
            if (result is SKCodecResult.Success) return bitmap;
            bitmap.Dispose();
            problem = result is SKCodecResult.IncompleteInput ? "the file is truncated (it decodes only partly)" : $"it does not decode ({result})";
            return null;
        }
    }
}
