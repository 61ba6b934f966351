using Iced.Intel;
using SmartOS.Kernel;
using SmartOS.Kernel.Trace;
using static Iced.Intel.AssemblerRegisters;

namespace SmartOS.Virt.Tests;

/// <summary>
/// The vmm provider (VmProbes.cs) on guests assembled here: each exit, exception, interrupt and stop
/// fires its probe once, in the guest's order, with the arguments the guest's own registers and
/// devices confirm.
/// </summary>
public class VmProbeTests
{
    private const ulong IdtBase = 0x8_0000, Idtr = 0x8_1000;

    /// <summary>One firing: the probe's name, arg1..arg5 as integers or strings, its zone and thread.</summary>
    private sealed record Firing(string Name, object A1, object A2, object A3, object A4, object A5, string? Zone, object? Thread)
    {
        public override string ToString() => $"{Name} {A1} {A2} {A3} {A4} {A5}";
    }

    private sealed class Recorder : IProbeConsumer
    {
        public readonly List<Firing> Seen = [];

        public void Fired(Probe probe, in ProbeArgs args)
        {
            static object V(ProbeArg a) => a.Str ?? (object)a.Int;
            Assert.That(args.A0.Str, Is.EqualTo("guest"), "arg0 names the VM");
            Seen.Add(new Firing(probe.Name, V(args.A1), V(args.A2), V(args.A3), V(args.A4), V(args.A5), args.Zone, args.Thread));
        }
    }

    private static (Vm Vm, Recorder Seen) Run(Action<Assembler> build, VmPlatform platform = VmPlatform.Flat, long timeLimit = 0)
    {
        var scheduler = new Scheduler();
        var vm = new Vm(scheduler, new VmConfig
        {
            Name = "guest",
            Image = GuestRunner.Assemble(build),
            MemorySize = 4UL << 20,
            Backend = VmBackend.Interpreter,
            InstructionLimit = 10_000_000,
            Platform = platform,
            TimeLimit = timeLimit,
        });
        var registry = new ProbeRegistry();
        vm.UseProbes(registry, "zone-a");
        var recorder = new Recorder();
        foreach (var p in registry.All) if (p.Provider == "vmm") p.Attach(recorder);
        vm.Start();
        scheduler.RunUntil(() => vm.IsStopped, scheduler.Now + 100 * Time.Second);
        return (vm, recorder);
    }

    /// <summary>An interrupt gate for vector to handler (selector 0x08, DPL 0) in an IDT at IdtBase, loaded.</summary>
    private static void InstallGate(Assembler a, int vector, Label handler)
    {
        a.lea(rax, __[handler]);
        a.mov(rbx, rax);
        a.and(rbx, 0xFFFF);
        a.mov(rcx, rax);
        a.shr(rcx, 16);
        a.shl(rcx, 48);
        a.or(rbx, rcx);
        a.mov(rcx, 0x0000_8E00_0008_0000UL);
        a.or(rbx, rcx);
        a.mov(rdi, IdtBase + (ulong)vector * 16);
        a.mov(__qword_ptr[rdi], rbx);
        a.shr(rax, 32);
        a.mov(__qword_ptr[rdi + 8], rax);
        a.mov(rdi, Idtr);
        a.mov(__word_ptr[rdi], 0xFFF);
        a.mov(rax, IdtBase);
        a.mov(__qword_ptr[rdi + 2], rax);
        a.lidt(__[rdi]);
    }

