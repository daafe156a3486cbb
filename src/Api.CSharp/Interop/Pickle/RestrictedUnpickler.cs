using System.Buffers.Binary;
using System.Numerics;
using System.Text;

namespace DiffusionFunctional.Interop.Pickle;

/// <summary>A Python global a pickle names (<c>module.name</c>), e.g. <c>collections.OrderedDict</c>.</summary>
internal sealed record PickleGlobal(string Module, string Name)
{
    /// <summary>The dotted name, as Python prints it.</summary>
    public override string ToString() => $"{Module}.{Name}";
}

/// <summary>A Python dict (or OrderedDict) read from a pickle, in insertion order.</summary>
public sealed class PickleDict : Dictionary<object, object?>;

/// <summary>
/// The callbacks that give a restricted pickle its meaning: which globals may appear, what calling one returns
/// (REDUCE), and what a persistent id stands for (PyTorch keeps tensor bytes outside the pickle).
/// </summary>
internal sealed record PickleRules(
    Func<PickleGlobal, string?> RefuseGlobal,
    Func<PickleGlobal, object?[], object?> Call,
    Func<object?, object?> PersistentLoad);

/// <summary>
/// Reads one pickle (protocols 0-5, the opcodes that data and PyTorch state_dicts use) WITHOUT executing code: no
/// Python runs, and a global is accepted only when <see cref="PickleRules.RefuseGlobal"/> lets it through (the refusal
/// names it, at the opcode that names it, before anything could be called). The opcodes that build arbitrary objects
/// (INST, OBJ, NEWOBJ, NEWOBJ_EX, the extension registry) are refused outright; BUILD is accepted only on a dict.
/// Hand-written: Razorvine.Pickle (the unpickler TorchSharp.PyBridge uses) resolves globals through one process-wide
/// registry and turns unknown ones into generic objects instead of refusing them, and no served .NET library offers
/// an allow-list. Rules: docs/interop.md, "Reading pickles safely".
/// </summary>
internal sealed class RestrictedUnpickler
{
    private readonly byte[] data;
    private readonly PickleRules rules;
    private readonly List<object?> stack = [];
    private readonly Stack<int> marks = new();
    private readonly Dictionary<long, object?> memo = [];
    private int position;

    private RestrictedUnpickler(byte[] data, int start, PickleRules rules)
    {
        this.data = data;
        position = start;
        this.rules = rules;
    }

    /// <summary>Reads the pickle that starts at <paramref name="start"/>; returns its value and the offset just after STOP.</summary>
    public static (object? Value, int End) Load(byte[] data, int start, PickleRules rules)
    {
        var reader = new RestrictedUnpickler(data, start, rules);
        var value = reader.Run();
        return (value, reader.position);
    }

    private object? Run()
    {
        while (true)
        {
            var at = position;
            var op = ReadByte();
            if (op == (byte)'.') return stack.Count == 1 && marks.Count == 0 ? stack[0] : throw Malformed("STOP with an unbalanced stack");
            try { Dispatch(op); }
            catch (PickleFormatException) { throw; }
            catch (BadInputException) { throw; }
            catch (Exception e) when (e is InvalidCastException or ArgumentOutOfRangeException or KeyNotFoundException or ArgumentException or InvalidOperationException or OverflowException)
            {
                throw new PickleFormatException($"malformed pickle at byte {at} (opcode 0x{op:x2}): {e.Message}");
            }
        }
    }

