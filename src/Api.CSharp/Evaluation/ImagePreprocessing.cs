using TorchSharp;
using static TorchSharp.torch;

namespace DiffusionFunctional.Evaluation;

/// <summary>What the feature networks share: resize (bilinear) to a square input and make 3 channels.</summary>
internal static class ImagePreprocessing
{
    /// <summary>
    /// Writes images [start, start + count) as [count, 3, size, size] into <paramref name="destination"/>, each value
    /// mapped to value * scale + offset. Resizing is bilinear (half-pixel centres, as PyTorch with
    /// align_corners = false), antialiased when shrinking; grayscale is replicated to 3 channels.
    /// </summary>
    public static void ToRgbSquare(ImageBatch images, int start, int count, int size, float scale, float offset, Span<float> destination)
    {
        using var scope = torch.NewDisposeScope();
        var x = torch.tensor(images.Images(start, count).ToArray(), [count, images.Channels, images.Height, images.Width]);
        if (images.Height != size || images.Width != size)
            x = nn.functional.interpolate(x, size: [size, size], mode: InterpolationMode.Bilinear, align_corners: false, antialias: true);
        if (images.Channels == 1) x = x.expand(count, 3, size, size);
        x = (x * scale + offset).contiguous();
        x.data<float>().CopyTo(destination);
    }
}
