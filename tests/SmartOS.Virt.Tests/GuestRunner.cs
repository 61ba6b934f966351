using Iced.Intel;
using SmartOS.Kernel;

namespace SmartOS.Virt.Tests;

/// <summary>Assembles test guests with Iced's Assembler and runs them to their stop in virtual time.</summary>
internal static class GuestRunner
{
    private sealed class BytesWriter : CodeWriter
    {
        public readonly List<byte> Bytes = new();
        public override void WriteByte(byte value) => Bytes.Add(value);
    }

    public static byte[] Assemble(Action<Assembler> build, ulong at = Boot.ImageBase)
    {
        var a = new Assembler(64);
        build(a);
        var w = new BytesWriter();
        a.Assemble(w, at);
        return w.Bytes.ToArray();
    }

    public static Vm Run(byte[] image, long instructionLimit = 10_000_000, long timeLimit = 0, ulong memory = 4UL << 20, Scheduler? scheduler = null)
    {
        scheduler ??= new Scheduler();
        var vm = new Vm(scheduler, new VmConfig
        {
            Image = image,
            MemorySize = memory,
            Backend = VmBackend.Interpreter,
            InstructionLimit = instructionLimit,
            TimeLimit = timeLimit,
        });
        vm.Start();
        scheduler.RunUntil(() => vm.IsStopped, scheduler.Now + 100 * Time.Second);
        return vm;
    }

    public static Vm Run(Action<Assembler> build, long instructionLimit = 10_000_000, long timeLimit = 0, ulong memory = 4UL << 20)
        => Run(Assemble(build), instructionLimit, timeLimit, memory);

    /// <summary>Writes a string to COM1 one byte at a time.</summary>
    public static void Print(Assembler a, string text)
    {
        a.mov(AssemblerRegisters.dx, Devices.Uart16550.Com1);
        foreach (char c in text)
        {
            a.mov(AssemblerRegisters.al, (byte)c);
            a.@out(AssemblerRegisters.dx, AssemblerRegisters.al);
        }
    }
}
