using SmartOS.Kernel;
using SmartOS.Kernel.Wire;

namespace SmartOS.Netstack.Tests;

/// <summary>
/// Each way a header can be wrong, injected into a stack as a hand-built frame, lands in the counter
/// that names it (IpStack rule 2) and in no other drop counter: the stack reads headers through the
/// wire Reprs, and these pin down that every refusal still maps where it always did.
/// </summary>
public class MalformedHeaderCounterTests
{
    private static readonly MacAddress s_peer = new(0x020000000009);

    private static long Drops(IpStack s) =>
        s.Counters.TotalDrops + s.Counters6.TotalDrops + s.Icmp.TotalDrops + s.Icmp6.TotalDrops + s.UdpStats.TotalDrops;

    private static (World W, IpStack S, IpInterface Ifc) V4Stack()
    {
        var w = new World();
        w.Stub("stub0");
        var s = w.Stack("stub0", "10.0.0.1/24");
        return (w, s, s.FindInterface("net0")!);
    }

    private static byte[] V4(IpInterface ifc, byte proto, byte[] payload) => Frames.Ipv4(ifc.MacAddress, s_peer, "10.0.0.9", "10.0.0.1", proto, payload);

    private static void FixIpChecksum(byte[] f)
    {
        f[24] = f[25] = 0;
        ushort c = Checksum.Compute(f.AsSpan(14, (f[14] & 0xF) * 4));
        f[24] = (byte)(c >> 8); f[25] = (byte)c;
    }

    private static byte[] Icmp(byte type, byte code, byte[] body)
    {
        var m = new byte[8 + body.Length];
        m[0] = type; m[1] = code;
        body.CopyTo(m, 8);
        IcmpView.FinishV4(m);
        return m;
    }

    private static long Inject(World w, IpStack s, IpInterface ifc, byte[] frame, Func<IpStack, long> counter)
    {
        long before = counter(s), dropsBefore = Drops(s);
        s.Inject(ifc, Packet.Unpooled(frame));
        w.Run(Time.Second);
        Assert.That(Drops(s) - dropsBefore, Is.EqualTo(counter(s) - before), "counted once, in that counter");
        return counter(s) - before;
    }

    [Test]
    public void Malformed_IPv4_headers_are_counted_as_header_errors_or_checksum_errors()
    {
        var (w, s, ifc) = V4Stack();
        var udp = Frames.Udp("10.0.0.9", "10.0.0.1", 1000, 9, "hello"u8.ToArray());
        var shortFrame = V4(ifc, IpProtocol.Udp, udp)[..(14 + 19)];
        var version = V4(ifc, IpProtocol.Udp, udp);
        version[14] = 0x55;
        FixIpChecksum(version);
        var ihl = V4(ifc, IpProtocol.Udp, udp);
        ihl[14] = 0x44;
        var total = V4(ifc, IpProtocol.Udp, udp);
        total[17] += 10;
        FixIpChecksum(total);
        var checksum = V4(ifc, IpProtocol.Udp, udp);
        checksum[22] ^= 1;

        using (Assert.EnterMultipleScope())
        {
            Assert.That(Inject(w, s, ifc, shortFrame, x => x.Counters.ipInHdrErrors), Is.EqualTo(1), "shorter than 20 bytes");
            Assert.That(Inject(w, s, ifc, version, x => x.Counters.ipInHdrErrors), Is.EqualTo(1), "version 5");
            Assert.That(Inject(w, s, ifc, ihl, x => x.Counters.ipInHdrErrors), Is.EqualTo(1), "IHL 4");
            Assert.That(Inject(w, s, ifc, total, x => x.Counters.ipInHdrErrors), Is.EqualTo(1), "total length beyond the frame");
            Assert.That(Inject(w, s, ifc, checksum, x => x.Counters.ipInCksumErrs), Is.EqualTo(1), "bad header checksum");
        }
    }

