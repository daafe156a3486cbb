/// Helpers of the bad-input tests: tiny data sets and runs, a one-line-refusal check, file fingerprints, PNG files,
/// rebuilt checkpoints and background `dfn` processes that can be signalled.
module DiffusionFunctional.Cli.Tests.BadInputSupport

open System
open System.Diagnostics
open System.IO
open System.Security.Cryptography
open System.Text
open System.Text.Json
open System.Text.Json.Nodes
open System.Text.RegularExpressions
open DiffusionFunctional.Cli.Tests.Dfn
open Expecto
open SkiaSharp

/// A fresh folder under the temporary directory.
let tempFolder name =
    let dir = Path.Combine(Path.GetTempPath(), sprintf "dfn-bad-%s-%s" name (Guid.NewGuid().ToString("N").Substring(0, 8)))
    Directory.CreateDirectory dir |> ignore
    dir

/// A synthetic IDX3 file of `count` 8x8 images (bright squares of random size and place), seeded by `seed`.
let writeIdx (path: string) (count: int) (seed: int) =
    let rng = Random(seed)
    use f = File.Create path
    f.Write([| 0uy; 0uy; 8uy; 3uy |], 0, 4)
    for dim in [ count; 8; 8 ] do
        f.Write([| byte (dim >>> 24); byte (dim >>> 16); byte (dim >>> 8); byte dim |], 0, 4)
    for _ in 1 .. count do
        let size = rng.Next(2, 6)
        let r0, c0 = rng.Next(0, 8 - size + 1), rng.Next(0, 8 - size + 1)
        let pixels = Array.init 64 (fun i -> let r, c = i / 8, i % 8 in if r >= r0 && r < r0 + size && c >= c0 && c < c0 + size then 230uy else 10uy)
        f.Write(pixels, 0, 64)

/// Options of a tiny, fast training run (8x8, T = 40, 3 steps, one thread, no sample grids).
let tinyTraining =
    [ "--model", "tiny"; "--image-size", "8"; "--timesteps", "40"; "--steps", "3"; "--batch", "8"; "--threads", "1"; "--sample-count", "0" ]

/// `dfn train` on `data` into `out` with the tiny options, `changes` replacing or adding options, then `flags`.
let trainArgs (data: string) (out: string) (changes: (string * string) list) (flags: string list) =
    let kept = tinyTraining |> List.filter (fun (k, _) -> not (List.exists (fun (c, _) -> c = k) changes))
    [ "train"; "--data"; data; "--out"; out ] @ List.collect (fun (k, v) -> [ k; v ]) (kept @ changes) @ flags

let private stackFrame = Regex(@"^\s+at \S+", RegexOptions.Multiline)
let private typeName = Regex(@"\b[A-Z]\w*(Exception|Error)\b")

/// Asserts a refusal or failure: the exit code, exactly one line on stderr (prefixed "dfn: ") that contains every one
/// of `mentions`, no stack frame and no .NET exception type name.
let expectOneLine (code: int) (mentions: string list) (what: string) (r: Outcome) =
    Expect.equal r.ExitCode code (sprintf "%s: exit code (stderr: %s)" what r.Stderr)
    let lines = r.Stderr.Trim().Split('\n')
    Expect.isNonEmpty (r.Stderr.Trim()) (sprintf "%s: says why on stderr" what)
    Expect.equal lines.Length 1 (sprintf "%s: one line on stderr, got:\n%s" what r.Stderr)
    Expect.stringStarts lines.[0] "dfn: " (sprintf "%s: the line starts with dfn:" what)
    Expect.isFalse (stackFrame.IsMatch(r.Stderr + r.Stdout)) (sprintf "%s: no stack trace" what)
    Expect.isFalse (typeName.IsMatch r.Stderr) (sprintf "%s: no .NET type name in %s" what r.Stderr)
    for m in mentions do
        Expect.isTrue (r.Stderr.Contains(m, StringComparison.OrdinalIgnoreCase)) (sprintf "%s: the message names '%s': %s" what m r.Stderr)

/// A file's content hash and last write time: equal fingerprints mean the file was neither changed nor rewritten.
let fingerprint (path: string) =
    Convert.ToHexString(SHA256.HashData(File.ReadAllBytes path)), File.GetLastWriteTimeUtc path

/// Files a refused command left in `dir`, apart from the run-folder lock (absent folder: none).
let filesWritten (dir: string) =
    if not (Directory.Exists dir) then []
    else
        Directory.GetFiles(dir, "*", SearchOption.AllDirectories)
        |> Array.filter (fun f -> not (Path.GetFileName(f).StartsWith ".dfn-lock"))
        |> List.ofArray

