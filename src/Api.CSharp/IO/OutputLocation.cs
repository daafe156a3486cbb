namespace DiffusionFunctional;

/// <summary>
/// Checks an output location before any work is done, so that a bad <c>--out</c> costs a second, not an hour of
/// training: a folder where a folder is wanted (created, and proven writable), a file where a file is wanted.
/// </summary>
public static class OutputLocation
{
    /// <summary>Creates <paramref name="directory"/> if needed and proves it writable.</summary>
    /// <exception cref="BadInputException">It is a file, or cannot be created or written.</exception>
    public static void CheckDirectory(string directory, string option = "--out")
    {
        if (string.IsNullOrWhiteSpace(directory)) throw new BadInputException($"{option} DIR is required");
        if (File.Exists(directory)) throw new BadInputException($"{option} '{directory}' is a file; a folder is wanted");
        try
        {
            Directory.CreateDirectory(directory);
            var probe = Path.Combine(directory, $".dfn-write-test-{Environment.ProcessId}-{Guid.NewGuid():N}");
            File.WriteAllBytes(probe, [0]);
            File.Delete(probe);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or NotSupportedException or ArgumentException)
        {
            // The system's message names our probe file; say what it means for the folder instead.
            var why = e switch
            {
                UnauthorizedAccessException => "permission denied",
                DirectoryNotFoundException => "a part of the path does not exist",
                _ => e.Message.Contains(".dfn-write-test-", StringComparison.Ordinal) ? "the file system refuses new files there" : e.Message,
            };
            throw new BadInputException($"{option} '{directory}' is not writable: {why}");
        }
    }

    /// <summary>Proves that <paramref name="file"/> can be written (its folder exists or can be created and is writable)
    /// and that it is none of <paramref name="inputs"/> (an export must never overwrite the checkpoint it reads).</summary>
    /// <exception cref="BadInputException">It is a folder, one of the inputs, or its folder is not writable.</exception>
    public static void CheckFile(string file, string option = "--out", params string[] inputs)
    {
        if (string.IsNullOrWhiteSpace(file)) throw new BadInputException($"{option} FILE is required");
        if (Directory.Exists(file)) throw new BadInputException($"{option} '{file}' is a folder; a file is wanted");
        var full = Path.GetFullPath(file);
        foreach (var input in inputs)
            if (string.Equals(full, Path.GetFullPath(input), StringComparison.Ordinal))
                throw new BadInputException($"{option} '{file}' is the input file itself; choose another output so that the input is not overwritten");
        CheckDirectory(Path.GetDirectoryName(full)!, option);
    }
}
