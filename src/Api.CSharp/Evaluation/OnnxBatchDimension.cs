using System.Text;

namespace DiffusionFunctional.Evaluation;

/// <summary>
/// Makes the batch dimension of an ONNX model symbolic, so that one session run takes many images. The graphs that
/// NuGet's Microsoft.ML.DnnImageFeaturizer.ResNet18 ships declare every shape with a fixed leading 1.
/// </summary>
/// <remarks>
/// Only the leading dimension of the graph's inputs, outputs and value_info shapes changes (dim_value 1 becomes
/// dim_param <c>N</c>); every other byte, the weights included, is copied as it is. The field numbers come from
/// onnx.proto (ModelProto.graph 7; GraphProto.node 1, input 11, output 12, value_info 13; NodeProto.op_type 4;
/// ValueInfoProto.type 2; TypeProto.tensor_type 1; TypeProto.Tensor.shape 2; TensorShapeProto.dim 1;
/// Dimension.dim_value 1, dim_param 2), the encoding from the protobuf wire format (varint tags and lengths).
/// Written here rather than with a served package: OnnxSharp 0.3.2 (generated ONNX classes) parses all 63 MB of
/// weights into objects and writes them back (0.3-1.2 s per load), and a first version on Google.Protobuf's streams,
/// which copy every length-delimited field, left the process 320 MB larger after loading than this walk does
/// (measured, docs/benchmarks-history.md, "Batched extraction against one image per run"). This walk measures the result first and writes it into one array: the input and
/// the output are the only copies, and the result parses to the same model as OnnxSharp's rewrite (checked once).
/// A graph is accepted only when each of its operators treats the images of a batch independently, so that the
/// rewrite cannot change any result: a Reshape with the batch baked into its shape, for one, is refused.
/// </remarks>
internal static class OnnxBatchDimension
{
    enum Message { Model, Graph, ValueInfo, Type, TensorType, Shape }

    const int ModelGraph = 7;
    const int GraphNode = 1, GraphInput = 11, GraphOutput = 12, GraphValueInfo = 13;
    const int NodeOpType = 4;
    const int ValueInfoType = 2, TypeTensor = 1, TensorShape = 2, ShapeDim = 1;
    const int DimValue = 1, DimParam = 2;
    const int Varint = 0, Fixed64 = 1, LengthDelimited = 2, Fixed32 = 5;

    /// <summary>Operators whose output for one image depends on that image alone (what ResNet-18 uses, and kin).</summary>
    // QuantizeLinear and DequantizeLinear (a QDQ int8 model) qualify with per-tensor activation scales, which scale every
    // image alike; a per-axis scale along the batch axis would not match a symbolic batch and fails at run time, not silently.
    static readonly HashSet<string> PerImageOperators =
        ["Conv", "BatchNormalization", "Relu", "Add", "Sub", "Mul", "MaxPool", "AveragePool", "GlobalAveragePool", "GlobalMaxPool", "Identity",
         "QuantizeLinear", "DequantizeLinear"];

    /// <summary>The model with leading dimension <paramref name="symbol"/> instead of 1 on every declared shape.</summary>
    /// <exception cref="BadInputException">The bytes are not an ONNX model, a shape does not start with 1, or an operator may mix images.</exception>
    public static byte[] MakeBatchDynamic(byte[] model, string symbol = "N")
    {
        try
        {
            var output = new byte[Rewrite(model, Message.Model, symbol, [], write: false)];
            Rewrite(model, Message.Model, symbol, output, write: true);
            return output;
        }
        catch (Exception e) when (e is ArgumentOutOfRangeException or IndexOutOfRangeException)
        {
            throw new BadInputException("the ONNX model is not a valid protobuf message (a field runs past its end)");
        }
        catch (OverflowException)
        {
            throw new BadInputException("the ONNX model is not a valid protobuf message (a length is out of range)");
        }
    }

    /// <summary>
    /// Copies <paramref name="message"/> of the given kind field by field into <paramref name="output"/> (only
    /// counting when not <paramref name="write"/>), rewriting the fields on the way to the leading dimension.
    /// </summary>
    /// <returns>The length of the rewritten message.</returns>
    static int Rewrite(ReadOnlySpan<byte> message, Message kind, string symbol, Span<byte> output, bool write)
    {
        int read = 0, written = 0;
        var dimensions = 0;
        while (read < message.Length)
        {
            var start = read;
            var tag = ReadVarint(message, ref read);
            var field = (int)(tag >> 3);
            switch ((int)(tag & 7))
            {
                case Varint: ReadVarint(message, ref read); break;
                case Fixed64: read += 8; break;
                case Fixed32: read += 4; break;
                case LengthDelimited:
                    var length = checked((int)ReadVarint(message, ref read));
                    var payload = message.Slice(read, length);
                    read += length;
                    if (kind == Message.Graph && field == GraphNode) CheckOperator(payload);
                    var child = Child(kind, field);
                    if (kind == Message.Shape && field == ShapeDim && dimensions++ == 0)
                    {
                        written = Put(LeadingDimension(payload, symbol), output, written, write);
                        continue;
                    }
                    if (child is { } inner)
                    {
                        written = PutVarint(tag, output, written, write);
                        written = PutVarint((ulong)Rewrite(payload, inner, symbol, [], write: false), output, written, write);
                        written += Rewrite(payload, inner, symbol, write ? output[written..] : [], write);
                        continue;
                    }
                    break;
                default: throw new BadInputException($"the ONNX model has a protobuf field {field} of wire type {tag & 7}, which ONNX does not use");
            }
            if (read > message.Length) throw new ArgumentOutOfRangeException(nameof(message));
            written = Put(message[start..read], output, written, write);
        }
        return written;
    }

