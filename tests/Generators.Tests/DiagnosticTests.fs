/// Every invalid configuration is a DFN diagnostic naming the problem and the bad value, pointing at the
/// offending argument (or the type), and produces no facade.
module DiffusionFunctional.Generators.Tests.DiagnosticTests

open DiffusionFunctional.Generators.Tests.Harness
open Expecto

/// A facade declaration with the given attribute arguments.
let facade (arguments: string) =
    sprintf "using DiffusionFunctional;\nnamespace Demo;\n[TaskClusters(%s)]\npublic static partial class Bad;\n" arguments

type Expectation =
    { Name: string
      Source: string
      Files: (string * string) list
      Id: string
      /// Substrings the message must contain (the bad value, the problem).
      Message: string list
      /// The source text the diagnostic's location must cover.
      At: string }

let private case name source id message at = { Name = name; Source = source; Files = []; Id = id; Message = message; At = at }

/// A G x G identity matrix as CSV text.
let private bigIdentity g =
    String.concat "\n" [ for r in 0 .. g - 1 -> String.concat "," [ for c in 0 .. g - 1 -> if r = c then "1" else "0" ] ]

let private affinity file = facade (sprintf "Schedule = \"linear\", Timesteps = 40, Clusters = 2, Objective = \"affinity\", AffinityFile = \"%s\"" file)

