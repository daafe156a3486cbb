using System.Diagnostics;
using TorchSharp;
using static TorchSharp.torch;

namespace DiffusionFunctional.Backend;

/// <summary>
/// Checks that the convolution kernels libtorch will use compute correct numbers on this CPU: forward, input-gradient
/// and weight-gradient passes of the convolution shapes our models use, on fixed data, against the same computation in
/// float64 (which ATen runs with its own kernels, never oneDNN).
/// <para>
/// <b>Tolerance.</b> Each output element is a sum of K products (K = in-channels x kernel area for the forward pass,
/// out-channels x kernel area for the input gradient, batch x output area for the weight gradient). Whatever the
/// order and blocking of the sum, float arithmetic with unit roundoff u keeps its error within K u times the same sum
/// taken over absolute values (Higham, "Accuracy and Stability of Numerical Algorithms", 2nd ed., eq. 3.5), plus the
/// rounding of the result. The check computes that absolute sum exactly (the same passes in float64 on |x|, |w|,
/// |dy|) and allows twice the bound: a correct kernel cannot exceed it, while the failures it exists for (unwritten
/// or mis-blocked output) are wrong by a large fraction of the absolute sum. NaN or infinity anywhere fails.
/// bfloat16 (for mixed precision) is checked the same way from bf16-rounded inputs, allowing in addition one bf16
/// rounding (2^-8) of the absolute sum: still 25 times below the errors of a mis-blocked kernel.
/// </para>
/// <para>
/// <b>Not by luck.</b> Unwritten memory may happen to hold zeros or the right values, so every case runs in two rounds;
/// before the second, freed memory of the sizes involved is filled with NaN (the allocator hands it out again), and
/// both rounds run at one thread and at every core. A configuration passes only when every comparison passes.
/// </para>
/// </summary>
public static class KernelCheck
{
    /// <summary>One convolution shape: batch, channels in and out, square input size, kernel, stride (padding keeps
    /// the size for odd kernels, none for even ones, as in a patch embedding).</summary>
    public sealed record Case(int Batch, int InChannels, int OutChannels, int Size, int Kernel, int Stride)
    {
        /// <summary>oneDNN's way of writing a problem, e.g. <c>mb16_ic24oc16_ih8kh3sh1</c>.</summary>
        public override string ToString() => $"mb{Batch}_ic{InChannels}oc{OutChannels}_ih{Size}kh{Kernel}sh{Stride}";
    }

    /// <summary>The shapes checked: every preset's characteristic convolutions (image in, channel counts that are and
    /// are not multiples of 16, the concatenations of the UNet's way up, 1x1 skips, stride-2 downsampling, a DiT patch
    /// embedding), at the batch sizes of training and sampling.</summary>
    public static IReadOnlyList<Case> Cases { get; } =
    [
        new(16, 1, 8, 8, 3, 1), new(16, 8, 8, 8, 3, 1), new(16, 24, 16, 8, 3, 1), new(16, 16, 16, 8, 3, 2),
        new(16, 24, 8, 8, 1, 1), new(8, 3, 32, 16, 3, 1), new(8, 96, 32, 14, 3, 1), new(8, 64, 64, 7, 3, 1),
        new(64, 16, 16, 16, 3, 1), new(4, 192, 64, 7, 1, 1), new(8, 1, 64, 16, 2, 2), new(2, 128, 128, 16, 3, 1),
        new(64, 48, 16, 4, 3, 1), new(3, 32, 3, 28, 3, 1),
    ];

    /// <summary>The three passes of a convolution.</summary>
    public static IReadOnlyList<string> Passes { get; } = ["forward", "input gradient", "weight gradient"];

    /// <summary>One comparison that failed.</summary>
    public sealed record Failure(Case Case, string Pass, ScalarType Precision, int Threads, int Round, double Excess)
    {
        /// <inheritdoc/>
        public override string ToString() =>
            $"{Pass} of {Case} in {(Precision == ScalarType.BFloat16 ? "bf16" : "fp32")} at {Threads} thread(s): " +
            (double.IsFinite(Excess) ? $"{Excess:G3}x the error bound" : "NaN or infinity");
    }

    /// <summary>The outcome for one precision.</summary>
    /// <param name="Precision">Float32 or BFloat16.</param>
    /// <param name="Comparisons">Output tensors compared.</param>
    /// <param name="Failures">The comparisons that failed.</param>
    /// <param name="WorstExcess">The largest error found, as a multiple of its bound (a correct kernel stays below 1).</param>
    /// <param name="Elapsed">Wall time of the check.</param>
    public sealed record Result(ScalarType Precision, int Comparisons, IReadOnlyList<Failure> Failures, double WorstExcess, TimeSpan Elapsed)
    {
        /// <summary>Whether every comparison passed.</summary>
        public bool Correct => Failures.Count == 0;
    }

