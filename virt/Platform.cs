namespace SmartOS.Virt;

/*
 * The seams between the vCPU, the VMM and the platform's devices (Vmm.cs, "devices").
 *
 * A PC's devices meet the CPU in three places: port I/O, memory-mapped registers, and interrupts.
 * The VMM routes the first two by asking each registered device whether it owns the port or the
 * address (IPortDevice, IMmioDevice); the built-in devices of the flat boot protocol (the UART,
 * the timer, the power-off port, virtio-mmio) are routed before these. Interrupts travel from a
 * device to an IInterruptRouter (the I/O APIC and the 8259 pair, and MSI writes to the local
 * APIC), and from there to the vCPU, which asks its IInterruptController at every instruction
 * boundary where RFLAGS.IF is set and no interrupt shadow (sti, mov ss) is in effect.
 *
 * Rules
 *   1. All of these are called on the thread that runs the VM's scheduler (Vmm.cs rule 5).
 *   2. A device never throws for what a guest writes: a bad register or value is ignored, or read
 *      as all ones, as hardware does; it may count it.
 *   3. HasPendingInterrupt is cheap (a field read): the interpreter asks it between instructions.
 */

/// <summary>A device on the I/O port bus (0x0000-0xFFFF).</summary>
public interface IPortDevice
{
    bool OwnsPort(ushort port);
    /// <summary>A read of <paramref name="size"/> bytes (1, 2 or 4) at <paramref name="port"/>.</summary>
    ulong ReadPort(ushort port, int size);
    void WritePort(ushort port, int size, ulong value);
}

/// <summary>A device with registers at guest physical addresses outside RAM.</summary>
public interface IMmioDevice
{
    bool OwnsAddress(ulong address);
    /// <summary>A read of <paramref name="size"/> bytes (1, 2, 4 or 8) at <paramref name="address"/>.</summary>
    ulong ReadMmio(ulong address, int size);
    void WriteMmio(ulong address, int size, ulong value);
}

/// <summary>What the vCPU asks at an instruction boundary (the local APIC, or the 8259 in
/// virtual-wire mode, behind it).</summary>
public interface IInterruptController
{
    /// <summary>A maskable interrupt waits for the CPU (above the TPR, not blocked by one in service).</summary>
    bool HasPendingInterrupt { get; }

    /// <summary>The CPU takes the interrupt (INTA): returns its vector (32-255, or the PIC's) and
    /// marks it in service. Called only when <see cref="HasPendingInterrupt"/> was true.</summary>
    int AcknowledgeInterrupt();
}

/// <summary>An interrupt controller that also delivers NMIs (the local APIC): a vCPU backend that
/// injects from outside the guest (KVM) asks it.</summary>
public interface INmiSource
{
    bool NmiPending { get; }
    void AcknowledgeNmi();
}

/// <summary>How devices raise interrupts: the platform's I/O APIC and 8259 pair, and MSI.</summary>
public interface IInterruptRouter
{
    /// <summary>Drives global system interrupt line <paramref name="gsi"/> (ISA IRQs are GSIs 0-15;
    /// PCI INTx lines are level-triggered: assert, then deassert when the device is serviced).</summary>
    void SetLevel(int gsi, bool asserted);

    /// <summary>An edge on <paramref name="gsi"/> (assert and deassert).</summary>
    void Pulse(int gsi);

    /// <summary>A message-signalled interrupt: the write of <paramref name="data"/> to
    /// <paramref name="address"/> (0xFEExxxxx) that MSI and MSI-X make.</summary>
    void DeliverMsi(ulong address, uint data);
}
