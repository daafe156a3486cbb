namespace DiffusionFunctional;

/// <summary>
/// Writes files so that a crash never leaves a half-written one: the bytes go to a temporary file beside the target,
/// are flushed to disk, then renamed over it; the old file stays until the new one is complete.
/// </summary>
public static class AtomicFile
{
    /// <summary>Writes <paramref name="text"/> to <paramref name="path"/> atomically.</summary>
    public static void WriteAllText(string path, string text) =>
        Write(path, temp => File.WriteAllText(temp, text));

    /// <summary>Writes <paramref name="lines"/> to <paramref name="path"/> atomically.</summary>
    public static void WriteAllLines(string path, IEnumerable<string> lines) =>
        Write(path, temp => File.WriteAllLines(temp, lines));

    /// <summary>
    /// Runs <paramref name="writeTo"/> on a temporary path beside <paramref name="path"/>, then renames it over.
    /// The temporary is <c>PATH.tmp</c>, so a killed writer's leftover is reused rather than piling up; pass
    /// <paramref name="uniqueTemporary"/> where several processes may write the same path at once.
    /// </summary>
    /// <exception cref="IOException">The write failed (disk full, read-only, a folder in the way); the message says
    /// which file and that the previous version, if any, was kept.</exception>
    public static void Write(string path, Action<string> writeTo, bool uniqueTemporary = false)
    {
        var full = Path.GetFullPath(path);
        // A device (/dev/full, /dev/null) is written into, never replaced: renaming over it would swap the node for a file.
        if (!FileKind.IsRegularOrMissing(full))
        {
            WriteInto(full, writeTo);
            return;
        }
        var temp = uniqueTemporary ? $"{full}.{Environment.ProcessId}.{Guid.NewGuid():N}.tmp" : full + ".tmp";
        try
        {
            Directory.CreateDirectory(Path.GetDirectoryName(full)!);
            writeTo(temp);
            using (var stream = new FileStream(temp, FileMode.Open, FileAccess.ReadWrite)) stream.Flush(flushToDisk: true);
            File.Move(temp, full, overwrite: true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            var kept = File.Exists(full) ? "its previous version was kept" : "nothing was written there";
            throw new IOException($"could not write {full} ({e.Message.TrimEnd('.')}); {kept}", e);
        }
        finally
        {
            try { if (File.Exists(temp)) File.Delete(temp); }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
        }
    }

    // Writes through a temporary beside the process's own temp folder, then copies its bytes into the device.
    static void WriteInto(string device, Action<string> writeTo)
    {
        var temp = Path.Combine(Path.GetTempPath(), $"dfn-{Environment.ProcessId}-{Guid.NewGuid():N}.tmp");
        try
        {
            writeTo(temp);
            using var source = File.OpenRead(temp);
            using var target = new FileStream(device, FileMode.Open, FileAccess.Write);
            source.CopyTo(target);
            target.Flush();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new IOException($"could not write {device} ({e.Message.TrimEnd('.')}); nothing else was changed", e);
        }
        finally
        {
            try { File.Delete(temp); }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
        }
    }
}
