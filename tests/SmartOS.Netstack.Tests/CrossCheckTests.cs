using PacketDotNet;
using SmartOS.Kernel;
using Packet = PacketDotNet.Packet;
using SmartOS.Kernel.Wire;
using SmartOS.Vnic;

namespace SmartOS.Netstack.Tests;

/// <summary>What the stack emits, dissected by PacketDotNet (an independent implementation).</summary>
public class CrossCheckTests
{
    private sealed class Recorder : ICaptureTap
    {
        public readonly List<byte[]> Frames = [];
        public void Capture(Datalink link, ReadOnlySpan<byte> frame, long time, TapDirection direction)
        {
            if (direction == TapDirection.Transmitted) Frames.Add(frame.ToArray());
        }
    }

    private static (World w, IpStack a, IpStack b, Recorder tap) Pair()
    {
        var w = new World();
        w.Stub("stub0");
        var a = w.Stack("stub0", "10.0.0.1/24");
        var b = w.Stack("stub0", "10.0.0.2/24");
        var tap = new Recorder();
        a.FindInterface("net0")!.Client!.Link.AddTap(tap);
        return (w, a, b, tap);
    }

    [Test]
    public void Arp_request_and_ipv4_icmp_echo_decode_in_packetdotnet()
    {
        var (w, a, _, tap) = Pair();
        using var sock = a.OpenIcmpSocket(false);
        sock.SendEcho(World.Ip("10.0.0.2"), 3, 100);
        w.Run(Time.Second);
        var arp = Packet.ParsePacket(LinkLayers.Ethernet, tap.Frames[0]).Extract<ArpPacket>();
        var echo = Packet.ParsePacket(LinkLayers.Ethernet, tap.Frames[1]);
        var ip = echo.Extract<IPv4Packet>();
        var icmp = echo.Extract<IcmpV4Packet>();
        using (Assert.EnterMultipleScope())
        {
            Assert.That(arp.Operation, Is.EqualTo(ArpOperation.Request));
            Assert.That(arp.TargetProtocolAddress.ToString(), Is.EqualTo("10.0.0.2"));
            Assert.That(arp.SenderProtocolAddress.ToString(), Is.EqualTo("10.0.0.1"));
            Assert.That(ip.SourceAddress.ToString(), Is.EqualTo("10.0.0.1"));
            Assert.That(ip.DestinationAddress.ToString(), Is.EqualTo("10.0.0.2"));
            Assert.That(ip.ValidIPChecksum, Is.True);
            Assert.That(ip.TotalLength, Is.EqualTo(128));
            Assert.That(icmp.TypeCode, Is.EqualTo(IcmpV4TypeCode.EchoRequest));
            Assert.That(icmp.Sequence, Is.EqualTo(3));
            Assert.That(icmp.ValidIcmpChecksum, Is.True);
        }
    }

    [Test]
    public void Address_add_sends_three_arp_probes_then_a_gratuitous_announcement()
    {
        var w = new World();
        w.Stub("stub0");
        var a = w.Stack("stub0", null);
        var tap = new Recorder();
        a.FindInterface("net0")!.Client!.Link.AddTap(tap);
        a.AddAddress("net0/v4", World.Ip("10.0.0.5"), 24, out var obj);
        w.Run(2 * Time.Second);
        Assert.That(tap.Frames, Has.Count.EqualTo(4));
        using (Assert.EnterMultipleScope())
        {
            for (int i = 0; i < 3; i++)
            {
                var probe = Packet.ParsePacket(LinkLayers.Ethernet, tap.Frames[i]).Extract<ArpPacket>();
                Assert.That(probe.SenderProtocolAddress.ToString(), Is.EqualTo("0.0.0.0"));
                Assert.That(probe.TargetProtocolAddress.ToString(), Is.EqualTo("10.0.0.5"));
            }
            var announce = Packet.ParsePacket(LinkLayers.Ethernet, tap.Frames[3]);
            var arp = announce.Extract<ArpPacket>();
            Assert.That(((EthernetPacket)announce).DestinationHardwareAddress.ToString(), Is.EqualTo("FFFFFFFFFFFF"));
            Assert.That(arp.SenderProtocolAddress.ToString(), Is.EqualTo("10.0.0.5"));
            Assert.That(arp.TargetProtocolAddress.ToString(), Is.EqualTo("10.0.0.5"));
            Assert.That(obj!.State, Is.EqualTo(AddressState.Ok));
            Assert.That(a.ArpStats.arpOutGratuitous, Is.EqualTo(1));
        }
    }

