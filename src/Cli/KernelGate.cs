using DiffusionFunctional.Backend;
using Spectre.Console.Cli;

namespace DiffusionFunctional.Cli;

/// <summary>Settings of commands that compute with tensors: before they run, the convolution kernels are checked (or
/// the machine's cached verdict applied). When a check decides, and the machine needed another configuration than
/// libtorch as shipped, one line says so; later processes apply the cached verdict silently (it stays in
/// <c>dfn --version</c>, <c>dfn kernels</c> and every metrics.jsonl header).</summary>
public interface IComputesWithTensors;

/// <summary>Runs <see cref="ConvolutionKernels.Ensure"/> before every command whose settings are
/// <see cref="IComputesWithTensors"/>, after option validation, so bad options are still refused first.</summary>
internal sealed class KernelGate : ICommandInterceptor
{
    /// <inheritdoc/>
    public void Intercept(CommandContext context, CommandSettings settings)
    {
        if (settings is not IComputesWithTensors) return;
        if (ConvolutionKernels.Ensure() is { FromCache: false, Notice: { } notice }) Messages.Info(notice);
    }
}
