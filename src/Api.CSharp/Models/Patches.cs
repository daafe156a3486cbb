using static TorchSharp.torch;

namespace DiffusionFunctional.Models;

/// <summary>
/// Images as sequences of patches and back, and the fixed positions of a patch grid. Tokens run row by row; a token's
/// p*p*C values run over the patch's rows, then its columns, then the channels (the reference DiT's unpatchify order,
/// so its final layer's weights mean the same here).
/// </summary>
public static class Patches
{
    /// <summary>Images [B, C, H, W] (H = W, a multiple of <paramref name="patch"/>) to [B, (H/p)^2, p*p*C].</summary>
    public static Tensor Patchify(Tensor images, int patch)
    {
        var (b, c, size) = (images.shape[0], images.shape[1], images.shape[2]);
        var grid = size / patch;
        using var split = images.reshape(b, c, grid, patch, grid, patch);
        using var ordered = split.permute(0, 2, 4, 3, 5, 1);
        return ordered.reshape(b, grid * grid, patch * patch * c);
    }

    /// <summary>[B, g*g, p*p*C] back to images [B, C, g*p, g*p]; the inverse of <see cref="Patchify"/>.</summary>
    public static Tensor Unpatchify(Tensor tokens, int patch, int channels)
    {
        var b = tokens.shape[0];
        var grid = (long)Math.Round(Math.Sqrt(tokens.shape[1]));
        if (grid * grid != tokens.shape[1]) throw new ArgumentException($"{tokens.shape[1]} tokens do not form a square grid");
        using var split = tokens.reshape(b, grid, grid, patch, patch, channels);
        using var ordered = split.permute(0, 5, 1, 3, 2, 4);
        return ordered.reshape(b, channels, grid * patch, grid * patch);
    }

    /// <summary>
    /// Fixed 2-D sin-cos positions [g*g, d] of a g x g grid (d a multiple of 4), as in MAE and DiT: the first d/2
    /// features encode the token's column and the last d/2 its row, each as [sin(pos w_k), cos(pos w_k)] with
    /// w_k = 10000^(-k/(d/4)), k = 0 .. d/4 - 1. Computed in float64, returned in float32.
    /// </summary>
    public static Tensor SinCosPositions(int grid, int dim)
    {
        if (dim % 4 != 0) throw new ArgumentException($"the position width {dim} is not a multiple of 4");
        var quarter = dim / 4;
        var values = new float[grid * grid * dim];
        for (var row = 0; row < grid; row++)
            for (var column = 0; column < grid; column++)
            {
                var offset = (row * grid + column) * dim;
                Encode(column, values, offset, quarter);
                Encode(row, values, offset + 2 * quarter, quarter);
            }
        return tensor(values, [grid * grid, dim], dtype: ScalarType.Float32);
    }

    private static void Encode(int position, float[] values, int offset, int quarter)
    {
        for (var k = 0; k < quarter; k++)
        {
            var angle = position * Math.Pow(10000.0, -(double)k / quarter);
            values[offset + k] = (float)Math.Sin(angle);
            values[offset + quarter + k] = (float)Math.Cos(angle);
        }
    }
}
