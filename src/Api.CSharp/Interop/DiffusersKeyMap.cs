using System.Text.RegularExpressions;
using TorchSharp;

namespace DiffusionFunctional.Interop;

/// <summary>
/// Our UNet's state_dict keys against diffusers' <c>UNet2DModel</c> keys (table: docs/interop.md). The networks are the
/// same; only the names and three layouts differ: our attention's fused 1x1-conv <c>qkv [3C, C, 1, 1]</c> is diffusers'
/// three linear layers <c>to_q</c>, <c>to_k</c>, <c>to_v</c> (<c>[C, C]</c> each, rows in q, k, v order), our
/// 1x1-conv <c>proj_out [C, C, 1, 1]</c> is the linear <c>to_out.0 [C, C]</c>, and our single resampler of a level is
/// entry 0 of diffusers' <c>downsamplers</c> / <c>upsamplers</c> list. Loading also accepts the attention names
/// diffusers itself renames on load (<c>query</c>, <c>key</c>, <c>value</c>, <c>proj_attn</c>).
/// </summary>
public static partial class DiffusersKeyMap
{
    private enum Layout { Same, SplitRowsIntoThree, ConvToLinear }

    private sealed record Rule(Regex Ours, Func<Match, string[]> Theirs, Layout Layout);

    private static readonly Rule[] Rules =
    [
        new(AttentionParameter("norm"), m => [$"{m.Groups[1]}.group_norm.{m.Groups[2]}"], Layout.Same),
        new(AttentionParameter("qkv"), m => new[] { "to_q", "to_k", "to_v" }.Select(p => $"{m.Groups[1]}.{p}.{m.Groups[2]}").ToArray(), Layout.SplitRowsIntoThree),
        new(AttentionParameter("proj_out"), m => [$"{m.Groups[1]}.to_out.0.{m.Groups[2]}"], Layout.ConvToLinear),
        new(Resampler(), m => [$"{m.Groups[1]}.{m.Groups[2]}s.0.{m.Groups[3]}"], Layout.Same),
    ];

    /// <summary>The names diffusers converts on load from its deprecated attention block (modeling_utils, _fix_state_dict_keys_on_load).</summary>
    private static readonly (string Current, string Deprecated)[] DeprecatedAttentionNames =
        [(".to_q.", ".query."), (".to_k.", ".key."), (".to_v.", ".value."), (".to_out.0.", ".proj_attn.")];

    [GeneratedRegex(@"^(.*\.attentions\.\d+)\.(?:norm|qkv|proj_out)\.(weight|bias)$")]
    private static partial Regex AnyAttentionParameter();

    private static Regex AttentionParameter(string layer) => new($@"^(.*\.attentions\.\d+)\.{layer}\.(weight|bias)$", RegexOptions.Compiled);

    [GeneratedRegex(@"^((?:down|up)_blocks\.\d+)\.(downsampler|upsampler)\.(.*)$")]
    private static partial Regex Resampler();

    /// <summary>Our key's diffusers counterparts (one, or three for a fused qkv) and how the tensor is laid out there.</summary>
    private static (string[] Theirs, Layout Layout) Map(string ours)
    {
        foreach (var rule in Rules)
        {
            var match = rule.Ours.Match(ours);
            if (match.Success) return (rule.Theirs(match), rule.Layout);
        }
        return ([ours], Layout.Same);
    }

    /// <summary>The diffusers key of each of our keys that maps one to one (the qkv keys map to three: see <see cref="ToDiffusers"/>).</summary>
    public static IReadOnlyList<string> DiffusersKeys(string ours) => Map(ours).Theirs;

    /// <summary>Our state_dict as diffusers' <c>UNet2DModel</c> state_dict: renamed, qkv split, 1x1 convs as linear weights.</summary>
    public static StateDict ToDiffusers(IEnumerable<KeyValuePair<string, torch.Tensor>> ours)
    {
        var result = new StateDict();
        using var noGrad = torch.no_grad();
        foreach (var (key, tensor) in ours)
        {
            using var scope = torch.NewDisposeScope();
            var (theirs, layout) = Map(key);
            var parts = layout == Layout.SplitRowsIntoThree ? tensor.chunk(3, 0) : [tensor];
            for (var i = 0; i < theirs.Length; i++)
            {
                var shape = TheirShape(parts[i].shape, layout);
                result.Add(theirs[i], parts[i].detach().reshape(shape).contiguous().clone().DetachFromDisposeScope());
            }
        }
        return result;
    }