    [Test]
    public void Udp_datagram_decodes_with_a_valid_checksum()
    {
        var (w, a, b, tap) = Pair();
        using var s = a.OpenUdpSocket();
        s.Bind(IpAddress.AnyV4, 4000);
        s.SendTo("payload"u8, new IpEndpoint(World.Ip("10.0.0.2"), 53));
        w.Run(Time.Second);
        var p = Packet.ParsePacket(LinkLayers.Ethernet, tap.Frames[^1]);
        var udp = p.Extract<UdpPacket>();
        using (Assert.EnterMultipleScope())
        {
            Assert.That(udp.SourcePort, Is.EqualTo(4000));
            Assert.That(udp.DestinationPort, Is.EqualTo(53));
            Assert.That(udp.ValidUdpChecksum, Is.True);
            Assert.That(udp.PayloadData, Is.EqualTo("payload"u8.ToArray()));
        }
    }

    [Test]
    public void Fragments_decode_with_consistent_offsets_and_flags()
    {
        var (w, a, _, tap) = Pair();
        using var sock = a.OpenIcmpSocket(false);
        sock.SendEcho(World.Ip("10.0.0.2"), 1, 3000);
        w.Run(Time.Second);
        var frags = new List<IPv4Packet>();
        foreach (var f in tap.Frames)
        {
            var ip = Packet.ParsePacket(LinkLayers.Ethernet, f).Extract<IPv4Packet>();
            if (ip != null && ip.Protocol == PacketDotNet.ProtocolType.Icmp) frags.Add(ip);
        }
        Assert.That(frags, Has.Count.EqualTo(3));
        using (Assert.EnterMultipleScope())
        {
            Assert.That(frags[0].FragmentOffset, Is.Zero);
            Assert.That(frags[1].FragmentOffset * 8, Is.EqualTo(1480));
            Assert.That(frags[2].FragmentOffset * 8, Is.EqualTo(2960));
            Assert.That((frags[0].FragmentFlags & 1) != 0, Is.True, "more fragments");
            Assert.That((frags[2].FragmentFlags & 1) != 0, Is.False);
            Assert.That(frags[0].Id, Is.EqualTo(frags[2].Id));
            foreach (var f in frags) Assert.That(f.ValidIPChecksum, Is.True);
        }
    }

    [Test]
    public void Neighbour_solicitation_and_echo_over_ipv6_decode_in_packetdotnet()
    {
        var w = new World();
        w.Stub("stub0");
        var a = w.Stack("stub0", null);
        var b = w.Stack("stub0", null);
        var tap = new Recorder();
        a.FindInterface("net0")!.Client!.Link.AddTap(tap);
        a.AddAddress("net0/v6", World.Ip("2001:db8::1"), 64, out _);
        b.AddAddress("net0/v6", World.Ip("2001:db8::2"), 64, out _);
        w.Run(2 * Time.Second);
        tap.Frames.Clear();
        using var sock = a.OpenIcmpSocket(true);
        sock.SendEcho(World.Ip("2001:db8::2"), 9, 32);
        w.Run(Time.Second);
        var ns = Packet.ParsePacket(LinkLayers.Ethernet, tap.Frames[0]);
        var ip6 = ns.Extract<IPv6Packet>();
        var icmp6 = ns.Extract<IcmpV6Packet>();
        var echo = Packet.ParsePacket(LinkLayers.Ethernet, tap.Frames[1]).Extract<IcmpV6Packet>();
        using (Assert.EnterMultipleScope())
        {
            Assert.That(ip6.HopLimit, Is.EqualTo(255));
            Assert.That(ip6.DestinationAddress.ToString(), Is.EqualTo("ff02::1:ff00:2"));
            Assert.That(icmp6.Type, Is.EqualTo(IcmpV6Type.NeighborSolicitation));
            Assert.That(echo.Type, Is.EqualTo(IcmpV6Type.EchoRequest));
            Assert.That(((EthernetPacket)Packet.ParsePacket(LinkLayers.Ethernet, tap.Frames[0])).DestinationHardwareAddress.ToString(), Is.EqualTo("3333FF000002"));
        }
        // The checksum over the pseudo-header, recomputed independently of the stack's own helper.
        var raw = tap.Frames[1].AsSpan(14);
        var src = IpAddress.Read(raw[8..], false);
        var dst = IpAddress.Read(raw[24..], false);
        Assert.That(Ipv6View.TransportChecksum(src, dst, IpProtocol.Icmpv6, raw[40..]), Is.Zero);
    }
}
