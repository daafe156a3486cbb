using DiffusionFunctional.Backend;
using System.Collections.Specialized;
using System.Text.Json.Serialization;
using DiffusionFunctional.Diffusion;
using DiffusionFunctional.Interop;
using DiffusionFunctional.Models;
using TorchSharp.PyBridge;
using static TorchSharp.torch;

namespace DiffusionFunctional.Experiments.Bench;

/// <summary>Our network's output against the peer's on one fixed input (<c>train_peer.py --check</c>).</summary>
/// <param name="MaxAbsDiff">max |peer - ours| over the output.</param>
/// <param name="MaxAbsOutput">max |ours|: the check means something only when this is well above zero.</param>
/// <param name="Tolerance">The relative tolerance (1e-5).</param>
/// <param name="Bound">Tolerance x max(1, max |ours|): float32 sums in another order differ by a few ulps per layer.</param>
/// <param name="Passed">MaxAbsDiff &lt;= Bound.</param>
public sealed record PeerCheck(double MaxAbsDiff, double MaxAbsOutput, double Tolerance, double Bound, bool Passed);

/// <summary>
/// The PyTorch peer beside one of our variants, timed in the same rounds at the same thread count (the peer trains in
/// fp32, NCHW, whatever our variant's precision and memory format).
/// </summary>
/// <param name="ImagesPerSecond">The peer's training images/s over all rounds.</param>
/// <param name="StepSeconds">The peer's seconds per step over all rounds.</param>
/// <param name="Ratio">Ours / PyTorch: the median over rounds of the two img/s measured side by side in each round.</param>
/// <param name="RoundRatios">Ours / PyTorch in each round, in order.</param>
/// <param name="Rounds">Rounds timed.</param>
/// <param name="Threads">torch.set_num_threads of the peer (our variant's thread count).</param>
/// <param name="TorchVersion">torch.__version__ of the peer.</param>
/// <param name="OpenMpWait">The OpenMP wait settings the peer ran with (ours), "NAME=VALUE, ...".</param>
/// <param name="Check">The forward check that ran first.</param>
/// <param name="Guarded">Whether the regression guard covers this variant: fp32, the peer's own computation (bf16 is
/// not the same step, so its ratio is reported but not held to the target).</param>
public sealed record PeerComparison(
    [property: JsonPropertyName("img_per_s")] double ImagesPerSecond, double StepSeconds, double Ratio, IReadOnlyList<double> RoundRatios,
    int Rounds, int Threads, string TorchVersion, [property: JsonPropertyName("openmp_wait")] string OpenMpWait, PeerCheck Check, bool Guarded)
{
    /// <summary>Issue 13's regression guard: ours / PyTorch must stay at or above this (a benchmark figure, not a test).</summary>
    public const double Target = 1.0;

    /// <summary>Whether <see cref="Ratio"/> meets <see cref="Target"/>; null where the guard does not apply (<see cref="Guarded"/>).</summary>
    public bool? MeetsTarget => Guarded ? Ratio >= Target : null;
}

/// <summary>
/// <c>dfn bench throughput --peer</c>: our training step and the same step in PyTorch (bench/peer/train_peer.py,
/// Debian's python3-torch), timed interleaved in one run so that a shared machine's load falls on both alike
/// (docs/benchmarks.md, "PyTorch peer"). In a temporary folder it writes the two Python files (embedded in this
/// assembly), our diffusers export of the benchmark's initial weights, and a fixed input with our output; the peer
/// first checks that its network computes our output (to 1e-5), then one persistent peer process per thread count
/// loads the export, warms up and waits; each round, after our variant's timed steps, the peer times as many steps.
/// Process start-up and warm-up are outside the timed rounds; the peer times its own steps, as we time ours.
/// </summary>
public static class PeerBenchmark
{
    /// <summary>The interpreter with Debian's python3-torch (bench/peer/install.sh installs it).</summary>
    public const string DefaultPython = "/usr/bin/python3";

    /// <summary>Relative tolerance of the forward check (docs/interop.md, "Checked against").</summary>
    public const double CheckTolerance = 1e-5;

