namespace DiffusionFunctional.Training;

/// <summary>
/// An exclusive lock on a run folder, held while a trainer writes there: two runs on one folder would interleave
/// metrics.jsonl lines and overwrite each other's checkpoints. The lock is the OS file lock of <c>.dfn-lock</c>
/// (released when the process ends, however it ends); <c>.dfn-lock.owner</c> names the holder for the message.
/// </summary>
public sealed class RunDirectoryLock : IDisposable
{
    const string LockName = ".dfn-lock";
    const string OwnerName = ".dfn-lock.owner";
    readonly FileStream stream;

    RunDirectoryLock(FileStream stream) => this.stream = stream;

    /// <summary>Takes the lock of <paramref name="directory"/> (created if needed).</summary>
    /// <exception cref="BadInputException">Another process holds it, or the folder cannot be written.</exception>
    public static RunDirectoryLock Acquire(string directory)
    {
        try { Directory.CreateDirectory(directory); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new BadInputException($"output directory '{directory}' cannot be created: {e.Message}");
        }
        var lockPath = Path.Combine(directory, LockName);
        FileStream stream;
        try
        {
            // FileShare.None is an exclusive advisory lock (flock) on Unix and a share lock on Windows.
            stream = new FileStream(lockPath, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
        }
        catch (UnauthorizedAccessException e)
        {
            throw new BadInputException($"output directory '{directory}' is not writable: {e.Message}");
        }
        catch (IOException)
        {
            throw new BadInputException($"output directory '{directory}' is in use by another run ({Owner(directory)}); wait for it or choose another --out");
        }
        try { File.WriteAllText(Path.Combine(directory, OwnerName), $"process {Environment.ProcessId} on {Environment.MachineName}, since {DateTime.UtcNow:u}"); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            stream.Dispose();
            throw new BadInputException($"output directory '{directory}' is not writable: {e.Message}");
        }
        return new RunDirectoryLock(stream);
    }

    static string Owner(string directory)
    {
        try { return File.ReadAllText(Path.Combine(directory, OwnerName)).Trim(); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return "owner unknown"; }
    }

    /// <summary>Releases the lock.</summary>
    public void Dispose() => stream.Dispose();
}