    private void Dispatch(byte op)
    {
        switch (op)
        {
            case 0x80: ReadByte(); break;                                  // PROTO
            case 0x95: Take(8); break;                                     // FRAME (length only)
            case (byte)'(': marks.Push(stack.Count); break;                // MARK
            case (byte)'0': Pop(); break;                                  // POP
            case (byte)'1': PopMark(); break;                              // POP_MARK
            case (byte)'2': Push(stack[^1]); break;                        // DUP
            case (byte)'N': Push(null); break;                             // NONE
            case 0x88: Push(true); break;                                  // NEWTRUE
            case 0x89: Push(false); break;                                 // NEWFALSE
            case (byte)'J': Push((long)BinaryPrimitives.ReadInt32LittleEndian(Take(4))); break;  // BININT
            case (byte)'K': Push((long)ReadByte()); break;                 // BININT1
            case (byte)'M': Push((long)BinaryPrimitives.ReadUInt16LittleEndian(Take(2))); break; // BININT2
            case 0x8a: Push(ReadLong(ReadByte())); break;                  // LONG1
            case 0x8b: Push(ReadLong(ReadLength(4))); break;               // LONG4
            case (byte)'G': Push(BinaryPrimitives.ReadDoubleBigEndian(Take(8))); break;         // BINFLOAT
            case (byte)'X': Push(Encoding.UTF8.GetString(Take(ReadLength(4)))); break;         // BINUNICODE
            case 0x8c: Push(Encoding.UTF8.GetString(Take(ReadByte()))); break;                 // SHORT_BINUNICODE
            case 0x8d: Push(Encoding.UTF8.GetString(Take(ReadLength(8)))); break;              // BINUNICODE8
            case (byte)'T': Push(Encoding.Latin1.GetString(Take(ReadLength(4)))); break;       // BINSTRING (Python 2 str)
            case (byte)'U': Push(Encoding.Latin1.GetString(Take(ReadByte()))); break;          // SHORT_BINSTRING
            case (byte)'B': Push(Take(ReadLength(4)).ToArray()); break;                        // BINBYTES
            case (byte)'C': Push(Take(ReadByte()).ToArray()); break;                           // SHORT_BINBYTES
            case 0x8e: Push(Take(ReadLength(8)).ToArray()); break;                             // BINBYTES8
            case (byte)')': Push(Array.Empty<object?>()); break;           // EMPTY_TUPLE
            case 0x85: Push(PopMany(1)); break;                            // TUPLE1
            case 0x86: Push(PopMany(2)); break;                            // TUPLE2
            case 0x87: Push(PopMany(3)); break;                            // TUPLE3
            case (byte)'t': Push(PopMark().ToArray()); break;              // TUPLE
            case (byte)']': Push(new List<object?>()); break;              // EMPTY_LIST
            case (byte)'l': Push(PopMark()); break;                        // LIST
            case (byte)'a': Append(Pop(), stack[^1]); break;               // APPEND
            case (byte)'e': AppendAll(); break;                            // APPENDS
            case (byte)'}': Push(new PickleDict()); break;                 // EMPTY_DICT
            case (byte)'d': Push(ToDict(PopMark(), new PickleDict())); break; // DICT
            case (byte)'s': SetItem(); break;                              // SETITEM
            case (byte)'u': var items = PopMark(); ToDict(items, AsDict(stack[^1])); break; // SETITEMS
            case (byte)'q': memo[ReadByte()] = stack[^1]; break;           // BINPUT
            case (byte)'r': memo[BinaryPrimitives.ReadUInt32LittleEndian(Take(4))] = stack[^1]; break; // LONG_BINPUT
            case 0x94: memo[memo.Count] = stack[^1]; break;                // MEMOIZE
            case (byte)'h': Push(memo[ReadByte()]); break;                 // BINGET
            case (byte)'j': Push(memo[BinaryPrimitives.ReadUInt32LittleEndian(Take(4))]); break; // LONG_BINGET
            case (byte)'c': Push(CheckGlobal(new PickleGlobal(ReadLine(), ReadLine()))); break; // GLOBAL
            case 0x93: var name = PopString(); Push(CheckGlobal(new PickleGlobal(PopString(), name))); break; // STACK_GLOBAL
            case (byte)'R': Reduce(); break;                               // REDUCE
            case (byte)'b': Build(); break;                                // BUILD
            case (byte)'Q': Push(rules.PersistentLoad(Pop())); break;      // BINPERSID
            case (byte)'i' or (byte)'o' or 0x81 or 0x92 or 0x82 or 0x83 or 0x84:
                throw new BadInputException($"refusing pickle opcode 0x{op:x2} (it builds arbitrary Python objects); a state_dict never needs it");
            default:
                throw new PickleFormatException($"unsupported pickle opcode 0x{op:x2} at byte {position - 1}");
        }
    }

    private PickleGlobal CheckGlobal(PickleGlobal global)
    {
        var refusal = rules.RefuseGlobal(global);
        return refusal is null ? global : throw new BadInputException(refusal);
    }

