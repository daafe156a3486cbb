using System.Collections;
using System.Diagnostics.CodeAnalysis;
using TorchSharp;

namespace DiffusionFunctional.Interop;

/// <summary>
/// Named tensors in the order a file or a module lists them (a PyTorch state_dict). Owns its tensors: disposing it
/// disposes them.
/// </summary>
public sealed class StateDict : IReadOnlyDictionary<string, torch.Tensor>, IDisposable
{
    private readonly Dictionary<string, torch.Tensor> tensors = [];

    /// <summary>Keys whose file stored them with <c>requires_grad=True</c> (read for information; never applied).</summary>
    public HashSet<string> StoredWithGrad { get; } = [];

    /// <summary>Adds a tensor under a new key; a repeated key is bad input.</summary>
    public void Add(string key, torch.Tensor tensor)
    {
        if (!tensors.TryAdd(key, tensor)) throw new BadInputException($"key {key} appears twice");
    }

    /// <summary>A detached float32 CPU copy of every entry of <paramref name="module"/>'s state_dict.</summary>
    public static StateDict Of(torch.nn.Module module)
    {
        var result = new StateDict();
        using var noGrad = torch.no_grad();
        foreach (var (key, value) in module.state_dict())
        {
            using var scope = torch.NewDisposeScope();
            result.Add(key, value.detach().cpu().to_type(torch.ScalarType.Float32, copy: true).contiguous().MoveToOuterDisposeScope());
        }
        return result;
    }

    /// <summary>The shape of every entry, in order.</summary>
    public IReadOnlyDictionary<string, long[]> Shapes() => tensors.ToDictionary(kv => kv.Key, kv => kv.Value.shape);

    /// <inheritdoc/>
    public torch.Tensor this[string key] => tensors[key];
    /// <inheritdoc/>
    public IEnumerable<string> Keys => tensors.Keys;
    /// <inheritdoc/>
    public IEnumerable<torch.Tensor> Values => tensors.Values;
    /// <inheritdoc/>
    public int Count => tensors.Count;
    /// <inheritdoc/>
    public bool ContainsKey(string key) => tensors.ContainsKey(key);
    /// <inheritdoc/>
    public bool TryGetValue(string key, [MaybeNullWhen(false)] out torch.Tensor value) => tensors.TryGetValue(key, out value);
    /// <inheritdoc/>
    public IEnumerator<KeyValuePair<string, torch.Tensor>> GetEnumerator() => tensors.GetEnumerator();
    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();

    /// <summary>Disposes every tensor.</summary>
    public void Dispose()
    {
        foreach (var t in tensors.Values) t.Dispose();
        tensors.Clear();
    }

    /// <summary>"[a, b, c]", the way error messages print a shape.</summary>
    public static string FormatShape(long[] shape) => $"[{string.Join(", ", shape)}]";
}
