using Iced.Intel;
using SmartOS.Kernel;
using SmartOS.Virt.Devices;
using static Iced.Intel.AssemblerRegisters;

namespace SmartOS.Virt.Tests.Platform;

/// <summary>
/// The platform as a whole: the router's wiring, the vCPU's view through IInterruptController
/// (driven here as the interpreter will drive it), and guests on a PC-platform Vm. The guests take
/// no interrupt through an IDT (they have none): each test clears the vCPU's interrupt controller,
/// and the guest acknowledges at the chips itself, as a polling driver does.
/// </summary>
public class PcPlatformTests
{
    private long _now;

    private PcPlatform NewPlatform()
    {
        _now = 0;
        return new PcPlatform(() => _now);
    }

    private static void Out(IPortDevice d, ushort port, byte value) => d.WritePort(port, 1, value);

    private static void InitPic(PcPlatform p, byte masterMask)
    {
        foreach (var (port, value) in new (ushort, byte)[] { (0x20, 0x11), (0x21, 0x20), (0x21, 0x04), (0x21, 0x01), (0xA0, 0x11), (0xA1, 0x28), (0xA1, 0x02), (0xA1, 0x01) })
            Out(p.Pic, port, value);
        Out(p.Pic, 0x21, masterMask);
    }

    private static void StartPit1kHz(PcPlatform p)
    {
        Out(p.Pit, 0x43, 0x34);
        Out(p.Pit, 0x40, 1193 & 0xFF);
        Out(p.Pit, 0x40, 1193 >> 8);
    }

    /// <summary>Runs the platform's deadlines up to <paramref name="end"/>, taking every interrupt
    /// as a CPU with interrupts enabled would (INTA, then EOI at the chip the vector came from).</summary>
    private List<int> TakeInterruptsUntil(PcPlatform p, long end)
    {
        var taken = new List<int>();
        while (p.NextDeadline >= 0 && p.NextDeadline <= end)
        {
            _now = p.NextDeadline;
            p.Advance(_now);
            while (p.Lapic.HasPendingInterrupt)
            {
                int v = p.Lapic.AcknowledgeInterrupt();
                taken.Add(v);
                if (v is >= 0x20 and < 0x30) Out(p.Pic, 0x20, 0x20);
                else p.Lapic.WriteMmio(0xFEE0_00B0, 4, 0);
            }
        }
        return taken;
    }

    [Test]
    public void Pit_irq0_reaches_the_cpu_through_the_8259_in_virtual_wire_mode_1000_times_a_second()
    {
        var p = NewPlatform();
        InitPic(p, 0xFE);
        StartPit1kHz(p);
        var taken = TakeInterruptsUntil(p, 1_000_000_000);
        Assert.That(taken, Has.Count.EqualTo(1000).And.All.EqualTo(0x20));
    }

    [Test]
    public void Pit_irq0_reaches_the_cpu_through_io_apic_pin_2_1000_times_a_second()
    {
        var p = NewPlatform();
        InitPic(p, 0xFF);                                   // the 8259s masked, as Linux leaves them
        p.IoApic.WriteRegister(0x10 + 2 * 2, 0x30);         // pin 2: edge, fixed, vector 0x30
        p.IoApic.WriteRegister(0x11 + 2 * 2, 0);
        StartPit1kHz(p);
        var taken = TakeInterruptsUntil(p, 1_000_000_000);
        Assert.That(taken, Has.Count.EqualTo(1000).And.All.EqualTo(0x30));
    }

