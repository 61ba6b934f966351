using SmartOS.Kernel.Wire;
using SmartOS.Kernel;
using SmartOS.Virt.Devices;

namespace SmartOS.Virt.Tests;

/// <summary>
/// The PCI bus (configuration mechanism #1, BARs, INTx) and legacy virtio-pci, driven through the
/// VM's port bus as a guest's in/out instructions reach it, and by a C guest that finds its NIC on
/// PCI and sends a frame through it.
/// </summary>
public class PciTests
{
    private sealed class FakeRouter : IInterruptRouter
    {
        public readonly List<(int Gsi, bool Level)> Levels = new();
        public void SetLevel(int gsi, bool asserted) => Levels.Add((gsi, asserted));
        public void Pulse(int gsi) => Levels.Add((gsi, true));
        public void DeliverMsi(ulong address, uint data) { }
    }

    /// <summary>A function with a memory BAR and two capabilities, to test what virtio-pci does not use.</summary>
    private sealed class TestFunction : PciFunction
    {
        public readonly List<(uint Offset, int Size, ulong Value)> Writes = new();
        public TestFunction() : base(0x1234, 0x5678, 0xFF_00_00, 1)
        {
            DeclareBar(1, PciBarKind.Memory32, 0x1000);
            AddCapability(0x09, [0xAA, 0xBB]);   // vendor-specific
            AddCapability(0x01, [0x03, 0x00, 0x00, 0x00, 0x00, 0x00]);   // power management
        }
        protected override ulong ReadBar(int bar, uint offset, int size) => 0xC0DE0000u + offset;
        protected override void WriteBar(int bar, uint offset, int size, ulong value) => Writes.Add((offset, size, value));
    }

    private static uint Config(PciBus bus, int slot, int reg, int size = 4)
    {
        bus.WritePort(PciBus.ConfigAddressPort, 4, 0x8000_0000u | (uint)(slot << 11) | (uint)(reg & 0xFC));
        return (uint)bus.ReadPort((ushort)(PciBus.ConfigDataPort + (reg & 3)), size);
    }

    private static void SetConfig(PciBus bus, int slot, int reg, uint value, int size = 4)
    {
        bus.WritePort(PciBus.ConfigAddressPort, 4, 0x8000_0000u | (uint)(slot << 11) | (uint)(reg & 0xFC));
        bus.WritePort((ushort)(PciBus.ConfigDataPort + (reg & 3)), size, value);
    }

    private static (Scheduler, NetworkGuestTests.Net, Vm) NetVm(IInterruptRouter? router = null)
    {
        var net = new NetworkGuestTests.Net();
        var vm = new Vm(net.Scheduler, new VmConfig { Image = [0xF4], Backend = VmBackend.Interpreter, MemorySize = 8UL << 20, PciDevices = true });
        vm.Interrupts = router;
        vm.AttachNic(net.GuestSide);
        return (net.Scheduler, net, vm);
    }

    [Test]
    public void Bus_0_shows_the_host_bridge_and_the_virtio_functions_and_nothing_else()
    {
        var (_, net, vm) = NetVm();
        using var _n = net;
        using var _v = vm;
        var bus = vm.Pci!;
        using (Assert.EnterMultipleScope())
        {
            Assert.That(Config(bus, 0, 0), Is.EqualTo(0x1237_8086u), "i440FX host bridge at 00:00.0");
            Assert.That(Config(bus, 0, 8) >> 8, Is.EqualTo(0x06_00_00u), "class: host bridge");
            Assert.That(Config(bus, 1, 0), Is.EqualTo(0x1000_1AF4u), "virtio-net (transitional) at 00:01.0");
            Assert.That(Config(bus, 1, 8), Is.EqualTo(0x02_00_00_00u), "class network, revision 0 (legacy ABI)");
            Assert.That(Config(bus, 1, 0x2C), Is.EqualTo(0x0001_1AF4u), "subsystem: virtio id 1");
            Assert.That(Config(bus, 2, 0), Is.EqualTo(0xFFFF_FFFFu), "an empty slot reads all ones");
            Assert.That(Config(bus, 1, 2, 2), Is.EqualTo(0x1000u), "a word read of the device id at 0xCFE");
            Assert.That(Config(bus, 1, 1, 1), Is.EqualTo(0x1Au), "a byte read at 0xCFD");
        }
        // The enable bit clear, or another bus: all ones.
        bus.WritePort(PciBus.ConfigAddressPort, 4, 0x0000_0800);
        Assert.That(bus.ReadPort(PciBus.ConfigDataPort, 4), Is.EqualTo(0xFFFF_FFFFUL));
        bus.WritePort(PciBus.ConfigAddressPort, 4, 0x8001_0000);
        Assert.That(bus.ReadPort(PciBus.ConfigDataPort, 4), Is.EqualTo(0xFFFF_FFFFUL));
        Assert.That(bus.ReadPort(PciBus.ConfigAddressPort, 4), Is.EqualTo(0x8001_0000UL), "the address register reads back");
        // Read-only registers keep their value.
        SetConfig(bus, 1, 0, 0xDEAD_BEEF);
        Assert.That(Config(bus, 1, 0), Is.EqualTo(0x1000_1AF4u));
    }

