using DiffusionFunctional.Analysis;
using DiffusionFunctional.Data;
using DiffusionFunctional.Diffusion;
using DiffusionFunctional.Models;
using DiffusionFunctional.Training;
using static TorchSharp.torch;

namespace DiffusionFunctional.Experiments.Analysis;

/// <summary>What `dfn affinity` measures: checkpoints, data, and the measurement settings.</summary>
/// <param name="Checkpoints">Checkpoint files, or folders whose <c>*.dfn</c> files are all used.</param>
/// <param name="Data">A data specification (<c>mnist</c>, <c>idx:PATH</c>, <c>folder:PATH</c>).</param>
/// <param name="OutputDirectory">Where the CSV and the plots go.</param>
/// <param name="Groups">Timestep groups G (must divide T).</param>
/// <param name="Images">Size of the fixed image batch the losses are measured on.</param>
/// <param name="SketchDim">0: exact gradients; D &gt; 0: a D-dimensional random projection of each.</param>
/// <param name="Seed">Seeds the image choice, the noise and the projection.</param>
/// <param name="UseEma">Measure the EMA weights instead of the online ones.</param>
public sealed record AffinityRequest(IReadOnlyList<string> Checkpoints, string Data, string OutputDirectory,
    int Groups = 20, int Images = 32, int SketchDim = 0, long Seed = 0, bool UseEma = false);

/// <summary>The averaged matrix, where it was written, and its headline numbers.</summary>
public sealed record AffinityRunResult(AffinityMeasurement Measurement, AffinityReportFiles Files, IReadOnlyList<string> Checkpoints, int ParameterCount);

/// <summary>Task affinity over one or more checkpoints, written as CSV + plots (ANT section 3.2, observation O1; docs/analysis.md, observation O1).</summary>
public static class AffinityRun
{
    /// <summary>Expands folders into their checkpoint files, in name order; refuses missing or invalid files.</summary>
    public static IReadOnlyList<string> ResolveCheckpoints(IEnumerable<string> paths)
    {
        var files = new List<string>();
        foreach (var path in paths)
        {
            if (Directory.Exists(path))
            {
                var found = Directory.GetFiles(path, "*.dfn", SearchOption.AllDirectories).Order(StringComparer.Ordinal).ToList();
                if (found.Count == 0) throw new BadInputException($"no checkpoint (*.dfn) in folder '{path}'");
                files.AddRange(found);
            }
            else if (File.Exists(path)) files.Add(path);
            else throw new BadInputException($"checkpoint '{path}' does not exist");
        }
        if (files.Count == 0) throw new BadInputException("no checkpoint given (--checkpoints FILE|DIR ...)");
        // Reading each header names what is wrong (an unknown format, a truncated payload, not a checkpoint at all), as
        // every other command does.
        foreach (var f in files)
        {
            var (_, sections) = CheckpointFile.Read(f);
            sections.Dispose();
        }
        return files;
    }

    /// <summary>Measures the affinity averaged over the checkpoints and writes the report files.</summary>
    public static AffinityRunResult Run(AffinityRequest request, Action<string>? log = null)
    {
        if (request.Images < 1) throw new BadInputException($"--images must be at least 1, got {request.Images}");
        if (request.SketchDim < 0) throw new BadInputException($"--sketch-dim must be 0 (exact) or positive, got {request.SketchDim}");
        var checkpoints = ResolveCheckpoints(request.Checkpoints);
        OutputLocation.CheckDirectory(request.OutputDirectory);
        DenoiserConfig config;
        GaussianDiffusion diffusion;
        int parameterCount;
        using (var first = CheckpointModel.Load(checkpoints[0], request.UseEma))
        {
            if (first.NoiseWarning() is { } warning) log?.Invoke($"warning: {warning}");
            config = first.Model.Config;
            diffusion = first.Diffusion;
            parameterCount = (int)first.Model.ParameterCount;
        }
        // Checked against the checkpoint's T before any data are loaded or gradients computed.
        if (request.Groups < 2 || diffusion.Timesteps % request.Groups != 0)
            throw new BadInputException($"--groups {request.Groups} must be at least 2 and divide the checkpoint's T = {diffusion.Timesteps}");

        using var data = DataSources.Load(request.Data, config.ImageChannels, config.ImageSize, log);
        if (data.Count < request.Images)
            throw new BadInputException($"--images {request.Images} but the data set has only {data.Count} images");
        var order = DataStream.Permutation(data.Count, (ulong)request.Seed, 0);
        using var indices = tensor(order.Take(request.Images).Select(i => (long)i).ToArray(), dtype: int64);
        using var batch = data.Images.index_select(0, indices);

        var options = new TaskAffinityOptions(request.Groups, request.SketchDim, request.Seed);
        var loaders = checkpoints.Select(path => (Func<nn.Module<Tensor, Tensor, Tensor>>)(() =>
        {
            log?.Invoke($"measuring {path}");
            var loaded = CheckpointModel.Load(path, request.UseEma);
            var d = loaded.Diffusion;
            if (d.Timesteps != diffusion.Timesteps || d.ScheduleName != diffusion.ScheduleName)
            {
                loaded.Dispose();
                throw new BadInputException($"'{path}' uses a different diffusion ({d.ScheduleName}, T = {d.Timesteps}) than '{checkpoints[0]}'");
            }
            return loaded.Model;
        }));
        var measurement = TaskAffinityAnalysis.MeasureAveraged(loaders, diffusion, batch, options);
        var files = AffinityReport.Write(request.OutputDirectory, measurement, diffusion.Schedule);
        return new AffinityRunResult(measurement, files, checkpoints, parameterCount);
    }
}
