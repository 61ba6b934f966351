using SmartOS.Virt.Devices;

namespace SmartOS.Virt.Tests;

/// <summary>
/// The virtio-net device driven register by register, as a guest driver would, with rings the
/// test writes into guest memory. Malformed rings stop the device with a reason; the VM and the
/// host go on.
/// </summary>
public class VirtioNetTests
{
    private const ulong Desc = 0x20_0000, Avail = 0x20_1000, Used = 0x20_2000, Buffers = 0x21_0000;
    private const ushort Next = 1, DeviceWrites = 2;

    private sealed class Rig : IDisposable
    {
        public readonly NetworkGuestTests.Net Net = new();
        public readonly Vm Vm;
        public readonly VirtioNet Nic;

        public Rig()
        {
            // sti; hlt; jmp back: a guest that waits for events and never touches the device itself.
            Vm = new Vm(Net.Scheduler, new VmConfig { Image = [0xFB, 0xF4, 0xEB, 0xFC], Backend = VmBackend.Interpreter, MemorySize = 4UL << 20 });
            Nic = Vm.AttachNic(Net.GuestSide);
            Vm.Start();
            Net.Scheduler.RunFor(1000);
        }

        public void Reg(uint offset, ulong value) => Nic.Write(Nic.BaseAddress + offset, 4, value);
        public ulong Reg(uint offset) => Nic.Read(Nic.BaseAddress + offset, 4);

        public void SetUpQueue(uint index, ulong desc = Desc, ulong avail = Avail, ulong used = Used)
        {
            Reg(0x70, 1 | 2 | 8);
            Reg(0x30, index);
            Reg(0x38, 16);
            Reg(0x80, (uint)desc); Reg(0x84, desc >> 32);
            Reg(0x90, (uint)avail); Reg(0x94, avail >> 32);
            Reg(0xA0, (uint)used); Reg(0xA4, used >> 32);
            Reg(0x44, 1);
            Reg(0x70, 1 | 2 | 8 | 4);
        }

        public void Descriptor(int i, ulong addr, uint len, ushort flags, ushort next = 0)
        {
            Vm.Memory.TryWriteUInt64(Desc + 16UL * (ulong)i, addr);
            Vm.Memory.TryWriteUInt32(Desc + 16UL * (ulong)i + 8, len);
            Vm.Memory.TryWriteUInt16(Desc + 16UL * (ulong)i + 12, flags);
            Vm.Memory.TryWriteUInt16(Desc + 16UL * (ulong)i + 14, next);
        }

        public void Offer(ushort head, ushort availIdx)
        {
            Vm.Memory.TryWriteUInt16(Avail + 4 + 2UL * (ulong)((availIdx - 1) % 16), head);
            Vm.Memory.TryWriteUInt16(Avail + 2, availIdx);
        }

        public void Dispose()
        {
            Vm.Dispose();
        }
    }

    private static byte[] FrameWithHeader()
    {
        var frame = NetworkGuestTests.Eth(NetworkGuestTests.PeerMac, 0x88B5, new byte[46]);
        var withHeader = new byte[VirtioNet.HeaderLength + frame.Length];
        frame.CopyTo(withHeader, VirtioNet.HeaderLength);
        return withHeader;
    }

