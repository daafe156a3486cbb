using Microsoft.ML.OnnxRuntime;

namespace DiffusionFunctional.Evaluation;

/// <summary>
/// The package's <c>ResNetPreprocess.onnx</c> fused with the scaling before it: pixels in [0, 1] become
/// value * 255 (RGB), then BGR minus a per-pixel mean image, in one pass over a batch. The graph (a Split, a Concat
/// and a Sub, fixed to one image) would cost a session run per image; the results are the same bits: each value is
/// rounded as before (v = u * 255, then v + (-m), which rounds the same exact sum as v - m).
/// </summary>
internal sealed class ResNetMeanImage
{
    readonly float[] negatedMean;
    readonly int plane;

    ResNetMeanImage(float[] negatedMean, int side)
    {
        this.negatedMean = negatedMean;
        plane = side * side;
    }

    /// <summary>
    /// Reads the mean image out of the graph (its output for a black image is minus the mean) and checks, on a probe
    /// image, that the graph does what <see cref="Prepare"/> does: the same bits for every value.
    /// </summary>
    /// <exception cref="BadInputException">The file does not load, or the graph is not a channel flip and a mean subtraction.</exception>
    public static ResNetMeanImage Load(string file, int side)
    {
        using var options = OnnxSessions.Options(1);
        using var session = OnnxSessions.Load(file, options);
        var (input, output) = OnnxSessions.CheckShapes(session, file, [1, 3, side, side], [1, 3, side, side]);
        var values = 3 * side * side;
        var mean = new ResNetMeanImage(Run(session, input, output, new float[values], side), side);
        // A probe whose channels differ, with every level 0..255, so a wrong channel order or rounding shows.
        var probe = new float[values];
        for (var i = 0; i < values; i++) probe[i] = (i * 7 + i / (side * side) * 85) % 256 / 255f;
        var scaled = probe.Select(u => u * 255f).ToArray();
        var expected = Run(session, input, output, scaled, side);
        var prepared = new float[values];
        mean.Prepare(probe, 3, prepared);
        if (!prepared.AsSpan().SequenceEqual(expected))
            throw new BadInputException($"ONNX model '{file}' is not the expected preprocessing (RGB to BGR, then minus a mean image)");
        return mean;
    }

    static float[] Run(InferenceSession session, string[] input, string[] output, float[] image, int side)
    {
        long[] shape = [1, 3, side, side];
        var result = new float[image.Length];
        using var runOptions = new RunOptions();
        using var inputValue = OrtValue.CreateTensorValueFromMemory(image, shape);
        using var outputValue = OrtValue.CreateTensorValueFromMemory(result, shape);
        session.Run(runOptions, input, [inputValue], output, [outputValue]);
        return result;
    }

    /// <summary>
    /// The network's input [n, 3, side, side] from resized images [n, channels, side, side] in [0, 1]: grayscale
    /// (1 channel) stands for R, G and B alike.
    /// </summary>
    public void Prepare(ReadOnlySpan<float> images, int channels, Span<float> output)
    {
        if (channels is not (1 or 3)) throw new ArgumentException($"images have 1 or 3 channels, got {channels}", nameof(channels));
        var count = output.Length / (3 * plane);
        if (output.Length != count * 3 * plane || images.Length != count * channels * plane)
            throw new ArgumentException($"{images.Length} input and {output.Length} output values are not whole images of {plane} pixels");
        for (var n = 0; n < count; n++)
        {
            var source = images.Slice(n * channels * plane, channels * plane);
            for (var bgr = 0; bgr < 3; bgr++)
            {
                // Output channel 0 is blue, the input's channel 2 (gray has only one).
                var from = channels == 1 ? source[..plane] : source.Slice((2 - bgr) * plane, plane);
                var to = output.Slice((n * 3 + bgr) * plane, plane);
                ReadOnlySpan<float> negated = negatedMean.AsSpan(bgr * plane, plane);
                for (var i = 0; i < plane; i++)
                {
                    // Two roundings, as before: the product, then the sum (not fused into one FMA: Load checks the bits).
                    var value = from[i] * 255f;
                    to[i] = value + negated[i];
                }
            }
        }
    }
}
