using Microsoft.ML.OnnxRuntime;

namespace DiffusionFunctional.Evaluation;

/// <summary>
/// The package's <c>ResNetPreprocess.onnx</c> done in place on a batch: RGB to BGR, then minus a per-pixel mean image.
/// That graph is a Split, a Concat and a Sub, fixed to one image; here it costs one pass over the pixels instead of
/// a session run per image, with bit-identical results (x + (-m) and x - m round the same exact sum).
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
    /// image, that the graph is what this class does: the same bits for every pixel.
    /// </summary>
    /// <exception cref="BadInputException">The file does not load, or the graph is not a channel flip and a mean subtraction.</exception>
    public static ResNetMeanImage Load(string file, int side)
    {
        using var options = OnnxSessions.Options(1);
        using var session = OnnxSessions.Load(file, options);
        var (input, output) = OnnxSessions.CheckShapes(session, file, [1, 3, side, side], [1, 3, side, side]);
        var values = 3 * side * side;
        var negatedMean = Run(session, input, output, new float[values], side);
        var mean = new ResNetMeanImage(negatedMean, side);
        // A probe with every value 0..255 in every channel, different per channel, so a wrong order shows.
        var probe = new float[values];
        for (var i = 0; i < values; i++) probe[i] = (i * 7 + i / (side * side) * 85) % 256;
        var expected = Run(session, input, output, probe, side);
        mean.ApplyInPlace(probe);
        if (!probe.AsSpan().SequenceEqual(expected))
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

    /// <summary>Turns images [n, 3, side, side] of RGB in 0..255 into the network's input, in place.</summary>
    public void ApplyInPlace(Span<float> images)
    {
        var perImage = 3 * plane;
        if (images.Length % perImage != 0) throw new ArgumentException($"expected whole images of {perImage} values, got {images.Length}", nameof(images));
        ReadOnlySpan<float> blueMean = negatedMean.AsSpan(0, plane), greenMean = negatedMean.AsSpan(plane, plane), redMean = negatedMean.AsSpan(2 * plane, plane);
        for (var start = 0; start < images.Length; start += perImage)
        {
            var red = images.Slice(start, plane);
            var green = images.Slice(start + plane, plane);
            var blue = images.Slice(start + 2 * plane, plane);
            for (var i = 0; i < plane; i++)
            {
                var r = red[i];
                red[i] = blue[i] + blueMean[i];
                green[i] += greenMean[i];
                blue[i] = r + redMean[i];
            }
        }
    }
}
