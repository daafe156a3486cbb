namespace DiffusionFunctional;

/// <summary>
/// The caller's input cannot be used (a bad option value, a missing or malformed file). The message is
/// one line that names the problem; the CLI prints it and exits with code 2.
/// </summary>
public sealed class BadInputException(string message) : Exception(message);
