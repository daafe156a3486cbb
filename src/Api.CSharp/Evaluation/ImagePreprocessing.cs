using DiffusionFunctional.Backend;
using System.Runtime.InteropServices;
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
        var x = Resized(images, start, count, size);
        if (images.Channels == 1) x = x.expand(count, 3, size, size);
        x = x.Times(scale).Plus(offset).contiguous();
        CopyOut(x, destination);
    }

    /// <summary>
    /// Writes images [start, start + count) resized as in <see cref="ToRgbSquare"/> but with their own channels and
    /// values, as [count, channels, size, size]: the caller maps channels and values in its own pass.
    /// </summary>
    public static void Resize(ImageBatch images, int start, int count, int size, Span<float> destination)
    {
        using var scope = torch.NewDisposeScope();
        CopyOut(Resized(images, start, count, size).contiguous(), destination);
    }

    static Tensor Resized(ImageBatch images, int start, int count, int size)
    {
        var x = torch.tensor(images.Images(start, count).ToArray(), [count, images.Channels, images.Height, images.Width]);
        if (images.Height != size || images.Width != size)
            x = nn.functional.interpolate(x, size: [size, size], mode: InterpolationMode.Bilinear, align_corners: false, antialias: true);
        return x;
    }

    /// <summary>
    /// Copies a contiguous float tensor's memory as one block: TensorAccessor.CopyTo goes element by element, about
    /// 2 ms of CPU per 224 x 224 RGB image (docs/benchmarks-history.md, "Batched extraction against one image per run"), as much as the rest of the preprocessing together.
    /// </summary>
    static void CopyOut(Tensor contiguous, Span<float> destination) =>
        MemoryMarshal.Cast<byte, float>(contiguous.bytes).CopyTo(destination);
}
