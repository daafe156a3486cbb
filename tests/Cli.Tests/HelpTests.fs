/// Every command and branch of the app prints its help and exits 0; the command list comes from the app itself
/// (`dfn cli xmldoc`, Spectre.Console.Cli's model dump), not from a hand-written list.
module DiffusionFunctional.Cli.Tests.HelpTests

open System
open System.Xml.Linq
open DiffusionFunctional.Cli.Tests.Dfn
open Expecto

/// Command paths ("bench overhead") with whether each is a branch, read from the app's own command model.
let private commandPaths () =
    let rec walk (prefix: string list) (element: XElement) =
        [ for command in element.Elements(XName.Get "Command") do
            let path = prefix @ [ command.Attribute(XName.Get "Name").Value ]
            let isBranch = command.Attribute(XName.Get "IsBranch").Value = "true"
            yield path, isBranch
            yield! walk path command ]
    walk [] (commandModel ())

let private expectHelp (args: string list) =
    let r = run args
    let shown = System.String.Join(" ", args)
    Expect.equal r.ExitCode 0 (sprintf "dfn %s exit code (stderr: %s)" shown r.Stderr)
    Expect.stringContains r.Stdout "USAGE:" (sprintf "dfn %s prints usage" shown)
    for bad in [ "Exception"; "malformed" ] do
        Expect.isFalse (r.Stdout.Contains bad || r.Stderr.Contains bad) (sprintf "dfn %s shows no '%s'" shown bad)
    Expect.isFalse (Text.RegularExpressions.Regex.IsMatch(r.Stdout + r.Stderr, @"^\s+at \S+\.\S+\(", Text.RegularExpressions.RegexOptions.Multiline)) (sprintf "dfn %s shows no stack frame" shown)
    Expect.equal r.Stderr "" (sprintf "dfn %s writes nothing to stderr" shown)

[<Tests>]
let tests =
    testList "dfn --help" [
        test "the app lists the commands a user reads about in the README" {
            let paths = commandPaths () |> List.map (fst >> String.concat " ")
            for expected in [ "train"; "demo"; "bench overhead"; "data fetch mnist" ] do
                Expect.contains paths expected "command in the model"
        }

        test "--help of every command and branch exits 0 with usage and no exception" {
            expectHelp [ "--help" ]
            for path, _ in commandPaths () do expectHelp (path @ [ "--help" ])
        }

        test "a branch given alone prints its help and exits 0" {
            for path, isBranch in commandPaths () do
                if isBranch then expectHelp path
        }

        test "--version prints the version and exits 0" {
            let r = run [ "--version" ]
            Expect.equal r.ExitCode 0 r.Stderr
            Expect.isMatch (r.Stdout.Trim()) @"^\d+\.\d+\.\d+" "a version number"
        }
    ]
