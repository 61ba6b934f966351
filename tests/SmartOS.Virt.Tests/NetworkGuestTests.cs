using System.Buffers.Binary;
using System.Net;
using PacketDotNet;
using SmartOS.Kernel;
using SmartOS.Kernel.Wire;
using SmartOS.Vnic;

namespace SmartOS.Virt.Tests;

/// <summary>
/// The netecho C guest on a virtio-net NIC behind a VNIC, talking to a test MAC client on the same
/// etherstub. Frames are built by hand and the replies dissected by PacketDotNet (an independent parser).
/// </summary>
public class NetworkGuestTests
{
    internal static readonly MacAddress GuestMac = new(0x02_00_00_00_00_02);
    internal static readonly MacAddress PeerMac = new(0x02_00_00_00_00_01);
    internal const uint GuestIp = 0x0A00_0002, PeerIp = 0x0A00_0001;

    internal sealed class Collector : IMacReceiver
    {
        public readonly List<byte[]> Frames = new();
        public void Receive(MacClient client, SmartOS.Kernel.Packet packet)
        {
            Frames.Add(packet.Data.ToArray());
            packet.Free();
        }
    }

    internal sealed class Net : IDisposable
    {
        public readonly Scheduler Scheduler = new();
        public readonly PacketPool Pool = new();
        public readonly MacLayer Mac;
        public readonly MacClient GuestSide, Peer;
        public readonly Collector Received = new();
        public Vm? Vm;

        public Net()
        {
            Mac = new MacLayer("host", Scheduler, Pool, new KstatRegistry(), new HostRandom(1));
            Mac.CreateEtherstub("stub0", temporary: true);
            Mac.CreateVnic("vm0", "stub0", new MacLayer.MacRequest(MacAddressType.Fixed, GuestMac), 0, true, out var g);
            Mac.CreateVnic("peer0", "stub0", new MacLayer.MacRequest(MacAddressType.Fixed, PeerMac), 0, true, out var p);
            GuestSide = g!.OpenClient("vm")!;
            Peer = p!.OpenClient("test")!;
            Peer.Receiver = Received;
        }

        public Vm Boot(byte[] image)
        {
            Vm = new Vm(Scheduler, new VmConfig { Name = "netecho", Image = image, Backend = VmBackend.Interpreter, MemorySize = 8UL << 20 });
            Vm.AttachNic(GuestSide);
            Vm.Start();
            Scheduler.RunUntil(() => Vm.ConsoleOutput.Contains("net up", StringComparison.Ordinal) || Vm.IsStopped, Scheduler.Now + Time.Second);
            return Vm;
        }

        public void Send(byte[] frame)
        {
            Peer.Transmit(Pool.Rent(frame)!);
            Scheduler.RunFor(Time.Millisecond);
        }

        public void Dispose() => Vm?.Dispose();
    }

    internal static byte[] Eth(MacAddress dst, ushort type, byte[] payload)
    {
        var f = new byte[14 + payload.Length];
        dst.Write(f);
        PeerMac.Write(f.AsSpan(6));
        BinaryPrimitives.WriteUInt16BigEndian(f.AsSpan(12), type);
        payload.CopyTo(f, 14);
        return f;
    }

    internal static byte[] ArpRequest(uint targetIp)
    {
        var a = new byte[28];
        BinaryPrimitives.WriteUInt16BigEndian(a, 1);
        BinaryPrimitives.WriteUInt16BigEndian(a.AsSpan(2), 0x0800);
        a[4] = 6; a[5] = 4;
        BinaryPrimitives.WriteUInt16BigEndian(a.AsSpan(6), 1);
        PeerMac.Write(a.AsSpan(8));
        BinaryPrimitives.WriteUInt32BigEndian(a.AsSpan(14), PeerIp);
        BinaryPrimitives.WriteUInt32BigEndian(a.AsSpan(24), targetIp);
        return Eth(MacAddress.Broadcast, 0x0806, a);
    }

    internal static byte[] Ip(byte protocol, byte[] l4)
    {
        var p = new byte[20 + l4.Length];
        Ipv4View.Write(p, PeerIp, GuestIp, protocol, l4.Length, id: 0x1234);
        l4.CopyTo(p, 20);
        return Eth(GuestMac, 0x0800, p);
    }

    internal static byte[] EchoRequest(ushort id, ushort seq, byte[] data)
    {
        var icmp = new byte[8 + data.Length];
        icmp[0] = 8;
        BinaryPrimitives.WriteUInt16BigEndian(icmp.AsSpan(4), id);
        BinaryPrimitives.WriteUInt16BigEndian(icmp.AsSpan(6), seq);
        data.CopyTo(icmp, 8);
        BinaryPrimitives.WriteUInt16BigEndian(icmp.AsSpan(2), Checksum.Compute(icmp));
        return Ip(1, icmp);
    }

    internal static byte[] Udp(ushort src, ushort dst, byte[] data)
    {
        var u = new byte[8 + data.Length];
        BinaryPrimitives.WriteUInt16BigEndian(u, src);
        BinaryPrimitives.WriteUInt16BigEndian(u.AsSpan(2), dst);
        BinaryPrimitives.WriteUInt16BigEndian(u.AsSpan(4), (ushort)u.Length);
        data.CopyTo(u, 8);
        return Ip(17, u);
    }