    [Test]
    public void Port_io_cpuid_and_msr_exits_then_a_hlt_that_halts_fire_in_the_guests_order()
    {
        var (vm, seen) = Run(a =>
        {
            var atCpuid = a.CreateLabel();
            var atRdmsr = a.CreateLabel();
            var atWrmsr = a.CreateLabel();
            a.lea(r15, __[atCpuid]);
            a.lea(r14, __[atRdmsr]);
            a.lea(r11, __[atWrmsr]);
            GuestRunner.Print(a, "hi");
            a.mov(dx, (ushort)(Devices.Uart16550.Com1 + 5));
            a.@in(al, dx);
            a.movzx(r12d, al);                     // the line status register, as the guest saw it
            a.xor(eax, eax);
            a.xor(ecx, ecx);
            a.Label(ref atCpuid);
            a.cpuid();
            a.mov(r13d, eax);                      // CPUID's highest leaf
            a.mov(ecx, 0xC000_0080);               // IA32_EFER
            a.Label(ref atRdmsr);
            a.rdmsr();
            a.Label(ref atWrmsr);
            a.wrmsr();
            a.hlt();
        });
        using var _ = vm;
        var cpu = vm.Vcpu!;
        ulong lsr = cpu.GetRegister(Reg.R12), maxLeaf = cpu.GetRegister(Reg.R13);
        ulong efer = 0x500;                        // LME | LMA, as Boot leaves it
        Assert.That(seen.Seen.Select(f => f.ToString()), Is.EqualTo(new[]
        {
            "exit-io 1016 1 104 1 0",
            "exit-io 1016 1 105 1 0",
            $"exit-io 1021 1 {lsr} 0 0",
            $"exit-cpuid {cpu.GetRegister(Reg.R15)} 0 0 {maxLeaf} 0",
            $"exit-rdmsr {cpu.GetRegister(Reg.R14)} {0xC000_0080L} {efer} 0 0",
            $"exit-wrmsr {cpu.GetRegister(Reg.R11)} {0xC000_0080L} {efer} 0 0",
            $"exit-hlt {cpu.Rip - 1} 0 0 0 0",
            $"stop halted {vm.StopDetail} 0 0 0",
        }));
        Assert.That(seen.Seen.All(f => f.Zone == "zone-a" && f.Thread == vm), Is.True, "each firing names the VM's zone and is the VM's thread");
        Assert.That(vm.ConsoleOutput, Is.EqualTo("hi"));
    }

    [Test]
    public void A_load_no_device_answers_fires_exit_mmio_then_the_fault_stop()
    {
        var (vm, seen) = Run(a =>
        {
            a.mov(rax, Vm.VirtioMmioBase + 0x10);
            a.mov(ebx, __dword_ptr[rax]);
            a.hlt();
        });
        using var _ = vm;
        Assert.That(vm.StopReason, Is.EqualTo(VmStopReason.Fault));
        Assert.That(seen.Seen.Select(f => f.ToString()), Is.EqualTo(new[]
        {
            $"exit-mmio {(long)(Vm.VirtioMmioBase + 0x10)} 4 0 0 0",
            $"stop fault {vm.StopDetail} 0 0 0",
        }));
    }

    [Test]
    public void An_mmio_read_of_the_io_apic_fires_with_the_value_the_guest_got()
    {
        var (vm, seen) = Run(a =>
        {
            a.mov(rax, 0xFEC0_0000UL);
            a.mov(__dword_ptr[rax], 1);            // IOREGSEL: the version register
            a.mov(ebx, __dword_ptr[rax + 0x10]);   // IOWIN
            a.cli();
            a.hlt();
        }, VmPlatform.Pc);
        using var _ = vm;
        ulong version = vm.Vcpu!.GetRegister(Reg.Rbx);
        Assert.That(version, Is.Not.Zero);
        var mmio = seen.Seen.Where(f => f.Name == "exit-mmio").Select(f => f.ToString());
        Assert.That(mmio, Is.EqualTo(new[] { $"exit-mmio {0xFEC0_0000L} 4 1 1 0", $"exit-mmio {0xFEC0_0010L} 4 {version} 0 0" }));
    }

