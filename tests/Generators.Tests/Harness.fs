/// Runs the generator with CSharpGeneratorDriver over in-memory sources and AdditionalFiles, compiles the
/// result and loads it, so tests can compare generated facades with Core's run-time clustering.
module DiffusionFunctional.Generators.Tests.Harness

open System
open System.Collections.Immutable
open System.IO
open System.Reflection
open System.Threading
open DiffusionFunctional.Core
open DiffusionFunctional.Generators
open Microsoft.CodeAnalysis
open Microsoft.CodeAnalysis.CSharp
open Microsoft.CodeAnalysis.Text

/// An AdditionalFiles item held in memory.
type InMemoryText(path: string, text: string) =
    inherit AdditionalText()
    override _.Path = path
    override _.GetText(_: CancellationToken) = SourceText.From(text)

let parseOptions = CSharpParseOptions(LanguageVersion.Latest)

/// The running framework's assemblies plus Core: what generated code needs to compile and run.
let private frameworkReferences =
    lazy (
        let tpa = AppContext.GetData("TRUSTED_PLATFORM_ASSEMBLIES") :?> string
        tpa.Split(Path.PathSeparator)
        |> Array.filter (fun p -> p.EndsWith ".dll" && not (Path.GetFileName(p).StartsWith "DiffusionFunctional"))
        |> Array.map (fun p -> MetadataReference.CreateFromFile p :> MetadataReference))

let coreReference = lazy (MetadataReference.CreateFromFile(typeof<ClusterPlan>.Assembly.Location) :> MetadataReference)

let references withCore =
    if withCore then Array.append frameworkReferences.Value [| coreReference.Value |] else frameworkReferences.Value

let private counter = ref 0

/// A compilation of the given C# sources (file names Source0.cs, Source1.cs, ...).
let compilation withCore (sources: string list) =
    let trees = sources |> List.mapi (fun i s -> CSharpSyntaxTree.ParseText(s, parseOptions, sprintf "Source%d.cs" i))
    let name = sprintf "Facades%d" (Interlocked.Increment counter)
    CSharpCompilation.Create(name, trees, references withCore,
                             CSharpCompilationOptions(OutputKind.DynamicallyLinkedLibrary, nullableContextOptions = NullableContextOptions.Enable))

/// A driver for the generator, tracking steps for caching tests.
let driver (additional: (string * string) list) =
    let texts = additional |> List.map (fun (p, t) -> InMemoryText(p, t) :> AdditionalText)
    let options = GeneratorDriverOptions(IncrementalGeneratorOutputKind.None, trackIncrementalGeneratorSteps = true)
    CSharpGeneratorDriver.Create([| (TaskClustersGenerator() :> IIncrementalGenerator).AsSourceGenerator() |],
                                 texts, parseOptions, null, options) :> GeneratorDriver

/// What one generator run produced.
type Run =
    { Result: GeneratorRunResult
      /// Diagnostics the generator reported (DFN...).
      GeneratorDiagnostics: Diagnostic list
      /// Diagnostics the driver raised about the generator itself (CS8785), if any.
      DriverDiagnostics: Diagnostic list
      /// Compiler diagnostics (errors and warnings) of the compilation with the generated sources added
      /// (lazy: a full compile is costly for large cases).
      CompileDiagnostics: Lazy<Diagnostic list>
      Output: Compilation
      Sources: Map<string, string> }

let run (additional: (string * string) list) withCore (sources: string list) =
    let input = compilation withCore sources
    let mutable output = Unchecked.defaultof<Compilation>
    let mutable driverDiagnostics = ImmutableArray<Diagnostic>.Empty
    let d = (driver additional).RunGeneratorsAndUpdateCompilation(input, &output, &driverDiagnostics)
    ignore d
    let result = d.GetRunResult().Results.[0]
    { Result = result
      GeneratorDiagnostics = List.ofSeq result.Diagnostics
      DriverDiagnostics = driverDiagnostics |> Seq.filter (fun x -> not (x.Id.StartsWith "DFN")) |> List.ofSeq
      CompileDiagnostics = lazy (output.GetDiagnostics() |> Seq.filter (fun x -> x.Severity >= DiagnosticSeverity.Warning) |> List.ofSeq)
      Output = output
      Sources = result.GeneratedSources |> Seq.map (fun s -> s.HintName, s.SourceText.ToString()) |> Map.ofSeq }

/// Errors among the output diagnostics, one per line (for failure messages).
let describe (diagnostics: Diagnostic seq) = diagnostics |> Seq.map string |> String.concat "\n"

let errors (r: Run) = r.CompileDiagnostics.Value |> List.filter (fun x -> x.Severity = DiagnosticSeverity.Error)

/// Emits the output compilation and loads it into the default context (Core resolves to the loaded Core).
let load (r: Run) : Assembly =
    use stream = new MemoryStream()
    let emitted = r.Output.Emit(stream)
    if not emitted.Success then
        failwithf "generated code does not compile:\n%s" (describe (emitted.Diagnostics |> Seq.filter (fun x -> x.Severity = DiagnosticSeverity.Error)))
    Assembly.Load(stream.ToArray())

/// The facade hint names (the attribute's own source excluded).
let facadeHints (r: Run) = r.Sources |> Map.toList |> List.map fst |> List.filter (fun h -> h.EndsWith ".TaskClusters.g.cs")

/// The ID of each diagnostic the generator reported.
let generatorIds (r: Run) = r.GeneratorDiagnostics |> List.map (fun x -> x.Id)

/// The source text a diagnostic's location covers, looked up in the input trees by file path.
let locatedText (r: Run) (diagnostic: Diagnostic) =
    let span = diagnostic.Location.GetLineSpan()
    r.Output.SyntaxTrees
    |> Seq.tryFind (fun t -> t.FilePath = span.Path)
    |> Option.map (fun t -> t.GetText().ToString(diagnostic.Location.SourceSpan))
    |> Option.defaultValue ""

/// Compile errors inside generated files: generated code must compile whenever the user's code does.
let generatedErrors (r: Run) =
    errors r |> List.filter (fun x -> not (isNull x.Location.SourceTree) && x.Location.SourceTree.FilePath.EndsWith ".g.cs")

/// Failures a generator must never cause: an exception escaping it (CS8785 / AD0001) or DFN099.
let crashes (r: Run) =
    [ if not (isNull r.Result.Exception) then yield sprintf "generator threw %O" r.Result.Exception
      for x in r.DriverDiagnostics @ r.GeneratorDiagnostics do
          if x.Id = "CS8785" || x.Id = "AD0001" || x.Id = "DFN099" then yield string x ]

/// Reads a public static member (property, field or constant) of a generated type.
let staticValue (t: Type) (name: string) : obj =
    match t.GetProperty(name, BindingFlags.Public ||| BindingFlags.Static) with
    | null ->
        match t.GetField(name, BindingFlags.Public ||| BindingFlags.Static) with
        | null -> failwithf "%s has no public static member %s" t.FullName name
        | f when f.IsLiteral -> f.GetRawConstantValue()
        | f -> f.GetValue null
    | p -> p.GetValue null
