module DiffusionFunctional.Cli.Tests.Main

open Expecto

[<EntryPoint>]
let main argv =
    // The machine's kernel verdict is decided once, here, so that no test's output depends on being the first `dfn`
    // to run on this machine (the deciding process prints a notice where the kernels needed repair).
    let warmUp = Dfn.runWithin 300 [ "kernels" ]
    if warmUp.ExitCode <> 0 then eprintfn "dfn kernels: %s%s" warmUp.Stdout warmUp.Stderr
    Tests.runTestsInAssemblyWithCLIArgs [] argv
