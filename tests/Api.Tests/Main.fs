module DiffusionFunctional.Api.Tests.Main

open Expecto

[<EntryPoint>]
let main argv =
    DiffusionFunctional.Tests.NaNNamesKernels.runAssembly [ CLIArguments.Sequenced ] argv (System.Reflection.Assembly.GetExecutingAssembly())
