using System.Buffers.Binary;
using System.IO.Compression;
using System.Numerics;
using DiffusionFunctional.Interop.Pickle;
using TorchSharp;

namespace DiffusionFunctional.Interop;

/// <summary>
/// Reads a state_dict written by <c>torch.save</c> without running any Python: the zip format (PyTorch 1.6 and later:
/// <c>PREFIX/data.pkl</c> plus one <c>PREFIX/data/KEY</c> entry per storage) and the legacy stream (a sequence of
/// pickles: magic number, protocol version, system info, the object with persistent ids, the storage keys, then each
/// storage as an int64 element count and raw little-endian bytes). Every tensor comes back as contiguous float32.
/// The layouts follow PyTorch's <c>torch/serialization.py</c>; see docs/interop.md.
/// </summary>
internal static class TorchFile
{
    /// <summary>The first pickle of a legacy <c>torch.save</c> stream.</summary>
    private static readonly BigInteger LegacyMagic = BigInteger.Parse("1950a86a20f9469cfc6c", System.Globalization.NumberStyles.HexNumber);
    private const long LegacyProtocolVersion = 1001;

    /// <summary>Reads the state_dict in <paramref name="path"/>; any problem is a <see cref="BadInputException"/> naming the file.</summary>
    public static StateDict Read(string path)
    {
        if (!File.Exists(path)) throw new BadInputException($"weights file not found: {path}");
        if (new FileInfo(path).Length > int.MaxValue) throw new BadInputException($"{path}: weights files over 2 GiB are not supported");
        var bytes = File.ReadAllBytes(path);
        try
        {
            if (bytes.AsSpan().StartsWith("PK\x03\x04"u8)) return ReadZip(bytes);
            if (bytes.Length > 2 && bytes[0] == 0x80) return ReadLegacy(bytes);
            if (bytes.Length > 262 && bytes.AsSpan(257, 5).SequenceEqual("ustar"u8))
                throw new BadInputException("the tar format of torch.save (PyTorch before 0.4) is not supported; re-save it with a current PyTorch");
            throw new BadInputException("not a PyTorch file (neither torch.save's zip format nor its legacy pickle stream)");
        }
        catch (PickleFormatException e) { throw new BadInputException($"{path} is not a readable PyTorch file: {e.Message}"); }
        catch (InvalidDataException e) { throw new BadInputException($"{path} is not a readable PyTorch file: {e.Message}"); }
        catch (BadInputException e) { throw new BadInputException($"{path}: {e.Message}"); }
    }

    private static StateDict ReadZip(byte[] bytes)
    {
        using var archive = new ZipArchive(new MemoryStream(bytes, writable: false), ZipArchiveMode.Read);
        var pickles = archive.Entries.Where(e => e.FullName.EndsWith("/data.pkl", StringComparison.Ordinal) && e.FullName.Count(c => c == '/') == 1).ToList();
        if (pickles.Count != 1) throw new BadInputException($"a torch.save zip has one PREFIX/data.pkl; this one has {pickles.Count}");
        var prefix = pickles[0].FullName[..^"data.pkl".Length];
        if (archive.GetEntry(prefix + "byteorder") is { } order && ReadText(order) != "little")
            throw new BadInputException("the tensors are stored big-endian; only little-endian files are supported");
        var rules = TorchStorage.Rules(pid =>
        {
            // ('storage', storage_type, key, location, numel)
            if (pid.Length < 5 || pid[0] as string != "storage") throw new PickleFormatException("a persistent id that is not a storage");
            var (typeName, dtype) = TorchStorage.StorageType(pid[1]);
            return new StorageRef((string)pid[2]!, typeName, dtype, (long)pid[4]!, 0);
        });
        var (root, _) = RestrictedUnpickler.Load(ReadAll(pickles[0]), 0, rules);
        var storages = new Dictionary<string, torch.Tensor>();
        try
        {
            return Materialise(root, storage =>
            {
                if (storages.TryGetValue(storage.Key, out var cached))
                    return cached.dtype == storage.DType && cached.numel() >= storage.Numel
                        ? cached : throw new BadInputException($"storage {storage.Key} is described two different ways");
                var entry = archive.GetEntry($"{prefix}data/{storage.Key}") ?? throw new BadInputException($"storage {storage.Key} is missing from the archive");
                var data = ReadAll(entry);
                var needed = storage.Numel * TorchStorage.ElementSize(storage.DType);
                if (data.Length < needed) throw new BadInputException($"storage {storage.Key} holds {data.Length} bytes; its tensors need {needed}");
                return storages[storage.Key] = TorchStorage.FromBytes(data, storage.DType);
            });
        }
        finally
        {
            foreach (var s in storages.Values) s.Dispose();
        }
    }

