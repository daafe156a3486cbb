/// `dfn export` and `dfn import` as a user runs them: a trained checkpoint exported for diffusers and PyTorch, imported
/// back and sampled to the same images; output locations checked before any work (never overwriting the checkpoint);
/// a malicious pickle refused; an imported checkpoint not resumable. Bad input: exit 2 with one line.
module DiffusionFunctional.Cli.Tests.InteropCommandTests

open System
open System.IO
open System.IO.Compression
open System.Security.Cryptography
open System.Text
open DiffusionFunctional.Cli.Tests.Dfn
open Expecto

/// 40 random 8x8 images as an IDX3 file.
let private writeIdx (path: string) =
    let rng = Random(5)
    let header = Array.concat [ [| 0uy; 0uy; 8uy; 3uy |]; yield! [ 40; 8; 8 ] |> List.map (fun v -> BitConverter.GetBytes(v) |> Array.rev) ]
    File.WriteAllBytes(path, Array.append header (Array.init (40 * 64) (fun _ -> byte (rng.Next 256))))

/// A torch.save-style zip whose pickle calls os.system (GLOBAL, a string argument, TUPLE1, REDUCE).
let private writeMaliciousPickle (path: string) (command: string) =
    let argument = Encoding.UTF8.GetBytes command
    let pickle =
        Array.concat [ [| 0x80uy; 2uy |]; Encoding.ASCII.GetBytes "cos\nsystem\n"; [| byte 'X' |]; BitConverter.GetBytes(uint32 argument.Length)
                       argument; [| 0x85uy; byte 'R'; byte '.' |] ]
    use file = File.Create path
    use zip = new ZipArchive(file, ZipArchiveMode.Create)
    use entry = zip.CreateEntry("archive/data.pkl").Open()
    entry.Write(pickle, 0, pickle.Length)

let private hash (path: string) = Convert.ToHexString(SHA256.HashData(File.ReadAllBytes path))

let private expectBadInput (r: Outcome) (mention: string) (what: string) =
    Expect.equal r.ExitCode 2 (sprintf "%s: exit 2 (stderr %s)" what r.Stderr)
    Expect.stringContains r.Stderr mention (sprintf "%s: names the problem" what)
    Expect.equal (r.Stderr.Trim().Split('\n').Length) 1 (sprintf "%s: one line" what)