let expectations =
    [ case "k < 1" (facade "Timesteps = 100, Clusters = 0") "DFN002" [ "Clusters = 0"; "at least 1" ] "Clusters = 0"
      case "negative k" (facade "Clusters = -3") "DFN002" [ "Clusters = -3" ] "Clusters = -3"
      case "k > T" (facade "Timesteps = 10, Clusters = 11") "DFN002" [ "Clusters = 11"; "number of timesteps (10)" ] "Clusters = 11"
      case "k above the facade limit" (facade "Timesteps = 1000, Clusters = 65") "DFN002" [ "Clusters = 65"; "at most 64" ] "Clusters = 65"
      case "T < 1" (facade "Timesteps = 0") "DFN003" [ "Timesteps = 0"; "1..1000000" ] "Timesteps = 0"
      case "negative T" (facade "Timesteps = -5, Clusters = 1") "DFN003" [ "Timesteps = -5" ] "Timesteps = -5"
      case "absurd T" (facade "Timesteps = 1000001") "DFN003" [ "Timesteps = 1000001" ] "Timesteps = 1000001"
      case "int.MaxValue T" (facade "Timesteps = int.MaxValue") "DFN003" [ "Timesteps = 2147483647" ] "Timesteps = int.MaxValue"
      case "too much work for compile time" (facade "Timesteps = 1000000, Clusters = 3") "DFN016" [ "Clusters = 3"; "1000000 timesteps"; "2000000" ] "Clusters = 3"
      { case "affinity too large for compile time" (facade "Timesteps = 1000, Clusters = 21, Objective = \"affinity\", AffinityFile = \"big.csv\"") "DFN016" [ "Clusters = 21"; "1000 affinity groups"; "20000000" ] "Clusters = 21" with
          Files = [ "/p/big.csv", bigIdentity 1000 ] }
      case "unknown schedule" (facade "Schedule = \"quadratic\"") "DFN004" [ "'quadratic'"; "linear, scaled_linear" ] "Schedule = \"quadratic\""
      case "empty schedule" (facade "Schedule = \"\"") "DFN004" [ "''" ] "Schedule = \"\""
      case "unknown objective" (facade "Objective = \"fid\"") "DFN005" [ "'fid'"; "timestep, snr, snr-raw, affinity" ] "Objective = \"fid\""
      case "unknown SNR scale" (facade "Objective = \"snr\", SnrScale = \"log10\"") "DFN006" [ "'log10'" ] "SnrScale = \"log10\""
      case "affinity without a file" (facade "Objective = \"affinity\"") "DFN007" [ "AffinityFile" ] "Objective = \"affinity\""
      case "affinity file missing" (affinity "nowhere.csv") "DFN008" [ "nowhere.csv" ] "AffinityFile = \"nowhere.csv\""
      { case "affinity file ambiguous" (affinity "a.csv") "DFN009" [ "a.csv"; "2 AdditionalFiles" ] "AffinityFile = \"a.csv\"" with
          Files = [ "/p/x/a.csv", "1"; "/p/y/a.csv", "1" ] }
      { case "affinity file with a word" (affinity "m.csv") "DFN010" [ "m.csv"; "line 2, column 2"; "'abc'" ] "AffinityFile = \"m.csv\"" with
          Files = [ "/p/m.csv", "1,0\n0,abc\n" ] }
      { case "affinity file not square" (affinity "m.csv") "DFN010" [ "m.csv"; "square" ] "AffinityFile = \"m.csv\"" with
          Files = [ "/p/m.csv", "1,0,0\n0,1,0\n" ] }
      { case "affinity file empty" (affinity "m.csv") "DFN010" [ "m.csv"; "no rows" ] "AffinityFile = \"m.csv\"" with
          Files = [ "/p/m.csv", "# nothing\n\n" ] }
      { case "affinity file not finite" (affinity "m.csv") "DFN010" [ "m.csv"; "'NaN'" ] "AffinityFile = \"m.csv\"" with
          Files = [ "/p/m.csv", "1,NaN\nNaN,1\n" ] }
      { case "affinity matrix asymmetric" (affinity "m.csv") "DFN011" [ "m.csv"; "(1, 2) = 0.5"; "(2, 1) = 0.25" ] "AffinityFile = \"m.csv\"" with
          Files = [ "/p/m.csv", "1,0.5\n0.25,1\n" ] }
      { case "affinity groups do not divide T" (affinity "m.csv") "DFN012" [ "m.csv"; "3 groups"; "Timesteps = 40" ] "AffinityFile = \"m.csv\"" with
          Files = [ "/p/m.csv", "1,0,0\n0,1,0\n0,0,1\n" ] }
      { case "k > affinity groups" (facade "Timesteps = 40, Clusters = 3, Objective = \"affinity\", AffinityFile = \"m.csv\"") "DFN002" [ "Clusters = 3"; "affinity groups (2)" ] "Clusters = 3" with
          Files = [ "/p/m.csv", "1,0\n0,1\n" ] }
      case "class not partial" "using DiffusionFunctional;\n[TaskClusters]\npublic static class Whole { }\n" "DFN001" [ "'Whole'"; "partial" ] "Whole"
      case "containing class not partial" "using DiffusionFunctional;\npublic class Outer\n{\n    [TaskClusters]\n    public partial class Inner { }\n}\n" "DFN001" [ "'Outer.Inner'"; "('Outer' is not)" ] "Inner"
      case "string for an int" (facade "Timesteps = \"1000\"") "DFN013" [ "'Timesteps'"; "constant int"; "\"1000\"" ] "Timesteps = \"1000\""
      case "double for an int" (facade "Clusters = 2.5") "DFN013" [ "'Clusters'"; "2.5" ] "Clusters = 2.5"
      case "int for a string" (facade "Schedule = 42") "DFN013" [ "'Schedule'"; "constant string"; "42" ] "Schedule = 42"
      case "null schedule" (facade "Schedule = null") "DFN013" [ "'Schedule'"; "null" ] "Schedule = null"
      case "unknown routing" (facade "Routing = \"moe\"") "DFN017" [ "'moe'"; "none or dtr" ] "Routing = \"moe\""
      case "empty routing" (facade "Routing = \"\"") "DFN017" [ "''" ] "Routing = \"\""
      case "routing share above 1" (facade "Routing = \"dtr\", RoutingShare = 1.5") "DFN018" [ "RoutingShare = 1.5"; "(0, 1]" ] "RoutingShare = 1.5"
      case "routing share 0" (facade "Routing = \"dtr\", RoutingShare = 0") "DFN018" [ "RoutingShare = 0 " ] "RoutingShare = 0"
      case "negative routing share" (facade "Routing = \"dtr\", RoutingShare = -0.25") "DFN018" [ "RoutingShare = -0.25" ] "RoutingShare = -0.25"
      case "NaN routing share" (facade "Routing = \"dtr\", RoutingShare = double.NaN") "DFN018" [ "RoutingShare = NaN" ] "RoutingShare = double.NaN"
      case "routing sharpness 0" (facade "Routing = \"dtr\", RoutingSharpness = 0") "DFN019" [ "RoutingSharpness = 0 "; "positive finite" ] "RoutingSharpness = 0"
      case "negative routing sharpness" (facade "Routing = \"dtr\", RoutingSharpness = -2.5") "DFN019" [ "RoutingSharpness = -2.5" ] "RoutingSharpness = -2.5"
      case "infinite routing sharpness" (facade "Routing = \"dtr\", RoutingSharpness = double.PositiveInfinity") "DFN019" [ "RoutingSharpness = Infinity" ] "RoutingSharpness = double.PositiveInfinity"
      case "NaN routing sharpness" (facade "Routing = \"DTR\", RoutingSharpness = 0.0 / 0.0") "DFN019" [ "RoutingSharpness = NaN" ] "RoutingSharpness = 0.0 / 0.0"
      case "string for a double" (facade "Routing = \"dtr\", RoutingShare = \"0.8\"") "DFN013" [ "'RoutingShare'"; "constant double"; "\"0.8\"" ] "RoutingShare = \"0.8\""
      case "decimal for a double" (facade "Routing = \"dtr\", RoutingSharpness = 4m") "DFN013" [ "'RoutingSharpness'"; "constant double"; "4m" ] "RoutingSharpness = 4m"
      case "null routing" (facade "Routing = null") "DFN013" [ "'Routing'"; "null" ] "Routing = null"
      case "positional argument" (facade "\"linear\"") "DFN013" [ "named properties only"; "\"linear\"" ] "\"linear\""
      case "unknown property" (facade "Steps = 10") "DFN013" [ "'Steps'"; "no such property" ] "Steps = 10" ]

