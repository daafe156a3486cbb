namespace DiffusionFunctional.Cli;

/// <summary>
/// The full text of an unexpected exception, kept in a file: the one line dfn prints for a bug names the file, so a
/// report can carry the stack trace (managed frames, and libtorch's own frames inside its message) that the line
/// leaves out. Diagnosing the finaliser stops of docs/platform.md needed exactly that stack.
/// </summary>
public static class BugReport
{
    /// <summary>Writes dfn's version, the command line and <paramref name="error"/>'s full text to a new file in
    /// <paramref name="directory"/> (the temporary folder when null) and returns its path; null when it cannot be
    /// written (the one line then goes out without it).</summary>
    public static string? Write(Exception error, IReadOnlyList<string> args, string? directory = null)
    {
        try
        {
            var folder = directory ?? Path.GetTempPath();
            var path = Path.Combine(folder, $"dfn-bug-{DateTime.UtcNow:yyyyMMdd-HHmmss}-{Environment.ProcessId}.txt");
            File.WriteAllText(path, $"dfn {DfnApp.Version}\ndfn {string.Join(' ', args)}\n\n{error}\n");
            return path;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }
}
