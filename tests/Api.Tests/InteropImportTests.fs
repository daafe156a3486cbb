/// Import of weights as they come, on byte-level fixtures built here (TorchFixtures): views at storage offsets,
/// channels-last strides, the legacy non-zip torch.save stream, float16/bfloat16/float64, dfn's own and diffusers'
/// deprecated key names; and the refusals: a pickle that tries to run code, unknown dtypes, missing, unexpected and
/// mis-shaped keys, malformed files. Each refusal is a BadInputException whose one line names the problem.
module DiffusionFunctional.Api.Tests.InteropImportTests

open System
open System.IO
open Expecto
open TorchSharp
open TorchSharp.PyBridge
open DiffusionFunctional
open DiffusionFunctional.Diffusion
open DiffusionFunctional.Interop
open DiffusionFunctional.Interop.Pickle
open DiffusionFunctional.Models
open DiffusionFunctional.Api.Tests.TestSupport
open DiffusionFunctional.Api.Tests.TorchFixtures
open DiffusionFunctional.Api.Tests.InteropExportTests

/// A perturbed tiny network and its diffusers-keyed state, as (key, tensor) pairs.
let private source (seed: int64) =
    let net = perturbed tinyConfig seed
    use ours = StateDict.Of net
    let theirs = DiffusersKeyMap.ToDiffusers ours
    net, theirs, [ for kv in theirs -> kv.Key, kv.Value ]

/// Loads `path` into a fresh tiny network and returns the largest output difference to `net`.
let private importDiff (net: Denoiser) (path: string) =
    torch.manual_seed 99L |> ignore
    use fresh = new UNet(tinyConfig)
    PyTorchWeights.Import(fresh, path)
    fresh.eval()
    use expected = fixedOutput net
    use actual = fixedOutput fresh
    maxAbsDiff expected actual

/// Rounds every weight of `net` to `dtype` and back, so a file in that dtype holds exactly the network's weights.
let private roundTo (dtype: torch.ScalarType) (net: Denoiser) =
    use _ = torch.no_grad()
    for p in net.parameters() do
        use rounded = p.to_type(dtype).to_type(torch.ScalarType.Float32)
        p.copy_(rounded) |> ignore

let private expectRefused (action: unit -> unit) (mentions: string list) (what: string) =
    let e = badInput action what
    for m in mentions do Expect.stringContains e.Message m (sprintf "%s: the message names %s" what m)
    Expect.isFalse (e.Message.Contains "\n") (sprintf "%s: one line" what)

let private inTemp name (body: string -> unit) =
    let dir, clean = tempDir name
    use _ = clean
    body dir

/// A zip whose data.pkl is the given pickle and holds no storages.
let private pickleFile (dir: string) (name: string) (write: PickleWriter -> unit) =
    let w = PickleWriter()
    write w
    let path = Path.Combine(dir, name)
    writeZipWith path w.Bytes []
    path