    [Test]
    public void A_bar_is_sized_by_writing_all_ones_and_decodes_only_where_it_is_and_while_enabled()
    {
        var (_, net, vm) = NetVm();
        using var _n = net;
        using var _v = vm;
        var bus = vm.Pci!;
        uint bar = Config(bus, 1, 0x10);
        Assert.That(bar, Is.EqualTo(PciBus.PciIoBase | 1), "firmware placed BAR0 at the start of the I/O window, I/O space bit set");
        Assert.That(Config(bus, 1, 4) & 1, Is.EqualTo(1u), "I/O decode on");
        SetConfig(bus, 1, 0x10, 0xFFFF_FFFF);
        uint mask = Config(bus, 1, 0x10);
        Assert.That(mask, Is.EqualTo(0xFFC1u), "64 bytes of I/O (the mask in 16 bits, bit 0 kept)");
        Assert.That(bus.OwnsPort((ushort)PciBus.PciIoBase), Is.False, "a BAR being sized decodes nothing");
        SetConfig(bus, 1, 0x10, 0xD000);
        Assert.That(bus.OwnsPort(0xD000), Is.True);
        Assert.That(bus.OwnsPort(0xD03F), Is.True);
        Assert.That(bus.OwnsPort(0xD040), Is.False);
        Assert.That(bus.ReadPort((ushort)(0xD000 + VirtioPci.RegQueueSize), 2), Is.EqualTo(256UL), "the legacy queue size register");
        SetConfig(bus, 1, 4, 0);
        Assert.That(bus.OwnsPort(0xD000), Is.False, "I/O decode off");
    }

    [Test]
    public void Memory_bars_and_the_capability_list_work_as_configuration_space_says()
    {
        var bus = new PciBus(() => null);
        var f = new TestFunction();
        int slot = bus.Add(f);
        Assert.That(slot, Is.EqualTo(1));
        uint bar1 = Config(bus, slot, 0x14);
        Assert.That(bar1, Is.EqualTo(PciBus.PciMemoryBase), "32-bit memory BAR at the start of the PCI hole");
        SetConfig(bus, slot, 0x14, 0xFFFF_FFFF);
        Assert.That(Config(bus, slot, 0x14), Is.EqualTo(0xFFFF_F000u), "4 KiB");
        SetConfig(bus, slot, 0x14, PciBus.PciMemoryBase + 0x10000);
        ulong at = PciBus.PciMemoryBase + 0x10000;
        Assert.That(bus.OwnsAddress(at + 0x10), Is.True);
        Assert.That(bus.ReadMmio(at + 0x10, 4), Is.EqualTo(0xC0DE0010UL));
        bus.WriteMmio(at + 0x20, 4, 7);
        Assert.That(f.Writes, Is.EqualTo(new[] { (0x20u, 4, 7UL) }));
        Assert.That(bus.OwnsAddress(PciBus.PciMemoryBase), Is.False, "the old place decodes no more");
        Assert.That(Config(bus, slot, 0x10), Is.Zero, "an undeclared BAR reads zero and ignores writes");
        // Capabilities: status bit 4, the pointer at 0x34, then id/next pairs to 0.
        Assert.That((Config(bus, slot, 4) >> 16) & 0x10, Is.EqualTo(0x10u));
        var ids = new List<uint>();
        for (uint p = Config(bus, slot, 0x34) & 0xFF; p != 0; p = (Config(bus, slot, (int)p) >> 8) & 0xFF)
            ids.Add(Config(bus, slot, (int)p) & 0xFF);
        Assert.That(ids, Is.EqualTo(new[] { 0x09u, 0x01u }));
        Assert.That(Config(bus, 0, 4) >> 16 & 0x10, Is.Zero, "the host bridge has none");
    }

