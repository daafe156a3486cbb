using System.Diagnostics;
using System.Text.Json;
using DiffusionFunctional.Backend;

namespace DiffusionFunctional.Experiments.Bench;

/// <summary>
/// The PyTorch peer stopped, or answered with something other than what was asked (a crash, a refused config, a
/// check that could not run). An I/O failure of a child process: the CLI reports it as a failure (exit 1) in one line.
/// </summary>
public sealed class PeerFailedException(string message) : IOException(message);

/// <summary>
/// One Python process of the PyTorch peer (bench/peer/train_peer.py), talking one JSON object per line on stdout.
/// It gets our OpenMP wait settings in its environment (what <see cref="NativeThreading"/> set for libtorch here, or
/// the user's own value), so that both sides wait for work the same way.
/// </summary>
internal sealed class PeerProcess : IDisposable
{
    /// <summary>How long one answer may take (a warm-up or a round on a loaded machine); a crash ends the wait at once.</summary>
    private static readonly TimeSpan AnswerTimeout = TimeSpan.FromMinutes(30);

    private readonly Process process;
    private readonly Queue<string> errorTail = new();

    private PeerProcess(Process process)
    {
        this.process = process;
        process.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is not { Length: > 0 } line) return;
            lock (errorTail)
            {
                errorTail.Enqueue(line);
                if (errorTail.Count > 20) errorTail.Dequeue();
            }
        };
        process.BeginErrorReadLine();
    }

    /// <summary>The OpenMP wait settings the peer runs with: ours (see <see cref="NativeThreading"/>), as one "NAME=VALUE, ..." line.</summary>
    public static string WaitSettingsLine => string.Join(", ", PeerWaitSettings.Select(p => $"{p.Key}={p.Value}"));

    /// <summary>What this process's libtorch waits with (set natively, or the user's), else our defaults.</summary>
    static IReadOnlyDictionary<string, string> PeerWaitSettings =>
        NativeThreading.WaitSettings() is { Count: > 0 } set ? set : NativeThreading.Defaults;

    /// <summary>torch's version under <paramref name="python"/>, or null when it cannot import torch and numpy.</summary>
    public static string? TorchVersion(string python)
    {
        if (!File.Exists(python)) return null;
        try
        {
            using var probe = Start(python, ["-c", "import numpy, torch; print(torch.__version__)"]);
            var line = probe.process.StandardOutput.ReadLine();
            return probe.process.WaitForExit(120_000) && probe.process.ExitCode == 0 && !string.IsNullOrWhiteSpace(line) ? line.Trim() : null;
        }
        catch (System.ComponentModel.Win32Exception) { return null; }
    }

    /// <summary>Starts <paramref name="python"/> with <paramref name="arguments"/> (stdin, stdout and stderr redirected).</summary>
    public static PeerProcess Start(string python, IEnumerable<string> arguments)
    {
        var info = new ProcessStartInfo(python)
        {
            RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false,
        };
        foreach (var a in arguments) info.ArgumentList.Add(a);
        foreach (var name in NativeThreading.Defaults.Keys) info.Environment.Remove(name);
        foreach (var (name, value) in PeerWaitSettings) info.Environment[name] = value;
        info.Environment["PYTHONDONTWRITEBYTECODE"] = "1";
        return new PeerProcess(Process.Start(info) ?? throw new PeerFailedException($"could not start {python}"));
    }

    /// <summary>Sends one line to the peer's stdin.</summary>
    public void Send(string line)
    {
        process.StandardInput.WriteLine(line);
        process.StandardInput.Flush();
    }

    /// <summary>The next JSON line on stdout; throws <see cref="PeerFailedException"/> with the peer's last error line when none comes.</summary>
    public JsonElement ReadJson()
    {
        var read = process.StandardOutput.ReadLineAsync();
        if (!read.Wait(AnswerTimeout)) throw Failed($"no answer within {AnswerTimeout.TotalMinutes:F0} minutes");
        if (read.Result is not { } line) throw Failed("it exited");
        try { return JsonDocument.Parse(line).RootElement.Clone(); }
        catch (JsonException) { throw Failed($"it printed '{line}' instead of a JSON line"); }
    }

    /// <summary>Waits for the process to end and returns its exit code.</summary>
    public int WaitForExit()
    {
        if (!process.WaitForExit(AnswerTimeout)) throw Failed("it did not exit");
        process.WaitForExit();
        return process.ExitCode;
    }

    /// <summary>A <see cref="PeerFailedException"/> naming what went wrong and the peer's last line on stderr.</summary>
    public PeerFailedException Failed(string what)
    {
        process.WaitForExit(2000);
        string last;
        lock (errorTail) last = errorTail.Count > 0 ? errorTail.Last() : "nothing on stderr";
        return new PeerFailedException($"the PyTorch peer failed: {what} ({last})");
    }

    /// <summary>Closes stdin (the peer then exits) and waits briefly; a peer that hangs is killed.</summary>
    public void Dispose()
    {
        try
        {
            if (!process.HasExited) process.StandardInput.Close();
            if (!process.WaitForExit(10_000)) process.Kill(entireProcessTree: true);
        }
        catch (InvalidOperationException) { }
        catch (IOException) { }
        process.Dispose();
    }
}
