using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DiffusionFunctional.Training;

/// <summary>
/// Parameters laid end to end in one contiguous buffer, and optionally their gradients in a second: each parameter, and
/// each gradient, becomes a view of its slice (same values, same module, same <see cref="Parameter"/> objects). A
/// whole-model update (AdamW, the EMA, zeroing gradients, the bf16 working copy) is then a few operations over one buffer
/// instead of a few per parameter tensor: for the UNets here (about 200 tensors) TorchSharp's per-tensor loops cost more
/// than their arithmetic (docs/benchmarks-history.md, "What was tried, kept or not"). Written by hand because TorchSharp 0.107 has neither
/// PyTorch's foreach/fused optimisers nor <c>torch._foreach_*</c>.
/// <para>Backward keeps the gradient buffer filled because autograd adds into a gradient that already exists, in place;
/// code that works with these parameters must zero or copy into <c>.grad</c>, never replace it (<see
/// cref="EnsureAttached"/> checks).</para>
/// </summary>
internal sealed class FlatParameters : IDisposable
{
    private readonly long[] offsets;

    /// <summary>The parameters, in layout order.</summary>
    public IReadOnlyList<Parameter> Parameters { get; }
    /// <summary>Every parameter's values, end to end.</summary>
    public Tensor Values { get; }
    /// <summary>Every parameter's gradient in the same layout (null when laid out without gradients).</summary>
    public Tensor? Gradients { get; }

    /// <summary>Moves <paramref name="parameters"/> (one dtype, one device) into a new buffer, their values unchanged;
    /// <paramref name="withGradients"/> also gives each a zero gradient that is a view of <see cref="Gradients"/>.</summary>
    public FlatParameters(IEnumerable<Parameter> parameters, bool withGradients)
    {
        Parameters = parameters.ToArray();
        if (Parameters.Count == 0) throw new ArgumentException("no parameters to lay out", nameof(parameters));
        var first = Parameters[0];
        if (Parameters.Any(p => p.dtype != first.dtype || p.device_type != first.device_type || p.device_index != first.device_index))
            throw new ArgumentException("parameters laid out together need one dtype and one device", nameof(parameters));
        // Each slice starts at a multiple of 32 elements, at least 64 bytes for bf16 and wider types, as a tensor of its
        // own would (libtorch's CPU allocator aligns to 64 bytes), so kernels see weights aligned as before. The count
        // does not depend on the type, so an fp32 model and its bf16 copy share one layout; the gaps stay zero.
        const int alignment = 32;
        offsets = new long[Parameters.Count + 1];
        for (var i = 0; i < Parameters.Count; i++)
        {
            var end = offsets[i] + Parameters[i].numel();
            offsets[i + 1] = i + 1 == Parameters.Count ? end : (end + alignment - 1) / alignment * alignment;
        }
        Values = zeros(offsets[^1], dtype: first.dtype, device: first.device);
        Gradients = withGradients ? zeros(offsets[^1], dtype: first.dtype, device: first.device) : null;
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        for (var i = 0; i < Parameters.Count; i++)
        {
            var slice = SliceOf(Values, i);
            slice.copy_(Parameters[i]);
            Parameters[i].set_(slice);
            if (Gradients is not null) Parameters[i].grad = SliceOf(Gradients, i);
        }
    }

    /// <summary>Parameter <paramref name="index"/>'s part of <paramref name="buffer"/> (any buffer of this layout), shaped
    /// like the parameter: a view, which the caller disposes.</summary>
    public Tensor SliceOf(Tensor buffer, int index)
    {
        using var part = buffer.narrow(0, offsets[index], Parameters[index].numel());
        return part.view(Parameters[index].shape);
    }

    /// <summary>
    /// Throws when a parameter or gradient no longer lives in its slice (something replaced it: a module moved between
    /// devices, a <c>.grad</c> assigned instead of copied into), which the buffer-wide updates would silently miss. Checks
    /// each tensor's offset in its storage, and on the CPU also its address against the buffer's.
    /// </summary>
    public void EnsureAttached()
    {
        using var scope = NewDisposeScope();
        for (var i = 0; i < Parameters.Count; i++)
        {
            var p = Parameters[i];
            if (!InSlice(p, Values, i) || Gradients is not null && (p.grad is not { } g || !InSlice(g, Gradients, i)))
                throw new InvalidOperationException($"parameter {i} ({string.Join("x", p.shape)}) no longer lives in its flat buffer: its values or gradient were replaced");
        }
    }

    private bool InSlice(Tensor tensor, Tensor buffer, int index)
    {
        if (tensor.storage_offset() != offsets[index]) return false;
        if (buffer.device_type != DeviceType.CPU || tensor.numel() == 0) return true;
        var distance = Unsafe.ByteOffset(ref MemoryMarshal.GetReference(buffer.bytes), ref MemoryMarshal.GetReference(tensor.bytes));
        return distance == (nint)(offsets[index] * buffer.element_size());
    }

    /// <summary>Drops this object's references to the buffers (the parameters keep theirs).</summary>
    public void Dispose()
    {
        Values.Dispose();
        Gradients?.Dispose();
    }
}
