using SmartOS.Kernel.Wire;

namespace SmartOS.Kernel.Tests.Wire;

/// <summary>UdpRepr: round trips over both families, length and checksum refusals, PacketDotNet.</summary>
public class UdpReprTests
{
    private static readonly IpAddress s_src4 = IpAddress.V4(0xC6120001), s_dst4 = IpAddress.V4(0xC6120002);
    private static readonly IpAddress s_src6 = IpAddress.V6(0x2001_0DB8_0000_0000UL, 1), s_dst6 = IpAddress.V6(0x2001_0DB8_0000_0000UL, 2);

    private static byte[] Datagram(IpAddress src, IpAddress dst, int payload = 5)
    {
        var b = new byte[UdpRepr.HeaderLength + payload];
        for (int i = 0; i < payload; i++) b[UdpRepr.HeaderLength + i] = (byte)(0xA0 + i);
        Assert.That(new UdpRepr { SourcePort = 5353, DestinationPort = 53 }.TryEmit(b, src, dst), Is.True);
        return b;
    }

    [Test]
    public void Emit_writes_ports_and_length_in_network_order()
    {
        var b = Datagram(s_src4, s_dst4);
        Assert.That(b[..6], Is.EqualTo(new byte[] { 0x14, 0xe9, 0x00, 0x35, 0x00, 0x0d }));
    }