/// Writes a `size` x `size` grey PNG whose pixel (x, y) is `value x y` (SkiaSharp, the encoder dfn itself uses).
let writePng (path: string) (size: int) (value: int -> int -> byte) =
    use bitmap = new SKBitmap(SKImageInfo(size, size, SKColorType.Rgba8888, SKAlphaType.Opaque))
    for y in 0 .. size - 1 do
        for x in 0 .. size - 1 do
            let v = value x y
            bitmap.SetPixel(x, y, SKColor(v, v, v))
    use data = bitmap.Encode(SKEncodedImageFormat.Png, 100)
    File.WriteAllBytes(path, data.ToArray())

/// Writes a PNG of seeded noise.
let writeNoisePng (path: string) (size: int) (seed: int) =
    let rng = Random(seed)
    let pixels = Array.init (size * size) (fun _ -> byte (rng.Next 256))
    writePng path size (fun x y -> pixels.[y * size + x])

/// Cuts a file to half its length (a half-written or half-downloaded image).
let truncateToHalf (path: string) =
    let bytes = File.ReadAllBytes path
    File.WriteAllBytes(path, bytes.[.. bytes.Length / 2 - 1])

let private magic = Encoding.ASCII.GetBytes "DFNCKPT1"

/// Rebuilds a checkpoint container (magic "DFNCKPT1", int32 header length, JSON header, sections, SHA-256 of all
/// before it) from `source` into `target` with `editHeader` applied and only the first `keepSections` bytes of the
/// sections kept: the checksum is valid, so only what is inside can make a reader refuse it.
let rebuildCheckpoint (source: string) (target: string) (editHeader: JsonObject -> unit) (keepSections: int -> int) =
    let bytes = File.ReadAllBytes source
    Expect.sequenceEqual bytes.[0..7] magic "the source is a dfn checkpoint"
    let headerLength = BitConverter.ToInt32(bytes, 8)
    let header = JsonNode.Parse(Encoding.UTF8.GetString(bytes, 12, headerLength)).AsObject()
    let sections = bytes.[12 + headerLength .. bytes.Length - 33]
    editHeader header
    let json = Encoding.UTF8.GetBytes(header.ToJsonString())
    let payload = Array.concat [ magic; BitConverter.GetBytes json.Length; json; sections.[.. keepSections sections.Length - 1] ]
    Directory.CreateDirectory(Path.GetDirectoryName target) |> ignore
    File.WriteAllBytes(target, Array.append payload (SHA256.HashData payload))

/// Steps recorded in a metrics.jsonl, each line parsed as JSON (throws on a garbled line); the header lines each
/// training process writes first are checked to be headers and skipped.
let metricSteps (path: string) =
    File.ReadAllLines path
    |> Array.choose (fun line ->
        let root = JsonDocument.Parse(line).RootElement
        match root.TryGetProperty "header" with
        | true, header -> Expect.isTrue (header.GetProperty("kernels").GetString().Length > 0) "a header names the kernels"; None
        | _ -> Some(root.GetProperty("step").GetInt64()))
    |> List.ofArray

/// Asserts that steps go 1, 2, 3, ... with no gap, repeat or interleaving.
let expectConsecutiveSteps (steps: int64 list) (what: string) =
    Expect.isNonEmpty steps (sprintf "%s: steps logged" what)
    Expect.equal steps [ 1L .. int64 steps.Length ] (sprintf "%s: steps strictly increasing from 1" what)

/// `dfn ARGS` running in the background with its output drained, to be signalled and waited for.
type Background(args: string list) =
    let p = Process.Start(Dfn.signallableStartInfo args)
    let out = p.StandardOutput.ReadToEndAsync()
    let err = p.StandardError.ReadToEndAsync()

    /// The process id (`dotnet dfn.dll` runs dfn in this process).
    member _.Id = p.Id

    /// Waits until `ready ()` holds, failing when the process ends first or after `seconds`.
    member _.WaitUntil (seconds: int) (what: string) (ready: unit -> bool) =
        let clock = Stopwatch.StartNew()
        while not (ready ()) do
            if p.HasExited then failwithf "dfn ended (exit %d) before %s: %s" p.ExitCode what err.Result
            if clock.Elapsed.TotalSeconds > float seconds then failwithf "no %s within %d s" what seconds
            Threading.Thread.Sleep 100

    /// Sends a signal by name (INT, TERM, HUP) with kill(1).
    member _.Signal(name: string) =
        use kill = Process.Start("kill", [ "-" + name; string p.Id ])
        kill.WaitForExit()

    /// Waits for the end and returns what the user saw.
    member _.Finish(seconds: int) : Outcome =
        if not (p.WaitForExit(seconds * 1000)) then
            p.Kill true
            failwithf "dfn %s did not finish within %d s" (String.Join(" ", args)) seconds
        { ExitCode = p.ExitCode; Stdout = out.Result; Stderr = err.Result }

    interface IDisposable with
        member _.Dispose() =
            if not p.HasExited then p.Kill true
            p.Dispose()

