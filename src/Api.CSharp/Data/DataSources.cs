namespace DiffusionFunctional.Data;

/// <summary>Opens a training set from a short specification: <c>mnist</c>, <c>idx:PATH</c> or <c>folder:PATH</c>.</summary>
public static class DataSources
{
    /// <summary>
    /// Loads the data set <paramref name="spec"/> as images of <paramref name="channels"/> x <paramref name="size"/>
    /// x <paramref name="size"/> in [-1, 1]. <paramref name="warn"/> receives one line per skipped file.
    /// Throws <see cref="BadInputException"/> for an unknown form, missing data, or no usable image. A file or folder is
    /// described by its full path: a checkpoint records the description, and a resume from another working directory
    /// (or with the path written another way) must recognise the same data.
    /// </summary>
    public static ImageDataset Load(string spec, int channels, int size, Action<string>? warn = null)
    {
        var text = (spec ?? "").Trim();
        if (text.Equals("mnist", StringComparison.OrdinalIgnoreCase))
        {
            var (images, _) = Mnist.LoadUnitRange();
            using (images) return ImageDataset.FromUnitRange(images, channels, size, $"mnist ({Mnist.Package})");
        }
        if (text.StartsWith("idx:", StringComparison.OrdinalIgnoreCase))
        {
            var path = text[4..];
            using var images = IdxFile.ReadImages(path);
            return ImageDataset.FromUnitRange(images, channels, size, Path.GetFullPath(path));
        }
        if (text.StartsWith("folder:", StringComparison.OrdinalIgnoreCase))
        {
            var path = text[7..];
            var (images, skipped) = ImageFolder.LoadUnitRange(path, channels, size, warn);
            using (images) return ImageDataset.FromUnitRange(images, channels, size, Path.TrimEndingDirectorySeparator(Path.GetFullPath(path)), skipped);
        }
        throw new BadInputException($"unknown data source '{spec}' (expected mnist, idx:PATH or folder:PATH)");
    }
}
