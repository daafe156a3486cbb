namespace DiffusionFunctional.Experiments.Grid;

/// <summary>
/// An exclusive lock held through an open file: on Linux and macOS .NET takes an advisory <c>flock</c> for
/// <see cref="FileShare.None"/>, on Windows the share mode itself excludes others. The operating system releases it
/// when the process ends, however it ends, so a killed process never leaves a cell locked; the file stays (removing it
/// would let two processes lock two different files of the same name). On a shared file system the lock is as good as
/// its <c>flock</c> (NFS v4 and Lustre provide it; docs/grids.md).
/// </summary>
public sealed class FileLock : IDisposable
{
    readonly FileStream stream;

    FileLock(FileStream stream) => this.stream = stream;

    /// <summary>The lock at <paramref name="path"/> (its folder created), or null when another holder has it.</summary>
    public static FileLock? TryAcquire(string path)
    {
        Directory.CreateDirectory(System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(path))!);
        try { return new FileLock(new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None)); }
        catch (IOException) when (File.Exists(path)) { return null; }
    }

    /// <summary>Waits for the lock at <paramref name="path"/>: for short critical sections (a results file's rewrite).</summary>
    public static FileLock Acquire(string path, CancellationToken cancellation = default)
    {
        while (true)
        {
            if (TryAcquire(path) is { } held) return held;
            cancellation.ThrowIfCancellationRequested();
            Thread.Sleep(20);
        }
    }

    /// <summary>Releases the lock.</summary>
    public void Dispose() => stream.Dispose();
}
