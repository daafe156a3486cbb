using System.Buffers.Binary;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using TorchSharp;

namespace DiffusionFunctional.Interop;

/// <summary>
/// The safetensors format (what diffusers' <c>from_pretrained</c> reads first): an 8-byte little-endian header length,
/// a JSON header mapping each name to <c>{"dtype", "shape", "data_offsets": [begin, end]}</c> (offsets into the data
/// that follows; <c>__metadata__</c> holds string pairs), then the raw little-endian tensors. Hand-written rather than
/// TorchSharp.PyBridge's: its writer does not pad the header to 8 bytes as the format's reference writer does (so
/// memory-mapped readers may see misaligned tensors) and its reader names neither the tensor nor the bound that a bad
/// header breaks.
/// </summary>
public static class SafetensorsFile
{
    private const long MaxHeaderBytes = 100_000_000;

    private static readonly Dictionary<string, torch.ScalarType> DTypes = new()
    {
        ["F64"] = torch.ScalarType.Float64, ["F32"] = torch.ScalarType.Float32, ["F16"] = torch.ScalarType.Float16,
        ["BF16"] = torch.ScalarType.BFloat16, ["I64"] = torch.ScalarType.Int64, ["I32"] = torch.ScalarType.Int32,
        ["I16"] = torch.ScalarType.Int16, ["I8"] = torch.ScalarType.Int8, ["U8"] = torch.ScalarType.Byte,
        ["BOOL"] = torch.ScalarType.Bool,
    };

    /// <summary>Writes float32 tensors (in the given order) with <c>{"format": "pt"}</c> metadata, atomically.</summary>
    public static void Write(string path, IEnumerable<KeyValuePair<string, torch.Tensor>> tensors)
    {
        var ordered = tensors.ToList();
        var header = new JsonObject { ["__metadata__"] = new JsonObject { ["format"] = "pt" } };
        long offset = 0;
        foreach (var (key, tensor) in ordered)
        {
            if (tensor.dtype != torch.ScalarType.Float32) throw new ArgumentException($"{key} is {tensor.dtype}; the writer takes float32");
            var length = tensor.numel() * 4;
            header[key] = new JsonObject
            {
                ["dtype"] = "F32",
                ["shape"] = new JsonArray(tensor.shape.Select(s => (JsonNode?)s).ToArray()),
                ["data_offsets"] = new JsonArray(offset, offset + length),
            };
            offset += length;
        }
        var json = Encoding.UTF8.GetBytes(header.ToJsonString());
        // Spaces pad the header so the data, and so every float32 tensor, starts 8-byte aligned.
        var padded = new byte[(json.Length + 7) / 8 * 8];
        Array.Fill(padded, (byte)' ');
        json.CopyTo(padded, 0);
        AtomicFile.Write(path, temp =>
        {
            using var file = new FileStream(temp, FileMode.Create, FileAccess.Write);
            Span<byte> length = stackalloc byte[8];
            BinaryPrimitives.WriteUInt64LittleEndian(length, (ulong)padded.Length);
            file.Write(length);
            file.Write(padded);
            foreach (var (_, tensor) in ordered)
            {
                using var scope = torch.NewDisposeScope();
                file.Write(tensor.detach().cpu().contiguous().bytes);
            }
        });
    }

    /// <summary>Reads every tensor as contiguous float32 (F16, BF16 and F64 converted); any problem names the file and the tensor.</summary>
    public static StateDict Read(string path)
    {
        if (!File.Exists(path)) throw new BadInputException($"weights file not found: {path}");
        if (new FileInfo(path).Length > int.MaxValue) throw new BadInputException($"{path}: weights files over 2 GiB are not supported");
        var bytes = File.ReadAllBytes(path);
        try
        {
            var (entries, dataStart) = ReadHeader(bytes);
            var result = new StateDict();
            try
            {
                foreach (var (key, node) in entries) result.Add(key, ReadTensor(key, node, bytes.AsSpan(dataStart)));
                return result;
            }
            catch
            {
                result.Dispose();
                throw;
            }
        }
        catch (BadInputException e) { throw new BadInputException($"{path}: {e.Message}"); }
        catch (Exception e) when (e is JsonException or InvalidOperationException or FormatException or DecoderFallbackException or OverflowException)
        {
            throw new BadInputException($"{path} is not a readable safetensors file: {e.Message}");
        }
    }

    private static (List<KeyValuePair<string, JsonNode?>> Entries, int DataStart) ReadHeader(byte[] bytes)
    {
        if (bytes.Length < 8) throw new BadInputException("not a safetensors file (shorter than its header length)");
        var length = BinaryPrimitives.ReadUInt64LittleEndian(bytes);
        if (length > MaxHeaderBytes || (long)length > bytes.Length - 8)
            throw new BadInputException($"not a safetensors file (header length {length} for a file of {bytes.Length} bytes)");
        var text = new UTF8Encoding(false, throwOnInvalidBytes: true).GetString(bytes, 8, (int)length);
        var header = JsonNode.Parse(text) as JsonObject ?? throw new BadInputException("not a safetensors file (the header is not a JSON object)");
        return (header.Where(kv => kv.Key != "__metadata__").ToList(), 8 + (int)length);
    }

    private static torch.Tensor ReadTensor(string key, JsonNode? node, ReadOnlySpan<byte> data)
    {
        var dtypeName = (string?)node?["dtype"] ?? throw new BadInputException($"tensor {key} has no dtype");
        if (!DTypes.TryGetValue(dtypeName, out var dtype))
            throw new BadInputException($"tensor {key} has unsupported dtype {dtypeName} (float32, float16, bfloat16 or float64 expected)");
        TorchStorage.RequireFloat(key, dtype, dtypeName);
        var shape = node!["shape"]?.AsArray().Select(n => n!.GetValue<long>()).ToArray() ?? throw new BadInputException($"tensor {key} has no shape");
        var offsets = node["data_offsets"]?.AsArray().Select(n => n!.GetValue<long>()).ToArray() ?? [];
        if (offsets.Length != 2 || shape.Any(s => s < 0)) throw new BadInputException($"tensor {key} has a malformed entry");
        var (begin, end) = (offsets[0], offsets[1]);
        var count = checked(shape.Aggregate(1L, (a, b) => a * b));
        if (count > TorchStorage.MaxElements) throw new BadInputException($"tensor {key} has {count} elements; at most {TorchStorage.MaxElements} are read");
        var expected = count * TorchStorage.ElementSize(dtype);
        if (begin < 0 || end < begin || end > data.Length)
            throw new BadInputException($"tensor {key} lies at bytes [{begin}, {end}) of a {data.Length}-byte data section");
        if (end - begin != expected)
            throw new BadInputException($"tensor {key} of shape {StateDict.FormatShape(shape)} needs {expected} bytes; its entry spans {end - begin}");
        using var flat = TorchStorage.FromBytes(data.Slice((int)begin, (int)(end - begin)), dtype);
        using var shaped = flat.reshape(shape);
        return shaped.to_type(torch.ScalarType.Float32, copy: true);
    }
}
