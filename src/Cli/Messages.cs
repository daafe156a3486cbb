using Spectre.Console;

namespace DiffusionFunctional.Cli;

/// <summary>
/// What dfn says besides its results: information and warnings as single lines on standard error (standard output
/// keeps tables and JSON), and whether a live progress display can be drawn.
/// </summary>
internal static class Messages
{
    /// <summary>True on a terminal: progress bars; false when output is redirected (CI, logs): plain lines.</summary>
    public static bool IsInteractive =>
        !Console.IsErrorRedirected && !Console.IsOutputRedirected && AnsiConsole.Profile.Capabilities.Interactive;

    /// <summary>One line of information.</summary>
    public static void Info(string line) => Console.Error.WriteLine($"dfn: {line.ReplaceLineEndings(" ")}");

    /// <summary>One warning line.</summary>
    public static void Warn(string line) => Console.Error.WriteLine($"dfn: warning: {line.ReplaceLineEndings(" ")}");
}