    [Test]
    public void Legacy_virtio_registers_drive_the_transmit_queue_and_intx_follows_the_isr()
    {
        var router = new FakeRouter();
        var (sched, net, vm) = NetVm(router);
        using var _n = net;
        using var _v = vm;
        vm.Start();
        var bus = vm.Pci!;
        ushort io = (ushort)(Config(bus, 1, 0x10) & ~3u);
        byte line = (byte)Config(bus, 1, 0x3C);
        Assert.That(line, Is.EqualTo(11), "odd slots route to IRQ 11");
        Assert.That(Config(bus, 1, 0x3D, 1), Is.EqualTo(1u), "INTA");
        bus.WritePort((ushort)(io + VirtioPci.RegStatus), 1, 0);
        bus.WritePort((ushort)(io + VirtioPci.RegStatus), 1, 1 | 2);
        Assert.That(bus.ReadPort((ushort)(io + VirtioPci.RegDeviceFeatures), 4), Is.EqualTo(1UL << 5), "VIRTIO_NET_F_MAC; VERSION_1 is past the legacy 32 bits");
        bus.WritePort((ushort)(io + VirtioPci.RegDriverFeatures), 4, 1UL << 5 | 1UL << 15);
        Assert.That(bus.ReadPort((ushort)(io + VirtioPci.RegDriverFeatures), 4), Is.EqualTo(1UL << 5), "only offered features are taken");
        byte[] mac = new byte[6];
        for (int i = 0; i < 6; i++) mac[i] = (byte)bus.ReadPort((ushort)(io + VirtioPci.RegConfig + i), 1);
        Assert.That(MacAddress.Read(mac), Is.EqualTo(NetworkGuestTests.GuestMac));
        const ulong ring = 0x20_0000, buffer = 0x30_0000;
        bus.WritePort((ushort)(io + VirtioPci.RegQueueSelect), 2, 1);
        bus.WritePort((ushort)(io + VirtioPci.RegQueuePfn), 4, ring >> 12);
        Assert.That(bus.ReadPort((ushort)(io + VirtioPci.RegQueuePfn), 4), Is.EqualTo(ring >> 12));
        bus.WritePort((ushort)(io + VirtioPci.RegStatus), 1, 1 | 2 | 4);
        var frame = NetworkGuestTests.Eth(NetworkGuestTests.PeerMac, 0x88B5, new byte[46]);
        vm.Memory.TryWrite(buffer + VirtioNet.LegacyHeaderLength, frame);
        vm.Memory.TryWriteUInt64(ring, buffer);
        vm.Memory.TryWriteUInt32(ring + 8, (uint)(VirtioNet.LegacyHeaderLength + frame.Length));
        ulong avail = ring + 16 * 256, used = ring + 2 * 4096;   // the legacy layout: used on the next 4 KiB
        vm.Memory.TryWriteUInt16(avail + 4, 0);
        vm.Memory.TryWriteUInt16(avail + 2, 1);
        bus.WritePort((ushort)(io + VirtioPci.RegQueueNotify), 2, 1);
        sched.RunFor(Time.Millisecond);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(net.Received.Frames, Has.Count.EqualTo(1));
            Assert.That(net.Received.Frames[0], Is.EqualTo(frame), "the 10-byte legacy header is not part of the frame");
            Assert.That(vm.Memory.TryReadUInt16(used + 2, out ushort usedIdx) && usedIdx == 1, Is.True, "the used ring is where the legacy layout puts it");
            Assert.That(router.Levels, Is.EqualTo(new[] { (11, true) }), "INTx asserted on the line register's GSI");
        }
        Assert.That(bus.ReadPort((ushort)(io + VirtioPci.RegIsr), 1), Is.EqualTo(1UL), "used-buffer interrupt");
        Assert.That(router.Levels[^1], Is.EqualTo((11, false)), "reading the ISR deasserts the line");
        Assert.That(bus.ReadPort((ushort)(io + VirtioPci.RegIsr), 1), Is.Zero, "and clears it");
        Assert.That(Config(bus, 1, 4) >> 16 & 0x08, Is.Zero, "status: no interrupt pending");
    }

    [Test]
    public void A_frame_to_the_guest_uses_the_legacy_header_and_a_reset_takes_the_queues_down()
    {
        var router = new FakeRouter();
        var (sched, net, vm) = NetVm(router);
        using var _n = net;
        using var _v = vm;
        vm.Start();
        var bus = vm.Pci!;
        ushort io = (ushort)(Config(bus, 1, 0x10) & ~3u);
        const ulong ring = 0x20_0000, buffer = 0x30_0000;
        bus.WritePort((ushort)(io + VirtioPci.RegStatus), 1, 1 | 2);
        bus.WritePort((ushort)(io + VirtioPci.RegQueueSelect), 2, 0);
        bus.WritePort((ushort)(io + VirtioPci.RegQueuePfn), 4, ring >> 12);
        bus.WritePort((ushort)(io + VirtioPci.RegStatus), 1, 1 | 2 | 4);
        vm.Memory.TryWriteUInt64(ring, buffer);
        vm.Memory.TryWriteUInt32(ring + 8, 2048);
        vm.Memory.TryWriteUInt16(ring + 12, 2);   // device-writable
        vm.Memory.TryWriteUInt16(ring + 16 * 256 + 4, 0);
        vm.Memory.TryWriteUInt16(ring + 16 * 256 + 2, 1);
        var frame = NetworkGuestTests.Eth(NetworkGuestTests.GuestMac, 0x88B5, new byte[46]);
        net.Send(frame);
        var got = new byte[frame.Length];
        vm.Memory.TryRead(buffer + VirtioNet.LegacyHeaderLength, got);
        vm.Memory.TryReadUInt32(ring + 2 * 4096 + 8, out uint usedLength);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(got, Is.EqualTo(frame));
            Assert.That(usedLength, Is.EqualTo((uint)(VirtioNet.LegacyHeaderLength + frame.Length)));
            Assert.That(router.Levels, Is.EqualTo(new[] { (11, true) }));
        }
        bus.WritePort((ushort)(io + VirtioPci.RegStatus), 1, 0);
        Assert.That(router.Levels[^1], Is.EqualTo((11, false)), "a reset clears the ISR and lowers the line");
        Assert.That(bus.ReadPort((ushort)(io + VirtioPci.RegQueuePfn), 4), Is.Zero, "and forgets the queue");
    }

    [Test]
    public void A_c_guest_enumerates_bus_0_sizes_bars_and_sends_a_frame_through_virtio_net_pci()
    {
        var image = CGuestTests.Build("pcinet.c", 2);
        using var net = new NetworkGuestTests.Net();
        var disk = new VirtioBlkTests.ArrayDisk(1 << 20);
        using var vm = new Vm(net.Scheduler, new VmConfig { Image = image, Backend = VmBackend.Interpreter, MemorySize = 8UL << 20, PciDevices = true });
        vm.AttachNic(net.GuestSide);
        vm.AttachDisk(disk, "disk0");
        vm.Start();
        net.Scheduler.RunUntil(() => vm.IsStopped, net.Scheduler.Now + 10 * Time.Second);
        Assert.That(vm.StopReason, Is.EqualTo(VmStopReason.PoweredOff), vm.StopDetail + "\n" + vm.ConsoleOutput);
        Assert.That(vm.ExitStatus, Is.Zero, vm.ConsoleOutput);
        Assert.That(vm.ConsoleOutput, Is.EqualTo(
            "pci 00:00.0 8086:1237 class 060000\n" +
            "pci 00:01.0 1af4:1000 class 020000\n" +
            "  bar0 io 0xc000 size 64 irq 11 pin 1 subsystem 1\n" +
            "  features 0x00000020 queue0 256 queue1 256\n" +
            "pci 00:02.0 1af4:1001 class 010000\n" +
            "  bar0 io 0xc040 size 64 irq 10 pin 1 subsystem 2\n" +
            "  features 0x00000200 queue0 256 queue1 0\n" +
            "mac 02:00:00:00:00:02\n" +
            "sent, isr 1 then 0\n"));
        Assert.That(net.Received.Frames, Has.Count.EqualTo(1));
        var f = net.Received.Frames[0];
        Assert.That(f.AsSpan(0, 6).ToArray(), Is.All.EqualTo(0xFF));
        Assert.That(MacAddress.Read(f.AsSpan(6, 6)), Is.EqualTo(NetworkGuestTests.GuestMac));
        Assert.That(System.Text.Encoding.ASCII.GetString(f, 14, 6), Is.EqualTo("pcinet"));
    }
}
