// Usage: dotnet run --project samples/Training.Sample -- [OUT_DIR] [STEPS] [DATA: mnist | idx:PATH | folder:PATH]
using DiffusionFunctional.Samples;

var output = args.Length > 0 ? args[0] : "results";
var steps = args.Length > 1 ? int.Parse(args[1]) : 200;
var losses = TinyTraining.Run(output, steps, args.Length > 2 ? args[2] : null);
Console.WriteLine($"loss {losses[0]:F4} -> {losses[^1]:F4} after {losses.Count} steps; samples in {Path.Combine(output, "grid.png")}");
