using DiffusionFunctional.Backend;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DiffusionFunctional.Weighting;

/// <summary>
/// The per-cluster gradients g_1..g_k of the model as rows of one preallocated [k, P] buffer (the "k gradient
/// copies" that gradient-based methods are allowed), their k x k Gram matrix in float64, and the write-back of a
/// combination sum_j w_j g_j into the parameters' <c>.grad</c>. The buffer is reused across steps and rebuilt only
/// when the parameter list or k changes.
/// </summary>
public sealed class ClusterGradients : IDisposable
{
    // Columns per block when the Gram matrix is accumulated in float64: bounds the temporary copy.
    private const long GramBlock = 1 << 16;

    private Parameter[] parameters = [];
    private Tensor? buffer;
    private Tensor[][] views = [];

    /// <summary>k, the number of rows.</summary>
    public int Rows { get; private set; }
    /// <summary>P, the number of trainable scalars the rows hold.</summary>
    public long Length { get; private set; }

    /// <summary>Row i (a view of the buffer, [P]); valid until the next <see cref="Prepare"/> that rebuilds.</summary>
    public Tensor Row(int i) => buffer![i];

    /// <summary>Makes sure the buffer fits these parameters and k (reallocating only when they change).</summary>
    public void Prepare(IReadOnlyList<Parameter> modelParameters, int rows)
    {
        var trainable = modelParameters.Where(p => p.requires_grad).ToArray();
        if (buffer is not null && rows == Rows && trainable.Length == parameters.Length
            && trainable.Zip(parameters).All(pair => ReferenceEquals(pair.First, pair.Second))) return;
        Release();
        parameters = trainable;
        Rows = rows;
        Length = trainable.Sum(p => p.numel());
        var first = trainable.FirstOrDefault() ?? throw new BadInputException("a gradient-based weighting needs at least one trainable parameter");
        // Buffer and views live across steps: keep them out of the caller's dispose scope.
        buffer = zeros([rows, Length], dtype: first.dtype, device: first.device).DetachFromDisposeScope();
        views = new Tensor[rows][];
        for (var r = 0; r < rows; r++)
        {
            var row = buffer[r].DetachFromDisposeScope();
            var offset = 0L;
            views[r] = new Tensor[trainable.Length];
            for (var p = 0; p < trainable.Length; p++)
            {
                var n = trainable[p].numel();
                using var slice = row.narrow(0, offset, n).DetachFromDisposeScope();
                views[r][p] = slice.view(trainable[p].shape).DetachFromDisposeScope();
                offset += n;
            }
            row.Dispose();
        }
    }

    /// <summary>Sets every parameter's gradient to zero (those without one stay without).</summary>
    public void ZeroParameterGradients()
    {
        using var scope = NewDisposeScope();
        foreach (var p in parameters) p.grad?.zero_();
    }

    /// <summary>Runs one backward of <paramref name="loss"/> from zeroed gradients and copies the result into row <paramref name="row"/>.</summary>
    public void Capture(Tensor loss, int row, bool retainGraph)
    {
        ZeroParameterGradients();
        loss.backward(null, retainGraph, false, null);
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        for (var p = 0; p < parameters.Length; p++)
        {
            var grad = parameters[p].grad;
            if (grad is null) views[row][p].zero_();
            else views[row][p].copy_(grad);
        }
    }

    /// <summary>The k x k Gram matrix [g_i . g_j], accumulated in float64 block by block.</summary>
    public double[,] Gram()
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var gram = zeros([Rows, Rows], dtype: float64, device: buffer!.device);
        for (var start = 0L; start < Length; start += GramBlock)
        {
            var block = buffer.narrow(1, start, Math.Min(GramBlock, Length - start)).to_type(float64);
            gram.AddInPlace(block.matmul(block.t()));
        }
        var values = gram.cpu().data<double>().ToArray();
        var result = new double[Rows, Rows];
        for (var i = 0; i < Rows; i++)
            for (var j = 0; j < Rows; j++)
                result[i, j] = values[i * Rows + j];
        return result;
    }

    /// <summary>Writes sum_j w_j g_j into each parameter's <c>.grad</c> (creating it where a parameter has none).</summary>
    public void WriteCombination(IReadOnlyList<double> weights)
    {
        if (weights.Count != Rows) throw new ArgumentException($"expected {Rows} weights, got {weights.Count}", nameof(weights));
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var w = tensor(weights.ToArray(), dtype: float64).to(buffer!.dtype).to(buffer.device).unsqueeze(0);
        var combined = w.matmul(buffer).squeeze(0);
        var offset = 0L;
        foreach (var p in parameters)
        {
            var n = p.numel();
            var part = combined.narrow(0, offset, n).view(p.shape);
            var grad = p.grad;
            if (grad is null) p.grad = part.clone().MoveToOuterDisposeScope();
            else grad.copy_(part);
            offset += n;
        }
    }

    private void Release()
    {
        foreach (var row in views)
            foreach (var v in row) v.Dispose();
        views = [];
        buffer?.Dispose();
        buffer = null;
    }

    /// <inheritdoc/>
    public void Dispose() => Release();
}
