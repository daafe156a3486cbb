using System;
using System.Collections;
using System.Collections.Generic;
using System.Collections.Immutable;

namespace DiffusionFunctional.Generators.Model;

/// <summary>
/// An immutable array compared by its elements, so that pipeline models holding arrays stay cacheable
/// (ImmutableArray compares by reference, which would defeat the incremental cache).
/// </summary>
internal readonly struct EquatableArray<T> : IEquatable<EquatableArray<T>>, IReadOnlyList<T>
    where T : IEquatable<T>
{
    private readonly T[]? items;

    public EquatableArray(IEnumerable<T> values) => items = values is null ? null : new List<T>(values).ToArray();

    public static EquatableArray<T> Empty => default;

    public int Count => items?.Length ?? 0;

    public T this[int index] => (items ?? Array.Empty<T>())[index];

    public bool Equals(EquatableArray<T> other)
    {
        var left = items ?? Array.Empty<T>();
        var right = other.items ?? Array.Empty<T>();
        if (left.Length != right.Length) return false;
        for (var i = 0; i < left.Length; i++)
        {
            if (!EqualityComparer<T>.Default.Equals(left[i], right[i])) return false;
        }
        return true;
    }

    public override bool Equals(object? obj) => obj is EquatableArray<T> other && Equals(other);

    public override int GetHashCode()
    {
        unchecked
        {
            var hash = 17;
            foreach (var item in items ?? Array.Empty<T>())
                hash = hash * 31 + (item is null ? 0 : EqualityComparer<T>.Default.GetHashCode(item));
            return hash;
        }
    }

    public IEnumerator<T> GetEnumerator() => ((IEnumerable<T>)(items ?? Array.Empty<T>())).GetEnumerator();

    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();

    public T[] ToArray() => (T[])(items ?? Array.Empty<T>()).Clone();
}

internal static class EquatableArray
{
    public static EquatableArray<T> ToEquatableArray<T>(this IEnumerable<T> values) where T : IEquatable<T> => new(values);

    public static EquatableArray<T> Of<T>(params T[] values) where T : IEquatable<T> => new(values);

    public static EquatableArray<T> ToEquatableArray<T>(this ImmutableArray<T> values) where T : IEquatable<T> =>
        new(values.IsDefault ? Array.Empty<T>() : (IEnumerable<T>)values);
}
