namespace DiffusionFunctional;

/// <summary>
/// Writes files so that a crash never leaves a half-written one: the bytes go to a temporary file beside the target,
/// are flushed to disk, then renamed over it; the old file stays until the new one is complete.
/// </summary>
public static class AtomicFile
{
    public static void WriteAllText(string path, string text) =>
        Write(path, temp => File.WriteAllText(temp, text));

    public static void WriteAllLines(string path, IEnumerable<string> lines) =>
        Write(path, temp => File.WriteAllLines(temp, lines));

    /// <summary>
    /// Runs <paramref name="writeTo"/> on a temporary path beside <paramref name="path"/>, then renames it over.
    /// The temporary is <c>PATH.tmp</c>, so a killed writer's leftover is reused rather than piling up; pass
    /// <paramref name="uniqueTemporary"/> where several processes may write the same path at once.
    /// </summary>
    public static void Write(string path, Action<string> writeTo, bool uniqueTemporary = false)
    {
        var full = Path.GetFullPath(path);
        Directory.CreateDirectory(Path.GetDirectoryName(full)!);
        var temp = uniqueTemporary ? $"{full}.{Environment.ProcessId}.{Guid.NewGuid():N}.tmp" : full + ".tmp";
        try
        {
            writeTo(temp);
            using (var stream = new FileStream(temp, FileMode.Open, FileAccess.ReadWrite)) stream.Flush(flushToDisk: true);
            File.Move(temp, full, overwrite: true);
        }
        finally
        {
            if (File.Exists(temp)) File.Delete(temp);
        }
    }
}
