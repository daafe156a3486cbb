using DiffusionFunctional.Interop.Pickle;
using TorchSharp;

namespace DiffusionFunctional.Interop;

/// <summary>A storage a PyTorch pickle refers to by key; <c>ElementOffset</c> and <c>Numel</c> describe the window a tensor sees.</summary>
internal sealed record StorageRef(string Key, string TypeName, torch.ScalarType DType, long Numel, long ElementOffset);

/// <summary>A tensor as <c>torch._utils._rebuild_tensor_v2</c> describes it: a storage, an offset into it, sizes and strides.</summary>
internal sealed record TensorRecord(StorageRef Storage, long Offset, long[] Shape, long[] Stride, bool RequiresGrad);

/// <summary>
/// What PyTorch's pickles may contain when they hold a state_dict, and how to turn the records into tensors.
/// The allowed globals are exactly those <c>torch.save(model.state_dict())</c> writes (docs/interop.md).
/// </summary>
internal static class TorchStorage
{
    /// <summary>PyTorch's typed storage classes and the element type each holds.</summary>
    private static readonly Dictionary<string, torch.ScalarType> StorageTypes = new()
    {
        ["FloatStorage"] = torch.ScalarType.Float32, ["DoubleStorage"] = torch.ScalarType.Float64,
        ["HalfStorage"] = torch.ScalarType.Float16, ["BFloat16Storage"] = torch.ScalarType.BFloat16,
        ["LongStorage"] = torch.ScalarType.Int64, ["IntStorage"] = torch.ScalarType.Int32,
        ["ShortStorage"] = torch.ScalarType.Int16, ["CharStorage"] = torch.ScalarType.Int8,
        ["ByteStorage"] = torch.ScalarType.Byte, ["BoolStorage"] = torch.ScalarType.Bool,
    };

    private static readonly HashSet<string> TensorRebuilders = ["_rebuild_tensor", "_rebuild_tensor_v2", "_rebuild_parameter", "_rebuild_parameter_with_state"];

    /// <summary>The most elements one tensor may have (2^31: weights files are read whole, up to 2 GiB).</summary>
    public const long MaxElements = 1L << 31;

    /// <summary>Bytes per element of a storage dtype.</summary>
    public static int ElementSize(torch.ScalarType dtype) => dtype switch
    {
        torch.ScalarType.Float64 or torch.ScalarType.Int64 => 8,
        torch.ScalarType.Float32 or torch.ScalarType.Int32 => 4,
        torch.ScalarType.Float16 or torch.ScalarType.BFloat16 or torch.ScalarType.Int16 => 2,
        _ => 1,
    };

    /// <summary>Why a global may not appear in a state_dict pickle, or null when it may.</summary>
    public static string? RefuseGlobal(PickleGlobal g)
    {
        if (g is { Module: "collections", Name: "OrderedDict" }) return null;
        if (g.Module == "torch._utils" && TensorRebuilders.Contains(g.Name)) return null;
        if (g.Module == "torch" && StorageTypes.ContainsKey(g.Name)) return null;
        if (g.Module == "torch" && g.Name.EndsWith("Storage", StringComparison.Ordinal))
            return $"tensor storage type {g} is not supported (floating-point and integer storages only)";
        return $"refusing pickle global {g}: a state_dict holds only tensors and plain containers, nothing else is loaded";
    }

    /// <summary>The pickle rules for a state_dict; <paramref name="persistentLoad"/> maps a persistent id to a <see cref="StorageRef"/>.</summary>
    public static PickleRules Rules(Func<object?[], StorageRef> persistentLoad) =>
        new(RefuseGlobal, Call, pid => persistentLoad(pid as object?[] ?? throw new PickleFormatException("a persistent id that is not a tuple")));

    /// <summary>The element type of a storage class named in a persistent id.</summary>
    public static (string Name, torch.ScalarType DType) StorageType(object? value) =>
        value is PickleGlobal { Module: "torch" } g && StorageTypes.TryGetValue(g.Name, out var dtype)
            ? (g.ToString(), dtype)
            : throw new PickleFormatException($"a persistent id names {value} where a storage type belongs");

