/// A test that fails on a NaN or an infinity says which convolution kernels computed it: on a machine whose kernels
/// compute wrong numbers (docs/platform.md) the failure then points at the machine, not the code under test.
module DiffusionFunctional.Tests.NaNNamesKernels

open System
open Expecto
open DiffusionFunctional.Backend

let private mentionsNonFinite (message: string) =
    [ "NaN"; "nan"; "Infinity"; "infinity"; "non-finite"; "not finite" ] |> List.exists message.Contains

let private withVerdict (e: exn) : exn =
    if not (mentionsNonFinite e.Message) then e
    else
        let verdict =
            match ConvolutionKernels.Current with
            | null -> "not checked in this process"
            | v -> v.Summary
        AssertException(sprintf "%s [convolution kernels: %s]" e.Message verdict) :> exn

let private guard (f: unit -> unit) () =
    try f () with e when mentionsNonFinite e.Message -> raise (withVerdict e)

let private wrapCode code =
    match code with
    | Sync f -> Sync(guard f)
    | SyncWithCancel f -> SyncWithCancel(fun token -> guard (fun () -> f token) ())
    | Async a -> Async(async { try return! a with e when mentionsNonFinite e.Message -> return raise (withVerdict e) })
    | AsyncFsCheck _ -> code

/// Every test of `tests` with its failures' messages extended by the kernel verdict when they mention a NaN or an
/// infinity.
let rec wrap (tests: Test) =
    match tests with
    | TestCase(code, state) -> TestCase(wrapCode code, state)
    | TestList(list, state) -> TestList(List.map wrap list, state)
    | TestLabel(label, test, state) -> TestLabel(label, wrap test, state)
    | Test.Sequenced(method, test) -> Test.Sequenced(method, wrap test)

/// Runs the calling assembly's tests like `runTestsInAssemblyWithCLIArgs`, wrapped by `wrap`.
let runAssembly (config: CLIArguments list) (argv: string[]) (assembly: Reflection.Assembly) =
    match Impl.testFromAssembly assembly with
    | Some tests -> Tests.runTestsWithCLIArgs config argv (wrap tests)
    | None -> failwith "no tests found"
