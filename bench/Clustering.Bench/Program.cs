using System.Diagnostics;
using BenchmarkDotNet.Running;
using DiffusionFunctional.Bench;
using DiffusionFunctional.Core;

// `reference` times the O(k T^3) reference-shaped DP against ours on the same input, in one process.
if (args.Length > 0 && args[0] == "reference")
{
    int t = args.Length > 1 ? int.Parse(args[1]) : 1000;
    int k = args.Length > 2 ? int.Parse(args[2]) : 5;
    var logSnr = Schedule.create(ScheduleKind.Linear, t).LogSnr;
    var ours = Stopwatch.StartNew();
    const int repeats = 200;
    Clustering result = null!;
    for (int i = 0; i < repeats; i++) result = ClusteringModule.solve(IntervalCostModule.l1ToMedian(logSnr), k);
    ours.Stop();
    var refWatch = Stopwatch.StartNew();
    var (refBounds, refCost) = ReferenceDp.Solve(logSnr, k);
    refWatch.Stop();
    double oursMs = ours.Elapsed.TotalMilliseconds / repeats, refMs = refWatch.Elapsed.TotalMilliseconds;
    Console.WriteLine($"log-SNR, linear T={t}, k={k}");
    Console.WriteLine($"  ours (exact, Monge D&C):     {oursMs:F3} ms  boundaries [{string.Join(", ", result.Boundaries)}] cost {result.Cost:G10}");
    Console.WriteLine($"  reference-shaped O(kT^3) DP: {refMs:F1} ms  boundaries [{string.Join(", ", refBounds)}] cost {refCost:G10}");
    Console.WriteLine($"  speed-up: {refMs / oursMs:F0}x");
    return;
}

BenchmarkSwitcher.FromAssembly(typeof(ClusteringBenchmarks).Assembly).Run(args);