    private static object? Call(PickleGlobal callee, object?[] args)
    {
        switch (callee.Name)
        {
            case "OrderedDict":
                var dict = new PickleDict();
                if (args.Length == 1 && args[0] is List<object?> pairs)
                    foreach (var pair in pairs.Cast<object?[]>()) dict[pair[0]!] = pair[1];
                return dict;
            case "_rebuild_tensor" or "_rebuild_tensor_v2":
                if (args.Length < 4) throw new PickleFormatException($"{callee} with {args.Length} arguments");
                var storage = args[0] as StorageRef ?? throw new PickleFormatException($"{callee} of something that is not a storage");
                var requiresGrad = args.Length > 4 && args[4] is true;
                return new TensorRecord(storage, AsLong(args[1]), Longs(args[2]), Longs(args[3]), requiresGrad);
            case "_rebuild_parameter" or "_rebuild_parameter_with_state":
                var data = args.Length >= 2 ? args[0] as TensorRecord : null;
                return data is null ? throw new PickleFormatException($"{callee} of something that is not a tensor") : data with { RequiresGrad = args[1] is true };
            default:
                throw new BadInputException($"refusing to call pickle global {callee}");
        }
    }

    private static long AsLong(object? value) => value is long l ? l : throw new PickleFormatException($"expected an integer, got {value ?? "None"}");

    private static long[] Longs(object? value) =>
        value is object?[] items ? items.Select(AsLong).ToArray() : throw new PickleFormatException("tensor sizes or strides that are not a tuple");

    /// <summary>
    /// The float32, contiguous copy of a tensor record, taken from the raw bytes of its storage. Views at an offset
    /// and any strides (channels-last, transposed) are honoured; a record that reaches outside its storage is refused.
    /// </summary>
    public static torch.Tensor Materialise(string key, TensorRecord record, Func<StorageRef, torch.Tensor> storageOf)
    {
        var (shape, stride) = (record.Shape, record.Stride);
        var invalid = new BadInputException($"tensor {key} has an invalid layout (sizes [{string.Join(", ", shape)}], strides [{string.Join(", ", stride)}], offset {record.Offset})");
        if (shape.Length != stride.Length || shape.Any(s => s < 0) || stride.Any(s => s < 0) || record.Offset < 0) throw invalid;
        RequireFloat(key, record.Storage.DType, record.Storage.TypeName);
        if (shape.Any(s => s == 0)) return torch.zeros(shape, torch.ScalarType.Float32);
        long last, count;
        try { (last, count) = checked((record.Offset + shape.Zip(stride, (s, st) => (s - 1) * st).Sum(), shape.Aggregate(1L, (a, b) => a * b))); }
        catch (OverflowException) { throw invalid; }
        if (count > MaxElements) throw new BadInputException($"tensor {key} has {count} elements; at most {MaxElements} are read");
        if (last >= record.Storage.Numel)
            throw new BadInputException($"tensor {key} reaches element {last} of a storage of {record.Storage.Numel} elements");
        var storage = storageOf(record.Storage);
        using var view = storage.as_strided(shape, stride, record.Storage.ElementOffset + record.Offset);
        using var dense = view.contiguous();
        return dense.to_type(torch.ScalarType.Float32, copy: true);
    }

    /// <summary>Refuses a non-floating-point tensor with a line naming it and its type.</summary>
    public static void RequireFloat(string key, torch.ScalarType dtype, string typeName)
    {
        if (dtype is not (torch.ScalarType.Float32 or torch.ScalarType.Float64 or torch.ScalarType.Float16 or torch.ScalarType.BFloat16))
            throw new BadInputException($"tensor {key} holds {typeName} values; weights must be floating point (float32, float16, bfloat16 or float64)");
    }

    /// <summary>A 1-D tensor over <paramref name="bytes"/> (little-endian) of the given element type.</summary>
    public static torch.Tensor FromBytes(ReadOnlySpan<byte> bytes, torch.ScalarType dtype)
    {
        var size = ElementSize(dtype);
        var tensor = torch.empty(bytes.Length / size, dtype);
        tensor.bytes = bytes[..(bytes.Length / size * size)].ToArray();
        return tensor;
    }
}