    [Test]
    public void A_well_formed_transmit_chain_reaches_the_peer()
    {
        using var rig = new Rig();
        rig.SetUpQueue(1);
        var bytes = FrameWithHeader();
        rig.Vm.Memory.TryWrite(Buffers, bytes.AsSpan(0, 20));
        rig.Vm.Memory.TryWrite(Buffers + 0x1000, bytes.AsSpan(20));
        rig.Descriptor(0, Buffers, 20, Next, 1);
        rig.Descriptor(1, Buffers + 0x1000, (uint)bytes.Length - 20, 0);
        rig.Offer(0, 1);
        rig.Reg(0x50, 1);
        rig.Vm.Memory.TryReadUInt16(Used + 2, out ushort usedIdx);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(rig.Nic.Error, Is.Null);
            Assert.That(rig.Net.Received.Frames, Has.Count.EqualTo(1));
            Assert.That(rig.Net.Received.Frames[0], Is.EqualTo(bytes[VirtioNet.HeaderLength..]));
            Assert.That(usedIdx, Is.EqualTo((ushort)1));
        }
    }

    [TestCase(0x7_0000_0000UL, "outside guest memory")]
    [TestCase(0x3F_FFF0UL, "outside guest memory")]
    public void A_transmit_buffer_outside_guest_memory_stops_the_device(ulong address, string reason)
    {
        using var rig = new Rig();
        rig.SetUpQueue(1);
        rig.Descriptor(0, address, 64, 0);
        rig.Offer(0, 1);
        rig.Reg(0x50, 1);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(rig.Nic.Error, Does.Contain(reason));
            Assert.That(rig.Reg(0x70) & 0x40, Is.EqualTo(0x40UL), "DEVICE_NEEDS_RESET");
            Assert.That(rig.Net.Received.Frames, Is.Empty);
            Assert.That(rig.Vm.State, Is.EqualTo(VmState.Running));
        }
    }

    [Test]
    public void A_descriptor_loop_stops_the_device()
    {
        using var rig = new Rig();
        rig.SetUpQueue(1);
        rig.Descriptor(0, Buffers, 16, Next, 1);
        rig.Descriptor(1, Buffers, 16, Next, 0);
        rig.Offer(0, 1);
        rig.Reg(0x50, 1);
        Assert.That(rig.Nic.Error, Does.Contain("loops"));
    }

    [Test]
    public void An_oversized_chain_stops_the_device()
    {
        using var rig = new Rig();
        rig.SetUpQueue(1);
        for (int i = 0; i < 15; i++) rig.Descriptor(i, Buffers, 1000, Next, (ushort)(i + 1));
        rig.Descriptor(15, Buffers, 1000, 0);
        rig.Offer(0, 1);
        rig.Reg(0x50, 1);
        Assert.That(rig.Nic.Error, Does.Contain("larger than"));
    }

    [Test]
    public void A_descriptor_table_outside_guest_memory_stops_the_device()
    {
        using var rig = new Rig();
        rig.SetUpQueue(1, desc: 0xFFFF_FFFF_0000);
        rig.Offer(0, 1);
        rig.Reg(0x50, 1);
        Assert.That(rig.Nic.Error, Does.Contain("descriptor table"));
    }

    [Test]
    public void An_avail_index_running_past_the_queue_stops_the_device()
    {
        using var rig = new Rig();
        rig.SetUpQueue(1);
        rig.Offer(0, 1000);
        rig.Reg(0x50, 1);
        Assert.That(rig.Nic.Error, Does.Contain("avail index"));
    }

    [Test]
    public void A_receive_descriptor_the_device_may_not_write_stops_the_device()
    {
        using var rig = new Rig();
        rig.SetUpQueue(0);
        rig.Descriptor(0, Buffers, 2048, 0);
        rig.Offer(0, 1);
        rig.Net.Send(NetworkGuestTests.ArpRequest(NetworkGuestTests.GuestIp));
        Assert.That(rig.Nic.Error, Does.Contain("not device-writable"));
    }

    [Test]
    public void A_received_frame_lands_in_the_guest_buffer_after_the_virtio_header()
    {
        using var rig = new Rig();
        rig.SetUpQueue(0);
        rig.Descriptor(0, Buffers, 2048, DeviceWrites);
        rig.Offer(0, 1);
        var arp = NetworkGuestTests.ArpRequest(NetworkGuestTests.GuestIp);
        rig.Net.Send(arp);
        var landed = new byte[arp.Length];
        rig.Vm.Memory.TryRead(Buffers + VirtioNet.HeaderLength, landed);
        rig.Vm.Memory.TryReadUInt32(Used + 8, out uint len);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(landed, Is.EqualTo(arp));
            Assert.That(len, Is.EqualTo((uint)(VirtioNet.HeaderLength + arp.Length)));
            Assert.That(rig.Nic.RxFrames, Is.EqualTo(1));
        }
    }

    [Test]
    public void A_reset_after_an_error_brings_the_device_back()
    {
        using var rig = new Rig();
        rig.SetUpQueue(1);
        rig.Descriptor(0, 0x7_0000_0000UL, 64, 0);
        rig.Offer(0, 1);
        rig.Reg(0x50, 1);
        Assert.That(rig.Nic.Error, Is.Not.Null);

        rig.Reg(0x70, 0);
        rig.Vm.Memory.TryWriteUInt16(Avail + 2, 0);
        rig.Vm.Memory.TryWriteUInt16(Used + 2, 0);
        rig.SetUpQueue(1);
        var bytes = FrameWithHeader();
        rig.Vm.Memory.TryWrite(Buffers, bytes);
        rig.Descriptor(0, Buffers, (uint)bytes.Length, 0);
        rig.Offer(0, 1);
        rig.Reg(0x50, 1);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(rig.Nic.Error, Is.Null);
            Assert.That(rig.Net.Received.Frames, Has.Count.EqualTo(1));
        }
    }

    [Test]
    public void The_device_identifies_itself_as_a_modern_virtio_network_card_with_the_vnic_mac()
    {
        using var rig = new Rig();
        var mac = new byte[6];
        for (uint i = 0; i < 6; i++) mac[i] = (byte)rig.Nic.Read(rig.Nic.BaseAddress + 0x100 + i, 1);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(rig.Reg(0x000), Is.EqualTo(0x74726976UL));
            Assert.That(rig.Reg(0x004), Is.EqualTo(2UL));
            Assert.That(rig.Reg(0x008), Is.EqualTo(1UL));
            Assert.That(mac, Is.EqualTo(new byte[] { 2, 0, 0, 0, 0, 2 }));
        }
    }
}
