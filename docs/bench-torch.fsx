// What the libtorch benchmark scripts in docs/ load first (#load "bench-torch.fsx"): the Release build's assemblies
// and OpenMP's wait settings as dfn sets them, which must happen before libtorch loads. Build first
// (dotnet build src/Cli -c Release); run the scripts from the repository root with the library path given in each.
#I "../src/Cli/bin/Release/net10.0"
#r "Google.Protobuf.dll"
#r "TorchSharp.dll"
#r "DiffusionFunctional.Core.dll"
#r "DiffusionFunctional.dll"

DiffusionFunctional.Backend.NativeThreading.Configure() |> ignore
