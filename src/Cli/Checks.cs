using Spectre.Console;

namespace DiffusionFunctional.Cli;

/// <summary>
/// Option checks for the settings' <c>Validate()</c>: each returns null when the value is fine, or an error naming the
/// option and the value; <see cref="First"/> reports the first error. Spectre runs them before a command starts.
/// </summary>
internal static class Checks
{
    /// <summary>The first error among <paramref name="checks"/>, or success.</summary>
    public static ValidationResult First(params ValidationResult?[] checks) =>
        checks.FirstOrDefault(c => c is not null) ?? ValidationResult.Success();

    /// <summary>An error with this message.</summary>
    public static ValidationResult Error(string message) => ValidationResult.Error(message);

    /// <summary>A library check whose message already names the option, as an option check.</summary>
    public static ValidationResult? Plain(Action check)
    {
        try { check(); return null; }
        catch (BadInputException e) { return Error(e.Message); }
    }

    /// <summary>The option must be given.</summary>
    public static ValidationResult? Required(string? value, string option) =>
        string.IsNullOrWhiteSpace(value) ? Error($"{option} is required") : null;

    /// <summary>A library check (one that throws <see cref="BadInputException"/>) as an option check, prefixed with the option.</summary>
    public static ValidationResult? Library(Action check, string option)
    {
        try { check(); return null; }
        catch (BadInputException e) { return Error($"{option}: {e.Message}"); }
    }

    /// <summary>At least 1.</summary>
    public static ValidationResult? Positive(long value, string option) =>
        value < 1 ? Error($"{option} must be at least 1, got {value}") : null;

    /// <summary>At least 0.</summary>
    public static ValidationResult? NotNegative(long value, string option) =>
        value < 0 ? Error($"{option} must not be negative, got {value}") : null;

    /// <summary>A finite number above 0.</summary>
    public static ValidationResult? PositiveFinite(double value, string option) =>
        !(value > 0) || !double.IsFinite(value) ? Error($"{option} must be a finite number above 0, got {value}") : null;

    /// <summary>A finite number, 0 or more.</summary>
    public static ValidationResult? NotNegativeFinite(double value, string option) =>
        !(value >= 0) || !double.IsFinite(value) ? Error($"{option} must be a finite number, 0 or more, got {value}") : null;

    /// <summary>In [0, 1).</summary>
    public static ValidationResult? Fraction(double value, string option) =>
        !(value >= 0 && value < 1) ? Error($"{option} must lie in [0, 1), got {value}") : null;

    /// <summary>In [lo, hi].</summary>
    public static ValidationResult? Between(long value, long lo, long hi, string option) =>
        value < lo || value > hi ? Error($"{option} must lie in {lo}..{hi}, got {value}") : null;

    /// <summary>The thread count of commands that default to 2 (demo, ntg): the given one, else 2 bounded by the cores,
    /// so that the default passes <see cref="Threads"/> on a one-core machine.</summary>
    public static int ThreadsOrDefault(int? threads) => threads ?? Math.Min(2, Environment.ProcessorCount);

    /// <summary>A precision of the grids: <c>auto</c> or a name <see cref="Training.TrainingPrecision.Parse"/> accepts.</summary>
    public static ValidationResult? PrecisionOrAuto(string? precision) =>
        string.Equals(precision?.Trim(), "auto", StringComparison.OrdinalIgnoreCase) ? null : Precision(precision);

    /// <summary>The precision <c>auto</c> resolves to on <paramref name="device"/>, or the one given. Said by the run's
    /// first line (<c>output: ...; training precision bf16</c>) rather than here, so that an input refused later stays
    /// one line.</summary>
    public static string ResolvePrecision(string precision, TorchSharp.torch.Device device) =>
        string.Equals(precision.Trim(), "auto", StringComparison.OrdinalIgnoreCase)
            ? Training.Bf16Support.Auto(device)
            : Training.TrainingPrecision.Parse(precision);

    /// <summary>A precision name <see cref="Training.TrainingPrecision.Parse"/> accepts.</summary>
    public static ValidationResult? Precision(string? precision, string option = "--precision") =>
        Training.TrainingPrecision.Names.Contains((precision ?? "").Trim().ToLowerInvariant()) ? null
            : Error($"{option}: unknown precision '{precision}' (expected {string.Join(" or ", Training.TrainingPrecision.Names)})");

    /// <summary>A device name of the form cpu, cuda or cuda:N (whether it is available is found when it is used).</summary>
    public static ValidationResult? Device(string? device, string option = "--device") =>
        System.Text.RegularExpressions.Regex.IsMatch((device ?? "").Trim().ToLowerInvariant(), "^(cpu|cuda|cuda:[0-9]+)$") ? null
            : Error($"{option}: unknown device '{device}' (expected cpu, cuda or cuda:N)");

    /// <summary>A data source of the form mnist, idx:PATH or folder:PATH (the files are read when the data load).</summary>
    public static ValidationResult? DataSource(string? data, string option = "--data")
    {
        var text = (data ?? "").Trim();
        if (text.Equals("mnist", StringComparison.OrdinalIgnoreCase)) return null;
        foreach (var prefix in new[] { "idx:", "folder:" })
            if (text.StartsWith(prefix, StringComparison.OrdinalIgnoreCase))
                return text.Length > prefix.Length ? null : Error($"{option} {prefix}PATH needs a path after '{prefix}'");
        return Error($"{option}: unknown data source '{data}' (expected mnist, idx:PATH or folder:PATH)");
    }

    /// <summary>A thread count within the machine's logical processors (when given).</summary>
    public static ValidationResult? Threads(int? threads, string option = "--threads")
    {
        if (threads is not { } n) return null;
        var cores = Environment.ProcessorCount;
        return n < 1 || n > cores ? Error($"{option} must lie in 1..{cores} (this machine has {cores} logical processors), got {n}") : null;
    }
}
