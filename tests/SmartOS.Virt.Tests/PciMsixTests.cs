using SmartOS.Kernel;
using SmartOS.Kernel.Wire;
using SmartOS.Virt.Devices;

namespace SmartOS.Virt.Tests;

/// <summary>
/// MSI-X on legacy virtio-pci (virt/PciVirtio.cs): the capability, the table and pending bits in
/// BAR1, the vector registers that appear at 0x14/0x16 once the driver enables it, one message per
/// event to the entry's address, masking and pending, and INTx coming back when it is disabled.
/// Driven through the VM's port and memory buses as a guest's accesses reach them.
/// </summary>
public class PciMsixTests
{
    private sealed class Router : IInterruptRouter
    {
        public readonly List<(int Gsi, bool Level)> Levels = new();
        public readonly List<(ulong Address, uint Data)> Messages = new();
        public void SetLevel(int gsi, bool asserted) => Levels.Add((gsi, asserted));
        public void Pulse(int gsi) => Levels.Add((gsi, true));
        public void DeliverMsi(ulong address, uint data) => Messages.Add((address, data));
    }

    private static uint Config(PciBus bus, int reg, int size = 4)
    {
        bus.WritePort(PciBus.ConfigAddressPort, 4, 0x8000_0000u | 1u << 11 | (uint)(reg & 0xFC));
        return (uint)bus.ReadPort((ushort)(PciBus.ConfigDataPort + (reg & 3)), size);
    }

    private static void SetConfig(PciBus bus, int reg, uint value, int size)
    {
        bus.WritePort(PciBus.ConfigAddressPort, 4, 0x8000_0000u | 1u << 11 | (uint)(reg & 0xFC));
        bus.WritePort((ushort)(PciBus.ConfigDataPort + (reg & 3)), size, value);
    }

    /// <summary>The offset of the capability with <paramref name="id"/>, walking the list from 0x34.</summary>
    private static int FindCapability(PciBus bus, byte id)
    {
        for (int at = (int)Config(bus, 0x34, 1), n = 0; at != 0 && n < 48; at = (int)Config(bus, at + 1, 1), n++)
            if (Config(bus, at, 1) == id) return at;
        return -1;
    }

    private const ulong Ring = 0x20_0000, Buffer = 0x30_0000;

    /// <summary>Puts one frame on the transmit queue (queue 1) and notifies; the legacy layout.</summary>
    private static void Transmit(Vm vm, ushort io, ushort index, ushort availFlags = 0)
    {
        var frame = NetworkGuestTests.Eth(NetworkGuestTests.PeerMac, 0x88B5, new byte[46]);
        ulong desc = Ring + 16UL * (ulong)(index % 256);
        vm.Memory.TryWrite(Buffer + VirtioNet.LegacyHeaderLength, frame);
        vm.Memory.TryWriteUInt64(desc, Buffer);
        vm.Memory.TryWriteUInt32(desc + 8, (uint)(VirtioNet.LegacyHeaderLength + frame.Length));
        ulong avail = Ring + 16 * 256;
        vm.Memory.TryWriteUInt16(avail, availFlags);
        vm.Memory.TryWriteUInt16(avail + 4 + 2UL * (ulong)(index % 256), (ushort)(index % 256));
        vm.Memory.TryWriteUInt16(avail + 2, (ushort)(index + 1));
        vm.Pci!.WritePort((ushort)(io + VirtioPci.RegQueueNotify), 2, 1);
    }

    [Test]
    public void Msix_sends_one_message_per_event_to_the_vector_the_driver_chose_and_intx_stays_silent()
    {
        var router = new Router();
        var net = new NetworkGuestTests.Net();
        using var _n = net;
        using var vm = new Vm(net.Scheduler, new VmConfig { Image = [0xEB, 0xFE], Backend = VmBackend.Interpreter, MemorySize = 8UL << 20, PciDevices = true });
        vm.Interrupts = router;
        vm.AttachNic(net.GuestSide);
        vm.Start();
        // The guest spins (jmp $), so the VM runs and its NIC serves the rings for the whole test.
        var bus = vm.Pci!;
        ushort io = (ushort)(Config(bus, 0x10) & ~3u);
        uint bar1 = Config(bus, 0x14) & ~15u;
        int cap = FindCapability(bus, VirtioPci.CapabilityMsix);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(Config(bus, 0x04) >> 16 & 0x10, Is.EqualTo(0x10u), "status: a capability list");
            Assert.That(cap, Is.GreaterThanOrEqualTo(0x40), "an MSI-X capability");
            Assert.That(Config(bus, cap + 2, 2), Is.EqualTo(2u), "table size 3 (receive, transmit, configuration), disabled");
            Assert.That(Config(bus, cap + 4), Is.EqualTo(1u), "table at BAR1 + 0");
            Assert.That(Config(bus, cap + 8), Is.EqualTo(VirtioPci.MsixPbaOffset | 1), "pending bits at BAR1 + 0x800");
            Assert.That(bar1, Is.GreaterThanOrEqualTo(PciBus.PciMemoryBase), "BAR1 in the PCI hole");
            Assert.That(bus.ReadMmio(bar1 + 12, 4), Is.EqualTo(1UL), "entries start masked");
            Assert.That(bus.ReadPort((ushort)(io + VirtioPci.RegConfig + 5), 1), Is.EqualTo(2UL), "disabled: the MAC (02:00:00:00:00:02) at 0x14");
        }
        // Entry 1: the local APIC at 0xFEE00000, vector 0x41, fixed, edge; unmasked.
        bus.WriteMmio(bar1 + 16, 4, 0xFEE0_0000);
        bus.WriteMmio(bar1 + 20, 4, 0);
        bus.WriteMmio(bar1 + 24, 4, 0x41);
        bus.WriteMmio(bar1 + 28, 4, 0);
        SetConfig(bus, cap + 2, 0x8000, 2);
        Assert.That(Config(bus, cap + 2, 2), Is.EqualTo(0x8002u), "enabled; the table size is read only");

