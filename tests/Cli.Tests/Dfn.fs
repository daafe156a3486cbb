/// Runs the built `dfn` as a child process and captures what a user would see.
module DiffusionFunctional.Cli.Tests.Dfn

open System
open System.Diagnostics
open System.IO

type Outcome = { ExitCode: int; Stdout: string; Stderr: string }

let private dfnDll = Path.Combine(AppContext.BaseDirectory, "dfn.dll")

/// Starts `dotnet dfn.dll ARGS` (redirected) through `env --default-signal`, for tests that signal it: a suite started
/// from a background job or under nohup hands its children SIGINT / SIGHUP ignored, exec keeps an ignored signal
/// ignored, and dfn then rightly never sees the test's signal (the process runs to the end).
let signallableStartInfo (args: string list) =
    let info = ProcessStartInfo("env", RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false)
    for a in [ "--default-signal=INT,TERM,HUP"; "dotnet"; dfnDll ] @ args do info.ArgumentList.Add a
    info

/// Runs `dfn ARGS` with `environment` added to this process's (redirected output, so it behaves as in CI, not on a
/// terminal), killing it after `seconds`.
let runWithEnvironment (environment: (string * string) list) (seconds: int) (args: string list) : Outcome =
    let info = ProcessStartInfo("dotnet", RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false)
    for name, value in environment do info.Environment.[name] <- value
    info.ArgumentList.Add dfnDll
    for a in args do info.ArgumentList.Add a
    use p = Process.Start info
    let out = p.StandardOutput.ReadToEndAsync()
    let err = p.StandardError.ReadToEndAsync()
    if not (p.WaitForExit(seconds * 1000)) then
        p.Kill true
        failwithf "dfn %s did not finish within %d s" (String.Join(" ", args)) seconds
    { ExitCode = p.ExitCode; Stdout = out.Result; Stderr = err.Result }

/// Starts `dfn ARGS`, sends SIGINT once a line of standard output starts with `trigger`, and returns what the
/// interrupted process showed (exit code, stdout, stderr). Fails when it does not end within 10 minutes.
let runInterruptedAt (trigger: string) (args: string list) : Outcome =
    use p = Process.Start(signallableStartInfo args)
    let err = p.StandardError.ReadToEndAsync()
    let out = Text.StringBuilder()
    let mutable signalled = false
    let mutable line = p.StandardOutput.ReadLine()
    while not (isNull line) do
        out.AppendLine line |> ignore
        if not signalled && line.StartsWith(trigger, StringComparison.Ordinal) then
            use kill = Process.Start("kill", [ "-INT"; string p.Id ])
            kill.WaitForExit()
            signalled <- true
        line <- p.StandardOutput.ReadLine()
    if not (p.WaitForExit 600_000) then
        p.Kill true
        failwithf "dfn %s did not exit after SIGINT" (String.Join(" ", args))
    { ExitCode = p.ExitCode; Stdout = out.ToString(); Stderr = err.Result }

/// Runs `dfn ARGS` with redirected output (so it behaves as in CI, not on a terminal), killing it after `seconds`.
let runWithin (seconds: int) (args: string list) : Outcome = runWithEnvironment [] seconds args

/// Runs `dfn ARGS` with redirected output, allowing 120 s.
let run (args: string list) : Outcome = runWithin 120 args

/// A temporary file with the given text, deleted when disposed.
type TempFile(text: string) =
    let path = Path.Combine(Path.GetTempPath(), sprintf "dfn-test-%s.csv" (Guid.NewGuid().ToString("N")))
    do File.WriteAllText(path, text)
    member _.Path = path
    interface IDisposable with
        member _.Dispose() = try File.Delete path with _ -> ()

/// The app's own command model (`dfn cli xmldoc`), parsed.
let commandModel () =
    let r = run [ "cli"; "xmldoc" ]
    if r.ExitCode <> 0 then failwithf "dfn cli xmldoc failed: %s" r.Stderr
    System.Xml.Linq.XDocument.Parse(r.Stdout).Root