    private void Reduce()
    {
        var args = Pop() as object?[] ?? throw Malformed("REDUCE arguments are not a tuple");
        var callee = Pop() as PickleGlobal ?? throw Malformed("REDUCE of something that is not a global");
        Push(rules.Call(callee, args));
    }

    private void Build()
    {
        // OrderedDict's state is its __dict__ (PyTorch puts the state_dict's _metadata there): read, not applied.
        Pop();
        if (stack[^1] is not PickleDict) throw new BadInputException($"refusing pickle BUILD on {Describe(stack[^1])} (only a dict's state is accepted)");
    }

    private void SetItem()
    {
        var value = Pop();
        var key = Pop();
        AsDict(stack[^1])[key ?? throw Malformed("a dict key is None")] = value;
    }

    private void AppendAll()
    {
        var items = PopMark();
        foreach (var item in items) Append(item, stack[^1]);
    }

    private static void Append(object? item, object? target)
    {
        if (target is not List<object?> list) throw new PickleFormatException($"APPEND to {Describe(target)}");
        list.Add(item);
    }

    private static PickleDict ToDict(List<object?> items, PickleDict dict)
    {
        if (items.Count % 2 != 0) throw new PickleFormatException("a dict with an odd number of keys and values");
        for (var i = 0; i < items.Count; i += 2) dict[items[i] ?? throw new PickleFormatException("a dict key is None")] = items[i + 1];
        return dict;
    }

    private static PickleDict AsDict(object? value) => value as PickleDict ?? throw new PickleFormatException($"SETITEM on {Describe(value)}");

    private static string Describe(object? value) => value switch
    {
        null => "None",
        PickleGlobal g => g.ToString(),
        _ => value.GetType().Name,
    };

    private void Push(object? value) => stack.Add(value);

    private object? Pop()
    {
        if (stack.Count == 0 || (marks.Count > 0 && marks.Peek() == stack.Count)) throw Malformed("pop from an empty stack");
        var value = stack[^1];
        stack.RemoveAt(stack.Count - 1);
        return value;
    }

    private string PopString() => Pop() as string ?? throw Malformed("STACK_GLOBAL names that are not strings");

    private object?[] PopMany(int count)
    {
        var values = new object?[count];
        for (var i = count - 1; i >= 0; i--) values[i] = Pop();
        return values;
    }

    private List<object?> PopMark()
    {
        if (marks.Count == 0) throw Malformed("no MARK on the stack");
        var start = marks.Pop();
        var items = stack.GetRange(start, stack.Count - start);
        stack.RemoveRange(start, stack.Count - start);
        return items;
    }

    private byte ReadByte() => position < data.Length ? data[position++] : throw Malformed("the pickle ends before STOP");

    private ReadOnlySpan<byte> Take(int count)
    {
        if (count < 0 || count > data.Length - position) throw Malformed($"a {count}-byte field runs past the end of the pickle");
        var span = data.AsSpan(position, count);
        position += count;
        return span;
    }

    private int ReadLength(int width)
    {
        var raw = width == 4 ? BinaryPrimitives.ReadUInt32LittleEndian(Take(4)) : BinaryPrimitives.ReadUInt64LittleEndian(Take(8));
        return raw <= (ulong)(data.Length - position) ? (int)raw : throw Malformed($"a {raw}-byte field runs past the end of the pickle");
    }

    private object ReadLong(int length)
    {
        var value = new BigInteger(Take(length), isUnsigned: false, isBigEndian: false);
        return value >= long.MinValue && value <= long.MaxValue ? (long)value : value;
    }

    private string ReadLine()
    {
        var end = Array.IndexOf(data, (byte)'\n', position);
        if (end < 0) throw Malformed("a GLOBAL name without its newline");
        var text = Encoding.UTF8.GetString(data, position, end - position);
        position = end + 1;
        return text;
    }

    private PickleFormatException Malformed(string what) => new($"malformed pickle at byte {position}: {what}");
}

/// <summary>The bytes are not a well-formed pickle (as opposed to a well-formed one we refuse).</summary>
public sealed class PickleFormatException(string message) : Exception(message);