    [Test]
    public void Malformed_UDP_headers_are_counted_as_udp_errors()
    {
        var (w, s, ifc) = V4Stack();
        using var sock = s.OpenUdpSocket();
        sock.Bind(IpAddress.AnyV4, 9);
        var longer = Frames.Udp("10.0.0.9", "10.0.0.1", 1000, 9, "hello"u8.ToArray());
        longer[5] += 4; // length field beyond the IP payload
        var shorter = Frames.Udp("10.0.0.9", "10.0.0.1", 1000, 9, "hello"u8.ToArray());
        shorter[5] = 7; // below the header's own 8 bytes
        var badSum = Frames.Udp("10.0.0.9", "10.0.0.1", 1000, 9, "hello"u8.ToArray());
        badSum[^1] ^= 0xFF;

        using (Assert.EnterMultipleScope())
        {
            Assert.That(Inject(w, s, ifc, V4(ifc, IpProtocol.Udp, longer), x => x.UdpStats.udpInErrors), Is.EqualTo(1), "length beyond the datagram");
            Assert.That(Inject(w, s, ifc, V4(ifc, IpProtocol.Udp, shorter), x => x.UdpStats.udpInErrors), Is.EqualTo(1), "length below 8");
            Assert.That(Inject(w, s, ifc, V4(ifc, IpProtocol.Udp, "abcd"u8.ToArray()), x => x.UdpStats.udpInErrors), Is.EqualTo(1), "shorter than a header");
            Assert.That(Inject(w, s, ifc, V4(ifc, IpProtocol.Udp, badSum), x => x.UdpStats.udpInCksumErrs), Is.EqualTo(1), "bad checksum");
        }
    }

    [Test]
    public void Malformed_ICMP_messages_are_counted_by_cause()
    {
        var (w, s, ifc) = V4Stack();
        var badSum = Icmp(IcmpType.EchoRequest, 0, new byte[4]);
        badSum[^1] ^= 1;

        using (Assert.EnterMultipleScope())
        {
            Assert.That(Inject(w, s, ifc, V4(ifc, IpProtocol.Icmp, new byte[4]), x => x.Icmp.icmpInErrors), Is.EqualTo(1), "shorter than 8 bytes");
            Assert.That(Inject(w, s, ifc, V4(ifc, IpProtocol.Icmp, badSum), x => x.Icmp.icmpInCksumErrs), Is.EqualTo(1), "bad checksum");
            Assert.That(Inject(w, s, ifc, V4(ifc, IpProtocol.Icmp, Icmp(42, 0, [])), x => x.Icmp.icmpInUnknowns), Is.EqualTo(1), "unknown type");
            Assert.That(Inject(w, s, ifc, V4(ifc, IpProtocol.Icmp, Icmp(IcmpType.DestinationUnreachable, 3, new byte[10])), x => x.Icmp.icmpInBadQuote), Is.EqualTo(1), "a quote too short for a header");
        }
    }

    [Test]
    public void Malformed_IPv6_and_NDP_are_counted_by_cause()
    {
        var w = new World();
        w.Stub("stub0");
        var s = w.Stack("stub0", null);
        s.StartAddrconf("net0", out var ll);
        w.Run(3 * Time.Second);
        var ifc = s.FindInterface("net0")!;
        var peer = World.Ip("fe80::9");
        var me = ll!.Address;
        byte[] V6(byte next, byte hop, byte[] payload) => Frames.Ipv6(ifc.MacAddress, s_peer, peer, me, next, hop, payload);

        var shortFrame = V6(IpProtocol.Udp, 64, [])[..(14 + 39)];
        var extension = V6(0, 64, new byte[4]); // hop-by-hop options cut short
        var badSum = Frames.Icmpv6(peer, me, IcmpType.V6EchoRequest, 0, 0, new byte[4]);
        badSum[^1] ^= 1;
        var withCode = Frames.Icmpv6(peer, me, IcmpType.NeighborSolicitation, 1, 0, me.ToIPAddressBytes());
        var shortNs = Frames.Icmpv6(peer, me, IcmpType.NeighborSolicitation, 0, 0, new byte[8]);
        var icmpShort = new byte[4];

        using (Assert.EnterMultipleScope())
        {
            Assert.That(Inject(w, s, ifc, shortFrame, x => x.Counters6.ipv6InHdrErrors), Is.EqualTo(1), "shorter than 40 bytes");
            Assert.That(Inject(w, s, ifc, extension, x => x.Counters6.ipv6InHdrErrors), Is.EqualTo(1), "extension header beyond the datagram");
            Assert.That(Inject(w, s, ifc, V6(IpProtocol.Icmpv6, 64, icmpShort), x => x.Icmp6.icmpInErrors), Is.EqualTo(1), "ICMPv6 shorter than 8 bytes");
            Assert.That(Inject(w, s, ifc, V6(IpProtocol.Icmpv6, 64, badSum), x => x.Icmp6.icmpInCksumErrs), Is.EqualTo(1), "ICMPv6 bad checksum");
            Assert.That(Inject(w, s, ifc, V6(IpProtocol.Icmpv6, 255, withCode), x => x.Counters6.ndpInMalformed), Is.EqualTo(1), "NDP with a code");
            Assert.That(Inject(w, s, ifc, V6(IpProtocol.Icmpv6, 255, shortNs), x => x.Counters6.ndpInMalformed), Is.EqualTo(1), "NS shorter than 24 bytes");
        }
    }
}
