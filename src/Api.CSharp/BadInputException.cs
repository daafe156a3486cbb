namespace DiffusionFunctional;

/// <summary>
/// The caller's input cannot be used (a bad option value, a missing or malformed file, a mismatched checkpoint). The
/// message is one line that names the problem and the values; the CLI prints it and exits with code 2. Only this type
/// and its subclasses mean bad input: any other exception is a failure (exit 1).
/// </summary>
/// <param name="message">One line naming the problem and the values involved.</param>
public class BadInputException(string message) : Exception(message);
