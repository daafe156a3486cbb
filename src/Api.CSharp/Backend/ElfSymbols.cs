using System.IO.MemoryMappedFiles;
using System.Text;

namespace DiffusionFunctional.Backend;

/// <summary>
/// Finds the value (the offset from the library's load address) of a named symbol in the static symbol table
/// (<c>.symtab</c>) of a 64-bit little-endian ELF shared library. libtorch's internal oneDNN functions are not exported,
/// but its <c>.symtab</c> is kept, and <see cref="OneDnnCacheRepair"/> needs one of them.
/// <para>
/// Written by hand: ELFSharp (served here) reads the same table but materialises all 533,000 symbols of
/// <c>libtorch_cpu.so</c> with their names first, 2.6 s and 415 MB of managed memory in a trial; this scan maps the
/// file and compares one name per symbol in place (about 0.1 s, no copies).
/// </para>
/// </summary>
public static class ElfSymbols
{
    private const int SymbolSize = 24;   // Elf64_Sym
    private const int SectionSize = 64;  // Elf64_Shdr
    private const uint SymbolTableType = 2; // SHT_SYMTAB

    /// <summary>The value of the first defined symbol named <paramref name="name"/>, or null when the file is not a
    /// 64-bit little-endian ELF, has no <c>.symtab</c>, or lacks the symbol.</summary>
    public static ulong? Find(string path, string name)
    {
        var wanted = Encoding.ASCII.GetBytes(name + "\0");
        using var file = MemoryMappedFile.CreateFromFile(path, FileMode.Open, null, 0, MemoryMappedFileAccess.Read);
        using var view = file.CreateViewAccessor(0, 0, MemoryMappedFileAccess.Read);
        if (!IsElf64LittleEndian(view)) return null;
        var sectionTable = view.ReadInt64(0x28);
        var sectionCount = view.ReadUInt16(0x3C);
        for (var i = 0; i < sectionCount; i++)
        {
            var header = sectionTable + (long)i * SectionSize;
            if (view.ReadUInt32(header + 4) != SymbolTableType) continue;
            var strings = sectionTable + (long)view.ReadUInt32(header + 40) * SectionSize; // sh_link: its string table
            var found = Scan(view, view.ReadInt64(header + 24), view.ReadInt64(header + 32), view.ReadInt64(strings + 24), wanted);
            if (found is not null) return found;
        }
        return null;
    }

    private static bool IsElf64LittleEndian(MemoryMappedViewAccessor view) =>
        view.Capacity > 0x40 && view.ReadUInt32(0) == 0x464C457F && view.ReadByte(4) == 2 && view.ReadByte(5) == 1;

    private static ulong? Scan(MemoryMappedViewAccessor view, long table, long tableSize, long strings, byte[] wanted)
    {
        var name = new byte[wanted.Length];
        for (long entry = table; entry + SymbolSize <= table + tableSize; entry += SymbolSize)
        {
            var section = view.ReadUInt16(entry + 6);
            if (section == 0) continue; // undefined here
            var nameAt = strings + view.ReadUInt32(entry);
            if (view.ReadByte(nameAt) != wanted[0]) continue;
            view.ReadArray(nameAt, name, 0, Math.Min(name.Length, (int)Math.Min(int.MaxValue, view.Capacity - nameAt)));
            if (name.AsSpan().SequenceEqual(wanted)) return view.ReadUInt64(entry + 8);
        }
        return null;
    }
}
