using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace DiffusionFunctional.Training;

/// <summary>
/// The checkpoint container: magic, a JSON header, binary sections, and a SHA-256 of everything before it.
/// Writes are atomic: the bytes go to <c>PATH.tmp</c>, are flushed to disk, then renamed over <c>PATH</c>, so
/// the previous checkpoint stays intact until the new one is complete and a reader never sees half a file.
/// </summary>
public static class CheckpointFile
{
    private static readonly byte[] Magic = "DFNCKPT1"u8.ToArray();
    private const int HashLength = 32;

    /// <summary>Writes <paramref name="header"/> and the sections <paramref name="body"/> emits, atomically.</summary>
    public static void Write(string path, JsonObject header, Action<BinaryWriter> body)
    {
        using var memory = new MemoryStream();
        using (var writer = new BinaryWriter(memory, Encoding.UTF8, leaveOpen: true))
        {
            writer.Write(Magic);
            var json = Encoding.UTF8.GetBytes(header.ToJsonString());
            writer.Write(json.Length);
            writer.Write(json);
            body(writer);
        }
        var hash = SHA256.HashData(memory.GetBuffer().AsSpan(0, (int)memory.Length));
        AtomicFile.Write(path, temp =>
        {
            using var file = new FileStream(temp, FileMode.Create, FileAccess.Write, FileShare.None);
            file.Write(memory.GetBuffer(), 0, (int)memory.Length);
            file.Write(hash);
        });
    }

    /// <summary>Reads and verifies a checkpoint; returns its header and a reader positioned at the first section.</summary>
    public static (JsonObject Header, BinaryReader Sections) Read(string path)
    {
        if (!File.Exists(path)) throw new BadInputException($"checkpoint not found: {path}");
        var bytes = File.ReadAllBytes(path);
        if (bytes.Length < Magic.Length + 4 + HashLength || !bytes.AsSpan(0, Magic.Length).SequenceEqual(Magic))
            throw new BadInputException($"{path} is not a dfn checkpoint");
        var payload = bytes.AsSpan(0, bytes.Length - HashLength);
        if (!SHA256.HashData(payload).AsSpan().SequenceEqual(bytes.AsSpan(bytes.Length - HashLength)))
            throw new BadInputException($"checkpoint {path} is corrupt (checksum mismatch)");
        var reader = new BinaryReader(new MemoryStream(bytes, 0, bytes.Length - HashLength, writable: false), Encoding.UTF8);
        reader.ReadBytes(Magic.Length);
        var length = reader.ReadInt32();
        var header = JsonNode.Parse(reader.ReadBytes(length))?.AsObject()
            ?? throw new BadInputException($"checkpoint {path} has no header");
        return (header, reader);
    }

    /// <summary>True when <paramref name="path"/> is a complete checkpoint whose checksum matches.</summary>
    public static bool IsValid(string path)
    {
        try
        {
            var (_, reader) = Read(path);
            reader.Dispose();
            return true;
        }
        catch (Exception e) when (e is BadInputException or IOException or JsonException)
        {
            return false;
        }
    }

    /// <summary>Writes a length-prefixed byte array.</summary>
    public static void WriteBlob(BinaryWriter writer, byte[] data)
    {
        writer.Write(data.Length);
        writer.Write(data);
    }

    /// <summary>Reads what <see cref="WriteBlob"/> wrote.</summary>
    public static byte[] ReadBlob(BinaryReader reader) => reader.ReadBytes(reader.ReadInt32());
}