    [Test]
    public void Emit_without_checksum_writes_zero_which_ipv4_parses_as_none_and_ipv6_refuses()
    {
        var b = new byte[UdpRepr.HeaderLength + 5];
        for (int i = 0; i < 5; i++) b[UdpRepr.HeaderLength + i] = (byte)(0xA0 + i);
        Assert.That(new UdpRepr { SourcePort = 50000, DestinationPort = 4789 }.TryEmitWithoutChecksum(b), Is.True);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(b[..8], Is.EqualTo(new byte[] { 0xc3, 0x50, 0x12, 0xb5, 0x00, 0x0d, 0x00, 0x00 }));
            Assert.That(UdpRepr.Parse(b, s_src4, s_dst4, ChecksumCaps.All, out _, out _), Is.EqualTo(WireError.None));
            Assert.That(UdpRepr.Parse(b, s_src6, s_dst6, ChecksumCaps.All, out _, out _), Is.EqualTo(WireError.BadChecksum));
            Assert.That(new UdpRepr().TryEmitWithoutChecksum(new byte[7]), Is.False);
        }
    }

    [TestCase(false, TestName = "A UDP datagram over IPv4 round trips")]
    [TestCase(true, TestName = "A UDP datagram over IPv6 round trips")]
    public void Round_trip(bool v6)
    {
        var (src, dst) = v6 ? (s_src6, s_dst6) : (s_src4, s_dst4);
        var b = Datagram(src, dst);

        var e = UdpRepr.Parse(b, src, dst, ChecksumCaps.All, out var view, out var repr);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(e, Is.EqualTo(WireError.None));
            Assert.That(repr, Is.EqualTo(new UdpRepr { SourcePort = 5353, DestinationPort = 53 }));
            Assert.That(view.Payload.ToArray(), Is.EqualTo(new byte[] { 0xA0, 0xA1, 0xA2, 0xA3, 0xA4 }));
        }
    }

    [Test]
    public void Bytes_after_the_udp_length_are_left_out()
    {
        var b = new byte[20];
        Datagram(s_src4, s_dst4).CopyTo(b, 0);
        Assert.That(UdpRepr.Parse(b, s_src4, s_dst4, ChecksumCaps.All, out var view, out _), Is.EqualTo(WireError.None));
        Assert.That(view.Datagram.Length, Is.EqualTo(13));
    }

    [Test]
    public void A_length_beyond_the_buffer_is_truncated()
    {
        var b = Datagram(s_src4, s_dst4);
        Assert.That(UdpRepr.Parse(b.AsSpan(0, 12), s_src4, s_dst4, ChecksumCaps.None, out _, out _), Is.EqualTo(WireError.Truncated));
    }

    [Test]
    public void A_buffer_shorter_than_the_header_is_truncated()
    {
        Assert.That(UdpRepr.Parse(new byte[7], s_src4, s_dst4, ChecksumCaps.None, out _, out _), Is.EqualTo(WireError.Truncated));
    }

    [Test]
    public void A_length_field_below_eight_is_malformed()
    {
        var b = Datagram(s_src4, s_dst4);
        b[5] = 7;
        Assert.That(UdpRepr.Parse(b, s_src4, s_dst4, ChecksumCaps.None, out _, out _), Is.EqualTo(WireError.Malformed));
    }

    [Test]
    public void A_wrong_checksum_is_refused_only_when_checked()
    {
        var b = Datagram(s_src4, s_dst4);
        b[^1] ^= 0xFF;
        using (Assert.EnterMultipleScope())
        {
            Assert.That(UdpRepr.Parse(b, s_src4, s_dst4, ChecksumCaps.All, out _, out _), Is.EqualTo(WireError.BadChecksum));
            Assert.That(UdpRepr.Parse(b, s_src4, s_dst4, ChecksumCaps.Ipv4, out _, out _), Is.EqualTo(WireError.None));
        }
    }

    [Test]
    public void A_zero_checksum_means_none_over_IPv4_and_is_refused_over_IPv6()
    {
        var v4 = Datagram(s_src4, s_dst4);
        v4[6] = v4[7] = 0;
        var v6 = Datagram(s_src6, s_dst6);
        v6[6] = v6[7] = 0;
        using (Assert.EnterMultipleScope())
        {
            Assert.That(UdpRepr.Parse(v4, s_src4, s_dst4, ChecksumCaps.All, out _, out _), Is.EqualTo(WireError.None));
            Assert.That(UdpRepr.Parse(v6, s_src6, s_dst6, ChecksumCaps.All, out _, out _), Is.EqualTo(WireError.BadChecksum));
        }
    }

    [Test]
    public void The_ports_of_a_quoted_header_are_read_from_its_first_bytes()
    {
        var b = Datagram(s_src4, s_dst4);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(UdpRepr.TryParseQuoted(b.AsSpan(0, 4), out var quoted), Is.True);
            Assert.That(quoted, Is.EqualTo(new UdpRepr { SourcePort = 5353, DestinationPort = 53 }));
            Assert.That(UdpRepr.TryParseQuoted(b.AsSpan(0, 3), out _), Is.False);
        }
    }

    [TestCase(false, TestName = "Emitted UDP over IPv4 agrees with PacketDotNet")]
    [TestCase(true, TestName = "Emitted UDP over IPv6 agrees with PacketDotNet")]
    public void Agrees_with_PacketDotNet(bool v6)
    {
        var random = new HostRandom(31);
        for (int n = 0; n < 20; n++)
        {
            IpAddress src = v6 ? IpAddress.V6(random.NextUInt64(), random.NextUInt64()) : IpAddress.V4(random.NextUInt32());
            IpAddress dst = v6 ? IpAddress.V6(random.NextUInt64(), random.NextUInt64()) : IpAddress.V4(random.NextUInt32());
            int payload = random.Next(200);
            int ipLength = v6 ? Ipv6Repr.HeaderLength : Ipv4Repr.HeaderLength;
            var b = new byte[ipLength + UdpRepr.HeaderLength + payload];
            random.NextBytes(b.AsSpan(ipLength + UdpRepr.HeaderLength));
            var udp = new UdpRepr { SourcePort = (ushort)random.Next(65536), DestinationPort = (ushort)random.Next(65536) };
            udp.TryEmit(b.AsSpan(ipLength), src, dst);
            bool emitted = v6
                ? new Ipv6Repr { Source = src, Destination = dst, NextHeader = IpProtocol.Udp, PayloadLength = b.Length - ipLength, HopLimit = 64 }.TryEmit(b)
                : new Ipv4Repr { Source = src, Destination = dst, Protocol = IpProtocol.Udp, PayloadLength = b.Length - ipLength, Ttl = 64 }.TryEmit(b);
            Assert.That(emitted, Is.True);

            PacketDotNet.IPPacket ip = v6
                ? new PacketDotNet.IPv6Packet(new PacketDotNet.Utils.ByteArraySegment(b))
                : new PacketDotNet.IPv4Packet(new PacketDotNet.Utils.ByteArraySegment(b));
            var parsed = ip.Extract<PacketDotNet.UdpPacket>();
            using (Assert.EnterMultipleScope())
            {
                Assert.That(parsed.ValidUdpChecksum, Is.True, $"case {n}");
                Assert.That(parsed.SourcePort, Is.EqualTo(udp.SourcePort), $"case {n}");
                Assert.That(parsed.DestinationPort, Is.EqualTo(udp.DestinationPort), $"case {n}");
                Assert.That(parsed.Length, Is.EqualTo(UdpRepr.HeaderLength + payload), $"case {n}");
            }
        }
    }
}
