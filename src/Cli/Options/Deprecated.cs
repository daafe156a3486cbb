namespace DiffusionFunctional.Cli.Options;

/// <summary>
/// Settings that still accept an option's old spelling for one release (hidden from the help). <see cref="CommandGate"/>
/// prints one line for each old spelling used and refuses an old and a new spelling given together.
/// </summary>
public interface IHasDeprecatedOptions
{
    /// <summary>Each old option name and what replaces it.</summary>
    IReadOnlyList<(string Old, string New)> Renamed { get; }
}

/// <summary>The notices and the refusal of old spellings.</summary>
internal static class Deprecated
{
    /// <summary>The notice for an old option name.</summary>
    public static string Notice(string command, string old, string now) =>
        $"{command} {old} is now {now}; the old name is accepted until the next release";

    /// <summary>Whether <paramref name="option"/> was given on <paramref name="arguments"/> (as "--x v" or "--x=v").</summary>
    public static bool Given(IEnumerable<string> arguments, string option) =>
        arguments.Any(a => a == option || a.StartsWith(option + "=", StringComparison.Ordinal));
}