[<Tests>]
let tests =
    testSequenced <| testList "dfn export and import" [
        test "export for diffusers and PyTorch, import back, sample the same images; bad locations refused before any work" {
            let dir = Path.Combine(Path.GetTempPath(), sprintf "dfn-interop-%s" (Guid.NewGuid().ToString("N").Substring(0, 8)))
            Directory.CreateDirectory dir |> ignore
            try
                let idx = Path.Combine(dir, "images-idx3-ubyte")
                writeIdx idx
                let run' args = runWithin 300 args
                let runDir = Path.Combine(dir, "run")
                let trained =
                    run' [ "train"; "--data"; "idx:" + idx; "--model"; "tiny"; "--image-size"; "8"; "--timesteps"; "40"; "--steps"; "3"
                           "--batch"; "8"; "--threads"; "1"; "--sample-count"; "0"; "--out"; runDir ]
                Expect.equal trained.ExitCode 0 trained.Stderr
                let checkpoint = Path.Combine(runDir, "checkpoint.dfn")
                let before = hash checkpoint

                let export = Path.Combine(dir, "export")
                let exported = run' [ "export"; "--checkpoint"; runDir; "--out"; export ]
                Expect.equal exported.ExitCode 0 exported.Stderr
                for name in [ "config.json"; "scheduler_config.json"; "diffusion_pytorch_model.safetensors" ] do
                    Expect.isTrue (File.Exists(Path.Combine(export, name))) (sprintf "%s written (a run folder is accepted)" name)
                let pt = Path.Combine(dir, "unet.pt")
                let exportedPt = run' [ "export"; "--checkpoint"; checkpoint; "--out"; pt; "--format"; "pytorch" ]
                Expect.equal exportedPt.ExitCode 0 exportedPt.Stderr

                expectBadInput (run' [ "export"; "--checkpoint"; checkpoint; "--out"; checkpoint ]) "input file itself" "--out = the checkpoint"
                expectBadInput (run' [ "export"; "--checkpoint"; checkpoint; "--out"; checkpoint; "--format"; "pytorch" ]) "input file itself" "--out = the checkpoint (pytorch)"
                Expect.equal (hash checkpoint) before "the checkpoint is untouched"
                expectBadInput (run' [ "export"; "--checkpoint"; checkpoint; "--out"; export; "--format"; "pytorch" ]) "is a folder" "a folder where a file is written"
                expectBadInput (run' [ "export"; "--checkpoint"; checkpoint; "--out"; pt ]) "is a file" "a file where a folder is written"
                expectBadInput (run' [ "export"; "--checkpoint"; checkpoint; "--out"; Path.Combine(dir, "new.pt") ]) "--format pytorch" "a file name for the folder format"
                Expect.isFalse (File.Exists(Path.Combine(dir, "new.pt")) || Directory.Exists(Path.Combine(dir, "new.pt"))) "nothing written"
                let junk = Path.Combine(dir, "junk.dfn")
                File.WriteAllText(junk, "not a checkpoint")
                expectBadInput (run' [ "export"; "--checkpoint"; junk; "--out"; Path.Combine(dir, "a", "b", "c") ]) "not a dfn checkpoint" "an unreadable checkpoint"
                expectBadInput (run' [ "export"; "--checkpoint"; checkpoint; "--out"; "/proc/dfn-no-such-place/x" ]) "not writable" "an unwritable location"
                expectBadInput (run' [ "export"; "--checkpoint"; checkpoint; "--out"; Path.Combine(pt, "inside") ]) "not writable" "a folder below a file"
                expectBadInput (run' [ "export"; "--checkpoint"; checkpoint; "--out"; export; "--format"; "onnx" ]) "onnx" "an unknown format"
                expectBadInput (run' [ "export"; "--checkpoint"; Path.Combine(dir, "none"); "--out"; export ]) "not found" "a missing checkpoint"

                let imported = Path.Combine(dir, "imported.dfn")
                let importedRun = run' [ "import"; "--from"; export; "--out"; imported ]
                Expect.equal importedRun.ExitCode 0 importedRun.Stderr
                Expect.stringContains importedRun.Stderr "diffusers keys" "says which keys it read"
                let sample (ckpt: string) (out: string) =
                    let r = run' [ "sample"; "--checkpoint"; ckpt; "--count"; "4"; "--sampler-steps"; "5"; "--seed"; "2"; "--threads"; "1"; "--out"; out ]
                    Expect.equal r.ExitCode 0 r.Stderr
                    File.ReadAllBytes(Path.Combine(out, "grid.png"))
                Expect.equal (sample imported (Path.Combine(dir, "s-imported"))) (sample checkpoint (Path.Combine(dir, "s-original"))) "the same samples"

                expectBadInput (run' [ "import"; "--from"; export; "--out"; imported ]) "--force" "an existing --out"
                Expect.equal (run' [ "import"; "--from"; pt; "--out"; imported; "--force"; "--timesteps"; "40" ]).ExitCode 0 "--force replaces it"
                expectBadInput (run' [ "import"; "--from"; pt; "--out"; pt ]) "input file itself" "--out = --from"
                let reexport = run' [ "export"; "--checkpoint"; imported; "--out"; Path.Combine(dir, "again") ]
                Expect.equal reexport.ExitCode 0 (sprintf "an imported checkpoint exports (%s)" reexport.Stderr)

                let resumeDir = Path.Combine(dir, "resume")
                Directory.CreateDirectory resumeDir |> ignore
                Expect.equal (run' [ "import"; "--from"; export; "--out"; resumeDir ]).ExitCode 0 "a run folder gets checkpoint.dfn"
                Expect.isTrue (File.Exists(Path.Combine(resumeDir, "checkpoint.dfn"))) "FOLDER/checkpoint.dfn"
                let resumed =
                    run' [ "train"; "--data"; "idx:" + idx; "--model"; "tiny"; "--image-size"; "8"; "--timesteps"; "40"; "--steps"; "5"
                           "--batch"; "8"; "--threads"; "1"; "--sample-count"; "0"; "--out"; resumeDir; "--resume" ]
                expectBadInput resumed "imported weights only" "resuming an imported checkpoint"

                let malicious = Path.Combine(dir, "evil.bin")
                let marker = Path.Combine(dir, "pwned")
                writeMaliciousPickle malicious ("touch " + marker)
                expectBadInput (run' [ "import"; "--from"; malicious; "--out"; Path.Combine(dir, "evil.dfn") ]) "os.system" "a pickle that runs a command"
                Expect.isFalse (File.Exists marker) "the command never ran"
            finally
                try Directory.Delete(dir, true) with _ -> ()
        }
    ]
