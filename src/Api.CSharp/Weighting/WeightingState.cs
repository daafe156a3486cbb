using TorchSharp;
using static TorchSharp.torch;

namespace DiffusionFunctional.Weighting;

/// <summary>Reading and writing the small pieces of state weightings keep (arrays, parameters), with a tag per method
/// so that loading another method's state fails loudly instead of silently misreading it.</summary>
internal static class WeightingState
{
    public static void WriteHeader(BinaryWriter writer, string name, int clusters)
    {
        writer.Write(name);
        writer.Write(clusters);
    }

    public static void ReadHeader(BinaryReader reader, string name, int clusters)
    {
        var savedName = reader.ReadString();
        var savedClusters = reader.ReadInt32();
        if (savedName != name || savedClusters != clusters)
            throw new BadInputException($"checkpoint holds weighting '{savedName}' with k = {savedClusters}, but this run uses '{name}' with k = {clusters}");
    }

    public static void Write(BinaryWriter writer, double[]? values)
    {
        writer.Write(values is null ? -1 : values.Length);
        if (values is null) return;
        foreach (var v in values) writer.Write(v);
    }

    public static double[]? ReadDoubles(BinaryReader reader)
    {
        var n = reader.ReadInt32();
        if (n < 0) return null;
        var values = new double[n];
        for (var i = 0; i < n; i++) values[i] = reader.ReadDouble();
        return values;
    }

    /// <summary>Writes a tensor's values (any shape) as float64, with its element count.</summary>
    public static void Write(BinaryWriter writer, Tensor tensor)
    {
        using var scope = NewDisposeScope();
        Write(writer, tensor.detach().cpu().to_type(float64).contiguous().flatten().data<double>().ToArray());
    }

    /// <summary>Reads values written by <see cref="Write(BinaryWriter, Tensor)"/> into an existing tensor of the same size.</summary>
    public static void ReadInto(BinaryReader reader, Tensor tensor)
    {
        var values = ReadDoubles(reader) ?? throw new BadInputException("checkpoint weighting state is missing a tensor");
        if (values.Length != tensor.numel())
            throw new BadInputException($"checkpoint weighting tensor has {values.Length} values, expected {tensor.numel()}");
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        tensor.copy_(torch.tensor(values, dtype: float64).reshape(tensor.shape));
    }
}
