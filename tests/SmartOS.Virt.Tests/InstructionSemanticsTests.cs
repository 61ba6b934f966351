using System.Globalization;
using Iced.Intel;
using SmartOS.Testing;

namespace SmartOS.Virt.Tests;

/// <summary>One instruction a line from Data/instruction-semantics.txt, as iced keeps its decoder
/// tests: iced must decode the bytes to the line's instruction, and the interpreter must take the
/// state before to the state after.</summary>
public class InstructionSemanticsTests
{
    private const ulong CodeAt = 0x10_0000;
    private const ulong StackTop = 0x30_0000;

    private static readonly string[] s_registers = ["rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi", "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15"];

    private static readonly (string Name, ulong Bit)[] s_flags = [("cf", 1UL << 0), ("pf", 1UL << 2), ("af", 1UL << 4), ("zf", 1UL << 6), ("sf", 1UL << 7), ("of", 1UL << 11)];

    private sealed class NoDevices : IVcpuExitHandler
    {
        public bool StopRequested => false;
        public bool HandleAccess(ref VcpuExit exit) => false;
    }

    private static IEnumerable<TestCaseData> Cases() => DataFile.Cases("instruction-semantics.txt", 4);

    [TestCaseSource(nameof(Cases))]
    public void Instruction_takes_the_state_before_to_the_state_after(DataCase c)
    {
        byte[] code = c[0].Split(' ', StringSplitOptions.RemoveEmptyEntries)
            .Select(h => byte.TryParse(h, NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out byte b) ? b : c.Fail<byte>($"'{h}' is not a hex byte"))
            .ToArray();
        Assert.That(Disassemble(code), Is.EqualTo(c[1]), $"{c.Where}: the bytes are not the instruction the line names");

        using var memory = new GuestMemory(4UL << 20);
        using var cpu = new Interpreter(memory, new NoDevices());
        memory.TryWrite(CodeAt, [.. code, 0xF4]);
        cpu.SetRegister(Reg.Rsp, StackTop);
        cpu.Rflags = 0x2;
        foreach (var (item, value) in Items(c, 2))
        {
            if (Register(item) is int r) cpu.SetRegister((Reg)r, value);
            else if (Memory(c, item) is (ulong address, int size)) memory.TryWrite(address, LittleEndian(value, size));
            else cpu.Rflags = value == 0 ? cpu.Rflags & ~Flag(c, item) : cpu.Rflags | Flag(c, item);
        }
        cpu.Rip = CodeAt;
        var exit = cpu.Run(10);

        using (Assert.EnterMultipleScope())
        {
            Assert.That(exit.Reason, Is.EqualTo(VcpuExitReason.Hlt), $"{c.Where}: {exit}");
            foreach (var (item, value) in Items(c, 3))
            {
                ulong got;
                if (Register(item) is int r) got = cpu.GetRegister((Reg)r);
                else if (Memory(c, item) is (ulong address, int size))
                {
                    var bytes = new byte[size];
                    memory.TryRead(address, bytes);
                    got = 0;
                    for (int i = size - 1; i >= 0; i--) got = got << 8 | bytes[i];
                }
                else got = (cpu.Rflags & Flag(c, item)) != 0 ? 1UL : 0UL;
                Assert.That(got, Is.EqualTo(value), $"{c.Where}: {item}");
            }
        }
    }

    /// <summary>The instruction in NASM syntax with 0x hex, as the data file writes it.</summary>
    private static string Disassemble(byte[] code)
    {
        var decoder = Decoder.Create(64, new ByteArrayCodeReader(code));
        decoder.IP = CodeAt;
        decoder.Decode(out var instruction);
        var formatter = new NasmFormatter();
        formatter.Options.HexPrefix = "0x";
        formatter.Options.HexSuffix = null;
        formatter.Options.UppercaseHex = false;
        formatter.Options.SpaceAfterOperandSeparator = true;
        var output = new StringOutput();
        formatter.Format(instruction, output);
        return instruction.Length == code.Length ? output.ToStringAndReset() : $"{output.ToStringAndReset()} (and {code.Length - instruction.Length} bytes more)";
    }

    /// <summary>The NAME=VALUE items of a state field.</summary>
    private static IEnumerable<(string Item, ulong Value)> Items(DataCase c, int field)
    {
        foreach (string word in c[field].Split(' ', StringSplitOptions.RemoveEmptyEntries))
        {
            int eq = word.IndexOf('=', StringComparison.Ordinal);
            if (eq <= 0) c.Fail<int>($"'{word}' is not NAME=VALUE");
            yield return (word[..eq], Number(c, word[(eq + 1)..]));
        }
    }

    private static ulong Number(DataCase c, string s)
    {
        bool hex = s.StartsWith("0x", StringComparison.Ordinal);
        return ulong.TryParse(hex ? s[2..] : s, hex ? NumberStyles.AllowHexSpecifier : NumberStyles.None, CultureInfo.InvariantCulture, out ulong v)
            ? v
            : c.Fail<ulong>($"'{s}' is not a number");
    }

    private static int? Register(string name)
    {
        int i = Array.IndexOf(s_registers, name);
        return i < 0 ? null : i;
    }

    /// <summary>mSIZE[ADDRESS]: the address and the size in bytes, or null for something else.</summary>
    private static (ulong Address, int Size)? Memory(DataCase c, string item)
    {
        if (!item.StartsWith('m') || !item.EndsWith(']')) return null;
        int open = item.IndexOf('[', StringComparison.Ordinal);
        int bits = open > 1 && int.TryParse(item[1..open], CultureInfo.InvariantCulture, out int b) ? b : 0;
        if (bits is not (8 or 16 or 32 or 64)) return c.Fail<(ulong, int)>($"'{item}': memory is m8, m16, m32 or m64[ADDRESS]");
        return (Number(c, item[(open + 1)..^1]), bits / 8);
    }

    private static ulong Flag(DataCase c, string name)
    {
        foreach (var (n, bit) in s_flags)
            if (n == name) return bit;
        return c.Fail<ulong>($"'{name}' is not a register, mSIZE[ADDRESS] or a flag (cf pf af zf sf of)");
    }

    private static byte[] LittleEndian(ulong value, int size)
    {
        var b = new byte[size];
        for (int i = 0; i < size; i++) b[i] = (byte)(value >> (8 * i));
        return b;
    }
}
