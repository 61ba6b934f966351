using System.Diagnostics;
using Iced.Intel;
using SmartOS.Kernel;
using SmartOS.Virt;
using static Iced.Intel.AssemblerRegisters;

namespace SmartOS.Benchmarks;

/// <summary>
/// What the PC platform (virt/Devices/PcPlatform.cs) costs: a counting loop of 200 M instructions
/// on the flat platform, on the PC platform with no timer, with the PIT at 1 kHz (slices end at
/// each tick) and with the APIC timer at its 200 us floor; and a guest that sleeps in hlt between
/// 1 kHz PIT ticks for 10 virtual seconds (host time per wake-up). Interpreter, virtual time.
/// </summary>
public static class PlatformBenchmarks
{
    private const long Loops = 100_000_000; // two instructions each

    public static void Run(TextWriter o)
    {
        Spin(o, "flat platform", VmPlatform.Flat, _ => { });
        Spin(o, "pc platform, no timer", VmPlatform.Pc, _ => { });
        Spin(o, "pc platform, PIT at 1 kHz", VmPlatform.Pc, a =>
        {
            Out(a, 0x43, 0x34);
            Out(a, 0x40, 1193 & 0xFF);
            Out(a, 0x40, 1193 >> 8);
        });
        Spin(o, "pc platform, APIC timer at 5 kHz", VmPlatform.Pc, a =>
        {
            a.mov(rdi, 0xFEE0_0000UL);
            a.mov(__dword_ptr[rdi + 0x3E0], 0xB);
            a.mov(__dword_ptr[rdi + 0x320], 0x20040);
            a.mov(__dword_ptr[rdi + 0x380], 1);      // held to the 200 us floor
        });
        Sleep(o);
    }

    private static void Out(Assembler a, byte port, byte value)
    {
        a.mov(al, value);
        a.@out(port, al);
    }

    private static byte[] Assemble(Action<Assembler> build)
    {
        var a = new Assembler(64);
        build(a);
        var w = new Bytes();
        a.Assemble(w, Boot.ImageBase);
        return w.Data.ToArray();
    }

    private sealed class Bytes : CodeWriter
    {
        public readonly List<byte> Data = new();
        public override void WriteByte(byte value) => Data.Add(value);
    }

    private static (double Seconds, Vm Vm) RunVm(byte[] image, VmPlatform platform, long timeLimit)
    {
        var scheduler = new Scheduler();
        var vm = new Vm(scheduler, new VmConfig { Image = image, Backend = VmBackend.Interpreter, Platform = platform, TimeLimit = timeLimit });
        var sw = Stopwatch.StartNew();
        vm.Start();
        if (vm.Vcpu != null) vm.Vcpu.Interrupts = null; // these guests take no interrupt through an IDT
        scheduler.RunUntil(() => vm.IsStopped, long.MaxValue);
        return (sw.Elapsed.TotalSeconds, vm);
    }

    private static void Spin(TextWriter o, string what, VmPlatform platform, Action<Assembler> setup)
    {
        var image = Assemble(a =>
        {
            setup(a);
            a.mov(rcx, (ulong)Loops);
            var loop = a.CreateLabel();
            a.Label(ref loop);
            a.dec(rcx);
            a.jnz(loop);
            a.mov(dx, Vm.PowerOffPort);
            a.@out(dx, al);
        });
        RunVm(image, platform, 0); // warm-up
        var (seconds, vm) = RunVm(image, platform, 0);
        var p = vm.Platform;
        string ticks = p == null ? "" : $", {p.Pit.Irq0Edges + p.Lapic.TimerExpiries} timer expiries";
        o.WriteLine($"platform {what}: {vm.InstructionsRetired / seconds / 1e6:F1} M instructions/s ({vm.StopReason}{ticks})");
    }

    private static void Sleep(TextWriter o)
    {
        var image = Assemble(a =>
        {
            foreach (var (port, value) in new (byte, byte)[] { (0x20, 0x11), (0x21, 0x20), (0x21, 0x04), (0x21, 0x01), (0x21, 0xFE), (0x43, 0x34), (0x40, 1193 & 0xFF), (0x40, 1193 >> 8) })
                Out(a, port, value);
            var loop = a.CreateLabel();
            a.Label(ref loop);
            a.sti();
            a.hlt();
            a.cli();
            Out(a, 0x20, 0x0C);
            a.@in(al, 0x20);
            Out(a, 0x20, 0x20);
            a.jmp(loop);
        });
        var (seconds, vm) = RunVm(image, VmPlatform.Pc, 10 * Time.Second);
        long wakes = vm.Platform!.Pit.Irq0Edges;
        o.WriteLine($"platform hlt between PIT ticks: {wakes} wake-ups in 10 virtual s, {seconds * 1e6 / wakes:F2} us host time each ({vm.StopReason})");
    }
}
