using System.Runtime.InteropServices;

namespace DiffusionFunctional.Cli;

/// <summary>Turns SIGINT, SIGTERM and SIGHUP into a cancellation: the first one cancels, a second one terminates.</summary>
internal static class StopSignals
{
    /// <summary>Registers the handlers; dispose the result to remove them.</summary>
    public static IDisposable Register(CancellationTokenSource stop)
    {
        var registrations = new[] { PosixSignal.SIGINT, PosixSignal.SIGTERM, PosixSignal.SIGHUP }
            .Select(signal => PosixSignalRegistration.Create(signal, context =>
            {
                if (stop.IsCancellationRequested) return; // second signal: the default action ends the process
                context.Cancel = true;
                Console.Error.WriteLine($"dfn: {context.Signal} received: stopping after the current step (send it again to stop at once)");
                stop.Cancel();
            }))
            .ToArray();
        return new Registrations(registrations);
    }

    sealed class Registrations(PosixSignalRegistration[] items) : IDisposable
    {
        public void Dispose()
        {
            foreach (var r in items) r.Dispose();
        }
    }
}