    [Test]
    public void An_int3_through_the_guests_idt_fires_exception_with_vector_3_and_no_error_code()
    {
        var (vm, seen) = Run(a =>
        {
            var handler = a.CreateLabel();
            var after = a.CreateLabel();
            InstallGate(a, 3, handler);
            a.int3();
            a.Label(ref after);
            a.hlt();
            a.Label(ref handler);
            a.mov(r14, __qword_ptr[rsp]);          // the return address the CPU pushed
            a.iretq();
        });
        using var _ = vm;
        Assert.That(vm.StopReason, Is.EqualTo(VmStopReason.Halted));
        var exceptions = seen.Seen.Where(f => f.Name == "exception").Select(f => f.ToString());
        Assert.That(exceptions, Is.EqualTo(new[] { $"exception {vm.Vcpu!.GetRegister(Reg.R14)} 3 -1 0 0" }));
    }

    [Test]
    public void Pit_interrupts_taken_through_the_8259_fire_interrupt_with_their_vector()
    {
        var (vm, seen) = Run(a =>
        {
            var handler = a.CreateLabel();
            var wait = a.CreateLabel();
            InstallGate(a, 0x20, handler);
            foreach (var (port, value) in new (byte, byte)[] { (0x20, 0x11), (0x21, 0x20), (0x21, 0x04), (0x21, 0x01), (0x21, 0xFE), (0x43, 0x34), (0x40, 1193 & 0xFF), (0x40, 1193 >> 8) })
            {
                a.mov(al, value);
                a.@out(port, al);
            }
            a.xor(ebx, ebx);
            a.Label(ref wait);
            a.sti();
            a.hlt();
            a.cmp(rbx, 3);
            a.jb(wait);
            a.cli();
            a.hlt();
            a.Label(ref handler);
            a.inc(rbx);
            a.mov(al, 0x20);
            a.@out(0x20, al);                      // EOI
            a.iretq();
        }, VmPlatform.Pc, timeLimit: Time.Second);
        using var _ = vm;
        Assert.That(vm.StopReason, Is.EqualTo(VmStopReason.Halted), vm.StopDetail);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(seen.Seen.Where(f => f.Name == "interrupt").Select(f => f.A1), Is.EqualTo(new object[] { 0x20L, 0x20L, 0x20L }));
            // The guest waited in hlt with interrupts on; its last hlt, with them off, halted it.
            var hlts = seen.Seen.Where(f => f.Name == "exit-hlt").ToList();
            Assert.That(hlts[..^1].Select(f => f.A2), Is.Not.Empty.And.All.EqualTo(1L));
            Assert.That(hlts[^1].A2, Is.EqualTo(0L));
            Assert.That(seen.Seen[^1].ToString(), Does.StartWith("stop halted"));
        }
    }

    [Test]
    public void A_fault_with_no_idt_to_take_it_stops_the_vm_as_a_triple_fault()
    {
        var (vm, seen) = Run(a =>
        {
            a.mov(rax, 0x3000UL);
            a.mov(__word_ptr[rax + 0xF00], 0);
            a.mov(__qword_ptr[rax + 0xF02], 0);
            a.lidt(__[rax + 0xF00]);
            a.ud2();
        });
        using var _ = vm;
        Assert.That(seen.Seen.Select(f => f.ToString()), Is.EqualTo(new[] { $"stop triple-fault {vm.StopDetail} 0 0 0" }));
        Assert.That(vm.StopDetail, Does.StartWith("triple fault at 0x"));
    }

    [Test]
    public void A_power_off_stop_carries_the_exit_status()
    {
        var (vm, seen) = Run(a =>
        {
            a.mov(dx, Vm.PowerOffPort);
            a.mov(eax, 42);
            a.@out(dx, eax);
            a.hlt();
        });
        using var _ = vm;
        Assert.That(seen.Seen.Select(f => f.ToString()), Is.EqualTo(new[]
        {
            $"exit-io {Vm.PowerOffPort} 4 42 1 0",
            "stop powered-off exit status 42 42 0 0",
        }));
    }
}
