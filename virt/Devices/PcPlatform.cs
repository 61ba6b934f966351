/*
 * The PC platform: the interrupt controllers and clocks a PC guest (Linux) expects around its CPU.
 *
 * A Vm whose VmConfig.Platform is VmPlatform.Pc builds one PcPlatform (Vmm.cs, "platform") and
 * registers its devices on the port and MMIO buses (Platform.cs):
 *   LocalApic    0xFEE00000  the vCPU's interrupt controller: IRR/ISR/TMR, TPR/PPR, EOI, the LVT,
 *                            self-IPIs, the timer (one-shot, periodic, TSC-deadline), MSI
 *   IoApic       0xFEC00000  24 pins, redirection entries, remote IRR and EOI from the local APIC
 *   Pic8259Pair  0x20, 0xA0  master and slave 8259A, ELCR at 0x4D0/0x4D1
 *   Pit8254      0x40-0x43   three counters at 1.193182 MHz; port 0x61 (channel 2's gate and OUT)
 *   CmosRtc      0x70, 0x71  the MC146818 clock and CMOS RAM
 * and the 16550 (COM1) raises ISA IRQ 4 through it.
 *
 * Wiring (as on a PC, and as QEMU/KVM wire theirs):
 *   ISA IRQ n (0-15) goes to the 8259 pair's input n and to I/O APIC pin n, except IRQ 0 (the
 *   PIT), which is on pin 2: the MADT must carry an interrupt source override (bus 0, IRQ 0 ->
 *   GSI 2). IRQ 2 is the cascade and no device's line; pin 0 is not connected. Numbers 16-23 are
 *   I/O APIC pins only (PCI INTx, level-triggered). The master 8259's INT reaches the CPU through
 *   the local APIC's LINT0 in ExtINT mode (virtual-wire mode, which is how firmware leaves the
 *   APIC: LocalApic.EnterVirtualWireMode), or directly when IA32_APIC_BASE disables the APIC.
 *   The router is PcPlatform itself (IInterruptRouter): SetLevel, Pulse, DeliverMsi.
 *
 * Time:
 *   Every timer reads guest time (PlatformClock.Now = Vm.GuestNow: the scheduler's clock plus the
 *   instructions retired in this slice, one ns each), never the wall clock, so a run is
 *   deterministic. A timer does not tick: it keeps when it started and computes its count when read,
 *   and it publishes the guest time of its next expiry (IPlatformTimer.Deadline). The VMM ends each
 *   slice at the earliest deadline (NextDeadline) and calls Advance at the next slice's start, so an
 *   expiry is seen at its exact instruction; a deadline armed during a slice ends that slice early
 *   (PlatformClock.DeadlineChanged) when the vCPU offers a way out (after port I/O today).
 *
 * Rules
 *   1. Everything runs on the thread of the VM's scheduler (Platform.cs rule 1).
 *   2. A guest cannot make the host work without bound: periodic timers are held to
 *      LocalApic.MinPeriodicNs, late timers count their missed periods instead of replaying them,
 *      and a level interrupt redelivered IoApic.StormLimit times in a row is put off (IoApic.cs).
 *   3. What a guest writes that a chip would not take is ignored and counted, never thrown.
 */
namespace SmartOS.Virt.Devices;

/// <summary>The PC's interrupt controllers and clocks, and the interrupt router that wires them
/// (see the theory statement above).</summary>
public sealed class PcPlatform : IInterruptRouter
{
    public const int Com1Irq = 4;

    private readonly IPlatformTimer[] _timers;

    /// <param name="now">guest time in ns (Vm.GuestNow)</param>
    /// <param name="epoch">Unix time in ns at guest time 0, for the RTC (kernel WallClock.Epoch; 0 in virtual time)</param>
    public PcPlatform(Func<long> now, long epoch = 0)
    {
        Clock = new PlatformClock(now);
        Pic = new Pic8259Pair();
        Lapic = new LocalApic(Clock) { Pic = Pic };
        IoApic = new IoApic(Clock, Lapic);
        Pit = new Pit8254(Clock, Pulse);
        Rtc = new CmosRtc(Clock, epoch, SetLevel);
        Lapic.EnterVirtualWireMode();
        _timers = [Lapic, IoApic, Pit, Rtc];
        PortDevices = [Pic, Pit, Rtc];
        MmioDevices = [Lapic, IoApic];
    }

    public PlatformClock Clock { get; }
    public LocalApic Lapic { get; }
    public IoApic IoApic { get; }
    public Pic8259Pair Pic { get; }
    public Pit8254 Pit { get; }
    public CmosRtc Rtc { get; }
    public IReadOnlyList<IPortDevice> PortDevices { get; }
    public IReadOnlyList<IMmioDevice> MmioDevices { get; }

    /// <summary>Lines driven that no wire carries (numbers past 23).</summary>
    public long BadLines { get; private set; }

    /// <summary>The earliest timer deadline in guest ns, or -1 for none.</summary>
    public long NextDeadline
    {
        get
        {
            long d = -1;
            foreach (var t in _timers)
            {
                long x = t.Deadline;
                if (x >= 0 && (d < 0 || x < d)) d = x;
            }
            return d;
        }
    }

    /// <summary>Fires everything due at or before <paramref name="now"/>.</summary>
    public void Advance(long now)
    {
        foreach (var t in _timers) t.Advance(now);
    }

    // ---- IInterruptRouter -------------------------------------------------------------------------

    public void SetLevel(int gsi, bool asserted)
    {
        if ((uint)gsi >= IoApic.Pins) { BadLines++; return; }
        if (gsi < 16) Pic.SetIrq(gsi, asserted);
        int pin = gsi switch { 0 => 2, 2 => -1, _ => gsi };
        if (pin >= 0) IoApic.SetLevel(pin, asserted);
    }

    public void Pulse(int gsi)
    {
        SetLevel(gsi, true);
        SetLevel(gsi, false);
    }

    public void DeliverMsi(ulong address, uint data) => Lapic.AcceptMsi(address, data);
}