/// Step lines of a metrics.jsonl (0 when absent; header lines not counted), read while another process appends to it.
let metricLines (path: string) =
    try
        use stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite)
        use reader = new StreamReader(stream)
        reader.ReadToEnd().Split('\n', StringSplitOptions.RemoveEmptyEntries) |> Array.filter (fun l -> not (l.StartsWith "{\"header\"")) |> Array.length
    with :? FileNotFoundException | :? DirectoryNotFoundException -> 0

/// A folder this process cannot write into: a 0555 temporary folder, or (as root, who ignores permissions) /sys,
/// which the kernel keeps read-only; None when neither refuses a write here.
let readOnlyFolder () =
    let refuses (dir: string) =
        try
            let probe = Path.Combine(dir, "dfn-probe-" + Guid.NewGuid().ToString("N"))
            Directory.CreateDirectory probe |> ignore
            Directory.Delete probe
            false
        with :? UnauthorizedAccessException | :? IOException -> true
    let dir = tempFolder "readonly"
    File.SetUnixFileMode(dir, UnixFileMode.UserRead ||| UnixFileMode.UserExecute ||| UnixFileMode.GroupRead ||| UnixFileMode.GroupExecute ||| UnixFileMode.OtherRead ||| UnixFileMode.OtherExecute)
    if refuses dir then Some dir
    else
        Directory.Delete dir
        if Directory.Exists "/sys" && refuses "/sys" then Some "/sys" else None

/// The inputs the bad-input tests share, made on first use: a 40-image IDX set and a tiny run trained 3 steps on it.
module Fixture =
    let private root = lazy (tempFolder "inputs")
    let private idxPath = lazy (let p = Path.Combine(root.Force(), "squares-idx3-ubyte") in writeIdx p 40 11; p)

    /// The IDX file.
    let idxFile () = idxPath.Force()

    /// `idx:PATH` of the shared data set.
    let idx () = "idx:" + idxPath.Force()

    /// A new path (not created) under the shared folder.
    let fresh name = Path.Combine(root.Force(), sprintf "%s-%s" name (Guid.NewGuid().ToString("N").Substring(0, 6)))

    let private baseRunFolder =
        lazy (
            let out = fresh "base"
            let r = run (trainArgs (idx ()) out [] [])
            if r.ExitCode <> 0 then failwithf "base run failed: %s" r.Stderr
            out)

    /// The run folder of the tiny run (8x8, T = 40, 3 steps) that sample, export, evaluate and the checkpoint tests read.
    let baseRun () = baseRunFolder.Force()

    /// Its checkpoint file.
    let baseCheckpoint () = Path.Combine(baseRun (), "checkpoint.dfn")

    /// Deletes the shared folder.
    let removeRoot () =
        if root.IsValueCreated && Directory.Exists root.Value then Directory.Delete(root.Value, true)

/// Runs `dfn ARGS` like <see cref="Dfn.run"/> after `configure` adjusts the process (environment, working folder).
let runWith (configure: ProcessStartInfo -> unit) (args: string list) : Outcome =
    let info = ProcessStartInfo("dotnet", RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false)
    info.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "dfn.dll"))
    for a in args do info.ArgumentList.Add a
    configure info
    use p = Process.Start info
    let out = p.StandardOutput.ReadToEndAsync()
    let err = p.StandardError.ReadToEndAsync()
    if not (p.WaitForExit 120_000) then
        p.Kill true
        failwithf "dfn %s did not finish within 120 s" (String.Join(" ", args))
    { ExitCode = p.ExitCode; Stdout = out.Result; Stderr = err.Result }

/// Runs `dfn ARGS` with extra environment variables (DOTNET_PROCESSOR_COUNT=1 makes .NET see one logical processor,
/// as on a one-core machine).
let runWithEnvironment (environment: (string * string) list) (args: string list) : Outcome =
    runWith (fun info -> for name, value in environment do info.Environment.[name] <- value) args

/// Runs `dfn ARGS` in the working folder `dir`.
let runIn (dir: string) (args: string list) : Outcome = runWith (fun info -> info.WorkingDirectory <- dir) args
