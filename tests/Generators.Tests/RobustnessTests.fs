/// No input makes the generator throw: nonsense argument types and values, odd declarations, random
/// combinations of all of them. Each run either yields a facade that compiles or reports why not.
module DiffusionFunctional.Generators.Tests.RobustnessTests

open DiffusionFunctional.Generators.Tests.Harness
open Expecto
open FsCheck
open FsCheck.FSharp
open Microsoft.CodeAnalysis

let private values =
    [ "\"linear\""; "\"LINEAR\""; "\"cosine\""; "\"sigmoid\""; "\"\""; "null"; "\"snr\""; "\"affinity\""; "\"timestep\""
      "\"raw\""; "\"log\""; "\"m.csv\""; "\"../m.csv\""; "\"\\u0000\\n\""; "\"\\\"quoted\\\"\""
      "0"; "1"; "-1"; "5"; "20"; "64"; "65"; "1000"; "4000"; "1000000"; "1000001"; "int.MaxValue"; "int.MinValue"
      "1.5"; "'x'"; "true"; "typeof(int)"; "new int[] { 1, 2 }"; "new string[0]"; "default"; "nameof(System)"; "10L"; "(short)7"
      "1 + 2 * 3"; "Unknown.Constant"; "System.DayOfWeek.Monday"; "(object)5"; "$\"{1}\""
      // For the routing properties: names, doubles at and beyond the edges, types that do not convert.
      "\"dtr\""; "\"DTR\""; "\"none\""; "\" dtr \""; "0.8"; "1.0"; "0.5f"; "4m"; "-0.0"; "1e308"; "1e-320"; "double.Epsilon"
      "double.NaN"; "double.PositiveInfinity"; "double.NegativeInfinity"; "double.MaxValue"; "0.0 / 0.0"; "(double)int.MaxValue" ]

let private names =
    [ "Schedule"; "Timesteps"; "Clusters"; "Objective"; "SnrScale"; "AffinityFile"; "Routing"; "RoutingShare"; "RoutingSharpness"; "Foo"; "" ]

let private declarations =
    [ "public static partial class F;"
      "public partial class F { }"
      "public static class F { }"
      "public partial struct F { }"
      "public partial record F(int X);"
      "public partial record struct F;"
      "public partial class F<T> where T : class { }"
      "public partial interface F { }"
      "public class Outer { [ATTR] public partial class F { } }"
      "public partial class Outer { [ATTR] public partial class F<T> { } }" ]

let private genArgument = gen {
    let! name = Gen.elements names
    let! value = Gen.elements values
    return if name = "" then value else sprintf "%s = %s" name value }

let private genSource = gen {
    let! arguments = Gen.listOf genArgument |> Gen.map (List.truncate 7)
    let! declaration = Gen.elements declarations
    let attribute = sprintf "TaskClusters(%s)" (String.concat ", " arguments)
    let body = if declaration.Contains "[ATTR]" then declaration.Replace("ATTR", attribute) else sprintf "[%s]\n%s" attribute declaration
    return "using DiffusionFunctional;\nnamespace Fuzz;\n" + body + "\n" }

let private genFiles =
    Gen.elements [ []; [ "/p/m.csv", "1,0.5\n0.5,1\n" ]; [ "/p/m.csv", "garbage" ]; [ "/p/m.csv", "" ]; [ "/a/m.csv", "1"; "/b/m.csv", "1" ] ]

