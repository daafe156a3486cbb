namespace DiffusionFunctional.Evaluation;

/// <summary>
/// Features on disk, keyed by a content hash of the images and the extractor id, so the real set's features are
/// computed once. Lives outside the repository, in <see cref="CacheDirectory.Features"/>. Files are written to a temporary name and renamed, so a
/// reader never sees half a file; an unreadable entry counts as a miss.
/// </summary>
public sealed class FeatureCache
{
    const int Magic = 0x46464E44; // "DNFF"
    const int Version = 1;

    /// <summary>Uses <paramref name="directory"/>, or the default location when null.</summary>
    public FeatureCache(string? directory = null) => Directory = directory ?? DefaultDirectory;

    /// <summary>The folder that holds the cached feature files.</summary>
    public string Directory { get; }

    /// <summary>The default cache folder: <c>features/</c> under <see cref="CacheDirectory.Root"/>.</summary>
    public static string DefaultDirectory => CacheDirectory.Features;

    /// <summary>The cache key: SHA-256 over the extractor id and the images' content hash, as hex.</summary>
    public static string Key(IFeatureExtractor extractor, ImageBatch images)
    {
        var idBytes = System.Text.Encoding.UTF8.GetBytes(extractor.Id);
        return Convert.ToHexString(System.Security.Cryptography.SHA256.HashData([.. idBytes, 0, .. images.ContentHash()])).ToLowerInvariant();
    }

    string PathOf(string key) => Path.Combine(Directory, key + ".features");

    /// <summary>The cached features for a key, or null when absent or unreadable.</summary>
    public double[,]? TryLoad(string key)
    {
        var path = PathOf(key);
        if (!File.Exists(path)) return null;
        try
        {
            using var reader = new BinaryReader(File.OpenRead(path));
            if (reader.ReadInt32() != Magic || reader.ReadInt32() != Version) return null;
            var rows = reader.ReadInt32();
            var columns = reader.ReadInt32();
            if (rows < 0 || columns < 0 || reader.BaseStream.Length != 16 + (long)rows * columns * sizeof(double)) return null;
            var features = new double[rows, columns];
            var bytes = reader.ReadBytes(rows * columns * sizeof(double));
            Buffer.BlockCopy(bytes, 0, features, 0, bytes.Length);
            return features;
        }
        catch (IOException) { return null; }
        catch (UnauthorizedAccessException) { return null; }
    }

    /// <summary>Stores features under a key, atomically (temporary file, then rename).</summary>
    public void Store(string key, double[,] features)
    {
        var path = PathOf(key);
        // Several evaluations may cache the same real set at once: each writes its own temporary.
        AtomicFile.Write(path, temporary =>
        {
            using var writer = new BinaryWriter(File.Create(temporary));
            writer.Write(Magic);
            writer.Write(Version);
            writer.Write(features.GetLength(0));
            writer.Write(features.GetLength(1));
            var bytes = new byte[features.Length * sizeof(double)];
            Buffer.BlockCopy(features, 0, bytes, 0, bytes.Length);
            writer.Write(bytes);
        }, uniqueTemporary: true);
    }

    /// <summary>Cached features of these images under this extractor, extracting and storing them on a miss.</summary>
    public (double[,] Features, bool FromCache) GetOrExtract(IFeatureExtractor extractor, ImageBatch images, IProgress<int>? progress = null)
    {
        var key = Key(extractor, images);
        if (TryLoad(key) is { } cached && cached.GetLength(0) == images.Count && cached.GetLength(1) == extractor.Dimension)
            return (cached, true);
        var features = extractor.Extract(images, progress);
        Store(key, features);
        return (features, false);
    }
}
