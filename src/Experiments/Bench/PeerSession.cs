using DiffusionFunctional.Models;
using System.Globalization;
using System.Text.Json;
using DiffusionFunctional.Interop;
using DiffusionFunctional.Training;

namespace DiffusionFunctional.Experiments.Bench;

/// <summary>
/// The peer's side of one <see cref="PeerBenchmark.Run"/>: the forward check, one persistent peer process per thread
/// count, and the seconds both sides took in each round (<see cref="ISpeedCompanion"/> of
/// <see cref="TrainingSpeedBenchmark"/>).
/// </summary>
internal sealed class PeerSession(string python, string folder, ThroughputOptions options, IReadOnlyList<SpeedVariant> variants,
                                  Action<string>? log) : ISpeedCompanion, IDisposable
{
    private readonly Dictionary<int, PeerProcess> peers = [];
    private readonly Dictionary<int, List<double>> peerSeconds = [];
    private readonly List<double>[] ourSeconds = [.. variants.Select(_ => new List<double>())];
    // The peer at a thread count runs once per round, after the first variant with that count.
    private readonly int[] firstWithThreads = [.. variants.Select(v => variants.Select(w => w.Threads).ToList().IndexOf(v.Threads))];
    private PeerCheck? check;
    private string torchVersion = "";

    private string Script => Path.Combine(folder, "train_peer.py");

    /// <summary>Exports the initial weights, runs the forward check, starts and warms up one peer per thread count.</summary>
    public void Prepare(IReadOnlyList<Trainer> trainers)
    {
        var first = trainers[0];
        if (first.Model.Config is not UNetConfig unet)
            throw new BadInputException($"--peer runs diffusers' UNet2DModel, so it compares UNets only (this is a {first.Model.Config.Kind}); a DiT's outputs are checked against PyTorch by tests/Api.Tests/TorchPeerTests.fs");
        var export = Path.Combine(folder, "export");
        try
        {
            WeightsExport.WriteDiffusers(first.Model, first.Diffusion, export);
            PeerBenchmark.WriteCheck(unet, first.Diffusion, Path.Combine(folder, "check-net"), Path.Combine(folder, "check.pt"));
        }
        catch (BadInputException e) { throw new BadInputException($"--peer: the model cannot be written for the peer: {e.Message}"); }
        check = RunCheck();
        log?.Invoke($"PyTorch peer check: max |peer - ours| = {check.MaxAbsDiff:G3} <= {check.Bound:G3} (max |y| = {check.MaxAbsOutput:G3})");
        foreach (var threads in variants.Select(v => v.Threads).Distinct())
        {
            peers[threads] = PeerProcess.Start(python, [Script, "--serve", .. TrainingArguments(first.Options, threads, export)]);
            peerSeconds[threads] = [];
        }
        foreach (var (threads, peer) in peers)
        {
            var ready = peer.ReadJson();
            if (!ready.TryGetProperty("ready", out _)) throw peer.Failed($"it answered {ready} instead of being ready");
            torchVersion = ready.GetProperty("torch_version").GetString() ?? "";
        }
    }

    /// <summary>After the first variant of each thread count in a round, the peer at that count times as many steps.</summary>
    public void AfterTraining(int round, int variant, double trainSeconds)
    {
        ourSeconds[variant].Add(trainSeconds);
        var threads = variants[variant].Threads;
        if (firstWithThreads[variant] != variant) return;
        var peer = peers[threads];
        peer.Send(options.TrainSteps.ToString(CultureInfo.InvariantCulture));
        var answer = peer.ReadJson();
        if (!answer.TryGetProperty("seconds", out var seconds) || seconds.GetDouble() <= 0)
            throw peer.Failed($"it answered {answer} instead of the seconds of {options.TrainSteps} steps");
        peerSeconds[threads].Add(seconds.GetDouble());
        log?.Invoke($"round {round + 1}, PyTorch peer, {threads} thread{(threads == 1 ? "" : "s")}: {answer.GetProperty("img_per_s").GetDouble():F1} img/s");
    }

    /// <summary>The peer beside variant <paramref name="variant"/>: its img/s and ours / PyTorch per round and as a median.</summary>
    public PeerComparison Comparison(int variant, int rounds)
    {
        var threads = variants[variant].Threads;
        var theirs = peerSeconds[threads];
        var ours = ourSeconds[variant];
        // Both sides time the same number of steps of the same batch, so img/s ours / PyTorch = seconds PyTorch / ours.
        var ratios = theirs.Zip(ours, (t, o) => t / o).ToArray();
        var stepSeconds = theirs.Sum() / (rounds * options.TrainSteps);
        return new PeerComparison(options.BatchSize / stepSeconds, stepSeconds, Median(ratios), ratios, rounds, threads,
                                  torchVersion, PeerProcess.WaitSettingsLine, check!, Guarded: variants[variant].Precision == TrainingPrecision.Fp32);
    }

    /// <summary>The trainer's hyper-parameters as train_peer.py options (the benchmark trains with the vanilla weighting).</summary>
    private IEnumerable<string> TrainingArguments(TrainerOptions t, int threads, string export)
    {
        static string N(double v) => v.ToString("R", CultureInfo.InvariantCulture);
        string[] args =
        [
            "--weights", export, "--batch", N(options.BatchSize), "--threads", N(threads), "--warmup", N(options.WarmupSteps),
            "--lr", N(t.LearningRate), "--weight-decay", N(t.WeightDecay), "--clip", N(t.GradientClipNorm ?? 0),
            "--lr-warmup", N(t.WarmupSteps), "--ema-decay", N(t.EmaDecay), "--seed", N(t.Seed),
        ];
        return t.EmaWarmup ? args : [.. args, "--no-ema-warmup"];
    }

    private PeerCheck RunCheck()
    {
        using var process = PeerProcess.Start(python, [Script, "--weights", Path.Combine(folder, "check-net"), "--check", Path.Combine(folder, "check.pt"),
                                                       "--tol", PeerBenchmark.CheckTolerance.ToString("R", CultureInfo.InvariantCulture)]);
        var report = process.ReadJson();
        var code = process.WaitForExit();
        double Get(string name) => report.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.Number ? v.GetDouble() : double.NaN;
        var result = new PeerCheck(Get("max_abs_diff"), Get("max_abs_output"), PeerBenchmark.CheckTolerance, Get("bound"), code == 0);
        if (!result.Passed)
            throw new PeerFailedException($"the PyTorch peer does not compute our network: max |peer - ours| = {result.MaxAbsDiff:G3} > {result.Bound:G3} (exit {code})");
        return result;
    }

    private static double Median(double[] values)
    {
        var sorted = values.Order().ToArray();
        var n = sorted.Length;
        return n == 0 ? double.NaN : n % 2 == 1 ? sorted[n / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2;
    }

    /// <summary>Ends every peer process.</summary>
    public void Dispose()
    {
        foreach (var peer in peers.Values) peer.Dispose();
    }
}
