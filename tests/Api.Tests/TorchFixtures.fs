/// Byte-level fixtures for the importer, built here so they run everywhere (no PyTorch needed): pickles written opcode
/// by opcode as CPython's pickler writes a state_dict (protocol 2), wrapped in torch.save's zip layout or its legacy
/// stream (torch/serialization.py: magic number, protocol 1001, sys_info, the object, storage keys, raw storages).
module DiffusionFunctional.Api.Tests.TorchFixtures

open System
open System.IO
open System.IO.Compression
open System.Text
open TorchSharp

/// Writes pickle opcodes.
type PickleWriter() =
    let buffer = new MemoryStream()
    member _.Op(code: char) = buffer.WriteByte(byte code)
    member _.Raw(bytes: byte[]) = buffer.Write(bytes, 0, bytes.Length)
    member w.Proto(version: byte) = w.Raw [| 0x80uy; version |]
    member w.Global(moduleName: string, name: string) = w.Op 'c'; w.Raw(Encoding.ASCII.GetBytes(moduleName + "\n" + name + "\n"))
    member w.Str(text: string) =
        let bytes = Encoding.UTF8.GetBytes text
        w.Op 'X'; w.Raw(BitConverter.GetBytes(uint32 bytes.Length)); w.Raw bytes
    member w.Int(value: int64) =
        if value >= 0L && value < 256L then w.Op 'K'; w.Raw [| byte value |]
        else w.Op 'J'; w.Raw(BitConverter.GetBytes(int32 value))
    member w.Long1(value: bigint) =
        let bytes = value.ToByteArray()
        w.Raw [| 0x8auy; byte bytes.Length |]; w.Raw bytes
    member w.Bool(value: bool) = w.Raw [| (if value then 0x88uy else 0x89uy) |]
    member w.IntTuple(values: int64[]) =
        w.Op '('
        for v in values do w.Int v
        w.Op 't'
    member _.Bytes = buffer.ToArray()

/// A tensor as the pickle describes it: which storage, offset (elements), sizes, strides.
type StoredTensor = { Key: string; Storage: string; Offset: int64; Shape: int64[]; Stride: int64[] }

/// A storage: its key, PyTorch storage class (FloatStorage, HalfStorage, ...) and raw little-endian bytes.
type StoredBlob = { Name: string; StorageType: string; ElementSize: int; Data: byte[] }

let private numel (b: StoredBlob) = int64 (b.Data.Length / b.ElementSize)

/// The pickle of an OrderedDict of tensors; `legacy` adds the sixth persistent-id field (view metadata, None).
let statePickle (legacy: bool) (blobs: StoredBlob list) (tensors: StoredTensor list) =
    let w = PickleWriter()
    w.Proto 2uy
    w.Global("collections", "OrderedDict"); w.Op ')'; w.Op 'R'
    w.Op '('
    for t in tensors do
        let blob = blobs |> List.find (fun b -> b.Name = t.Storage)
        w.Str t.Key
        w.Global("torch._utils", "_rebuild_tensor_v2")
        w.Op '('
        // persistent id: ('storage', torch.XStorage, key, 'cpu', numel[, None])
        w.Op '('; w.Str "storage"; w.Global("torch", blob.StorageType); w.Str blob.Name; w.Str "cpu"; w.Int(numel blob)
        if legacy then w.Op 'N'
        w.Op 't'; w.Op 'Q'
        w.Int t.Offset; w.IntTuple t.Shape; w.IntTuple t.Stride; w.Bool false
        w.Global("collections", "OrderedDict"); w.Op ')'; w.Op 'R'
        w.Op 't'; w.Op 'R'
    w.Op 'u'
    w.Op '.'
    w.Bytes

/// torch.save's zip layout: PREFIX/data.pkl, PREFIX/data/KEY per storage, PREFIX/version, PREFIX/byteorder.
let writeZipWith (path: string) (pickle: byte[]) (blobs: StoredBlob list) =
    use file = File.Create path
    use zip = new ZipArchive(file, ZipArchiveMode.Create)
    let add (name: string) (bytes: byte[]) =
        use s = zip.CreateEntry(name, CompressionLevel.NoCompression).Open()
        s.Write(bytes, 0, bytes.Length)
    add "archive/data.pkl" pickle
    add "archive/byteorder" (Encoding.ASCII.GetBytes "little")
    for b in blobs do add ("archive/data/" + b.Name) b.Data
    add "archive/version" (Encoding.ASCII.GetBytes "3\n")

let writeZip path blobs tensors = writeZipWith path (statePickle false blobs tensors) blobs

/// The legacy (non-zip) torch.save stream around a main pickle.
let writeLegacyWith (path: string) (mainPickle: byte[]) (blobs: StoredBlob list) =
    let small (write: PickleWriter -> unit) =
        let w = PickleWriter()
        w.Proto 2uy
        write w
        w.Op '.'
        w.Bytes
    use file = File.Create path
    let put (bytes: byte[]) = file.Write(bytes, 0, bytes.Length)
    put (small (fun w -> w.Long1(bigint.Parse("01950a86a20f9469cfc6c", Globalization.NumberStyles.HexNumber))))
    put (small (fun w -> w.Raw [| byte 'M'; 0xe9uy; 0x03uy |]))  // BININT2 1001
    put (small (fun w ->
        w.Op '}'; w.Op '('
        w.Str "protocol_version"; w.Raw [| byte 'M'; 0xe9uy; 0x03uy |]
        w.Str "little_endian"; w.Bool true
        w.Str "type_sizes"; w.Op '}'; w.Op '('; w.Str "short"; w.Int 2L; w.Str "int"; w.Int 4L; w.Str "long"; w.Int 4L; w.Op 'u'
        w.Op 'u'))
    put mainPickle
    put (small (fun w ->
        w.Op ']'; w.Op '('
        for b in blobs do w.Str b.Name
        w.Op 'e'))
    for b in blobs do
        put (BitConverter.GetBytes(numel b))
        put b.Data

