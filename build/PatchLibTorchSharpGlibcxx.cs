// Compiled by MSBuild's RoslynCodeTaskFactory (see TorchSharpNativeFix.targets for the why).
using System;
using System.IO;
using System.Text;
using Microsoft.Build.Framework;
using Microsoft.Build.Utilities;

public class PatchLibTorchSharpGlibcxx : Task
{
    const string Wanted = "GLIBCXX_3.4.32";
    const string Available = "GLIBCXX_3.4.30";
    const uint ShtGnuVerneed = 0x6ffffffe;

    [Required] public string Directory { get; set; } = "";

    public override bool Execute()
    {
        if (!System.IO.Directory.Exists(Directory)) return true;
        var copies = System.IO.Directory.GetFiles(Directory, "libLibTorchSharp.so", SearchOption.AllDirectories);
        if (copies.Length == 0) return true;
        if (HostHasVersion(Wanted))
        {
            Log.LogMessage(MessageImportance.Low, "host libstdc++ provides " + Wanted + ": libLibTorchSharp.so left as shipped");
            return true;
        }
        foreach (var path in copies)
        {
            try
            {
                var outcome = PatchFile(path);
                Log.LogMessage(MessageImportance.Normal, "libLibTorchSharp.so (" + path + "): " + outcome);
            }
            catch (Exception e)
            {
                Log.LogWarning("could not adapt " + path + " to this host's libstdc++: " + e.Message);
            }
        }
        return true;
    }

    static bool HostHasVersion(string version)
    {
        string[] candidates =
        {
            "/usr/lib/x86_64-linux-gnu/libstdc++.so.6", "/lib/x86_64-linux-gnu/libstdc++.so.6",
            "/usr/lib/aarch64-linux-gnu/libstdc++.so.6", "/usr/lib64/libstdc++.so.6", "/usr/lib/libstdc++.so.6",
        };
        foreach (var c in candidates)
        {
            if (!File.Exists(c)) continue;
            var bytes = File.ReadAllBytes(c);
            return IndexOf(bytes, Encoding.ASCII.GetBytes(version + "\0"), 0) >= 0;
        }
        return true; // no libstdc++ we know of: do not touch anything
    }

    static string PatchFile(string path)
    {
        var elf = File.ReadAllBytes(path);
        if (elf.Length < 64 || elf[0] != 0x7f || elf[1] != 'E' || elf[2] != 'L' || elf[3] != 'F' || elf[4] != 2 || elf[5] != 1)
            return "not a little-endian ELF64 file, skipped";
        ulong shoff = BitConverter.ToUInt64(elf, 0x28);
        int shentsize = BitConverter.ToUInt16(elf, 0x3A);
        int shnum = BitConverter.ToUInt16(elf, 0x3C);
        bool changed = false;
        for (int i = 0; i < shnum; i++)
        {
            int sh = checked((int)shoff + i * shentsize);
            if (BitConverter.ToUInt32(elf, sh + 4) != ShtGnuVerneed) continue;
            long verneedOffset = (long)BitConverter.ToUInt64(elf, sh + 0x18);
            int link = (int)BitConverter.ToUInt32(elf, sh + 0x28);
            int count = (int)BitConverter.ToUInt32(elf, sh + 0x2C);
            long dynstr = (long)BitConverter.ToUInt64(elf, checked((int)shoff + link * shentsize) + 0x18);
            long vn = verneedOffset;
            for (int n = 0; n < count; n++)
            {
                int auxCount = BitConverter.ToUInt16(elf, (int)vn + 2);
                long aux = vn + BitConverter.ToUInt32(elf, (int)vn + 8);
                for (int a = 0; a < auxCount; a++)
                {
                    long name = dynstr + BitConverter.ToUInt32(elf, (int)aux + 8);
                    if (ReadCString(elf, name) == Wanted)
                    {
                        Encoding.ASCII.GetBytes(Available).CopyTo(elf, name);
                        BitConverter.GetBytes(ElfHash(Available)).CopyTo(elf, (int)aux);
                        changed = true;
                    }
                    aux += BitConverter.ToUInt32(elf, (int)aux + 12);
                }
                vn += BitConverter.ToUInt32(elf, (int)vn + 12);
            }
        }
        if (!changed) return "no " + Wanted + " requirement, unchanged";
        // Write beside and rename: the output copy may be a hard link into the NuGet cache.
        var temp = path + ".patching";
        File.WriteAllBytes(temp, elf);
        File.Delete(path);
        File.Move(temp, path);
        return Wanted + " requirement renamed to " + Available;
    }

    static string ReadCString(byte[] bytes, long at)
    {
        int end = (int)at;
        while (end < bytes.Length && bytes[end] != 0) end++;
        return Encoding.ASCII.GetString(bytes, (int)at, end - (int)at);
    }

    static uint ElfHash(string name)
    {
        uint h = 0;
        foreach (char c in name)
        {
            h = (h << 4) + c;
            uint g = h & 0xf0000000;
            if (g != 0) h ^= g >> 24;
            h &= ~g;
        }
        return h;
    }

    static int IndexOf(byte[] haystack, byte[] needle, int from)
    {
        for (int i = from; i <= haystack.Length - needle.Length; i++)
        {
            int j = 0;
            while (j < needle.Length && haystack[i + j] == needle[j]) j++;
            if (j == needle.Length) return i;
        }
        return -1;
    }
}