    private static StateDict ReadLegacy(byte[] bytes)
    {
        var plain = new PickleRules(g => $"refusing pickle global {g} in a legacy torch.save header", (_, _) => null, _ => throw new PickleFormatException("a persistent id in a header pickle"));
        var (magic, at) = RestrictedUnpickler.Load(bytes, 0, plain);
        if (!(magic is BigInteger m && m == LegacyMagic)) throw new BadInputException("not a PyTorch file (a pickle, but not torch.save's legacy format)");
        (var protocol, at) = RestrictedUnpickler.Load(bytes, at, plain);
        if (protocol is not LegacyProtocolVersion) throw new BadInputException($"legacy torch.save protocol {protocol} is not supported (expected {LegacyProtocolVersion})");
        (var sysInfo, at) = RestrictedUnpickler.Load(bytes, at, plain);
        if (sysInfo is PickleDict info && info.TryGetValue("little_endian", out var little) && little is false)
            throw new BadInputException("the tensors are stored big-endian; only little-endian files are supported");
        var roots = new Dictionary<string, (torch.ScalarType DType, long Numel)>();
        var rules = TorchStorage.Rules(pid =>
        {
            // ('storage', storage_type, root_key, location, numel, view_metadata (view_key, offset, size) or None)
            if (pid.Length < 6 || pid[0] as string != "storage") throw new PickleFormatException("a persistent id that is not a storage");
            var (typeName, dtype) = TorchStorage.StorageType(pid[1]);
            var key = (string)pid[2]!;
            var numel = (long)pid[4]!;
            if (roots.TryGetValue(key, out var seen) && seen != (dtype, numel)) throw new PickleFormatException($"storage {key} is described two different ways");
            roots[key] = (dtype, numel);
            if (pid[5] is not object?[] { Length: 3 } view) return new StorageRef(key, typeName, dtype, numel, 0);
            var (offset, size) = ((long)view[1]!, (long)view[2]!);
            if (offset < 0 || size < 0 || offset + size > numel) throw new PickleFormatException($"a view [{offset}, {offset + size}) of a storage of {numel} elements");
            return new StorageRef(key, typeName, dtype, size, offset);
        });
        (var root, at) = RestrictedUnpickler.Load(bytes, at, rules);
        (var keys, at) = RestrictedUnpickler.Load(bytes, at, plain);
        var storages = new Dictionary<string, torch.Tensor>();
        try
        {
            foreach (var key in keys as List<object?> ?? throw new PickleFormatException("the storage key list is not a list"))
                at = ReadLegacyStorage(bytes, at, key as string ?? throw new PickleFormatException("a storage key that is not a string"), roots, storages);
            return Materialise(root, s => storages.TryGetValue(s.Key, out var t) ? t : throw new BadInputException($"storage {s.Key} is not in the file"));
        }
        finally
        {
            foreach (var s in storages.Values) s.Dispose();
        }
    }

    private static int ReadLegacyStorage(byte[] bytes, int at, string key, Dictionary<string, (torch.ScalarType DType, long Numel)> roots, Dictionary<string, torch.Tensor> storages)
    {
        if (!roots.TryGetValue(key, out var root)) throw new BadInputException($"storage {key} is listed but no tensor uses it");
        if (storages.ContainsKey(key)) throw new BadInputException($"storage {key} is listed twice");
        if (bytes.Length - at < 8) throw new BadInputException($"the file ends before storage {key}");
        var numel = BinaryPrimitives.ReadInt64LittleEndian(bytes.AsSpan(at, 8));
        if (numel != root.Numel) throw new BadInputException($"storage {key} holds {numel} elements; the pickle says {root.Numel}");
        var length = numel * TorchStorage.ElementSize(root.DType);
        if (length < 0 || length > bytes.Length - at - 8) throw new BadInputException($"the file ends inside storage {key}");
        storages[key] = TorchStorage.FromBytes(bytes.AsSpan(at + 8, (int)length), root.DType);
        return at + 8 + (int)length;
    }

    private static StateDict Materialise(object? root, Func<StorageRef, torch.Tensor> storageOf)
    {
        if (root is not PickleDict entries) throw new BadInputException("the file holds no state_dict (a dict of tensors) at its top level");
        var result = new StateDict();
        try
        {
            foreach (var (name, value) in entries)
            {
                var key = name as string ?? throw new BadInputException($"a state_dict key is {name}, not a string");
                var record = value as TensorRecord ?? throw new BadInputException(
                    $"entry {key} is {(value is PickleDict ? "a nested dict" : value?.GetType().Name ?? "None")}, not a tensor (save model.state_dict() itself)");
                result.Add(key, TorchStorage.Materialise(key, record, storageOf));
                if (record.RequiresGrad) result.StoredWithGrad.Add(key);
            }
            return result;
        }
        catch
        {
            result.Dispose();
            throw;
        }
    }

    private static byte[] ReadAll(ZipArchiveEntry entry)
    {
        if (entry.Length > int.MaxValue) throw new BadInputException($"entry {entry.FullName} is over 2 GiB");
        using var stream = entry.Open();
        using var memory = new MemoryStream((int)entry.Length);
        stream.CopyTo(memory);
        return memory.ToArray();
    }

    private static string ReadText(ZipArchiveEntry entry) => System.Text.Encoding.ASCII.GetString(ReadAll(entry)).Trim();
}
