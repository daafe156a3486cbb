namespace DiffusionFunctional.Weighting;

/// <summary>
/// A <see cref="Random"/> whose whole state is one 64-bit word (SplitMix64), so a weighting can save it in a
/// checkpoint and a resumed run draws exactly what the uninterrupted run would have. <see cref="Random"/>'s own
/// state cannot be serialised, which is why this small generator is written by hand.
/// </summary>
public sealed class SeededRandom : Random
{
    /// <summary>The generator's state; writing it back restores the sequence exactly.</summary>
    public ulong State { get; set; }

    /// <summary>A generator whose sequence is a function of the seed and its saved state only.</summary>
    public SeededRandom(long seed) => State = unchecked((ulong)seed * 0x9E3779B97F4A7C15UL + 0xD1B54A32D192ED03UL);

    private ulong NextWord()
    {
        unchecked
        {
            State += 0x9E3779B97F4A7C15UL;
            var z = State;
            z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
            z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
            return z ^ (z >> 31);
        }
    }

    /// <inheritdoc/>
    protected override double Sample() => (NextWord() >> 11) * (1.0 / (1UL << 53));
    /// <summary>A uniform double in [0, 1).</summary>
    public override double NextDouble() => Sample();
    /// <summary>A uniform non-negative integer (bounds as System.Random's).</summary>
    public override int Next() => (int)(NextWord() >> 33);

    /// <summary>A uniform non-negative integer (bounds as System.Random's).</summary>
    public override int Next(int maxValue)
    {
        if (maxValue < 0) throw new ArgumentOutOfRangeException(nameof(maxValue), maxValue, "must not be negative");
        return maxValue == 0 ? 0 : (int)((NextWord() >> 32) * (ulong)maxValue >> 32);
    }

    /// <summary>A uniform non-negative integer (bounds as System.Random's).</summary>
    public override int Next(int minValue, int maxValue)
    {
        if (minValue > maxValue) throw new ArgumentOutOfRangeException(nameof(minValue), minValue, "must not exceed maxValue");
        return minValue + (int)((NextWord() >> 32) * (ulong)((long)maxValue - minValue) >> 32);
    }
}
