using System.Text.Json.Nodes;
using DiffusionFunctional.Models;

namespace DiffusionFunctional.Interop;

/// <summary>
/// <see cref="UNetConfig"/> as the <c>config.json</c> of diffusers' <c>UNet2DModel</c>, both ways. Every field of
/// <c>UNet2DModel.__init__</c> is written (docs/interop.md lists each with the value our network implies). Where our
/// configuration has no diffusers equivalent (or a config.json asks for what our network cannot do) the conversion
/// refuses with one line naming the field.
/// </summary>
public static class DiffusersUNetConfig
{
    /// <summary>The file name diffusers reads a model's configuration from.</summary>
    public const string FileName = "config.json";

    /// <summary>The <c>config.json</c> of the <c>UNet2DModel</c> that computes exactly what a UNet of <paramref name="c"/> computes.</summary>
    public static JsonObject ToJson(UNetConfig c)
    {
        c.Validate();
        if (c.Routing != TaskRoutingKind.None)
            throw new BadInputException($"config field Routing = {c.Routing.ToString().ToLowerInvariant()} has no diffusers equivalent: UNet2DModel has no task routing (docs/routing-and-densities.md)");
        var channels = c.ChannelMultipliers.Select(m => c.BaseChannels * m).ToArray();
        var levels = channels.Length;
        var headDim = CommonHeadDim(c, channels);
        foreach (var width in channels.Prepend(c.BaseChannels))
            if (width % c.NormGroups != 0)
                throw new BadInputException($"config field NormGroups = {c.NormGroups} does not divide {width} channels; diffusers' UNet2DModel uses norm_num_groups groups in every GroupNorm");
        bool attended(int level) => c.AttentionLevels.Contains(level);
        return new JsonObject
        {
            ["_class_name"] = "UNet2DModel",
            ["sample_size"] = c.ImageSize,
            ["in_channels"] = c.ImageChannels,
            ["out_channels"] = c.ImageChannels,
            ["center_input_sample"] = false,
            ["time_embedding_type"] = "positional",
            ["time_embedding_dim"] = null,
            ["freq_shift"] = 0,
            ["flip_sin_to_cos"] = true,
            ["down_block_types"] = Strings(Enumerable.Range(0, levels).Select(i => attended(i) ? "AttnDownBlock2D" : "DownBlock2D")),
            ["mid_block_type"] = "UNetMidBlock2D",
            ["up_block_types"] = Strings(Enumerable.Range(0, levels).Reverse().Select(i => attended(i) ? "AttnUpBlock2D" : "UpBlock2D")),
            ["block_out_channels"] = new JsonArray(channels.Select(w => (JsonNode?)w).ToArray()),
            ["layers_per_block"] = c.ResBlocksPerLevel,
            ["mid_block_scale_factor"] = 1,
            ["downsample_padding"] = 1,
            ["downsample_type"] = "conv",
            ["upsample_type"] = "conv",
            ["dropout"] = c.Dropout,
            ["act_fn"] = "silu",
            ["attention_head_dim"] = headDim,
            ["norm_num_groups"] = c.NormGroups,
            ["attn_norm_num_groups"] = null,
            ["norm_eps"] = 1e-5,
            ["resnet_time_scale_shift"] = "default",
            ["add_attention"] = true,
            ["class_embed_type"] = null,
            ["num_class_embeds"] = null,
            ["num_train_timesteps"] = null,
        };
    }