[<Tests>]
let tests =
    testList "weights import" [
        test "tensors stored as views into one storage, each at its own offset" {
            inTemp "views" (fun dir ->
                let net, theirs, state = source 1L
                use _ = net
                use _ = theirs
                let blobs, tensors = packed torch.ScalarType.Float32 state
                Expect.isTrue (tensors |> List.exists (fun t -> t.Offset > 0L)) "offsets in use"
                for name, write in [ "views.pt", writeZip; "views-legacy.pt", writeLegacy ] do
                    let path = Path.Combine(dir, name)
                    write path blobs tensors
                    Expect.equal (importDiff net path) 0.0 name)
        }

        test "non-contiguous (channels-last) tensors" {
            inTemp "strides" (fun dir ->
                let net, theirs, state = source 2L
                use _ = net
                use _ = theirs
                let blobs, tensors = channelsLast state
                Expect.isTrue (tensors |> List.exists (fun t -> t.Stride.Length = 4 && t.Stride.[1] = 1L)) "channels-last strides in use"
                let path = Path.Combine(dir, "channels-last.pt")
                writeZip path blobs tensors
                Expect.equal (importDiff net path) 0.0 "identical outputs")
        }

        test "the legacy non-zip torch.save stream" {
            inTemp "legacy" (fun dir ->
                let net, theirs, state = source 3L
                use _ = net
                use _ = theirs
                let blobs, tensors = perTensor torch.ScalarType.Float32 state
                let path = Path.Combine(dir, "legacy.pt")
                writeLegacy path blobs tensors
                Expect.notEqual (File.ReadAllBytes(path).[0..1]) "PK"B "not a zip"
                Expect.equal (importDiff net path) 0.0 "identical outputs")
        }

        test "float16, bfloat16 and float64 tensors, in torch.save and safetensors files" {
            inTemp "dtypes" (fun dir ->
                for dtype in [ torch.ScalarType.Float16; torch.ScalarType.BFloat16; torch.ScalarType.Float64 ] do
                    let net, theirs, state = source 4L
                    use _ = net
                    use _ = theirs
                    roundTo dtype net
                    use ours = StateDict.Of net
                    use rounded = DiffusersKeyMap.ToDiffusers ours
                    let roundedState = [ for kv in rounded -> kv.Key, kv.Value ]
                    let blobs, tensors = perTensor dtype roundedState
                    let pt = Path.Combine(dir, sprintf "%A.pt" dtype)
                    writeZip pt blobs tensors
                    Expect.equal (importDiff net pt) 0.0 (sprintf "%A torch.save" dtype)
                    let st = Path.Combine(dir, sprintf "%A.safetensors" dtype)
                    writeSafetensors st [ for k, t in roundedState -> safetensorsEntry k t dtype ]
                    Expect.equal (importDiff net st) 0.0 (sprintf "%A safetensors" dtype))
        }

        test "a pickle that tries to run a command is refused, naming the global, and nothing runs" {
            inTemp "malicious" (fun dir ->
                let marker = Path.Combine(dir, "pwned")
                let reduceCall (w: PickleWriter) =
                    w.Str("touch " + marker); w.Raw [| 0x85uy |]; w.Op 'R'; w.Op '.'
                let viaGlobal = pickleFile dir "global.pt" (fun w -> w.Proto 2uy; w.Global("os", "system"); reduceCall w)
                let viaStack =
                    pickleFile dir "stack.pt" (fun w ->
                        w.Proto 4uy; w.Raw [| 0x8cuy; 8uy |]; w.Raw "builtins"B; w.Raw [| 0x8cuy; 4uy |]; w.Raw "eval"B; w.Raw [| 0x93uy |]; reduceCall w)
                let viaInst = pickleFile dir "inst.pt" (fun w -> w.Proto 2uy; w.Op '('; w.Str("touch " + marker); w.Op 'i'; w.Raw "os\nsystem\n"B; w.Op '.')
                let viaBuild = pickleFile dir "build.pt" (fun w -> w.Proto 2uy; w.Global("collections", "OrderedDict"); w.Op '}'; w.Op 'b'; w.Op '.')
                expectRefused (fun () -> TorchFile.Read viaGlobal |> ignore) [ "os.system"; "global.pt" ] "GLOBAL os.system"
                expectRefused (fun () -> TorchFile.Read viaStack |> ignore) [ "builtins.eval" ] "STACK_GLOBAL builtins.eval"
                expectRefused (fun () -> TorchFile.Read viaInst |> ignore) [ "opcode 0x69" ] "INST"
                expectRefused (fun () -> TorchFile.Read viaBuild |> ignore) [ "BUILD"; "collections.OrderedDict" ] "BUILD (setting state) on a class"
                // The same call in a legacy stream and in a diffusers folder's .bin.
                let legacy = Path.Combine(dir, "legacy.pt")
                let w = PickleWriter()
                w.Proto 2uy; w.Global("posix", "system"); reduceCall w
                writeLegacyWith legacy w.Bytes []
                expectRefused (fun () -> TorchFile.Read legacy |> ignore) [ "posix.system" ] "legacy stream"
                let folder = Path.Combine(dir, "model")
                Directory.CreateDirectory folder |> ignore
                File.Copy(viaGlobal, Path.Combine(folder, "diffusion_pytorch_model.bin"))
                expectRefused (fun () -> WeightsImport.Load(folder, ImportOptions()) |> ignore) [ "os.system" ] "a diffusers folder's .bin"
                Expect.isFalse (File.Exists marker) "the command never ran")
        }

        test "allowed globals are only built, never called beyond what a state_dict needs" {
            let rules = TorchStorage.Rules(fun _ -> failwith "no persistent ids here")
            let w = PickleWriter()
            w.Proto 2uy; w.Global("torch", "FloatStorage"); w.Op ')'; w.Op 'R'; w.Op '.'
            expectRefused (fun () -> RestrictedUnpickler.Load(w.Bytes, 0, rules) |> ignore) [ "torch.FloatStorage" ] "calling a storage class"
            let torchLoad = PickleWriter()
            torchLoad.Proto 2uy; torchLoad.Global("torch", "load"); torchLoad.Op '.'
            expectRefused (fun () -> RestrictedUnpickler.Load(torchLoad.Bytes, 0, rules) |> ignore) [ "torch.load" ] "any other torch global"
        }

        test "missing, unexpected and mis-shaped keys are named" {
            inTemp "keys" (fun dir ->
                let net, theirs, state = source 5L
                use _ = net
                use _ = theirs
                let write name (entries: (string * torch.Tensor) list) =
                    let path = Path.Combine(dir, name)
                    writeSafetensors path [ for k, t in entries -> safetensorsEntry k t torch.ScalarType.Float32 ]
                    path
                let missing = write "missing.safetensors" (state |> List.filter (fun (k, _) -> k <> "mid_block.attentions.0.to_k.weight"))
                use extraTensor = torch.zeros(3L)
                let unexpected = write "unexpected.safetensors" (state @ [ "extra.weight", extraTensor ])
                use bad = torch.zeros(8L, 1L, 9L)
                let misShaped = write "shape.safetensors" (state |> List.map (fun (k, t) -> if k = "conv_in.weight" then k, bad else k, t))
                let importInto path () =
                    use fresh = new UNet(tinyConfig)
                    PyTorchWeights.Import(fresh, path)
                expectRefused (importInto missing) [ "missing key mid_block.attentions.0.to_k.weight" ] "missing"
                expectRefused (importInto unexpected) [ "unexpected key extra.weight" ] "unexpected"
                expectRefused (importInto misShaped) [ "conv_in.weight"; "[8, 1, 9]"; "[8, 1, 3, 3]" ] "mis-shaped"
                let blobs, tensors = perTensor torch.ScalarType.Float32 (state |> List.filter (fun (k, _) -> k <> "conv_out.bias"))
                let zip = Path.Combine(dir, "missing.pt")
                writeZip zip blobs tensors
                expectRefused (importInto zip) [ "missing key conv_out.bias"; "missing.pt" ] "missing, torch.save")
        }

        test "unknown or non-float dtypes are refused, naming the tensor" {
            inTemp "dtype" (fun dir ->
                use t = torch.ones(4L)
                let st = Path.Combine(dir, "f8.safetensors")
                writeSafetensors st [ "conv_in.bias", "F8_E4M3", [| 4L |], Array.zeroCreate 4 ]
                expectRefused (fun () -> SafetensorsFile.Read st |> ignore) [ "conv_in.bias"; "F8_E4M3" ] "safetensors F8"
                let ints = Path.Combine(dir, "i64.safetensors")
                writeSafetensors ints [ safetensorsEntry "conv_in.bias" t torch.ScalarType.Int64 ]
                expectRefused (fun () -> SafetensorsFile.Read ints |> ignore) [ "conv_in.bias"; "floating point" ] "safetensors I64"
                let longs = Path.Combine(dir, "long.pt")
                let blobs, tensors = perTensor torch.ScalarType.Int64 [ "conv_in.bias", t ]
                writeZip longs blobs tensors
                expectRefused (fun () -> TorchFile.Read longs |> ignore) [ "conv_in.bias"; "torch.LongStorage" ] "torch.save int64"
                let complex = Path.Combine(dir, "complex.pt")
                let blob = { blobs.Head with StorageType = "ComplexFloatStorage" }
                writeZip complex [ blob ] tensors
                expectRefused (fun () -> TorchFile.Read complex |> ignore) [ "torch.ComplexFloatStorage" ] "an unknown storage type")
        }

        test "malformed files are refused with one line" {
            inTemp "malformed" (fun dir ->
                let junk = Path.Combine(dir, "junk.bin")
                File.WriteAllBytes(junk, Array.init 100 byte)
                expectRefused (fun () -> TorchFile.Read junk |> ignore) [ "not a PyTorch file" ] "random bytes"
                use t = torch.ones(2L, 2L)
                let blobs, tensors = perTensor torch.ScalarType.Float32 [ "conv_in.bias", t ]
                let beyond = Path.Combine(dir, "beyond.pt")
                writeZip beyond blobs [ { tensors.Head with Offset = 3L } ]
                expectRefused (fun () -> TorchFile.Read beyond |> ignore) [ "conv_in.bias"; "reaches element" ] "a view past its storage"
                let truncated = Path.Combine(dir, "truncated.pt")
                writeLegacy truncated blobs tensors
                let bytes = File.ReadAllBytes truncated
                File.WriteAllBytes(truncated, bytes.[.. bytes.Length - 5])
                expectRefused (fun () -> TorchFile.Read truncated |> ignore) [ "truncated.pt" ] "a cut legacy file"
                let st = Path.Combine(dir, "offsets.safetensors")
                writeSafetensors st [ "conv_in.bias", "F32", [| 8L |], Array.zeroCreate 16 ]
                expectRefused (fun () -> SafetensorsFile.Read st |> ignore) [ "conv_in.bias"; "needs 32 bytes" ] "safetensors size mismatch")
        }

        test "dfn's own keys (files of dfn 1.1's export) and diffusers' deprecated attention names still import" {
            inTemp "ownkeys" (fun dir ->
                let net, theirs, state = source 6L
                use _ = net
                use _ = theirs
                let own = Path.Combine(dir, "dfn-1.1.pt")
                net.save_py(own) |> ignore
                Expect.equal (importDiff net own) 0.0 "dfn keys (fused qkv, singular resamplers)"
                use imported = WeightsImport.Load(own, ImportOptions())
                Expect.equal imported.KeyScheme "dfn" "recognised as dfn's keys"
                let renamed =
                    state |> List.map (fun (k, t) ->
                        k.Replace(".to_q.", ".query.").Replace(".to_k.", ".key.").Replace(".to_v.", ".value.").Replace(".to_out.0.", ".proj_attn."), t)
                let old = Path.Combine(dir, "old-names.safetensors")
                writeSafetensors old [ for k, t in renamed -> safetensorsEntry k t torch.ScalarType.Float32 ]
                Expect.equal (importDiff net old) 0.0 "query/key/value/proj_attn")
        }

        test "a pipeline folder (unet/, scheduler/) and a folder without config.json import" {
            inTemp "pipeline" (fun dir ->
                use net = perturbed tinyConfig 8L
                let diffusion = GaussianDiffusion.Create("sigmoid", 50)
                WeightsExport.WriteDiffusers(net, diffusion, Path.Combine(dir, "unet")) |> ignore
                Directory.CreateDirectory(Path.Combine(dir, "scheduler")) |> ignore
                File.Move(Path.Combine(dir, "unet", DiffusersSchedulerConfig.FileName), Path.Combine(dir, "scheduler", DiffusersSchedulerConfig.FileName))
                use imported = WeightsImport.Load(dir, ImportOptions())
                Expect.equal imported.Diffusion.ScheduleName "sigmoid" "scheduler from scheduler/"
                Expect.equal imported.Diffusion.Timesteps 50 "T from scheduler/"
                File.Delete(Path.Combine(dir, "unet", DiffusersUNetConfig.FileName))
                use inferred = WeightsImport.Load(Path.Combine(dir, "unet"), ImportOptions(Timesteps = 50))
                Expect.stringContains inferred.ConfigOrigin "tiny" "the configuration inferred from the shapes"
                Expect.equal inferred.Diffusion.Timesteps 50 "T from the options"
                use a = fixedOutput net
                use b = fixedOutput inferred.Model
                Expect.equal (maxAbsDiff a b) 0.0 "identical outputs")
        }
    ]