let writeLegacy path blobs tensors = writeLegacyWith path (statePickle true blobs tensors) blobs

/// The storage class and element size PyTorch uses for a TorchSharp dtype.
let storageType (dtype: torch.ScalarType) =
    match dtype with
    | torch.ScalarType.Float32 -> "FloatStorage", 4
    | torch.ScalarType.Float64 -> "DoubleStorage", 8
    | torch.ScalarType.Float16 -> "HalfStorage", 2
    | torch.ScalarType.BFloat16 -> "BFloat16Storage", 2
    | torch.ScalarType.Int64 -> "LongStorage", 8
    | other -> failwithf "no fixture storage for %A" other

let private bytesOf (t: torch.Tensor) (dtype: torch.ScalarType) =
    use c = t.detach().to_type(dtype).contiguous()
    c.bytes.ToArray()

let private contiguousStrides (shape: int64[]) =
    Array.init shape.Length (fun i -> Array.fold (*) 1L shape.[i + 1 ..])

/// One storage per tensor, contiguous, in the given dtype.
let perTensor (dtype: torch.ScalarType) (state: (string * torch.Tensor) list) =
    let kind, size = storageType dtype
    let blobs = state |> List.mapi (fun i (_, t) -> { Name = string i; StorageType = kind; ElementSize = size; Data = bytesOf t dtype })
    let tensors = state |> List.mapi (fun i (k, t) -> { Key = k; Storage = string i; Offset = 0L; Shape = t.shape; Stride = contiguousStrides t.shape })
    blobs, tensors

/// Every tensor a view into ONE shared storage, each at its own element offset (as a state_dict of slices is saved).
let packed (dtype: torch.ScalarType) (state: (string * torch.Tensor) list) =
    let kind, size = storageType dtype
    let data = state |> List.map (fun (_, t) -> bytesOf t dtype)
    let offsets = data |> List.scan (fun acc d -> acc + int64 (d.Length / size)) 0L
    let blob = { Name = "shared"; StorageType = kind; ElementSize = size; Data = Array.concat data }
    let tensors = List.map2 (fun (k, t: torch.Tensor) o -> { Key = k; Storage = "shared"; Offset = o; Shape = t.shape; Stride = contiguousStrides t.shape }) state (List.take state.Length offsets)
    [ blob ], tensors

/// 4-D tensors stored channels-last (strides [H*W*C, 1, W*C, C]), others contiguous: a non-contiguous state_dict.
let channelsLast (state: (string * torch.Tensor) list) =
    let blobs, tensors = perTensor torch.ScalarType.Float32 state
    let relaid =
        List.map2 (fun (blob: StoredBlob) (t: StoredTensor, (_, tensor: torch.Tensor)) ->
            if t.Shape.Length <> 4 then blob, t
            else
                use permuted = tensor.detach().permute(0L, 2L, 3L, 1L).contiguous()
                let s = t.Shape
                { blob with Data = permuted.bytes.ToArray() }, { t with Stride = [| s.[1] * s.[2] * s.[3]; 1L; s.[3] * s.[1]; s.[1] |] })
            blobs (List.zip tensors state)
    List.map fst relaid, List.map snd relaid

/// A safetensors file written byte by byte: (key, dtype name, shape, raw bytes) in order.
let writeSafetensors (path: string) (entries: (string * string * int64[] * byte[]) list) =
    let mutable offset = 0L
    let fields =
        [ for key, dtype, shape, bytes in entries do
            let shapeText = String.Join(",", shape)
            yield sprintf "\"%s\":{\"dtype\":\"%s\",\"shape\":[%s],\"data_offsets\":[%d,%d]}" key dtype shapeText offset (offset + int64 bytes.Length)
            offset <- offset + int64 bytes.Length ]
    let header = Encoding.UTF8.GetBytes("{" + String.Join(",", fields) + "}")
    use file = File.Create path
    file.Write(BitConverter.GetBytes(uint64 header.Length), 0, 8)
    file.Write(header, 0, header.Length)
    for _, _, _, bytes in entries do file.Write(bytes, 0, bytes.Length)

/// The safetensors dtype name and raw bytes of a tensor in a TorchSharp dtype.
let safetensorsEntry (key: string) (t: torch.Tensor) (dtype: torch.ScalarType) =
    let name =
        match dtype with
        | torch.ScalarType.Float32 -> "F32"
        | torch.ScalarType.Float64 -> "F64"
        | torch.ScalarType.Float16 -> "F16"
        | torch.ScalarType.BFloat16 -> "BF16"
        | torch.ScalarType.Int64 -> "I64"
        | other -> failwithf "no safetensors name for %A" other
    key, name, t.shape, bytesOf t dtype
