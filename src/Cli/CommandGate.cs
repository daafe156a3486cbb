using DiffusionFunctional.Backend;
using Spectre.Console.Cli;

namespace DiffusionFunctional.Cli;

/// <summary>Settings of commands that compute with tensors: before they run, the convolution kernels are checked (or
/// the machine's cached verdict applied). When a check decides, and the machine needed another configuration than
/// libtorch as shipped, one line says so; later processes apply the cached verdict silently (it stays in
/// <c>dfn --version</c>, <c>dfn kernels</c> and every metrics.jsonl header).</summary>
public interface IComputesWithTensors;

/// <summary>What runs between parsing and a command: a notice for each old option spelling used, then, for commands
/// whose settings are <see cref="IComputesWithTensors"/>, <see cref="ConvolutionKernels.Ensure"/>.</summary>
internal sealed class CommandGate : ICommandInterceptor
{
    /// <inheritdoc/>
    public void Intercept(CommandContext context, CommandSettings settings)
    {
        if (settings is Options.IHasDeprecatedOptions deprecated)
            foreach (var (old, now) in deprecated.Renamed)
            {
                if (!Options.Deprecated.Given(context.Arguments, old)) continue;
                var newName = now.Split(' ')[0];
                if (Options.Deprecated.Given(context.Arguments, newName))
                    throw new BadInputException($"give {newName} only ({old} is its old name)");
                Messages.Warn(Options.Deprecated.Notice("dfn " + context.Name, old, now));
            }
        if (settings is not IComputesWithTensors) return;
        if (ConvolutionKernels.Ensure() is { FromCache: false, Notice: { } notice }) Messages.Info(notice);
    }
}
