using DiffusionFunctional;
using DiffusionFunctional.Core;

// The README example: the boundaries below were computed by the F# DP while this file compiled.
Console.WriteLine($"{FaceTasks.Schedule}/{FaceTasks.Objective}: T = {FaceTasks.Timesteps}, k = {FaceTasks.Count}, cost = {FaceTasks.Cost:F4}");
Console.WriteLine("boundaries: " + string.Join(",", FaceTasks.Boundaries));
foreach (var cluster in FaceTasks.Clusters)
    Console.WriteLine(cluster);

Console.WriteLine($"t = 500 lies in cluster {FaceTasks.ClusterOf(500)}: {FaceTasks.Cluster2}");

// One value per cluster: the container's arity is the cluster count, checked by the compiler.
var losses = new FaceTasks.PerCluster<double>(0.9, 0.4, 0.3, 0.2, 0.1);
var weighted = losses.Map((cluster, loss) => loss * FaceTasks.Clusters[cluster].Size / FaceTasks.Timesteps);
Console.WriteLine($"size-weighted losses: {weighted}, total {weighted.Sum():F4}");

var random = new Random(0);
Console.WriteLine("chunk sizes for a batch of 12: " + FaceTasks.ChunkSizes(12));
Console.WriteLine("stratified batch of 12: " + string.Join(",", FaceTasks.SampleBatch(12, random)));

// The runtime plan a trainer accepts equals Core's run-time clustering of the same configuration.
TimestepClusterings.TryCluster("linear", 1000, 5, "snr", "log", null, out var atRunTime, out _);
Console.WriteLine($"plan: {FaceTasks.Plan}; same as run time: {FaceTasks.Plan.SameAs(ClusterPlan.OfClusters(atRunTime))}");

// Denoising task routing declared beside the clusters: the channels each timestep activates, computed by Core.
// A model takes the same settings: UNetConfig.Named("small").WithRouting(RoutedTasks.Routing,
// RoutedTasks.RoutingShare, RoutedTasks.RoutingSharpness, RoutedTasks.Timesteps).
Console.WriteLine(FormattableString.Invariant($"routing: {RoutedTasks.Routing}, share {RoutedTasks.RoutingShare}, sharpness {RoutedTasks.RoutingSharpness}"));
foreach (var t in new[] { 0, 500, 999 })
    Console.WriteLine($"t = {t}: active channels (start, count) {RoutedTasks.RoutingWindow(t, 128)} of 128");
Console.WriteLine($"t = 0 and t = 999 share {RoutedTasks.RoutingOverlap(0, 999, 128)} channels");
var coreWindow = TaskRouting.window(500, 1000, 128, TaskRouting.DefaultShare, TaskRouting.DefaultSharpness);
Console.WriteLine($"routing same as Core: {RoutedTasks.RoutingWindow(500, 128) == (coreWindow.Start, coreWindow.Width)}");

[TaskClusters(Schedule = "linear", Timesteps = 1000, Clusters = 5, Objective = "snr")]
public static partial class FaceTasks;

[TaskClusters(Schedule = "linear", Timesteps = 1000, Clusters = 5, Objective = "snr", Routing = "dtr", RoutingShare = 0.8, RoutingSharpness = 4)]
public static partial class RoutedTasks;
