// Compiled by MSBuild's RoslynCodeTaskFactory (see DotnetTools.targets for the why).
#nullable enable
using System;
using System.Diagnostics;
using System.IO;
using System.Threading;
using Microsoft.Build.Framework;
using Microsoft.Build.Utilities;

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
        Directory.CreateDirectory(Path.GetDirectoryName(lockPath)!);
        using var held = AcquireLock(lockPath);
        if (held == null)
        {
            Log.LogError("timed out after " + TimeoutSeconds + " s waiting for " + lockPath + " (another build restoring dotnet tools)");
            return false;
        }
        // Another node may have restored the tool while this one waited for the lock.
        if (File.Exists(ToolMarker)) return true;
        return RunToolRestore();
    }

    FileStream? AcquireLock(string path)
    {
        var deadline = DateTime.UtcNow.AddSeconds(TimeoutSeconds);
        while (true)
        {
            try
            {
                // FileShare.None is an exclusive lock on Windows and an advisory flock that .NET honours on Unix.
                // The file is never deleted: a waiter could otherwise lock an unlinked copy while another locks a new one.
                return new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
            }
            catch (IOException)
            {
                if (DateTime.UtcNow > deadline) return null;
                Thread.Sleep(200);
            }
        }
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
