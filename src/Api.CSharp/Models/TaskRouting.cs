using System.Text.Json;
using System.Text.Json.Serialization;
using DiffusionFunctional.Core;
using TorchSharp;
using static TorchSharp.torch;

namespace DiffusionFunctional.Models;

/// <summary>How a <see cref="Denoiser"/> routes the denoising tasks (timesteps) through its channels.</summary>
[JsonConverter(typeof(TaskRoutingKindJsonConverter))]
public enum TaskRoutingKind
{
    /// <summary>Every channel serves every timestep (the plain network).</summary>
    None,
    /// <summary>Denoising Task Routing (Park et al., ICLR 2024): a sliding window of channels per timestep.</summary>
    Dtr,
}

/// <summary>Writes <see cref="TaskRoutingKind"/> as "none" / "dtr" in checkpoint headers.</summary>
internal sealed class TaskRoutingKindJsonConverter() : JsonStringEnumConverter<TaskRoutingKind>(JsonNamingPolicy.CamelCase, allowIntegerValues: false);

/// <summary>
/// The DTR channel masks of one network (docs/routing-and-densities.md). A UNet residual block with input x computes
/// <c>skip(x) + Block(m_t * x)</c>, the paper's z + Block(m_{D_t} ⊙ z), where m_t is timestep t's 0/1 window over the
/// block's input channels (Core's <see cref="TaskRouting"/>); a DiT block computes <c>(1 - m_t) * x + Block(m_t * x)</c>
/// over the token features, the block's residual stream included, as the DTR paper's DiT does. The masks are a function of t, not weights: they are not
/// registered with the module, so state dicts and exported weights are unchanged. One [T, C] table per distinct input
/// width is built once at construction (CPU) and copied once to each device the network runs on; a batch looks its
/// rows up with one index_select per width (<see cref="ForBatch"/>).
/// </summary>
public sealed class TaskRouter : IDisposable
{
    private readonly Dictionary<int, Tensor> cpuTables = [];
    private Dictionary<int, Tensor> deviceTables = [];
    private Device? tablesDevice;

    /// <summary>Number of timesteps T the masks cover (valid timesteps are 0..T-1).</summary>
    public int Timesteps { get; }
    /// <summary>The sharing ratio beta: the fraction of channels each timestep activates.</summary>
    public double Share { get; }
    /// <summary>The window-speed exponent alpha.</summary>
    public double Sharpness { get; }
    /// <summary>The channel widths that have a table, ascending.</summary>
    public IReadOnlyList<int> Widths => [.. cpuTables.Keys.Order()];

    /// <summary>The router of <paramref name="config"/> for blocks with the given input widths; null when routing is off.</summary>
    public static TaskRouter? Create(DenoiserConfig config, IEnumerable<int> inputWidths) =>
        config.Routing == TaskRoutingKind.None ? null : new TaskRouter(config.RoutingTimesteps, config.RoutingShare, config.RoutingSharpness, inputWidths);

    /// <summary>Builds the [T, C] mask table of every distinct width. Throws <see cref="BadInputException"/> on bad settings.</summary>
    public TaskRouter(int timesteps, double share, double sharpness, IEnumerable<int> inputWidths)
    {
        Timesteps = timesteps;
        Share = share;
        Sharpness = sharpness;
        foreach (var width in inputWidths.Distinct())
        {
            float[] values;
            try { values = TaskRouting.table(timesteps, width, share, sharpness); }
            catch (ArgumentException e) { throw new BadInputException(e.Message.Split(" (Parameter")[0]); }
            // Detached: a network built inside a dispose scope must keep its tables.
            cpuTables[width] = tensor(values, [timesteps, width], dtype: float32).DetachFromDisposeScope();
        }
    }

    /// <summary>
    /// The masks of a batch's timesteps [B] (integers in [0, T)) for every width, as [B, C] tensors of
    /// <paramref name="type"/> on the timesteps' device, created now in the caller's dispose scope (one index_select
    /// per width). Throws <see cref="BadInputException"/> for a timestep outside [0, T).
    /// </summary>
    public RoutingMasks ForBatch(Tensor timesteps, ScalarType type = ScalarType.Float32)
    {
        var index = timesteps.dtype == int64 ? timesteps : timesteps.to_type(int64);
        using var zero = 0.ToScalar();
        using var limit = Timesteps.ToScalar();
        using (var outside = index.lt(zero).logical_or_(index.ge(limit)).any())
            if (outside.item<bool>())
                throw new BadInputException($"routing covers timesteps [0, {Timesteps}) but the batch has {index.min().item<long>()} .. {index.max().item<long>()}");
        var rows = new Dictionary<int, Tensor>();
        foreach (var (width, table) in TablesOn(index.device))
        {
            var selected = table.index_select(0, index);
            rows[width] = selected.dtype == type ? selected : selected.to_type(type);
        }
        return new RoutingMasks(rows, type);
    }

    private Dictionary<int, Tensor> TablesOn(Device device)
    {
        if (device.type == DeviceType.CPU) return cpuTables;
        if (tablesDevice is { } d && d.type == device.type && d.index == device.index) return deviceTables;
        foreach (var t in deviceTables.Values) t.Dispose();
        deviceTables = cpuTables.ToDictionary(kv => kv.Key, kv => kv.Value.to(device).DetachFromDisposeScope());
        tablesDevice = device;
        return deviceTables;
    }

    /// <summary>Frees the tables.</summary>
    public void Dispose()
    {
        foreach (var t in cpuTables.Values) t.Dispose();
        foreach (var t in deviceTables.Values) t.Dispose();
        cpuTables.Clear();
        deviceTables.Clear();
    }
}

/// <summary>One batch's DTR masks: for each block input width, the rows of the batch's timesteps as [B, C].</summary>
public sealed class RoutingMasks
{
    private readonly Dictionary<int, Tensor> rows;

    internal RoutingMasks(Dictionary<int, Tensor> rows, ScalarType type)
    {
        this.rows = rows;
        Type = type;
    }

    /// <summary>The element type of the masks (the activations').</summary>
    public ScalarType Type { get; }

    /// <summary>The masks [B, C] for input width <paramref name="channels"/>.</summary>
    public Tensor For(int channels) => rows.TryGetValue(channels, out var found) ? found
        : throw new InvalidOperationException($"no routing table for {channels} channels (the router has {string.Join(", ", rows.Keys)})");

    /// <summary>Feature maps x [B, C, H, W] with the channels outside each sample's window set to zero.</summary>
    public Tensor Apply(Tensor x)
    {
        using var mask = For((int)x.shape[1]).unsqueeze(-1).unsqueeze(-1);
        return x * mask;
    }

    /// <summary>The mask of tokens x [B, N, C] (channels last), shaped [B, 1, C] to broadcast over the tokens.</summary>
    public Tensor ForTokens(Tensor x) => For((int)x.shape[2]).unsqueeze(1);
}
