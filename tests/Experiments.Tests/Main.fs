module DiffusionFunctional.Experiments.Tests.Main

open Expecto

[<EntryPoint>]
let main argv =
    DiffusionFunctional.Tests.NaNNamesKernels.runAssembly [ CLIArguments.Sequenced ] argv (System.Reflection.Assembly.GetExecutingAssembly())
