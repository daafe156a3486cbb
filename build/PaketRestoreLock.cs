// Compiled by MSBuild's RoslynCodeTaskFactory (see PaketRestoreLock.targets for the why).
#nullable enable
using System;
using System.IO;
using System.Threading;
using Microsoft.Build.Framework;
using Microsoft.Build.Utilities;

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
        Directory.CreateDirectory(Path.GetDirectoryName(LockPath)!);
        var deadline = DateTime.UtcNow.AddSeconds(TimeoutSeconds);
        while (true)
        {
            try
            {
                // FileShare.None: an exclusive lock on Windows and an advisory flock that .NET honours on Unix. The file
                // is never deleted: a waiter could otherwise lock an unlinked copy while another locks a new one.
                var stream = new FileStream(LockPath, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
                lock (Gate)
                {
                    held = stream;
                    depth = 1;
                }
                BuildEngine4.RegisterTaskObject(RegistrationKey, new Closer(), RegisteredTaskObjectLifetime.Build, allowEarlyCollection: false);
                return;
            }
            catch (IOException)
            {
                if (DateTime.UtcNow > deadline)
                {
                    Log.LogWarning("waited " + TimeoutSeconds + " s for " + LockPath + "; restoring without it");
                    return;
                }
                Thread.Sleep(100);
            }
        }
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
