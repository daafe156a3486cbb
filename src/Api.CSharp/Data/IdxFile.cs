using DiffusionFunctional.Backend;
using System.IO.Compression;
using TorchSharp;
using static TorchSharp.torch;

namespace DiffusionFunctional.Data;

/// <summary>LeCun's IDX image files (<c>train-images-idx3-ubyte</c>, optionally gzipped): unsigned bytes, [N, rows, cols].</summary>
public static class IdxFile
{
    /// <summary>The number of images an IDX3 file's header declares (reads only the header).</summary>
    /// <exception cref="BadInputException">A missing file, or one without an IDX3 header.</exception>
    public static int CountImages(string path)
    {
        if (!File.Exists(path)) throw new BadInputException($"IDX file not found: {path}");
        using var file = File.OpenRead(path);
        var gz = file.ReadByte() == 0x1f && file.ReadByte() == 0x8b;
        file.Position = 0;
        using Stream stream = gz ? new GZipStream(file, CompressionMode.Decompress) : file;
        var header = new byte[8];
        try { stream.ReadExactly(header); }
        catch (Exception e) when (e is EndOfStreamException or InvalidDataException) { throw new BadInputException($"{path} is not an IDX file (no complete header)"); }
        if (header[0] != 0 || header[1] != 0 || header[2] != 0x08 || header[3] != 3)
            throw new BadInputException($"{path} is not an IDX image file of unsigned bytes with 3 dimensions");
        return (header[4] << 24) | (header[5] << 16) | (header[6] << 8) | header[7];
    }

    /// <summary>Reads an IDX3 ubyte file (plain or .gz, detected by content) as [N,1,rows,cols] in [0, 1].</summary>
    public static Tensor ReadImages(string path)
    {
        if (!File.Exists(path)) throw new BadInputException($"IDX file not found: {path}");
        byte[] bytes;
        using (var file = File.OpenRead(path))
        {
            var gz = file.ReadByte() == 0x1f && file.ReadByte() == 0x8b;
            file.Position = 0;
            using Stream stream = gz ? new GZipStream(file, CompressionMode.Decompress) : file;
            using var memory = new MemoryStream();
            try { stream.CopyTo(memory); }
            catch (InvalidDataException e) { throw new BadInputException($"{path} is not a readable gzip file: {e.Message}"); }
            bytes = memory.ToArray();
        }
        if (bytes.Length < 16 || bytes[0] != 0 || bytes[1] != 0)
            throw new BadInputException($"{path} is not an IDX file (bad magic number)");
        if (bytes[2] != 0x08 || bytes[3] != 3)
            throw new BadInputException($"{path} is not an IDX image file of unsigned bytes with 3 dimensions (type 0x{bytes[2]:x2}, {bytes[3]} dimensions)");
        int Dim(int i) => (bytes[4 + 4 * i] << 24) | (bytes[5 + 4 * i] << 16) | (bytes[6 + 4 * i] << 8) | bytes[7 + 4 * i];
        var (n, rows, cols) = (Dim(0), Dim(1), Dim(2));
        if (n < 0 || rows <= 0 || cols <= 0 || 16L + (long)n * rows * cols > bytes.Length)
            throw new BadInputException($"{path} is truncated: header says {n} images of {rows}x{cols}, file has {bytes.Length} bytes");
        using var raw = tensor(bytes.AsSpan(16, n * rows * cols).ToArray(), dtype: uint8);
        using var asFloat = raw.to_type(float32);
        using var unit = asFloat.Over(255f);
        return unit.reshape(n, 1, rows, cols);
    }
}
