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

    /// <summary>
    /// The header format this version writes. 1: first release; 2: the divergence guard's window follows the RNG
    /// states; 3: the run's <see cref="TrainingIdentity"/> and the EMA's initial-weight share are in the header.
    /// Formats 1..3 are read; a newer one is refused rather than misread.
    /// </summary>
    public const int CurrentFormat = 3;

    /// <summary>
    /// The checkpoint a user means by <paramref name="path"/>: the file itself, or <see cref="Trainer.CheckpointName"/>
    /// inside a run folder.
    /// </summary>
    /// <exception cref="BadInputException">Neither exists.</exception>
    public static string Resolve(string path)
    {
        if (string.IsNullOrWhiteSpace(path)) throw new BadInputException("no checkpoint given");
        if (File.Exists(path)) return path;
        if (Directory.Exists(path))
        {
            var inside = Path.Combine(path, Trainer.CheckpointName);
            if (File.Exists(inside)) return inside;
            throw new BadInputException($"'{path}' is a folder without a {Trainer.CheckpointName} (give a checkpoint file or a run folder)");
        }
        throw new BadInputException($"checkpoint not found: {path}");
    }

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
    /// <exception cref="BadInputException">Missing, not a checkpoint, corrupt, or of an unknown format.</exception>
    public static (JsonObject Header, BinaryReader Sections) Read(string path)
    {
        path = Resolve(path);
        byte[] bytes;
        try { bytes = File.ReadAllBytes(path); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new BadInputException($"cannot read checkpoint {path}: {e.Message}");
        }
        if (bytes.Length < Magic.Length + 4 + HashLength || !bytes.AsSpan(0, Magic.Length).SequenceEqual(Magic))
            throw new BadInputException($"{path} is not a dfn checkpoint");
        var payload = bytes.AsSpan(0, bytes.Length - HashLength);
        if (!SHA256.HashData(payload).AsSpan().SequenceEqual(bytes.AsSpan(bytes.Length - HashLength)))
            throw new BadInputException($"checkpoint {path} is corrupt (checksum mismatch)");
        var reader = new BinaryReader(new MemoryStream(bytes, 0, bytes.Length - HashLength, writable: false), Encoding.UTF8);
        reader.ReadBytes(Magic.Length);
        var length = reader.ReadInt32();
        JsonObject header;
        try
        {
            if (length < 0 || length > reader.BaseStream.Length - reader.BaseStream.Position) throw new JsonException("header length out of range");
            header = JsonNode.Parse(reader.ReadBytes(length))?.AsObject() ?? throw new JsonException("empty header");
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException)
        {
            reader.Dispose();
            throw new BadInputException($"checkpoint {path} has an unreadable header ({e.Message})");
        }
        var format = header["format"] is JsonValue v && v.TryGetValue<int>(out var f) ? f : 0;
        if (format < 1 || format > CurrentFormat)
        {
            reader.Dispose();
            throw new BadInputException($"checkpoint {path} has format {header["format"]?.ToJsonString() ?? "(none)"}; this dfn reads formats 1 to {CurrentFormat} (a newer dfn wrote it?)");
        }
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
