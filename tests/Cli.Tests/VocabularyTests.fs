/// One option vocabulary (issue 27): an option name means one thing in every command (its help's first sentence is the
/// same everywhere), every registered weighting, model preset and clustering objective appears in the help texts that
/// list them, and old spellings still work for one release with a one-line notice.
module DiffusionFunctional.Cli.Tests.VocabularyTests

open System
open System.Text.RegularExpressions
open System.Xml.Linq
open DiffusionFunctional.Cli.Tests.Dfn
open Expecto

/// (command path, option, help text) of every option shown in the help, from the app's own model (`dfn cli xmldoc`).
let private options () =
    let rec walk (prefix: string) (element: XElement) =
        [ for command in element.Elements(XName.Get "Command") do
            let path = (prefix + " " + command.Attribute(XName.Get "Name").Value).Trim()
            // Hidden options (old spellings) are not in the model.
            for option in command.Descendants(XName.Get "Option") do
                if option.Parent.Parent = command then
                    let description = option.Element(XName.Get "Description")
                    let text = if isNull description then "" else Regex.Replace(description.Value, @"\s+", " ").Trim()
                    yield path, option.Attribute(XName.Get "Long").Value, text
            yield! walk path command ]
    walk "" (commandModel ())

/// The first sentence of a help text: the definition commands must share (a second one may add a command's default).
let private definition (text: string) =
    match text.IndexOf(". ") with
    | -1 -> text
    | i -> text.Substring(0, i + 1)

/// --out names what each command writes, which is its own by nature.
let private commandSpecific = set [ "out" ]

let private helpOf (command: string list) =
    let r = run (command @ [ "--help" ])
    Expect.equal r.ExitCode 0 r.Stderr
    Regex.Replace(r.Stdout, @"\s+", " ")

[<Tests>]
let tests =
    testList "option vocabulary" [
        test "an option shared by several commands is defined by the same first sentence in all of them" {
            let byName = options () |> List.groupBy (fun (_, name, _) -> name)
            for name, uses in byName do
                if uses.Length > 1 && not (commandSpecific.Contains name) then
                    let definitions = uses |> List.map (fun (path, _, text) -> path, definition text)
                    let first = snd definitions.Head
                    for path, d in definitions do
                        Expect.equal d first (sprintf "--%s in dfn %s is defined as '%s', in dfn %s as '%s'" name path d (fst definitions.Head) first)
        }
        test "every registered weighting, model preset and objective appears in each help that lists them" {
            let weightings = DiffusionFunctional.Weighting.WeightingRegistry.Names
            let presets = DiffusionFunctional.Models.Denoisers.Names
            let objectives = DiffusionFunctional.Core.TimestepClusterings.ObjectiveNames
            for command, names in
                [ [ "train" ], weightings; [ "ntg" ], weightings; [ "demo" ], weightings; [ "reproduce" ], weightings; [ "bench"; "overhead" ], weightings
                  [ "train" ], presets; [ "ntg" ], presets; [ "reproduce" ], presets; [ "import" ], presets; [ "bench"; "throughput" ], presets
                  [ "train" ], objectives; [ "ntg" ], objectives; [ "cluster" ], objectives ] do
                let help = helpOf command
                for name in names do
                    Expect.isTrue (Regex.IsMatch(help, @"(^|[ ,:(])" + Regex.Escape name + @"([ ,.)]|$)")) (sprintf "dfn %s --help names %s" (String.Join(" ", command)) name)
        }
        test "old spellings work with one notice naming the new one; old and new together are refused" {
            let r = run [ "cluster"; "--objective"; "timestep"; "--clusters"; "3"; "--timesteps"; "30"; "--json" ]
            Expect.equal r.ExitCode 0 r.Stderr
            Expect.equal (r.Stderr.Trim().Split('\n').Length) 1 "one notice"
            Expect.stringContains r.Stderr "--objective is now --cluster-objective" "the notice"
            Expect.stringContains r.Stdout "\"objective\":\"timestep\"" "the old option took effect"
            let both = run [ "cluster"; "--objective"; "timestep"; "--cluster-objective"; "snr" ]
            Expect.equal both.ExitCode 2 both.Stderr
            Expect.stringContains both.Stderr "give --cluster-objective only" "refused"
            let raw = run [ "cluster"; "--snr-scale"; "raw"; "--json" ]
            Expect.equal raw.ExitCode 0 raw.Stderr
            Expect.equal raw.Stdout (run [ "cluster"; "--cluster-objective"; "snr-raw"; "--json" ]).Stdout "--snr-scale raw is snr-raw"
        }
    ]
