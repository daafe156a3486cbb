using Microsoft.ML.OnnxRuntime;

namespace DiffusionFunctional.Evaluation;

/// <summary>What the ResNet-18 paths share: OnnxRuntime sessions with the same options, loaded and checked the same way.</summary>
internal static class OnnxSessions
{
    /// <summary>
    /// Sequential execution, all graph optimisations, <paramref name="threads"/> intra-op threads that sleep instead of
    /// spinning while they wait (spinning threads burn the CPU another process could use; docs/benchmarks-history.md,
    /// "Batched extraction against one image per run"), unless
    /// <paramref name="allowSpinning"/> (OnnxRuntime's default, which the single-image reference path keeps).
    /// The optimisation level fixes which kernels run, and so the features to the last bit
    /// (docs/benchmarks-history.md, "Batched extraction against one image per run"): keep it.
    /// </summary>
    public static SessionOptions Options(int threads, bool allowSpinning = false)
    {
        var options = new SessionOptions
        {
            IntraOpNumThreads = threads,
            InterOpNumThreads = 1,
            ExecutionMode = ExecutionMode.ORT_SEQUENTIAL,
            GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL,
            // No arena: between evaluation points the activations' memory goes back to the system instead of staying
            // reserved beside training (no measurable cost in CPU-ms per image: docs/benchmarks-history.md,
            // "Memory and spinning, re-measured").
            EnableCpuMemArena = false,
            EnableMemoryPattern = false,
        };
        if (!allowSpinning) options.AddSessionConfigEntry("session.intra_op.allow_spinning", "0");
        return options;
    }

    /// <summary>A session on a model file, or on model bytes when given (named <paramref name="file"/> in errors).</summary>
    /// <exception cref="BadInputException">OnnxRuntime cannot load the model.</exception>
    public static InferenceSession Load(string file, SessionOptions options, byte[]? model = null, PrePackedWeightsContainer? shared = null)
    {
        // OnnxRuntime reads a null container as "no sharing".
        try { return model is null ? new InferenceSession(file, options, shared) : new InferenceSession(model, options, shared); }
        catch (OnnxRuntimeException e)
        {
            throw new BadInputException($"cannot load ONNX model '{file}': {FirstLine(e.Message)}");
        }
    }

    /// <summary>The single input and output names, after checking their shapes (-1: a symbolic dimension).</summary>
    /// <exception cref="BadInputException">The graph has other inputs, outputs or shapes.</exception>
    public static (string[] Input, string[] Output) CheckShapes(InferenceSession session, string file, int[] inputShape, int[] outputShape)
    {
        if (session.InputMetadata.Count != 1 || session.OutputMetadata.Count != 1)
            throw new BadInputException($"ONNX model '{file}' should have one input and one output, has {session.InputMetadata.Count} and {session.OutputMetadata.Count}");
        var (inName, inMeta) = session.InputMetadata.First();
        var (outName, outMeta) = session.OutputMetadata.First();
        if (!inMeta.Dimensions.SequenceEqual(inputShape) || !outMeta.Dimensions.SequenceEqual(outputShape))
            throw new BadInputException($"ONNX model '{file}' maps [{string.Join(",", inMeta.Dimensions)}] to [{string.Join(",", outMeta.Dimensions)}], expected [{string.Join(",", inputShape)}] to [{string.Join(",", outputShape)}]");
        return ([inName], [outName]);
    }

    /// <summary>The first line of an exception message, for one-line errors.</summary>
    public static string FirstLine(string message) => message.ReplaceLineEndings("\n").Split('\n', 2)[0].Trim();
}
