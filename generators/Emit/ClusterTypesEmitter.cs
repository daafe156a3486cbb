using static DiffusionFunctional.Generators.Emit.SourceWriter;

namespace DiffusionFunctional.Generators.Emit;

/// <summary>Writes the nested types of a facade: <c>ClusterRange</c> and the arity-k <c>PerCluster&lt;TValue&gt;</c>.</summary>
internal static class ClusterTypesEmitter
{
    private const string Invariant = "global::System.Globalization.CultureInfo.InvariantCulture";

    public static void WriteClusterRange(SourceWriter w)
    {
        w.Line("/// <summary>One cluster: the half-open timestep range [Start, End) and its ln SNR range.</summary>");
        w.Open("public readonly struct ClusterRange : global::System.IEquatable<ClusterRange>");
        w.Line("/// <summary>Creates a cluster range (the generated Cluster members are the meaningful ones).</summary>");
        w.Open("public ClusterRange(int index, int start, int end, double logSnrStart, double logSnrEnd)");
        w.Line("Index = index;");
        w.Line("Start = start;");
        w.Line("End = end;");
        w.Line("LogSnrStart = logSnrStart;");
        w.Line("LogSnrEnd = logSnrEnd;");
        w.Close();
        w.Line();
        w.Line("/// <summary>Position of the cluster, 0 for the least noisy.</summary>");
        w.Line("public int Index { get; }");
        w.Line();
        w.Line("/// <summary>First timestep of the cluster (inclusive).</summary>");
        w.Line("public int Start { get; }");
        w.Line();
        w.Line("/// <summary>End of the cluster (exclusive).</summary>");
        w.Line("public int End { get; }");
        w.Line();
        w.Line("/// <summary>Number of timesteps in the cluster.</summary>");
        w.Line("public int Size => End - Start;");
        w.Line();
        w.Line("/// <summary>ln SNR at <see cref=\"Start\"/>, the cluster's least noisy timestep (the highest value).</summary>");
        w.Line("public double LogSnrStart { get; }");
        w.Line();
        w.Line("/// <summary>ln SNR at End - 1, the cluster's noisiest timestep (the lowest value).</summary>");
        w.Line("public double LogSnrEnd { get; }");
        w.Line();
        w.Line("/// <summary>Whether timestep <paramref name=\"t\"/> lies in [Start, End).</summary>");
        w.Line("public bool Contains(int t) => t >= Start && t < End;");
        w.Line();
        w.Line("/// <inheritdoc/>");
        w.Line("public bool Equals(ClusterRange other) => Index == other.Index && Start == other.Start && End == other.End && LogSnrStart.Equals(other.LogSnrStart) && LogSnrEnd.Equals(other.LogSnrEnd);");
        w.Line();
        w.Line("/// <inheritdoc/>");
        w.Line("public override bool Equals(object obj) => obj is ClusterRange other && Equals(other);");
        w.Line();
        w.Line("/// <inheritdoc/>");
        w.Line("public override int GetHashCode() => unchecked((Index * 397 ^ Start) * 397 ^ End);");
        w.Line();
        w.Line("/// <summary>Equality of all fields.</summary>");
        w.Line("public static bool operator ==(ClusterRange left, ClusterRange right) => left.Equals(right);");
        w.Line();
        w.Line("/// <summary>Inequality of any field.</summary>");
        w.Line("public static bool operator !=(ClusterRange left, ClusterRange right) => !left.Equals(right);");
        w.Line();
        w.Line("/// <summary>For example \"cluster 0: [0, 153), ln SNR 9.21 .. 1.27\".</summary>");
        w.Line($"public override string ToString() => string.Format({Invariant}, \"cluster {{0}}: [{{1}}, {{2}}), ln SNR {{3:0.##}} .. {{4:0.##}}\", Index, Start, End, LogSnrStart, LogSnrEnd);");
        w.Close();
        w.Line();
    }

