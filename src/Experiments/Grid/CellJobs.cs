using System.Diagnostics;
using System.Reflection;
using System.Runtime.InteropServices;

namespace DiffusionFunctional.Experiments.Grid;

/// <summary>
/// <c>--jobs N</c>: the same command run as N processes at once, process i taking shard i/N of the cells, one libtorch
/// thread each unless the command says otherwise. libtorch parallelises a small network's operations poorly, so
/// independent processes use the cores better than threads (docs/grids.md has the measurement). The parent only
/// launches, relays the children's lines prefixed with their shard, passes a stop on to them, and reports how they
/// ended; the caller then runs the report step.
/// </summary>
public static class CellJobs
{
    /// <summary>Exit code of a child that stopped on a signal after writing its checkpoints.</summary>
    public const int InterruptedCode = 130;

    /// <summary>The children's arguments: <paramref name="arguments"/> without <c>--jobs</c> and its value, with
    /// <c>--shard i/n</c>, and with one thread and one evaluation worker where the command set none.</summary>
    public static IReadOnlyList<string> ChildArguments(IReadOnlyList<string> arguments, int shard, int jobs)
    {
        var kept = new List<string>();
        for (var i = 0; i < arguments.Count; i++)
        {
            if (arguments[i] == "--jobs") { i++; continue; }
            if (arguments[i].StartsWith("--jobs=", StringComparison.Ordinal)) continue;
            kept.Add(arguments[i]);
        }
        bool Has(string option) => kept.Any(a => a == option || a.StartsWith(option + "=", StringComparison.Ordinal));
        if (!Has("--threads")) kept.AddRange(["--threads", "1"]);
        if (!Has("--workers")) kept.AddRange(["--workers", "1"]);
        kept.AddRange(["--shard", $"{shard}/{jobs}"]);
        return kept;
    }

    /// <summary>Runs shards 1..<paramref name="jobs"/> of this program with <paramref name="arguments"/> (the command
    /// line after the program) and waits for all. Returns 0 when every child succeeded, <see cref="InterruptedCode"/>
    /// when stopped, else the first failing child's code. <paramref name="relay"/> gets each child's lines.</summary>
    public static int Run(int jobs, IReadOnlyList<string> arguments, Action<string> relay, CancellationToken cancellation)
    {
        var children = new List<Process>();
        try
        {
            for (var shard = 1; shard <= jobs; shard++)
                children.Add(Start(ChildArguments(arguments, shard, jobs), $"[shard {shard}/{jobs}] ", relay));
            using var stopping = cancellation.Register(() => { foreach (var child in children) Stop(child); });
            foreach (var child in children) child.WaitForExit();
            var codes = children.Select(c => c.ExitCode).ToList();
            if (cancellation.IsCancellationRequested || codes.Contains(InterruptedCode)) return InterruptedCode;
            return codes.FirstOrDefault(c => c != 0);
        }
        finally
        {
            foreach (var child in children) child.Dispose();
        }
    }

    static Process Start(IReadOnlyList<string> arguments, string prefix, Action<string> relay)
    {
        var (program, leading) = SelfCommand();
        // In a session of its own (setsid execs, so the pid stays the child's): Ctrl-C on a terminal then reaches only
        // the parent, which passes one SIGTERM on; a child that got both would take the second as "stop at once".
        var setsid = new[] { "/usr/bin/setsid", "/bin/setsid" }.FirstOrDefault(File.Exists);
        var start = new ProcessStartInfo(setsid ?? program) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in (setsid is null ? leading : [program, .. leading]).Concat(arguments)) start.ArgumentList.Add(a);
        var child = Process.Start(start) ?? throw new InvalidOperationException($"could not start {program}");
        child.OutputDataReceived += (_, e) => { if (e.Data is { } line) relay(prefix + line); };
        child.ErrorDataReceived += (_, e) => { if (e.Data is { } line) relay(prefix + line); };
        child.BeginOutputReadLine();
        child.BeginErrorReadLine();
        return child;
    }

    /// <summary>How to start this program again: its apphost, or <c>dotnet</c> with the entry assembly.</summary>
    static (string Program, string[] Leading) SelfCommand()
    {
        var process = Environment.ProcessPath ?? throw new InvalidOperationException("the path of this program is unknown");
        var entry = Assembly.GetEntryAssembly()?.Location;
        return Path.GetFileNameWithoutExtension(process) == "dotnet" && !string.IsNullOrEmpty(entry) ? (process, [entry]) : (process, []);
    }

    // A child stops at its next safe point on SIGTERM, as on Ctrl-C (it writes its checkpoint); .NET's Process.Kill
    // sends SIGKILL, which would lose the steps since the last checkpoint, so on Unix the signal is sent by hand.
    static void Stop(Process child)
    {
        try
        {
            if (child.HasExited) return;
            if (OperatingSystem.IsWindows()) child.Kill();
            else _ = SendSignal(child.Id, SigTerm);
        }
        catch (InvalidOperationException) { } // it has just exited
    }

    const int SigTerm = 15;

    [DllImport("libc", EntryPoint = "kill")]
    static extern int SendSignal(int pid, int signal);
}