let private check (e: Expectation) =
    let r = run e.Files true [ e.Source ]
    Expect.isEmpty (crashes r) "the generator never fails"
    let matching = r.GeneratorDiagnostics |> List.filter (fun x -> x.Id = e.Id)
    Expect.isNonEmpty matching (sprintf "%s: expected %s, got:\n%s" e.Name e.Id (describe r.GeneratorDiagnostics))
    let diagnostic = matching.Head
    let message = diagnostic.GetMessage(System.Globalization.CultureInfo.InvariantCulture)
    for part in e.Message do
        Expect.stringContains message part (sprintf "%s: message names the problem and value" e.Name)
    Expect.equal (locatedText r diagnostic) e.At (sprintf "%s: location" e.Name)
    Expect.isEmpty (facadeHints r) (sprintf "%s: no facade for an invalid configuration" e.Name)

[<Tests>]
let diagnostics =
    testList "Diagnostics" [
        yield! [ for e in expectations -> test e.Name { check e } ]

        yield test "IDs are stable and unique, errors for invalid configurations" {
            let descriptors =
                typeof<DiffusionFunctional.Generators.DiagnosticDescriptors>.GetFields()
                |> Array.filter (fun f -> f.FieldType = typeof<Microsoft.CodeAnalysis.DiagnosticDescriptor>)
                |> Array.map (fun f -> f.GetValue null :?> Microsoft.CodeAnalysis.DiagnosticDescriptor)
            let ids = descriptors |> Array.map (fun d -> d.Id) |> Array.sort
            Expect.equal ids (Array.distinct ids) "unique IDs"
            Expect.equal ids.[0 .. 19] [| for i in 1 .. 20 -> sprintf "DFN%03d" i |] "DFN001..DFN020 in order"
            Expect.equal ids.[20 ..] [| "DFN099" |] "and DFN099 for a generator failure"
            for e in expectations do
                let d = descriptors |> Array.find (fun d -> d.Id = e.Id)
                Expect.equal d.DefaultSeverity Microsoft.CodeAnalysis.DiagnosticSeverity.Error (sprintf "%s is an error" e.Id)
        }

        yield test "several problems at once are all reported" {
            let r = run [] true [ facade "Schedule = \"x\", Timesteps = 0, Clusters = 0, Objective = \"y\"" ]
            Expect.equal (generatorIds r |> List.sort) [ "DFN002"; "DFN003"; "DFN004"; "DFN005" ] (describe r.GeneratorDiagnostics)
            let routing = run [] true [ facade "Routing = \"dtr2\", RoutingShare = 2, RoutingSharpness = -1" ]
            Expect.equal (generatorIds routing |> List.sort) [ "DFN017"; "DFN018"; "DFN019" ] (describe routing.GeneratorDiagnostics)
        }

        yield test "warnings: an affinity file with another objective, and no Core reference" {
            let r = run [] true [ facade "Objective = \"timestep\", AffinityFile = \"m.csv\"" ]
            Expect.equal (generatorIds r) [ "DFN015" ] (describe r.GeneratorDiagnostics)
            Expect.equal (facadeHints r).Length 1 "the facade is still generated"
            let noCore = run [] false [ facade "Timesteps = 10, Clusters = 2" ]
            Expect.equal (generatorIds noCore) [ "DFN014" ] (describe noCore.GeneratorDiagnostics)
            Expect.isEmpty (errors noCore) "without Core the facade compiles, minus Plan"
            Expect.isFalse ((Map.find "Demo.Bad.TaskClusters.g.cs" noCore.Sources).Contains "ClusterPlan") "no Plan member"
        }

        yield test "warnings: a routing option while Routing is none (DFN020), names the option and its value" {
            let r = run [] true [ facade "Timesteps = 10, Clusters = 2, RoutingShare = 0.5, RoutingSharpness = double.NaN" ]
            Expect.equal (generatorIds r) [ "DFN020"; "DFN020" ] (describe r.GeneratorDiagnostics)
            let messages = r.GeneratorDiagnostics |> List.map (fun x -> x.GetMessage(System.Globalization.CultureInfo.InvariantCulture))
            Expect.stringContains messages.[0] "RoutingShare = 0.5 is ignored because Routing is 'none'" "share named"
            Expect.stringContains messages.[1] "RoutingSharpness = NaN is ignored" "sharpness named"
            Expect.equal (r.GeneratorDiagnostics |> List.map (locatedText r)) [ "RoutingShare = 0.5"; "RoutingSharpness = double.NaN" ] "located at the options"
            Expect.isTrue (r.GeneratorDiagnostics |> List.forall (fun x -> x.Severity = Microsoft.CodeAnalysis.DiagnosticSeverity.Warning)) "warnings"
            let source = Map.find "Demo.Bad.TaskClusters.g.cs" r.Sources
            Expect.isFalse (source.Contains "Routing") "a facade without routing members"
            let explicitNone = run [] true [ facade "Timesteps = 10, Clusters = 2, Routing = \" None \", RoutingShare = 0.5" ]
            Expect.equal (generatorIds explicitNone) [ "DFN020" ] (describe explicitNone.GeneratorDiagnostics)
        }

        yield test "DTR without a Core reference: the constants stay, the windows go, DFN014 says which" {
            let r = run [] false [ facade "Timesteps = 10, Clusters = 2, Routing = \"dtr\"" ]
            Expect.equal (generatorIds r) [ "DFN014" ] (describe r.GeneratorDiagnostics)
            Expect.stringContains (r.GeneratorDiagnostics.Head.GetMessage()) "no Plan, RoutingWindow or RoutingOverlap member" "message"
            Expect.isEmpty (errors r) (describe (errors r))
            let source = Map.find "Demo.Bad.TaskClusters.g.cs" r.Sources
            Expect.stringContains source "public const string Routing = \"dtr\";" "routing constant"
            Expect.isFalse (source.Contains "RoutingWindow(" || source.Contains "RoutingOverlap(" || source.Contains "global::DiffusionFunctional.Core") "no Core member"
            let plain = run [] false [ facade "Timesteps = 10, Clusters = 2" ]
            Expect.stringContains (plain.GeneratorDiagnostics.Head.GetMessage()) "gets no Plan member because" "message without routing"
        }
    ]