/// The generator never throws; every DFN error comes with no facade; a facade without DFN errors compiles
/// whenever the user's own code does.
let private checkRobust (files, source) =
    let r = run files true [ source ]
    Expect.isEmpty (crashes r) (sprintf "generator failure on:\n%s\n%A" source (crashes r))
    for x in r.GeneratorDiagnostics do
        Expect.isTrue (x.Id.StartsWith "DFN") (string x)
        Expect.isFalse (System.String.IsNullOrWhiteSpace(x.GetMessage())) "a message"
    let dfnErrors = r.GeneratorDiagnostics |> List.filter (fun x -> x.Severity = Microsoft.CodeAnalysis.DiagnosticSeverity.Error)
    if not dfnErrors.IsEmpty then Expect.isEmpty (facadeHints r) "no facade alongside an error"
    let userErrors = (compilation true [ source ]).GetDiagnostics() |> Seq.filter (fun x -> x.Severity = Microsoft.CodeAnalysis.DiagnosticSeverity.Error) |> List.ofSeq
    if userErrors.IsEmpty && not (facadeHints r).IsEmpty then
        Expect.isEmpty (errors r) (sprintf "generated code must compile for:\n%s\n%s" source (describe (errors r)))
    Expect.isEmpty (generatedErrors r) (sprintf "errors inside generated code for:\n%s\n%s" source (describe (generatedErrors r)))

let private config = { FsCheckConfig.defaultConfig with maxTest = 40 }

