using System.Reflection;
using System.Text.RegularExpressions;
using DiffusionFunctional.Cli.Commands;
using Spectre.Console.Cli;

namespace DiffusionFunctional.Cli;

/// <summary>The <c>dfn</c> command table and the one mapping from outcome to exit code: 0 ok, 1 failure, 2 bad input, 130 interrupted.</summary>
public static class DfnApp
{
    /// <summary>Success.</summary>
    public const int Ok = 0;
    /// <summary>The work failed (including a diverged training run, or an output that could not be written).</summary>
    public const int Failure = 1;
    /// <summary>The input cannot be used: a <see cref="BadInputException"/>, or options the parser refused.</summary>
    public const int BadInput = 2;
    /// <summary>Stopped by a signal after writing what allows a resume.</summary>
    public const int Interrupted = 130;

    /// <summary>Branches (command groups): given alone, each prints its help and exits 0. A test checks this list
    /// against every branch of the command table (<c>dfn cli xmldoc</c>).</summary>
    static readonly string[] Branches = ["bench", "data", "data fetch"];

    /// <summary>Runs one command line; <paramref name="stop"/> is the process's one cancellation (signals).</summary>
    public static int Run(string[] args, CancellationToken stop = default)
    {
        if (args.Length > 0 && Branches.Contains(string.Join(' ', args))) args = [.. args, "--help"];
        if (args is ["--version"] or ["-v"]) return PrintVersion();
        var app = new CommandApp();
        app.Configure(config =>
        {
            config.SetApplicationName("dfn");
            config.SetApplicationVersion(Version);
            config.PropagateExceptions();
            config.Settings.StrictParsing = true;
            config.SetInterceptor(new CommandGate());
            CommandTable.Add(config);
        });
        try
        {
            return app.Run(args, stop);
        }
        catch (Exception e)
        {
            return Fail(e, args);
        }
    }

    /// <summary>The one mapping from an exception to an exit code and a single line on standard error.</summary>
    static int Fail(Exception e, string[] args) => e switch
    {
        BadInputException => Fail(BadInput, e.Message),
        CommandAppException => Fail(BadInput, ParserMessage(e.Message, args)),
        OperationCanceledException => Fail(Interrupted, "interrupted"),
        IOException or UnauthorizedAccessException => Fail(Failure, e.Message),
        _ => Fail(Failure, $"{e.Message} ({e.GetType().Name}: a bug, please report it{WithDetails(BugReport.Write(e, args))})"),
    };

    static string WithDetails(string? reportPath) => reportPath is null ? "" : $" with {reportPath}";

    /// <summary>Prints one line to standard error, never a stack trace, and returns <paramref name="code"/>.</summary>
    public static int Fail(int code, string message)
    {
        var line = message.ReplaceLineEndings(" ").Trim();
        Console.Error.WriteLine($"dfn: {line}");
        return code;
    }

    /// <summary>The parser's messages name a value but not the option it was given to ("Failed to convert 'abc' to
    /// Int32."); this adds the option from the command line.</summary>
    static string ParserMessage(string message, string[] args)
    {
        var conversion = Regex.Match(message, @"^Failed to convert '(.*)' to (\w+)\.?$");
        if (!conversion.Success) return message;
        var value = conversion.Groups[1].Value;
        var index = Array.IndexOf(args, value);
        var option = index > 0 && args[index - 1].StartsWith('-') ? args[index - 1] : "an option";
        var kind = conversion.Groups[2].Value switch
        {
            "Int32" or "Int64" => "an integer",
            "Double" or "Single" => "a number",
            "Boolean" => "true or false",
            var other => $"a {other}",
        };
        return $"{option}: '{value}' is not {kind}";
    }

    /// <summary><c>dfn --version</c>: the version, then the convolution kernels in force on this machine (a bad
    /// verdict still prints, and the exit code says it: 2).</summary>
    static int PrintVersion()
    {
        Console.Out.WriteLine(Version);
        try
        {
            Console.Out.WriteLine($"kernels: {Backend.ConvolutionKernels.Ensure().Summary}");
            return Ok;
        }
        catch (Exception e)
        {
            return Fail(e, ["--version"]);
        }
    }

    /// <summary>The informational version of the dfn assembly (what <c>dfn --version</c> prints).</summary>
    public static string Version =>
        typeof(DfnApp).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion ?? "unknown";
}
