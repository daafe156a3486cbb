using DiffusionFunctional.Training;

namespace DiffusionFunctional.Interop;

/// <summary>
/// Checks input and output locations of export and import before any work is done, so a bad <c>--out</c> costs
/// nothing and can never overwrite the checkpoint it reads.
/// </summary>
public static class OutputPaths
{
    /// <summary>A checkpoint given as a file, or as a run folder that holds <c>checkpoint.dfn</c>.</summary>
    public static string ResolveCheckpoint(string given)
    {
        if (string.IsNullOrWhiteSpace(given)) throw new BadInputException("a checkpoint path is required");
        if (Directory.Exists(given))
        {
            var inside = Path.Combine(given, Trainer.CheckpointName);
            return File.Exists(inside) ? inside : throw new BadInputException($"{given} is a folder without a {Trainer.CheckpointName}");
        }
        return File.Exists(given) ? given : throw new BadInputException($"checkpoint not found: {given}");
    }

    /// <summary>True when two paths name the same file (after making them absolute).</summary>
    public static bool Same(string a, string b) =>
        string.Equals(Path.GetFullPath(a).TrimEnd(Path.DirectorySeparatorChar), Path.GetFullPath(b).TrimEnd(Path.DirectorySeparatorChar), StringComparison.Ordinal);

    /// <summary>Refuses an output folder that is a file or cannot be written (a missing one is fine where it could be created).</summary>
    public static void RequireWritableFolder(string folder, string purpose)
    {
        if (File.Exists(folder)) throw new BadInputException($"the output {folder} is a file; {purpose} writes a folder");
        RequireWritable(folder);
    }

    /// <summary>Refuses an output file that is a folder or whose folder cannot be written.</summary>
    public static void RequireWritableFile(string file, string purpose)
    {
        if (Directory.Exists(file)) throw new BadInputException($"the output {file} is a folder; {purpose} writes a file (e.g. {Path.Combine(file, "unet.pt")})");
        if (file.EndsWith('/') || file.EndsWith(Path.DirectorySeparatorChar)) throw new BadInputException($"the output {file} names a folder; {purpose} writes a file");
        var parent = Path.GetDirectoryName(Path.GetFullPath(file))!;
        RequireWritable(parent);
    }

    /// <summary>
    /// Proves the folder can be written by creating and deleting a probe file in it. Folders created for the probe are
    /// removed again, so a refused or failed export leaves nothing behind.
    /// </summary>
    private static void RequireWritable(string folder)
    {
        var full = Path.GetFullPath(folder);
        for (var dir = full; !string.IsNullOrEmpty(dir); dir = Path.GetDirectoryName(dir))
            if (File.Exists(dir)) throw new BadInputException($"cannot write to {folder}: {dir} is a file, not a folder");
        var topMissing = full;
        while (Path.GetDirectoryName(topMissing) is { } parent && !Directory.Exists(parent)) topMissing = parent;
        var created = !Directory.Exists(full);
        var probe = Path.Combine(full, $".dfn-write-test-{Environment.ProcessId}-{Guid.NewGuid():N}");
        try
        {
            Directory.CreateDirectory(full);
            using (File.Create(probe)) { }
            File.Delete(probe);
        }
        catch (Exception e) when (e is UnauthorizedAccessException or IOException)
        {
            throw new BadInputException($"cannot write to {folder}: {e.Message}");
        }
        finally
        {
            if (created && Directory.Exists(topMissing)) Directory.Delete(topMissing, recursive: true);
        }
    }
}