[<Tests>]
let robustness =
    testList "Robustness" [
        test "every nonsense value for every argument" {
            // One compilation per argument name, one facade per value: the generator sees them all at once.
            for name in names do
                let facades =
                    values |> List.mapi (fun i value ->
                        let argument = if name = "" then value else sprintf "%s = %s" name value
                        sprintf "[TaskClusters(%s)]\npublic static partial class F%d;\n" argument i)
                let r = run [] true [ "using DiffusionFunctional;\n" + String.concat "" facades ]
                Expect.isEmpty (crashes r) (sprintf "generator failure for %s:\n%A" name (crashes r))
                Expect.all r.GeneratorDiagnostics (fun x -> x.Id.StartsWith "DFN") "only DFN diagnostics"
                Expect.isEmpty (generatedErrors r) (describe (generatedErrors r))
        }

        test "generated code compiles at C# 7.3" {
            // Old language versions are what a netstandard2.0 or .NET Framework consumer may still use.
            let options = Microsoft.CodeAnalysis.CSharp.CSharpParseOptions(Microsoft.CodeAnalysis.CSharp.LanguageVersion.CSharp7_3)
            let source = "using DiffusionFunctional;\nnamespace Old {\n[TaskClusters(Schedule = \"linear\", Timesteps = 1000, Clusters = 5, Objective = \"snr\", Routing = \"dtr\")]\npublic static partial class FaceTasks { }\n}\n"
            let input =
                Microsoft.CodeAnalysis.CSharp.CSharpCompilation.Create("Old", [ Microsoft.CodeAnalysis.CSharp.CSharpSyntaxTree.ParseText(source, options) ], references true,
                    Microsoft.CodeAnalysis.CSharp.CSharpCompilationOptions(Microsoft.CodeAnalysis.OutputKind.DynamicallyLinkedLibrary))
            let d = Microsoft.CodeAnalysis.CSharp.CSharpGeneratorDriver.Create([| (DiffusionFunctional.Generators.TaskClustersGenerator() :> Microsoft.CodeAnalysis.IIncrementalGenerator).AsSourceGenerator() |], parseOptions = options)
            let mutable output = Unchecked.defaultof<Microsoft.CodeAnalysis.Compilation>
            let mutable diagnostics = System.Collections.Immutable.ImmutableArray<Microsoft.CodeAnalysis.Diagnostic>.Empty
            d.RunGeneratorsAndUpdateCompilation(input, &output, &diagnostics) |> ignore
            Expect.isEmpty diagnostics (describe diagnostics)
            Expect.equal (Seq.length output.SyntaxTrees) 4 "the source, the attribute, EmbeddedAttribute and the facade"
            let errors = output.GetDiagnostics() |> Seq.filter (fun x -> x.Severity = Microsoft.CodeAnalysis.DiagnosticSeverity.Error) |> List.ofSeq
            Expect.isEmpty errors (describe errors)
        }

        test "every declaration shape" {
            for attribute in [ "TaskClusters"; "TaskClusters(Routing = \"dtr\")" ] do
                for declaration in declarations do
                    let body = if declaration.Contains "[ATTR]" then declaration.Replace("ATTR", attribute) else sprintf "[%s]\n%s" attribute declaration
                    checkRobust ([], "using DiffusionFunctional;\n" + body)
        }

        test "a routed facade's XML docs are well formed (documentation diagnostics on, generic and nested types)" {
            let options = parseOptions.WithDocumentationMode(DocumentationMode.Diagnose)
            let source = "using DiffusionFunctional;\nnamespace Docs;\n/// <summary>A.</summary>\npublic partial class Outer\n{\n    /// <summary>B.</summary>\n    [TaskClusters(Timesteps = 50, Clusters = 3, Routing = \"dtr\", RoutingShare = 0.5, RoutingSharpness = 2)]\n    public static partial class Routed<T> { }\n}\n"
            let input =
                Microsoft.CodeAnalysis.CSharp.CSharpCompilation.Create("Docs", [ Microsoft.CodeAnalysis.CSharp.CSharpSyntaxTree.ParseText(source, options) ], references true,
                    Microsoft.CodeAnalysis.CSharp.CSharpCompilationOptions(OutputKind.DynamicallyLinkedLibrary))
            let d = Microsoft.CodeAnalysis.CSharp.CSharpGeneratorDriver.Create([| (DiffusionFunctional.Generators.TaskClustersGenerator() :> IIncrementalGenerator).AsSourceGenerator() |], parseOptions = options)
            let mutable output = Unchecked.defaultof<Compilation>
            let mutable diagnostics = System.Collections.Immutable.ImmutableArray<Diagnostic>.Empty
            d.RunGeneratorsAndUpdateCompilation(input, &output, &diagnostics) |> ignore
            Expect.isEmpty diagnostics (describe diagnostics)
            let generated = output.SyntaxTrees |> Seq.find (fun t -> t.FilePath.EndsWith "Routed_1.TaskClusters.g.cs")
            Expect.stringContains (generated.ToString()) "WithRouting(Routed&lt;T&gt;.Routing" "the type named, escaped"
            let warnings = output.GetDiagnostics() |> Seq.filter (fun x -> x.Severity >= DiagnosticSeverity.Warning) |> List.ofSeq
            Expect.isEmpty warnings (describe warnings)
        }

        test "a nested type and a namespace type with the same dotted name both get facades" {
            let r = run [] true [ "using DiffusionFunctional;\nnamespace N { public partial class A { [TaskClusters(Clusters = 2)] public partial class B; } }\nnamespace N.A { [TaskClusters(Clusters = 3)] public partial class B; }\n" ]
            Expect.isEmpty (crashes r) (sprintf "%A" (crashes r))
            Expect.equal (facadeHints r |> List.sort) [ "N.A+B.TaskClusters.g.cs"; "N.A.B.TaskClusters.g.cs" ] "two facades"
        }

        test "the attribute twice, on two parts of one type, and broken syntax" {
            checkRobust ([], "using DiffusionFunctional;\n[TaskClusters, TaskClusters(Clusters = 2)]\npublic partial class F;\n")
            checkRobust ([], "using DiffusionFunctional;\n[TaskClusters]\npublic partial class F;\n[TaskClusters(Clusters = 3)]\npublic partial class F;\n")
            checkRobust ([], "using DiffusionFunctional;\n[TaskClusters(Clusters = ]\npublic partial class F")
            checkRobust ([], "using DiffusionFunctional;\n[TaskClusters(Clusters = 2\npublic partial class")
        }

        testPropertyWithConfig config "random combinations of arguments, declarations and files" <| fun () ->
            Prop.forAll (Arb.fromGen (Gen.zip genFiles genSource)) checkRobust
    ]
