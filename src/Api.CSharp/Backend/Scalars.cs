using TorchSharp;
using static TorchSharp.torch;

namespace DiffusionFunctional.Backend;

/// <summary>
/// Tensor arithmetic with numbers that keeps every native argument alive until libtorch has read it.
/// <para>
/// TorchSharp turns a number into a <see cref="Scalar"/>, a small native object freed by a finaliser, and passes
/// libtorch only its raw address; <c>a + b</c> and <c>a.add_(b)</c> make such a Scalar (the alpha of 1) inside
/// TorchSharp. Once the address is read nothing in managed code refers to the Scalar, so a garbage collection that
/// another thread starts during the native call can finalise it while libtorch reads it: the training stops with
/// "Expected false to be true" from <c>c10::Scalar</c>, or a tensor handle read the same way segfaults
/// (docs/platform.md, "Native arguments freed by a finaliser"). Every method here holds its Scalar in a
/// <c>using</c> and keeps its tensors reachable until the call returns. Hand-written: TorchSharp 0.107 has no
/// overloads that do this, and <c>src/BannedSymbols.txt</c> makes the compiler refuse the ones that do not.
/// </para>
/// </summary>
public static class Scalars
{
    /// <summary>The alpha of a plain sum, rooted for the life of the process.</summary>
    internal static readonly Scalar One = 1.ToScalar();

    /// <summary><c>a + b</c>.</summary>
    public static Tensor Plus(this Tensor a, Tensor b)
    {
        var result = a.add(b, One);
        GC.KeepAlive(a);
        GC.KeepAlive(b);
        return result;
    }

    /// <summary><c>a + value</c>; an integer keeps an integer tensor's type, as <c>a + 1</c> does.</summary>
    public static Tensor Plus(this Tensor a, long value) { using var s = value.ToScalar(); return Keep(a, a.add(s, One)); }

    /// <summary><c>a + value</c>.</summary>
    public static Tensor Plus(this Tensor a, double value) { using var s = value.ToScalar(); return Keep(a, a.add(s, One)); }

    /// <summary><c>a - value</c>.</summary>
    public static Tensor Minus(this Tensor a, long value) => a.Plus(-value);

    /// <summary><c>value - a</c>.</summary>
    public static Tensor SubtractedFrom(this Tensor a, double value) { using var neg = Keep(a, a.neg()); return neg.Plus(value); }

    /// <summary><c>a * factor</c>; an integer keeps an integer tensor's type.</summary>
    public static Tensor Times(this Tensor a, long factor) { using var s = factor.ToScalar(); return Keep(a, a.mul(s)); }

    /// <summary><c>a * factor</c>.</summary>
    public static Tensor Times(this Tensor a, double factor) { using var s = factor.ToScalar(); return Keep(a, a.mul(s)); }

    /// <summary><c>a / divisor</c> (true division, as <c>/</c>).</summary>
    public static Tensor Over(this Tensor a, double divisor) { using var s = divisor.ToScalar(); return Keep(a, a.div(s)); }

    /// <summary><c>a.add_(b, alpha)</c>: <paramref name="a"/> += alpha · <paramref name="b"/>, in place.</summary>
    public static Tensor AddInPlace(this Tensor a, Tensor b, double alpha = 1)
    {
        using var s = alpha.ToScalar();
        a.add_(b, s);
        GC.KeepAlive(b);
        return a;
    }

    /// <summary><c>a.div_(divisor)</c>, in place.</summary>
    public static Tensor DivideInPlace(this Tensor a, double divisor) { using var s = divisor.ToScalar(); return a.div_(s); }

    /// <summary><c>a.clamp(min, max)</c>.</summary>
    public static Tensor Clamp(this Tensor a, double min, double max)
    {
        using var lo = min.ToScalar();
        using var hi = max.ToScalar();
        return Keep(a, a.clamp(lo, hi));
    }

    /// <summary><c>a.clamp_min(min)</c>.</summary>
    public static Tensor ClampMin(this Tensor a, double min) { using var s = min.ToScalar(); return Keep(a, a.clamp_min(s)); }

    /// <summary><c>a.clamp_max(max)</c>.</summary>
    public static Tensor ClampMax(this Tensor a, double max) { using var s = max.ToScalar(); return Keep(a, a.clamp_max(s)); }

    /// <summary><c>a.pow(exponent)</c>.</summary>
    public static Tensor Pow(this Tensor a, double exponent) { using var s = exponent.ToScalar(); return Keep(a, a.pow(s)); }

    /// <summary><c>a²</c>, as <c>a.square()</c> computes it (<c>pow(a, 2)</c>).</summary>
    public static Tensor Squared(this Tensor a) { using var two = 2.ToScalar(); return Keep(a, a.pow(two)); }

    /// <summary><c>a.fill_(value)</c>, in place.</summary>
    public static Tensor FillInPlace(this Tensor a, double value) { using var s = value.ToScalar(); return a.fill_(s); }

    /// <summary>A tensor of <paramref name="shape"/> filled with <paramref name="value"/> (<c>torch.full</c>).</summary>
    public static Tensor Full(long[] shape, long value, ScalarType dtype, Device? device = null)
    {
        using var s = value.ToScalar();
        return full(shape, s, dtype: dtype, device: device);
    }

    /// <summary>A tensor of <paramref name="shape"/> filled with <paramref name="value"/> (<c>torch.full</c>).</summary>
    public static Tensor Full(long[] shape, double value, ScalarType dtype, Device? device = null)
    {
        using var s = value.ToScalar();
        return full(shape, s, dtype: dtype, device: device);
    }

    /// <summary><c>torch.arange(start, stop)</c>: start, start + 1, ..., stop - 1.</summary>
    public static Tensor Arange(long start, long stop, ScalarType dtype, Device? device = null)
    {
        using var from = start.ToScalar();
        using var to = stop.ToScalar();
        return arange(from, to, One, dtype, device);
    }

    static Tensor Keep(Tensor operand, Tensor result)
    {
        GC.KeepAlive(operand);
        return result;
    }
}