    /// <summary>The Python files written next to each other into the peer's folder.</summary>
    internal static readonly string[] Scripts = ["unet_reference.py", "train_peer.py"];

    /// <summary>
    /// Runs <see cref="TrainingSpeedBenchmark"/> with the peer interleaved; every report carries its
    /// <see cref="ThroughputReport.Peer"/>. Throws <see cref="BadInputException"/> when <paramref name="python"/> cannot
    /// import torch (the user asked for the peer), and <see cref="PeerFailedException"/> when the peer fails or its
    /// output differs from ours.
    /// </summary>
    public static IReadOnlyList<ThroughputReport> Run(ThroughputOptions o, IReadOnlyList<SpeedVariant> variants, int rounds,
                                                      Action<string>? log = null, string python = DefaultPython)
    {
        var version = PeerProcess.TorchVersion(python)
            ?? throw new BadInputException($"--peer: {python} cannot import torch and numpy; install Debian's python3-torch with bench/peer/install.sh");
        log?.Invoke($"PyTorch peer: torch {version} under {python}, OpenMP {PeerProcess.WaitSettingsLine}");
        var folder = Directory.CreateTempSubdirectory("dfn-peer-").FullName;
        try
        {
            WriteScripts(folder);
            using var session = new PeerSession(python, folder, o, variants, log);
            var reports = TrainingSpeedBenchmark.Run(o, variants, rounds, log, session);
            return [.. reports.Select((r, i) => r with { Peer = session.Comparison(i, rounds) })];
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    /// <summary>Copies the embedded bench/peer/*.py into <paramref name="folder"/> (train_peer.py imports the other).</summary>
    internal static void WriteScripts(string folder)
    {
        var assembly = typeof(PeerBenchmark).Assembly;
        foreach (var name in Scripts)
        {
            using var resource = assembly.GetManifestResourceStream($"peer/{name}")
                ?? throw new InvalidOperationException($"bench/peer/{name} is not embedded in {assembly.GetName().Name}");
            using var file = File.Create(Path.Combine(folder, name));
            resource.CopyTo(file);
        }
    }

    /// <summary>
    /// Writes what <c>train_peer.py --check</c> compares: a diffusers export of a network of <paramref name="config"/>
    /// into <paramref name="exportFolder"/>, and <paramref name="file"/>, a torch.save dict {x, t, y} of a fixed input
    /// and our output. The network is seeded and every weight perturbed (N(0, 0.05^2)) because a freshly initialised
    /// UNet's output and residual convolutions are zero (ADM's initialisation, src/Api.CSharp/Models/UNetBlocks.cs): its
    /// output is identically zero, and a check on it would pass whatever the peer computed. The global random state
    /// is restored afterwards.
    /// </summary>
    public static void WriteCheck(UNetConfig config, GaussianDiffusion diffusion, string exportFolder, string file)
    {
        using var state = random.get_rng_state();
        try
        {
            using var scope = NewDisposeScope();
            random.manual_seed(17);
            using var net = new UNet(config);
            using (no_grad())
                foreach (var p in net.parameters()) p.AddInPlace(randn_like(p), 0.05);
            net.eval();
            WeightsExport.WriteDiffusers(net, diffusion, exportFolder);
            using var generator = new TorchSharp.torch.Generator(7);
            var x = randn([2, config.ImageChannels, config.ImageSize, config.ImageSize], generator: generator);
            var t = tensor(new long[] { 3, diffusion.Timesteps * 9 / 10 });
            Tensor y;
            using (no_grad()) y = net.forward(x, t).contiguous();
            WriteTensors(file, [("x", x), ("t", t), ("y", y)]);
        }
        finally
        {
            random.set_rng_state(state);
        }
    }

    /// <summary>Writes named tensors as one <c>torch.save</c> dict (TorchSharp.PyBridge), which the peer reads with torch.load.</summary>
    public static void WriteTensors(string file, IEnumerable<(string Name, Tensor Tensor)> tensors)
    {
        var dict = new OrderedDictionary();
        foreach (var (name, value) in tensors) dict.Add(name, value);
        using var stream = File.Create(file);
        PyTorchPickler.PickleStateDict(stream, dict, leaveOpen: true);
    }
}