    [Test]
    public void Isa_irqs_go_to_the_8259_and_the_same_io_apic_pin_and_16_up_to_the_io_apic_only()
    {
        var p = NewPlatform();
        InitPic(p, 0x00);
        Out(p.Pic, 0xA1, 0x00);
        p.IoApic.WriteRegister(0x10 + 2 * 4, 0x34);
        p.IoApic.WriteRegister(0x10 + 2 * 20, 0x8000 | 0x44);
        p.SetLevel(4, true);
        p.SetLevel(20, true);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(p.Pic.Registers.Irr, Is.EqualTo(1 << 4));
            Assert.That(p.Lapic.IsRequested(0x34), Is.True);
            Assert.That(p.Lapic.IsRequested(0x44), Is.True);
        }
        p.SetLevel(24, true);
        Assert.That(p.BadLines, Is.EqualTo(1));
    }

    [Test]
    public void Msi_reaches_the_local_apic_and_a_write_elsewhere_is_dropped()
    {
        var p = NewPlatform();
        p.DeliverMsi(0xFEE0_0000, 0x0041);
        p.DeliverMsi(0xFED0_0000, 0x0042);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(p.Lapic.IsRequested(0x41), Is.True);
            Assert.That(p.Lapic.IsRequested(0x42), Is.False);
            Assert.That(p.Lapic.InterruptsDropped, Is.EqualTo(1));
        }
    }

    [Test]
    public void The_uarts_interrupt_arrives_as_irq4_at_the_8259()
    {
        var p = NewPlatform();
        InitPic(p, 0x00);
        var uart = new Uart16550();
        uart.ConnectIrq(p, PcPlatform.Com1Irq);
        uart.Write(Uart16550.Com1 + 4, 0x08);
        uart.Write(Uart16550.Com1 + 1, 0x01);
        uart.Input("a"u8);
        Assert.That(p.Lapic.HasPendingInterrupt, Is.True);
        Assert.That(p.Lapic.AcknowledgeInterrupt(), Is.EqualTo(0x24));
    }

    // ---- guests on a PC-platform Vm ------------------------------------------------------------------

    private static Vm Boot(Action<Assembler> build, long timeLimit, long clockEpoch = 0)
    {
        var scheduler = new Scheduler();
        var vm = new Vm(scheduler, new VmConfig
        {
            Image = GuestRunner.Assemble(build),
            MemorySize = 4UL << 20,
            Backend = VmBackend.Interpreter,
            Platform = VmPlatform.Pc,
            TimeLimit = timeLimit,
            ClockEpoch = clockEpoch,
        });
        vm.Start();
        vm.Vcpu!.Interrupts = null; // no IDT in these guests: they acknowledge at the chips
        scheduler.RunUntil(() => vm.IsStopped, scheduler.Now + 100 * Time.Second);
        return vm;
    }

    private static void OutImm(Assembler a, ushort port, byte value)
    {
        a.mov(al, value);
        a.@out(port < 0x100 ? (byte)port : throw new ArgumentOutOfRangeException(nameof(port)), al);
    }

    [Test]
    public void Flat_guests_keep_the_flat_platform()
    {
        using var vm = GuestRunner.Run(a =>
        {
            a.@in(al, 0x40);
            a.hlt();
        });
        using (Assert.EnterMultipleScope())
        {
            Assert.That(vm.Platform, Is.Null);
            Assert.That(vm.Interrupts, Is.Null);
            Assert.That(vm.UnhandledPortAccesses, Is.EqualTo(1), "no PIT on the flat platform");
        }
    }

    [Test]
    public void A_guest_halting_with_interrupts_enabled_wakes_once_per_pit_period()
    {
        using var vm = Boot(a =>
        {
            foreach (var (port, value) in new (ushort, byte)[] { (0x20, 0x11), (0x21, 0x20), (0x21, 0x04), (0x21, 0x01), (0x21, 0xFE), (0x43, 0x34), (0x40, 1193 & 0xFF), (0x40, 1193 >> 8) })
                OutImm(a, port, value);
            a.xor(ebx, ebx);
            var loop = a.CreateLabel();
            a.Label(ref loop);
            a.sti();
            a.hlt();
            a.cli();
            OutImm(a, 0x20, 0x0C);  // OCW3 poll: the read acknowledges IRQ 0
            a.@in(al, 0x20);
            OutImm(a, 0x20, 0x20);  // EOI
            a.inc(rbx);
            a.jmp(loop);
        }, timeLimit: Time.Second);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(vm.StopReason, Is.EqualTo(VmStopReason.OutOfTime));
            Assert.That(vm.Vcpu!.GetRegister(Reg.Rbx), Is.EqualTo(1000UL));
            Assert.That(vm.Platform!.Pit.Irq0Edges, Is.EqualTo(1000));
            Assert.That(vm.InstructionsRetired, Is.LessThan(30_000), "it slept between the ticks");
        }
    }

    [Test]
    public void A_guest_waits_in_hlt_for_its_apic_timer_and_finds_the_vector_in_irr()
    {
        using var vm = Boot(a =>
        {
            a.mov(rdi, 0xFEE0_0000UL);
            a.mov(__dword_ptr[rdi + 0x3E0], 0xB);       // divide by 1
            a.mov(__dword_ptr[rdi + 0x320], 0x40);      // one-shot, vector 0x40
            a.mov(__dword_ptr[rdi + 0x380], 50_000);    // 50 us
            a.sti();
            a.hlt();
            a.mov(dx, GuestTimer.BasePort);
            a.@in(eax, dx);
            a.mov(ebx, eax);                            // guest time after the wake
            a.mov(eax, __dword_ptr[rdi + 0x220]);       // IRR bits 64-95
            a.mov(dx, Vm.PowerOffPort);
            a.@out(dx, eax);
        }, timeLimit: Time.Second);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(vm.StopReason, Is.EqualTo(VmStopReason.PoweredOff), vm.StopDetail);
            Assert.That(vm.ExitStatus, Is.EqualTo(1UL), "vector 0x40 requested");
            Assert.That(vm.Vcpu!.GetRegister(Reg.Rbx), Is.InRange(50_000UL, 50_100UL));
        }
    }

    [Test]
    public void A_masked_timer_leaves_the_halted_guest_waiting_until_its_time_limit()
    {
        using var vm = Boot(a =>
        {
            a.mov(rdi, 0xFEE0_0000UL);
            a.mov(__dword_ptr[rdi + 0x3E0], 0xB);
            a.mov(__dword_ptr[rdi + 0x320], 0x10040);   // masked
            a.mov(__dword_ptr[rdi + 0x380], 50_000);
            a.sti();
            a.hlt();
            a.mov(dx, Vm.PowerOffPort);
            a.@out(dx, al);
        }, timeLimit: 10 * Time.Millisecond);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(vm.StopReason, Is.EqualTo(VmStopReason.OutOfTime), vm.StopDetail);
            Assert.That(vm.Platform!.Lapic.TimerExpiries, Is.EqualTo(1));
        }
    }

    [Test]
    public void A_guest_that_disables_interrupts_and_halts_still_ends_its_run()
    {
        using var vm = Boot(a =>
        {
            a.cli();
            a.hlt();
        }, timeLimit: Time.Second);
        Assert.That(vm.StopReason, Is.EqualTo(VmStopReason.Halted));
    }

    [Test]
    public void A_one_nanosecond_periodic_apic_timer_does_not_hang_the_host()
    {
        using var vm = Boot(a =>
        {
            a.mov(rdi, 0xFEE0_0000UL);
            a.mov(__dword_ptr[rdi + 0x3E0], 0xB);
            a.mov(__dword_ptr[rdi + 0x320], 0x20040);   // periodic
            a.mov(__dword_ptr[rdi + 0x380], 1);
            var spin = a.CreateLabel();
            a.Label(ref spin);
            a.jmp(spin);
        }, timeLimit: 10 * Time.Millisecond);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(vm.StopReason, Is.EqualTo(VmStopReason.OutOfTime));
            Assert.That(vm.Platform!.Lapic.PeriodsClamped, Is.EqualTo(1));
            Assert.That(vm.Platform.Lapic.TimerExpiries, Is.InRange(49, 50));
        }
    }

    [Test]
    public void A_guest_reads_the_hosts_date_from_the_cmos_clock()
    {
        long epoch = new DateTimeOffset(2026, 12, 3, 8, 45, 21, TimeSpan.Zero).ToUnixTimeSeconds() * 1_000_000_000;
        using var vm = Boot(a =>
        {
            OutImm(a, 0x70, 0x07);
            a.@in(al, 0x71);
            a.mov(bl, al);      // day of month
            OutImm(a, 0x70, 0x08);
            a.@in(al, 0x71);
            a.shl(eax, 8);
            a.mov(al, bl);
            a.mov(dx, Vm.PowerOffPort);
            a.@out(dx, eax);
        }, timeLimit: Time.Second, clockEpoch: epoch);
        Assert.That(vm.ExitStatus, Is.EqualTo(0x1203UL), "December 3rd, in BCD");
    }
}