    [TestCase(0)]
    [TestCase(2)]
    public void Guest_answers_arp_ping_and_udp_echo_through_its_virtio_nic(int opt)
    {
        using var net = new Net();
        var vm = net.Boot(CGuestTests.Build("netecho.c", opt));
        Assert.That(vm.ConsoleOutput, Is.EqualTo("net up, mac 02:00:00:00:00:02\n"), vm.StopDetail);

        net.Send(ArpRequest(GuestIp));
        net.Send(EchoRequest(0x77, 1, "abcdefgh01234567"u8.ToArray()));
        net.Send(Udp(40000, 7, "hello, udp"u8.ToArray()));
        net.Send(Udp(40000, 9, "discard me"u8.ToArray()));
        Assert.That(net.Received.Frames, Has.Count.EqualTo(3));

        var arp = (ArpPacket)PacketDotNet.Packet.ParsePacket(LinkLayers.Ethernet, net.Received.Frames[0]).PayloadPacket;
        var ping = PacketDotNet.Packet.ParsePacket(LinkLayers.Ethernet, net.Received.Frames[1]).Extract<IcmpV4Packet>();
        var pingIp = PacketDotNet.Packet.ParsePacket(LinkLayers.Ethernet, net.Received.Frames[1]).Extract<IPv4Packet>();
        var udp = PacketDotNet.Packet.ParsePacket(LinkLayers.Ethernet, net.Received.Frames[2]).Extract<UdpPacket>();
        using (Assert.EnterMultipleScope())
        {
            Assert.That(arp.Operation, Is.EqualTo(ArpOperation.Response));
            Assert.That(arp.SenderProtocolAddress, Is.EqualTo(IPAddress.Parse("10.0.0.2")));
            Assert.That(arp.SenderHardwareAddress.ToString(), Is.EqualTo("020000000002"));
            Assert.That(ping.TypeCode, Is.EqualTo(IcmpV4TypeCode.EchoReply));
            Assert.That(ping.Id, Is.EqualTo((ushort)0x77));
            Assert.That(ping.Data, Is.EqualTo("abcdefgh01234567"u8.ToArray()));
            Assert.That(ping.ValidIcmpChecksum, Is.True);
            Assert.That(pingIp.ValidIPChecksum, Is.True);
            Assert.That(pingIp.DestinationAddress, Is.EqualTo(IPAddress.Parse("10.0.0.1")));
            Assert.That(udp.DestinationPort, Is.EqualTo((ushort)40000));
            Assert.That(udp.PayloadData, Is.EqualTo("hello, udp"u8.ToArray()));
            Assert.That(vm.Nics[0].TxFrames, Is.EqualTo(3));
            Assert.That(vm.Nics[0].RxFrames, Is.EqualTo(4));
            Assert.That(vm.Nics[0].Error, Is.Null);
        }
    }

    [Test]
    public void An_idle_network_guest_waits_in_hlt_instead_of_spinning()
    {
        using var net = new Net();
        var vm = net.Boot(CGuestTests.Build("netecho.c", 2));
        long before = vm.InstructionsRetired;
        net.Scheduler.RunFor(Time.Second);
        net.Send(EchoRequest(1, 1, [1, 2, 3]));
        using (Assert.EnterMultipleScope())
        {
            Assert.That(vm.InstructionsRetired - before, Is.LessThan(5_000), "a second of idle time");
            Assert.That(net.Received.Frames, Has.Count.EqualTo(1));
            Assert.That(vm.State, Is.EqualTo(VmState.Running));
        }
        vm.Stop();
        Assert.That(vm.StopReason, Is.EqualTo(VmStopReason.StoppedByHost));
    }

    [Test]
    public void Frames_for_a_guest_whose_driver_is_not_ready_are_counted_as_dropped()
    {
        using var net = new Net();
        using var vm = new Vm(net.Scheduler, new VmConfig { Image = [0xFB, 0xF4, 0xEB, 0xFC], Backend = VmBackend.Interpreter, MemorySize = 4UL << 20 });
        var nic = vm.AttachNic(net.GuestSide);
        vm.Start();
        net.Send(ArpRequest(GuestIp));
        Assert.That(nic.RxDropped, Is.EqualTo(1));
    }
}

public class StoppedVmNetworkTests
{
    [Test]
    public void Frames_sent_to_a_stopped_and_disposed_vm_are_dropped_by_the_mac_layer()
    {
        using var net = new NetworkGuestTests.Net();
        var vm = net.Boot(CGuestTests.Build("netecho.c", 2));
        vm.Stop();
        net.Send(NetworkGuestTests.EchoRequest(1, 1, [1]));
        vm.Dispose();
        net.Send(NetworkGuestTests.EchoRequest(1, 2, [2]));
        using (Assert.EnterMultipleScope())
        {
            Assert.That(net.GuestSide.Receiver, Is.Null);
            Assert.That(net.Received.Frames, Is.Empty);
            Assert.That(vm.Nics[0].RxFrames, Is.Zero);
        }
    }
}