    /// <summary>The kind of the message a length-delimited field holds, when it lies on the way to a shape.</summary>
    static Message? Child(Message kind, int field) => (kind, field) switch
    {
        (Message.Model, ModelGraph) => Message.Graph,
        (Message.Graph, GraphInput or GraphOutput or GraphValueInfo) => Message.ValueInfo,
        (Message.ValueInfo, ValueInfoType) => Message.Type,
        (Message.Type, TypeTensor) => Message.TensorType,
        (Message.TensorType, TensorShape) => Message.Shape,
        _ => null,
    };

    /// <summary>The whole dim field (tag, length, Dimension) with dim_param <paramref name="symbol"/>, after checking the old one is 1.</summary>
    static byte[] LeadingDimension(ReadOnlySpan<byte> dimension, string symbol)
    {
        long? value = null;
        var read = 0;
        while (read < dimension.Length)
        {
            var tag = ReadVarint(dimension, ref read);
            if ((tag & 7) == Varint)
            {
                var v = ReadVarint(dimension, ref read);
                if (tag >> 3 == DimValue) value = (long)v;
            }
            else if ((tag & 7) == LengthDelimited)
            {
                var skip = checked((int)ReadVarint(dimension, ref read));
                read += skip;
            }
            else throw new BadInputException($"the ONNX graph has a shape dimension with a field of wire type {tag & 7}");
        }
        if (value != 1) throw new BadInputException($"the ONNX graph declares a leading dimension of {value?.ToString() ?? "(symbolic)"}, expected a fixed batch of 1");
        var name = Encoding.UTF8.GetBytes(symbol);
        var inner = new byte[10 + name.Length];
        var innerLength = PutVarint((DimParam << 3) | LengthDelimited, inner, 0, true);
        innerLength = PutVarint((ulong)name.Length, inner, innerLength, true);
        innerLength = Put(name, inner, innerLength, true);
        var field = new byte[20 + innerLength];
        var length = PutVarint((ShapeDim << 3) | LengthDelimited, field, 0, true);
        length = PutVarint((ulong)innerLength, field, length, true);
        length = Put(inner.AsSpan(0, innerLength), field, length, true);
        return field[..length];
    }

    static void CheckOperator(ReadOnlySpan<byte> node)
    {
        var read = 0;
        while (read < node.Length)
        {
            var tag = ReadVarint(node, ref read);
            switch ((int)(tag & 7))
            {
                case Varint: ReadVarint(node, ref read); break;
                case Fixed64: read += 8; break;
                case Fixed32: read += 4; break;
                case LengthDelimited:
                    var length = checked((int)ReadVarint(node, ref read));
                    if (tag >> 3 == NodeOpType && Encoding.UTF8.GetString(node.Slice(read, length)) is var op && !PerImageOperators.Contains(op))
                        throw new BadInputException($"the ONNX graph has a {op} operator, which may fix or mix the batch dimension; its batch cannot be made dynamic");
                    read += length;
                    break;
                default: throw new BadInputException($"the ONNX graph has a node field of wire type {tag & 7}, which ONNX does not use");
            }
        }
    }

    static ulong ReadVarint(ReadOnlySpan<byte> bytes, ref int position)
    {
        ulong value = 0;
        for (var shift = 0; shift < 64; shift += 7)
        {
            var b = bytes[position++];
            value |= (ulong)(b & 0x7F) << shift;
            if (b < 0x80) return value;
        }
        throw new BadInputException("the ONNX model is not a valid protobuf message (a varint is longer than 10 bytes)");
    }

    static int PutVarint(ulong value, Span<byte> output, int at, bool write)
    {
        do
        {
            var b = (byte)(value & 0x7F);
            value >>= 7;
            if (write) output[at] = value == 0 ? b : (byte)(b | 0x80);
            at++;
        } while (value != 0);
        return at;
    }

    static int Put(ReadOnlySpan<byte> bytes, Span<byte> output, int at, bool write)
    {
        if (write) bytes.CopyTo(output[at..]);
        return at + bytes.Length;
    }
}
