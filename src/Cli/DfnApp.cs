using DiffusionFunctional.Cli.Commands;
using Spectre.Console;
using Spectre.Console.Cli;

namespace DiffusionFunctional.Cli;

/// <summary>The `dfn` command table and the exit-code policy: 0 ok, 1 failure, 2 bad input, 130 interrupted.</summary>
public static class DfnApp
{
    public const int Ok = 0;
    public const int Failure = 1;
    public const int BadInput = 2;

    public static int Run(string[] args)
    {
        var app = new CommandApp();
        app.Configure(config =>
        {
            config.SetApplicationName("dfn");
            config.PropagateExceptions();
            config.Settings.StrictParsing = true;
            config.AddCommand<ClusterCommand>("cluster")
                .WithDescription("Cluster diffusion timesteps into k contiguous intervals, exactly (dynamic programming).")
                .WithExample("cluster", "--schedule", "linear", "--timesteps", "1000", "--clusters", "5", "--objective", "snr");
            config.AddBranch("bench", bench =>
            {
                bench.SetDescription("Measure weighting methods: step-time overhead and training stability.");
                bench.AddCommand<BenchOverheadCommand>("overhead")
                    .WithDescription("Median step time of every weighting method relative to vanilla, same model and batch.");
                bench.AddCommand<BenchStabilityCommand>("stability")
                    .WithDescription("Train a small model with each method over several seeds; report divergence per run (exit 1 if any).");
            });
        });
        try
        {
            return app.Run(args);
        }
        catch (Exception e) when (IsBadInput(e))
        {
            return Fail(BadInput, e.Message);
        }
        catch (Exception e)
        {
            return Fail(Failure, $"{e.GetType().Name}: {e.Message}");
        }
    }

    static bool IsBadInput(Exception e) =>
        e is BadInputException or CommandAppException or ArgumentException or FormatException or FileNotFoundException or DirectoryNotFoundException;

    /// <summary>Prints one line to standard error, never a stack trace.</summary>
    public static int Fail(int code, string message)
    {
        var line = message.ReplaceLineEndings(" ").Trim();
        Console.Error.WriteLine($"dfn: {line}");
        return code;
    }
}