    /// <summary>
    /// The <see cref="UNetConfig"/> of a <c>UNet2DModel</c> config.json. Absent fields take diffusers' defaults;
    /// <paramref name="imageSize"/> stands in when the file has no <c>sample_size</c>; <paramref name="file"/> names
    /// the file in messages.
    /// </summary>
    public static UNetConfig FromJson(JsonObject json, int? imageSize = null, string file = FileName)
    {
        var f = new Fields(json, file);
        f.Require("time_embedding_type", "positional");
        f.Require("flip_sin_to_cos", true);
        f.RequireNumber("freq_shift", 0, 0);
        f.Require("center_input_sample", false);
        f.Require("mid_block_type", "UNetMidBlock2D");
        f.Require("add_attention", true);
        f.RequireNumber("mid_block_scale_factor", 1, 1);
        f.RequireNumber("downsample_padding", 1, 1);
        f.Require("downsample_type", "conv");
        f.Require("upsample_type", "conv");
        f.Require("resnet_time_scale_shift", "default");
        f.RequireNumber("norm_eps", 1e-5, 1e-5);
        f.RequireNull("class_embed_type");
        f.RequireNull("num_class_embeds");
        var act = f.String("act_fn", "silu");
        if (act is not ("silu" or "swish")) throw f.Unsupported("act_fn", act, "silu");

        var widths = f.Ints("block_out_channels", [224, 448, 672, 896]);
        var down = f.Strings("down_block_types", ["DownBlock2D", "AttnDownBlock2D", "AttnDownBlock2D", "AttnDownBlock2D"]).Select(StripResPrefix).ToArray();
        var up = f.Strings("up_block_types", ["AttnUpBlock2D", "AttnUpBlock2D", "AttnUpBlock2D", "UpBlock2D"]).Select(StripResPrefix).ToArray();
        if (widths.Length == 0 || down.Length != widths.Length || up.Length != widths.Length)
            throw new BadInputException($"{file}: block_out_channels, down_block_types and up_block_types must have the same positive length ({widths.Length}, {down.Length}, {up.Length})");
        for (var i = 0; i < down.Length; i++)
        {
            if (down[i] is not ("DownBlock2D" or "AttnDownBlock2D")) throw f.Unsupported("down_block_types", down[i], "DownBlock2D or AttnDownBlock2D");
            var mirror = down[i] == "AttnDownBlock2D" ? "AttnUpBlock2D" : "UpBlock2D";
            if (up[widths.Length - 1 - i] != mirror) throw f.Unsupported("up_block_types", up[widths.Length - 1 - i], $"{mirror} (the mirror of down block {i})");
        }
        var c0 = widths[0];
        if (widths.Any(w => w <= 0 || w % c0 != 0)) throw f.Unsupported("block_out_channels", $"[{string.Join(", ", widths)}]", "multiples of the first width");
        var timeDim = f.OptionalInt("time_embedding_dim");
        if (timeDim is { } t && t != 4 * c0) throw f.Unsupported("time_embedding_dim", t.ToString(), $"null or {4 * c0}");
        var groups = f.Int("norm_num_groups", 32);
        if (f.OptionalInt("attn_norm_num_groups") is { } ag && ag != groups) throw f.Unsupported("attn_norm_num_groups", ag.ToString(), $"null or {groups}");
        if (f.Int("in_channels", 3) != f.Int("out_channels", 3)) throw f.Unsupported("out_channels", f.Int("out_channels", 3).ToString(), "equal to in_channels");

        var attention = Enumerable.Range(0, down.Length).Where(i => down[i] == "AttnDownBlock2D").ToArray();
        var config = new UNetConfig
        {
            ImageChannels = f.Int("in_channels", 3),
            ImageSize = SampleSize(f, imageSize, file),
            BaseChannels = c0,
            ChannelMultipliers = widths.Select(w => w / c0).ToArray(),
            ResBlocksPerLevel = f.Int("layers_per_block", 2),
            AttentionLevels = attention,
            AttentionHeads = Heads(f, widths, attention),
            Dropout = f.Number("dropout", 0),
            NormGroups = groups,
        };
        config.Validate();
        return config;
    }

    /// <summary>The head size shared by every attention layer (diffusers has one attention_head_dim for all of them).</summary>
    private static int CommonHeadDim(UNetConfig c, int[] channels)
    {
        var sites = c.AttentionLevels.Select(l => (Where: $"level {l}", Width: channels[l])).Append(("the middle block", channels[^1])).ToList();
        var middle = channels[^1] / c.AttentionHeads;
        foreach (var (where, width) in sites)
            if (width / c.AttentionHeads != middle)
                throw new BadInputException($"config field AttentionHeads = {c.AttentionHeads} gives heads of {width / c.AttentionHeads} channels at {where} but {middle} in the middle block; diffusers' UNet2DModel has one attention_head_dim for every attention layer");
        return middle;
    }

    /// <summary>Our head count from attention_head_dim: the same at every attention layer, or the file is refused.</summary>
    private static int Heads(Fields f, int[] widths, int[] attentionLevels)
    {
        var headDim = f.OptionalInt("attention_head_dim", absent: 8);
        var sites = attentionLevels.Select(l => widths[l]).Append(widths[^1]).ToArray();
        if (headDim is not { } d) return 1;  // null: each layer's head is as wide as the layer, so one head everywhere
        if (d <= 0 || sites.Any(w => w % d != 0) || sites.Distinct().Count() > 1)
            throw f.Unsupported("attention_head_dim", d.ToString(), $"a size dividing the attention widths [{string.Join(", ", sites.Distinct())}] into the same number of heads");
        return sites[0] / d;
    }

    private static int SampleSize(Fields f, int? given, string file)
    {
        if (given is { } size) return size;
        var node = f.Node("sample_size");
        if (node is null) throw new BadInputException($"{file} has no sample_size; pass the image size (dfn import --image-size PX)");
        if (node is not JsonArray) return f.Int("sample_size", 0);
        var sides = f.Ints("sample_size", []);
        return sides.Length == 2 && sides[0] == sides[1] ? sides[0] : throw f.Unsupported("sample_size", node.ToJsonString(), "a square size");
    }

    private static string StripResPrefix(string type) => type.StartsWith("UNetRes", StringComparison.Ordinal) ? type[7..] : type;

    private static JsonArray Strings(IEnumerable<string> items) => new(items.Select(s => (JsonNode?)s).ToArray());
}
