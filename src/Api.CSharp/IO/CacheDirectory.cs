namespace DiffusionFunctional;

/// <summary>
/// The one cache root of the library and its tools, outside any repository: <c>$DFN_CACHE</c>, else
/// <c>$XDG_CACHE_HOME/diffusionfunctional</c>, else <c>~/.cache/diffusionfunctional</c>. Under it: <c>features/</c>
/// (cached evaluation features of real image sets), <c>data/</c> (downloaded data sets such as MNIST) and <c>runs/</c>
/// (the default output folders of long experiments). docs/cache.md describes the layout.
/// </summary>
public static class CacheDirectory
{
    /// <summary>The cache root (read from the environment on every call, so a process can redirect it).</summary>
    public static string Root
    {
        get
        {
            if (Environment.GetEnvironmentVariable("DFN_CACHE") is { Length: > 0 } explicitRoot) return explicitRoot;
            var parent = Environment.GetEnvironmentVariable("XDG_CACHE_HOME") is { Length: > 0 } xdg
                ? xdg
                : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache");
            return Path.Combine(parent, "diffusionfunctional");
        }
    }

    /// <summary>Cached features of real image sets (see <see cref="Evaluation.FeatureCache"/>).</summary>
    public static string Features => Path.Combine(Root, "features");

    /// <summary>Downloaded data sets.</summary>
    public static string Data => Path.Combine(Root, "data");

    /// <summary>Default output folders of long experiments, one per command (<c>runs/demo</c>, <c>runs/reproduce</c>).</summary>
    public static string Runs => Path.Combine(Root, "runs");
}
