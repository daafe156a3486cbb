module DiffusionFunctional.Experiments.Tests.Main

open Expecto

[<EntryPoint>]
let main argv = Tests.runTestsInAssemblyWithCLIArgs [ CLIArguments.Sequenced ] argv
