using DiffusionFunctional.Backend;
using DiffusionFunctional.Cli;

// Before anything loads libtorch: its idle OpenMP workers must spin only briefly, then sleep (NativeThreading).
NativeThreading.Configure();

// The one cancellation source of the process: SIGINT (Ctrl-C), SIGTERM and SIGHUP (a closed terminal) ask the command
// to stop at the next safe point (a finished step, a written checkpoint); a second signal ends the process at once.
using var stop = new CancellationTokenSource();
using var signals = StopSignals.Register(stop);
return DfnApp.Run(args, stop.Token);