    /// <summary>
    /// Builds our state_dict (shapes <paramref name="ourShapes"/>) from a diffusers <c>UNet2DModel</c> state_dict. A
    /// missing, unexpected or mis-shaped key is a <see cref="BadInputException"/> naming it in diffusers' terms.
    /// </summary>
    public static StateDict FromDiffusers(IReadOnlyDictionary<string, torch.Tensor> theirs, IReadOnlyDictionary<string, long[]> ourShapes)
    {
        var plan = ourShapes.Select(kv => (Ours: kv.Key, Shape: kv.Value, Source: Map(kv.Key))).ToList();
        var resolved = plan.ToDictionary(p => p.Ours, p => p.Source.Theirs.Select(k => Resolve(k, theirs)).ToArray());
        var missing = plan.SelectMany(p => p.Source.Theirs.Where((k, i) => resolved[p.Ours][i] is null)).ToList();
        if (missing.Count > 0) throw new BadInputException($"missing key {missing[0]}{More(missing.Count)} (diffusers UNet2DModel keys expected)");
        var used = resolved.Values.SelectMany(v => v).ToHashSet();
        var unexpected = theirs.Keys.Where(k => !used.Contains(k)).ToList();
        if (unexpected.Count > 0) throw new BadInputException($"unexpected key {unexpected[0]}{More(unexpected.Count)} (not a key of this model)");
        foreach (var (ours, shape, (_, layout)) in plan)
            foreach (var key in resolved[ours])
            {
                var expected = TheirShape(layout == Layout.SplitRowsIntoThree ? [shape[0] / 3, .. shape[1..]] : shape, layout);
                if (!theirs[key!].shape.SequenceEqual(expected))
                    throw new BadInputException($"key {key} has shape {StateDict.FormatShape(theirs[key!].shape)}; this model needs {StateDict.FormatShape(expected)}");
            }
        var result = new StateDict();
        foreach (var (ours, shape, _) in plan)
        {
            using var scope = torch.NewDisposeScope();
            var sources = resolved[ours].Select(k => theirs[k!]).ToArray();
            var joined = sources.Length == 1 ? sources[0].alias() : torch.cat(sources, 0);
            result.Add(ours, joined.reshape(shape).contiguous().clone().DetachFromDisposeScope());
        }
        return result;
    }

    /// <summary>Checks a state_dict with our own keys against the model's shapes, naming the first missing, unexpected or mis-shaped key.</summary>
    public static void CheckOwnKeys(IReadOnlyDictionary<string, torch.Tensor> ours, IReadOnlyDictionary<string, long[]> shapes)
    {
        var missing = shapes.Keys.Where(k => !ours.ContainsKey(k)).ToList();
        if (missing.Count > 0) throw new BadInputException($"missing key {missing[0]}{More(missing.Count)} (dfn's own keys expected)");
        var unexpected = ours.Keys.Where(k => !shapes.ContainsKey(k)).ToList();
        if (unexpected.Count > 0) throw new BadInputException($"unexpected key {unexpected[0]}{More(unexpected.Count)} (not a key of this model)");
        foreach (var (key, shape) in shapes)
            if (!ours[key].shape.SequenceEqual(shape))
                throw new BadInputException($"key {key} has shape {StateDict.FormatShape(ours[key].shape)}; this model needs {StateDict.FormatShape(shape)}");
    }

    /// <summary>True when the keys are dfn's own (written by dfn 1.1's export): a fused qkv attention or a singular resampler.</summary>
    public static bool HasOwnKeys(IEnumerable<string> keys) =>
        keys.Any(k => AnyAttentionParameter().IsMatch(k) || Resampler().IsMatch(k));

    private static string? Resolve(string key, IReadOnlyDictionary<string, torch.Tensor> theirs)
    {
        if (theirs.ContainsKey(key)) return key;
        foreach (var (current, deprecated) in DeprecatedAttentionNames)
        {
            if (!key.Contains(current)) continue;
            var old = key.Replace(current, deprecated);
            if (theirs.ContainsKey(old)) return old;
        }
        return null;
    }

    /// <summary>Where diffusers has a linear layer, a 1x1 conv weight [O, I, 1, 1] becomes [O, I]; anything else is unchanged.</summary>
    private static long[] TheirShape(long[] shape, Layout layout) =>
        layout != Layout.Same && shape.Length == 4 ? [shape[0], shape[1]] : shape;

    private static string More(int count) => count > 1 ? $" and {count - 1} more" : "";
}
