// Compiled by MSBuild's RoslynCodeTaskFactory, once per task that names it (DotnetTools.targets and
// PaketRestoreLock.targets say why each task exists): the build's two machine-wide locks and their one way to wait.
#nullable enable
using System;
using System.Diagnostics;
using System.IO;
using System.Threading;
using Microsoft.Build.Framework;
using Microsoft.Build.Utilities;

/// A lock file held open exclusively: FileShare.None is an exclusive lock on Windows and an advisory flock that .NET
/// honours on Unix, so it holds across MSBuild nodes and processes. The file is never deleted: a waiter could otherwise
/// lock an unlinked copy while another locks a new one.
public static class RepositoryLock
{
    /// The open lock file, or null when it stayed taken for timeoutSeconds.
    public static FileStream? TryAcquire(string path, int timeoutSeconds)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        var deadline = DateTime.UtcNow.AddSeconds(timeoutSeconds);
        while (true)
        {
            try
            {
                return new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
            }
            catch (IOException)
            {
                if (DateTime.UtcNow > deadline) return null;
                Thread.Sleep(100);
            }
        }
    }
}

/// Runs `dotnet tool restore` at most once at a time across every MSBuild node and process on the machine,
/// and skips it when the tool is already in the package folder. Parallel restores of a solution otherwise
/// extract the same paket nupkg at once and fail with "being used by another process".
public class RestoreDotnetToolsOnce : Task
{
    [Required] public string RepoRoot { get; set; } = "";
    [Required] public string ToolMarker { get; set; } = "";
    public int TimeoutSeconds { get; set; } = 900;

    public override bool Execute()
    {
        var lockPath = Path.Combine(RepoRoot, "paket-files", ".tool-restore.lock");
        using var held = RepositoryLock.TryAcquire(lockPath, TimeoutSeconds);
        if (held == null)
        {
            Log.LogError("timed out after " + TimeoutSeconds + " s waiting for " + lockPath + " (another build restoring dotnet tools)");
            return false;
        }
        // Another node may have restored the tool while this one waited for the lock.
        if (File.Exists(ToolMarker)) return true;
        return RunToolRestore();
    }

    bool RunToolRestore()
    {
        var start = new ProcessStartInfo("dotnet", "tool restore")
        {
            WorkingDirectory = RepoRoot,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        process.WaitForExit();
        Log.LogMessage(MessageImportance.Low, stdout.Result);
        if (process.ExitCode == 0) return true;
        Log.LogError("dotnet tool restore exited with code " + process.ExitCode + ": " + (stderr.Result + stdout.Result).Trim());
        return false;
    }
}

/// Takes ("acquire") or gives back ("release") one lock per repository, shared by every MSBuild node and process,
/// around Paket's PaketRestore target. Re-entrant within a node process. A lock still held when the build ends (the
/// target failed before "release") is closed by MSBuild with the build's registered task objects, so a reused node
/// never keeps it. Waiting ends after TimeoutSeconds with a warning, never a deadlock.
public class PaketRestoreLock : Task
{
    [Required] public string RepoRoot { get; set; } = "";
    [Required] public string Action { get; set; } = "";
    public int TimeoutSeconds { get; set; } = 300;

    static readonly object Gate = new object();
    static FileStream? held;
    static int depth;

    string LockPath => Path.Combine(RepoRoot, "paket-files", ".restore.lock");
    string RegistrationKey => "DiffusionFunctional.PaketRestoreLock:" + LockPath;

    public override bool Execute()
    {
        if (Action == "acquire") Acquire();
        else if (Action == "release") Release();
        else Log.LogError("PaketRestoreLock: Action must be acquire or release, got '" + Action + "'");
        return !Log.HasLoggedErrors;
    }

    void Acquire()
    {
        lock (Gate)
        {
            if (held != null) { depth++; return; }
        }
        var stream = RepositoryLock.TryAcquire(LockPath, TimeoutSeconds);
        if (stream == null)
        {
            Log.LogWarning("waited " + TimeoutSeconds + " s for " + LockPath + "; restoring without it");
            return;
        }
        lock (Gate)
        {
            held = stream;
            depth = 1;
        }
        BuildEngine4.RegisterTaskObject(RegistrationKey, new Closer(), RegisteredTaskObjectLifetime.Build, allowEarlyCollection: false);
    }

    void Release()
    {
        lock (Gate)
        {
            if (held == null || --depth > 0) return;
        }
        BuildEngine4.UnregisterTaskObject(RegistrationKey, RegisteredTaskObjectLifetime.Build);
        Close();
    }

    static void Close()
    {
        lock (Gate)
        {
            held?.Dispose();
            held = null;
            depth = 0;
        }
    }

    /// What MSBuild disposes at the end of the build if the lock is still held.
    sealed class Closer : IDisposable
    {
        public void Dispose() => Close();
    }
}