    public static void WritePerCluster(SourceWriter w, int k)
    {
        const string Self = "PerCluster<TValue>";
        var badCluster = $"throw new global::System.ArgumentOutOfRangeException(nameof(cluster), cluster, \"cluster must lie in [0, {k})\");";
        w.Line($"/// <summary>Exactly one value per cluster: its arity is fixed at {k}, so per-cluster code cannot get the count wrong.</summary>");
        w.Open($"public readonly struct PerCluster<TValue> : global::System.Collections.Generic.IReadOnlyList<TValue>, global::System.IEquatable<{Self}>");
        w.Line("/// <summary>One value per cluster, in cluster order.</summary>");
        w.Open("public PerCluster(" + Join(", ", k, c => "TValue cluster" + c) + ")");
        for (var c = 0; c < k; c++) w.Line($"Cluster{c} = cluster{c};");
        w.Close();
        w.Line();
        for (var c = 0; c < k; c++)
        {
            w.Line($"/// <summary>The value for cluster {c}.</summary>");
            w.Line($"public TValue Cluster{c} {{ get; }}");
            w.Line();
        }
        w.Line($"/// <summary>Always {k}, the number of clusters.</summary>");
        w.Line($"public int Count => {k};");
        w.Line();
        w.Line("/// <summary>The value for cluster <paramref name=\"cluster\"/>.</summary>");
        w.Open("public TValue this[int cluster]");
        w.Open("get");
        w.Open("switch (cluster)");
        for (var c = 0; c < k; c++) w.Line($"case {c}: return Cluster{c};");
        w.Line("default: " + badCluster);
        w.Close();
        w.Close();
        w.Close();
        w.Line();
        w.Line("/// <summary>A container whose value for cluster c is <c>valueOf(c)</c>.</summary>");
        w.Open($"public static {Self} Create(global::System.Func<int, TValue> valueOf)");
        w.Line("if (valueOf == null) throw new global::System.ArgumentNullException(nameof(valueOf));");
        w.Line($"return new {Self}(" + Join(", ", k, c => $"valueOf({c})") + ");");
        w.Close();
        w.Line();
        w.Line($"/// <summary>A container from an array of exactly {k} values.</summary>");
        w.Open($"public static {Self} FromArray(TValue[] values)");
        w.Line("if (values == null) throw new global::System.ArgumentNullException(nameof(values));");
        w.Line($"if (values.Length != {k}) throw new global::System.ArgumentException(string.Format({Invariant}, \"expected {k} values, one per cluster, got {{0}}\", values.Length), nameof(values));");
        w.Line($"return new {Self}(" + Join(", ", k, c => $"values[{c}]") + ");");
        w.Close();
        w.Line();
        w.Line("/// <summary>Applies <paramref name=\"map\"/> to every value.</summary>");
        w.Open("public PerCluster<TResult> Map<TResult>(global::System.Func<TValue, TResult> map)");
        w.Line("if (map == null) throw new global::System.ArgumentNullException(nameof(map));");
        w.Line("return new PerCluster<TResult>(" + Join(", ", k, c => $"map(Cluster{c})") + ");");
        w.Close();
        w.Line();
        w.Line("/// <summary>Applies <paramref name=\"map\"/> to every (cluster, value) pair.</summary>");
        w.Open("public PerCluster<TResult> Map<TResult>(global::System.Func<int, TValue, TResult> map)");
        w.Line("if (map == null) throw new global::System.ArgumentNullException(nameof(map));");
        w.Line("return new PerCluster<TResult>(" + Join(", ", k, c => $"map({c}, Cluster{c})") + ");");
        w.Close();
        w.Line();
        w.Line("/// <summary>Combines this container with another, cluster by cluster.</summary>");
        w.Open("public PerCluster<TResult> Zip<TOther, TResult>(PerCluster<TOther> other, global::System.Func<TValue, TOther, TResult> combine)");
        w.Line("if (combine == null) throw new global::System.ArgumentNullException(nameof(combine));");
        w.Line("return new PerCluster<TResult>(" + Join(", ", k, c => $"combine(Cluster{c}, other.Cluster{c})") + ");");
        w.Close();
        w.Line();
        w.Line("/// <summary>A copy with the value of cluster <paramref name=\"cluster\"/> replaced.</summary>");
        w.Open($"public {Self} With(int cluster, TValue value)");
        w.Line("if ((uint)cluster >= " + k + "u) " + badCluster);
        w.Line($"return new {Self}(" + Join(", ", k, c => $"cluster == {c} ? value : Cluster{c}") + ");");
        w.Close();
        w.Line();
        w.Line("/// <summary>The values in cluster order.</summary>");
        w.Line("public TValue[] ToArray() => new TValue[] { " + Join(", ", k, c => "Cluster" + c) + " };");
        w.Line();
        w.Line("/// <inheritdoc/>");
        w.Open("public global::System.Collections.Generic.IEnumerator<TValue> GetEnumerator()");
        for (var c = 0; c < k; c++) w.Line($"yield return Cluster{c};");
        w.Close();
        w.Line();
        w.Line("global::System.Collections.IEnumerator global::System.Collections.IEnumerable.GetEnumerator() => GetEnumerator();");
        w.Line();
        w.Line("/// <inheritdoc/>");
        w.Open($"public bool Equals({Self} other)");
        w.Line("var comparer = global::System.Collections.Generic.EqualityComparer<TValue>.Default;");
        w.Line("return " + Join(" && ", k, c => $"comparer.Equals(Cluster{c}, other.Cluster{c})") + ";");
        w.Close();
        w.Line();
        w.Line("/// <inheritdoc/>");
        w.Line($"public override bool Equals(object obj) => obj is {Self} other && Equals(other);");
        w.Line();
        w.Line("/// <inheritdoc/>");
        w.Open("public override int GetHashCode()");
        w.Line("var comparer = global::System.Collections.Generic.EqualityComparer<TValue>.Default;");
        w.Line("var hash = 17;");
        for (var c = 0; c < k; c++) w.Line($"hash = unchecked(hash * 31 + (Cluster{c} == null ? 0 : comparer.GetHashCode(Cluster{c})));");
        w.Line("return hash;");
        w.Close();
        w.Line();
        w.Line("/// <summary>Equality of every value.</summary>");
        w.Line($"public static bool operator ==({Self} left, {Self} right) => left.Equals(right);");
        w.Line();
        w.Line("/// <summary>Inequality of any value.</summary>");
        w.Line($"public static bool operator !=({Self} left, {Self} right) => !left.Equals(right);");
        w.Line();
        w.Line("/// <summary>The values in cluster order, for example \"(0.1, 0.2, 0.3)\".</summary>");
        w.Line($"public override string ToString() => string.Format({Invariant}, \"(" + Join(", ", k, c => "{" + c + "}") + ")\", "
               + Join(", ", k, c => "Cluster" + c) + ");");
        w.Close();
    }
}