        bus.WritePort((ushort)(io + VirtioPci.RegStatus), 1, 0);
        bus.WritePort((ushort)(io + VirtioPci.RegStatus), 1, 1 | 2);
        bus.WritePort((ushort)(io + VirtioPci.RegConfigVector), 2, 7);
        Assert.That(bus.ReadPort((ushort)(io + VirtioPci.RegConfigVector), 2), Is.EqualTo((ulong)VirtioPci.NoVector), "past the table: NO_VECTOR");
        bus.WritePort((ushort)(io + VirtioPci.RegQueueSelect), 2, 1);
        bus.WritePort((ushort)(io + VirtioPci.RegQueueVector), 2, 1);
        Assert.That(bus.ReadPort((ushort)(io + VirtioPci.RegQueueVector), 2), Is.EqualTo(1UL));
        byte[] mac = new byte[6];
        for (int i = 0; i < 6; i++) mac[i] = (byte)bus.ReadPort((ushort)(io + VirtioPci.RegConfigMsix + i), 1);
        Assert.That(MacAddress.Read(mac), Is.EqualTo(NetworkGuestTests.GuestMac), "enabled: the config space moved to 0x18");
        bus.WritePort((ushort)(io + VirtioPci.RegQueuePfn), 4, Ring >> 12);
        bus.WritePort((ushort)(io + VirtioPci.RegStatus), 1, 1 | 2 | 4);
        var pci = (VirtioPci)bus[1]!;

        Transmit(vm, io, 0);
        net.Scheduler.RunFor(Time.Millisecond);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(net.Received.Frames, Has.Count.EqualTo(1));
            Assert.That(router.Messages, Is.EqualTo(new[] { (0xFEE0_0000UL, 0x41u) }), "entry 1's message");
            Assert.That(router.Levels, Is.Empty, "no INTx while MSI-X is enabled");
            Assert.That(bus.ReadPort((ushort)(io + VirtioPci.RegIsr), 1), Is.Zero, "the message carried the event, not the ISR");
        }

        // Masked: the event is pending, and goes when the entry is unmasked.
        bus.WriteMmio(bar1 + 28, 4, 1);
        Transmit(vm, io, 1);
        net.Scheduler.RunFor(Time.Millisecond);
        Assert.That(router.Messages, Has.Count.EqualTo(1), "masked: no message");
        Assert.That(bus.ReadMmio(bar1 + VirtioPci.MsixPbaOffset, 4), Is.EqualTo(2UL), "entry 1 pending");
        bus.WriteMmio(bar1 + 28, 4, 0);
        Assert.That(router.Messages, Has.Count.EqualTo(2), "unmasked: the pending message goes");
        Assert.That(bus.ReadMmio(bar1 + VirtioPci.MsixPbaOffset, 4), Is.Zero);

        // The driver asked for no interrupts on the queue (VRING_AVAIL_F_NO_INTERRUPT).
        Transmit(vm, io, 2, availFlags: 1);
        net.Scheduler.RunFor(Time.Millisecond);
        Assert.That(net.Received.Frames, Has.Count.EqualTo(3));
        Assert.That(router.Messages, Has.Count.EqualTo(2), "suppressed by the driver");
        Assert.That(pci.MessagesSent, Is.EqualTo(2));

        // Disabled again: INTx and the ISR, as before.
        SetConfig(bus, cap + 2, 0, 2);
        Transmit(vm, io, 3);
        net.Scheduler.RunFor(Time.Millisecond);
        Assert.That(router.Levels, Is.EqualTo(new[] { (11, true) }), "INTx on the line register's GSI");
        Assert.That(bus.ReadPort((ushort)(io + VirtioPci.RegIsr), 1), Is.EqualTo(1UL));
        Assert.That(router.Messages, Has.Count.EqualTo(2));
    }

    [Test]
    public void A_message_reaches_the_local_apic_of_a_pc_guest_as_the_vector_it_names()
    {
        var platform = new PcPlatform(() => 0);
        platform.Lapic.ApicBaseMsr = LocalApic.DefaultBase | LocalApic.ApicBaseEnable | LocalApic.ApicBaseBsp;
        platform.Lapic.WriteRegister(0xF0, 0x1FF); // spurious vector register: software enabled
        platform.DeliverMsi(0xFEE0_0000, 0x41);
        Assert.That(platform.Lapic.IsRequested(0x41), Is.True);
        Assert.That(platform.Lapic.HasPendingInterrupt, Is.True);
    }
}
