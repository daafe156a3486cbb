using Google.Protobuf;

namespace DiffusionFunctional.Evaluation;

/// <summary>
/// Makes the batch dimension of an ONNX model symbolic, so that one session run takes many images. The graphs that
/// NuGet's Microsoft.ML.DnnImageFeaturizer.ResNet18 ships declare every shape with a fixed leading 1 (docs/evaluation.md).
/// </summary>
/// <remarks>
/// Only the leading dimension of the graph's inputs, outputs and value_info shapes changes (dim_value 1 becomes
/// dim_param <c>N</c>); every other field, the weights included, is copied unchanged. The field numbers come from
/// onnx.proto (ModelProto.graph 7; GraphProto.node 1, input 11, output 12, value_info 13; NodeProto.op_type 4;
/// ValueInfoProto.type 2; TypeProto.tensor_type 1; TypeProto.Tensor.shape 2; TensorShapeProto.dim 1;
/// Dimension.dim_value 1, dim_param 2). The protobuf encoding is read and written with Google.Protobuf; the walk
/// over those few fields is written here because the one served ONNX package (OnnxSharp 0.3.2) parses every weight
/// into objects and writes them back, 0.3-1.2 s and three copies of the 63 MB model at each load (measured).
/// A graph is accepted only when each of its operators treats the images of a batch independently, so that the
/// rewrite cannot change any result: a Reshape with the batch baked into its shape, for one, is refused.
/// </remarks>
internal static class OnnxBatchDimension
{
    const int ModelGraph = 7;
    const int GraphNode = 1, GraphInput = 11, GraphOutput = 12, GraphValueInfo = 13;
    const int NodeOpType = 4;
    const int ValueInfoType = 2;
    const int TypeTensor = 1;
    const int TensorShape = 2;
    const int ShapeDim = 1;
    const int DimValue = 1, DimParam = 2;

    /// <summary>Operators whose output for one image depends on that image alone (what ResNet-18 uses, and kin).</summary>
    static readonly HashSet<string> PerImageOperators =
        ["Conv", "BatchNormalization", "Relu", "Add", "Sub", "Mul", "MaxPool", "AveragePool", "GlobalAveragePool", "GlobalMaxPool", "Identity"];

    /// <summary>The model with leading dimension <paramref name="symbol"/> instead of 1 on every declared shape.</summary>
    /// <exception cref="BadInputException">The bytes are not an ONNX model, a shape does not start with 1, or an operator may mix images.</exception>
    public static byte[] MakeBatchDynamic(byte[] model, string symbol = "N")
    {
        try
        {
            return Rewrite(UnsafeByteOperations.UnsafeWrap(model), (field, payload) => field == ModelGraph ? RewriteGraph(payload, symbol) : null).ToByteArray();
        }
        catch (InvalidProtocolBufferException e)
        {
            throw new BadInputException($"the ONNX model is not a valid protobuf message: {e.Message}");
        }
    }

    static ByteString RewriteGraph(ByteString graph, string symbol) => Rewrite(graph, (field, payload) => field switch
    {
        GraphNode => CheckOperator(payload),
        GraphInput or GraphOutput or GraphValueInfo => Rewrite(payload, (f, type) => f == ValueInfoType ? RewriteType(type, symbol) : null),
        _ => null,
    });

    static ByteString? CheckOperator(ByteString node)
    {
        var input = node.CreateCodedInput();
        uint tag;
        while ((tag = input.ReadTag()) != 0)
        {
            if (WireFormat.GetTagFieldNumber(tag) == NodeOpType && WireFormat.GetTagWireType(tag) == WireFormat.WireType.LengthDelimited)
            {
                var op = input.ReadString();
                if (!PerImageOperators.Contains(op))
                    throw new BadInputException($"the ONNX graph has a {op} operator, which may fix or mix the batch dimension; its batch cannot be made dynamic");
            }
            else input.SkipLastField();
        }
        return null; // the node itself is copied unchanged
    }

    static ByteString? RewriteType(ByteString type, string symbol) =>
        Rewrite(type, (field, tensor) => field != TypeTensor ? null
            : Rewrite(tensor, (f, shape) => f == TensorShape ? RewriteShape(shape, symbol) : null));

    static ByteString RewriteShape(ByteString shape, string symbol)
    {
        var first = true;
        return Rewrite(shape, (field, dimension) =>
        {
            if (field != ShapeDim || !first) return null;
            first = false;
            var leading = ReadDimValue(dimension);
            if (leading != 1) throw new BadInputException($"the ONNX graph declares a leading dimension of {leading?.ToString() ?? "(symbolic)"}, expected a fixed batch of 1");
            using var output = new MemoryStream();
            var writer = new CodedOutputStream(output);
            writer.WriteTag(DimParam, WireFormat.WireType.LengthDelimited);
            writer.WriteString(symbol);
            writer.Flush();
            return ByteString.CopyFrom(output.ToArray());
        });
    }

    static long? ReadDimValue(ByteString dimension)
    {
        var input = dimension.CreateCodedInput();
        uint tag;
        long? value = null;
        while ((tag = input.ReadTag()) != 0)
        {
            if (WireFormat.GetTagFieldNumber(tag) == DimValue && WireFormat.GetTagWireType(tag) == WireFormat.WireType.Varint) value = input.ReadInt64();
            else input.SkipLastField();
        }
        return value;
    }

    /// <summary>
    /// Copies a message field by field; a length-delimited field for which <paramref name="replace"/> returns bytes is
    /// written with those bytes instead.
    /// </summary>
    static ByteString Rewrite(ByteString message, Func<int, ByteString, ByteString?> replace)
    {
        var input = message.CreateCodedInput();
        var buffer = new MemoryStream(message.Length + 64); // holds no native resource: nothing to dispose
        var output = new CodedOutputStream(buffer);
        uint tag;
        while ((tag = input.ReadTag()) != 0)
        {
            var field = WireFormat.GetTagFieldNumber(tag);
            output.WriteTag(tag);
            switch (WireFormat.GetTagWireType(tag))
            {
                case WireFormat.WireType.Varint: output.WriteUInt64(input.ReadUInt64()); break;
                case WireFormat.WireType.Fixed64: output.WriteFixed64(input.ReadFixed64()); break;
                case WireFormat.WireType.Fixed32: output.WriteFixed32(input.ReadFixed32()); break;
                case WireFormat.WireType.LengthDelimited:
                    var payload = input.ReadBytes();
                    output.WriteBytes(replace(field, payload) ?? payload);
                    break;
                default: throw new BadInputException($"the ONNX model has a protobuf field {field} of a wire type ONNX does not use ({WireFormat.GetTagWireType(tag)})");
            }
        }
        output.Flush();
        // The buffer is not used after this: wrap it instead of copying it (the model is 63 MB).
        return UnsafeByteOperations.UnsafeWrap(buffer.GetBuffer().AsMemory(0, (int)buffer.Length));
    }
}
