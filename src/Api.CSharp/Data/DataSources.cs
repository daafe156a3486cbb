using System.Security.Cryptography;

namespace DiffusionFunctional.Data;

/// <summary>Opens a training set from a short specification: <c>mnist</c>, <c>idx:PATH</c> or <c>folder:PATH</c>.</summary>
public static class DataSources
{
    /// <summary>
    /// Loads the data set <paramref name="spec"/> as images of <paramref name="channels"/> x <paramref name="size"/>
    /// x <paramref name="size"/> in [-1, 1]. <paramref name="warn"/> receives one line per skipped file.
    /// Throws <see cref="BadInputException"/> for an unknown form, missing data, or no usable image. A file or folder is
    /// described by its full path: a checkpoint records the description, and a resume from another working directory
    /// (or with the path written another way) must recognise the same data. Its <see cref="ImageDataset.ContentIdentity"/>
    /// is the count of usable images and a SHA-256 of the source's bytes (the IDX file; the folder's image files with
    /// their relative names), so a resume notices images added, removed or changed, wherever the data lie.
    /// </summary>
    public static ImageDataset Load(string spec, int channels, int size, Action<string>? warn = null)
    {
        var text = (spec ?? "").Trim();
        if (text.Equals("mnist", StringComparison.OrdinalIgnoreCase))
        {
            var (images, _) = Mnist.LoadUnitRange();
            using (images) return ImageDataset.FromUnitRange(images, channels, size, $"mnist ({Mnist.Package})",
                contentIdentity: $"mnist ({Mnist.Package}), {images.shape[0]} images");
        }
        if (text.StartsWith("idx:", StringComparison.OrdinalIgnoreCase))
        {
            var path = text[4..];
            using var images = IdxFile.ReadImages(path);
            return ImageDataset.FromUnitRange(images, channels, size, Path.GetFullPath(path),
                contentIdentity: $"{images.shape[0]} images, sha256 {Hash([path], Path.GetDirectoryName(Path.GetFullPath(path))!)}");
        }
        if (text.StartsWith("folder:", StringComparison.OrdinalIgnoreCase))
        {
            var path = text[7..];
            var (images, skipped) = ImageFolder.LoadUnitRange(path, channels, size, warn);
            var identity = $"{images.shape[0]} images, sha256 {Hash(ImageFolder.ImageFiles(path), path)}";
            using (images) return ImageDataset.FromUnitRange(images, channels, size, Path.TrimEndingDirectorySeparator(Path.GetFullPath(path)), skipped, identity);
        }
        throw new BadInputException($"unknown data source '{spec}' (expected mnist, idx:PATH or folder:PATH)");
    }

    /// <summary>The first 16 hex digits of a SHA-256 over each file's name relative to <paramref name="root"/> and its bytes.</summary>
    private static string Hash(IEnumerable<string> files, string root)
    {
        using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        foreach (var file in files)
        {
            sha.AppendData(System.Text.Encoding.UTF8.GetBytes(Path.GetRelativePath(root, file) + "\0"));
            using var stream = File.OpenRead(file);
            var buffer = new byte[1 << 16];
            for (int read; (read = stream.Read(buffer)) > 0;) sha.AppendData(buffer, 0, read);
        }
        return Convert.ToHexString(sha.GetHashAndReset())[..16].ToLowerInvariant();
    }
}