    /// <summary>Runs every case in <paramref name="precision"/> (Float32 or BFloat16) at each of
    /// <paramref name="threadCounts"/>, in two rounds; libtorch's thread count is restored afterwards.</summary>
    public static Result Run(ScalarType precision, IReadOnlyList<int> threadCounts)
    {
        var clock = Stopwatch.StartNew();
        var failures = new List<Failure>();
        var (comparisons, worst) = (0, 0.0);
        var threadsBefore = get_num_threads();
        try
        {
            for (var round = 1; round <= 2; round++)
                foreach (var testCase in Cases)
                {
                    using var scope = NewDisposeScope();
                    var reference = new Reference(testCase, precision, seed: 1000 * round + Cases.ToList().IndexOf(testCase));
                    foreach (var threads in threadCounts)
                    {
                        set_num_threads(threads);
                        if (round == 2) PoisonFreedMemory(testCase);
                        var computed = reference.Compute();
                        for (var pass = 0; pass < 3; pass++)
                        {
                            var excess = Excess(computed[pass], reference.Exact[pass], reference.Bound[pass]);
                            comparisons++;
                            worst = Math.Max(worst, excess);
                            if (!(excess <= 1)) failures.Add(new Failure(testCase, Passes[pass], precision, threads, round, excess));
                        }
                    }
                }
        }
        finally
        {
            set_num_threads(threadsBefore);
        }
        return new Result(precision, comparisons, failures, worst, clock.Elapsed);
    }

    /// <summary>The largest |computed - exact| / bound over the elements (+infinity when <paramref name="computed"/>
    /// holds NaN or infinity); the comparison passes when it is at most 1.</summary>
    public static double Excess(Tensor computed, Tensor exact, Tensor bound)
    {
        using var scope = NewDisposeScope();
        var c = computed.to_type(ScalarType.Float64);
        if (!c.isfinite().all().item<bool>()) return double.PositiveInfinity;
        return ((c - exact).abs() / bound).max().item<double>();
    }

    /// <summary>Fills freed memory of the sizes a case allocates with NaN, so that an output a kernel leaves unwritten
    /// reads as NaN rather than as zeros fresh from the operating system.</summary>
    private static void PoisonFreedMemory(Case c)
    {
        using var scope = NewDisposeScope();
        var padded = (c.InChannels + 15) / 16 * 16 + (c.OutChannels + 15) / 16 * 16;
        foreach (var elements in new long[] { (long)c.Batch * padded * c.Size * c.Size, (long)padded * padded * c.Kernel * c.Kernel, 1L << 20 })
            _ = Scalars.Full([elements], double.NaN, ScalarType.Float32);
    }

    /// <summary>A case's inputs (rounded to the checked precision), its exact outputs in float64 and their error
    /// bounds, in the order of <see cref="Passes"/>.</summary>
    public sealed class Reference
    {
        private readonly Case c;
        private readonly ScalarType precision;
        private readonly Tensor x, w, dy;

        /// <summary>The exact outputs (float64).</summary>
        public Tensor[] Exact { get; }
        /// <summary>Twice the rigorous error bound of each output element.</summary>
        public Tensor[] Bound { get; }

        /// <summary>Draws the case's inputs from <paramref name="seed"/> and computes the reference.</summary>
        public Reference(Case c, ScalarType precision, int seed)
        {
            this.c = c;
            this.precision = precision;
            using var generator = new Generator((ulong)seed);
            var outSize = (c.Size + 2 * Padding(c) - c.Kernel) / c.Stride + 1;
            // Inputs are rounded to the checked precision once, so the float64 reference sees exactly the same values.
            x = Rounded(randn([c.Batch, c.InChannels, c.Size, c.Size], generator: generator));
            w = Rounded(randn([c.OutChannels, c.InChannels, c.Kernel, c.Kernel], generator: generator).Over(Math.Sqrt(c.InChannels * c.Kernel * c.Kernel)));
            dy = Rounded(randn([c.Batch, c.OutChannels, outSize, outSize], generator: generator));
            Exact = Passes(x, w, dy, ScalarType.Float64);
            var absolute = Passes(x.abs(), w.abs(), dy.abs(), ScalarType.Float64);
            long[] terms = [c.InChannels * c.Kernel * c.Kernel, c.OutChannels * c.Kernel * c.Kernel, (long)c.Batch * outSize * outSize];
            // bf16 kernels accumulate in fp32 but may round partial sums to bf16 on the way (2^-8 of the absolute sum).
            var bf16Rounding = precision == ScalarType.BFloat16 ? Math.Pow(2, -8) : 0;
            Bound = Enumerable.Range(0, 3)
                .Select(i => absolute[i].Times(2 * ((terms[i] + 1) * Math.Pow(2, -24) + bf16Rounding)).Plus(1e-30))
                .ToArray();
        }

        /// <summary>The three passes with the kernels in force, in the checked precision.</summary>
        public Tensor[] Compute() => Passes(x, w, dy, precision);

        private Tensor Rounded(Tensor t)
        {
            using (t)
            using (var rounded = t.to_type(precision))
                return rounded.to_type(ScalarType.Float64);
        }

        private Tensor[] Passes(Tensor input, Tensor weight, Tensor gradient, ScalarType type)
        {
            using var scope = NewDisposeScope();
            var xi = input.to_type(type).detach().requires_grad_(true);
            var wi = weight.to_type(type).detach().requires_grad_(true);
            var y = nn.functional.conv2d(xi, wi, strides: [c.Stride, c.Stride], padding: [Padding(c), Padding(c)]);
            y.backward([gradient.to_type(type)]);
            return [y.detach().MoveToOuterDisposeScope(), xi.grad!.detach().MoveToOuterDisposeScope(), wi.grad!.detach().MoveToOuterDisposeScope()];
        }

        private static long Padding(Case c) => c.Kernel % 2 == 1 ? c.Kernel / 2 : 0;
    }
}
