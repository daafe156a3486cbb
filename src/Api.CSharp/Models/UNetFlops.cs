namespace DiffusionFunctional.Models;

/// <summary>
/// Analytic forward-pass FLOPs of a <see cref="UNet"/> per image, counting a multiply-add as 2 FLOPs in
/// convolutions, linear layers and attention products (normalisation and activations are memory-bound and left out).
/// It walks the same structure as the UNet constructor. A training step costs about 3x the forward pass.
/// </summary>
public static class UNetFlops
{
    /// <summary>Floating-point operations of one forward pass for one image (multiply-adds counted as 2).</summary>
    public static double ForwardPerImage(UNetConfig c)
    {
        double Conv(int cin, int cout, int k, long size) => 2.0 * cin * cout * k * k * size * size;
        double Linear(int i, int o) => 2.0 * i * o;
        double Attention(int ch, long size)
        {
            var n = size * size;
            return Conv(ch, 3 * ch, 1, size) + Conv(ch, ch, 1, size) + 2 * (2.0 * n * n * ch);
        }
        var c0 = c.BaseChannels;
        var emb = 4 * c0;
        double Res(int cin, int cout, long size) =>
            Conv(cin, cout, 3, size) + Conv(cout, cout, 3, size) + Linear(emb, cout) + (cin != cout ? Conv(cin, cout, 1, size) : 0);

        var levels = c.ChannelMultipliers.Length;
        var sizes = new long[levels];
        sizes[0] = c.ImageSize;
        for (var i = 1; i < levels; i++) sizes[i] = (sizes[i - 1] + 1) / 2;

        var flops = Linear(c0, emb) + Linear(emb, emb) + Conv(c.ImageChannels, c0, 3, sizes[0]);
        var skips = new List<int> { c0 };
        var current = c0;
        for (var i = 0; i < levels; i++)
        {
            var outCh = c0 * c.ChannelMultipliers[i];
            for (var j = 0; j < c.ResBlocksPerLevel; j++)
            {
                flops += Res(current, outCh, sizes[i]);
                current = outCh;
                if (c.AttentionLevels.Contains(i)) flops += Attention(current, sizes[i]);
                skips.Add(current);
            }
            if (i < levels - 1)
            {
                flops += Conv(current, current, 3, sizes[i + 1]);
                skips.Add(current);
            }
        }
        var bottom = sizes[levels - 1];
        flops += 2 * Res(current, current, bottom) + Attention(current, bottom);
        for (var i = levels - 1; i >= 0; i--)
        {
            var outCh = c0 * c.ChannelMultipliers[i];
            for (var j = 0; j <= c.ResBlocksPerLevel; j++)
            {
                var skip = skips[^1];
                skips.RemoveAt(skips.Count - 1);
                flops += Res(current + skip, outCh, sizes[i]);
                current = outCh;
                if (c.AttentionLevels.Contains(i)) flops += Attention(current, sizes[i]);
            }
            if (i > 0) flops += Conv(current, current, 3, sizes[i - 1]);
        }
        return flops + Conv(current, c.ImageChannels, 3, sizes[0]);
    }
}
