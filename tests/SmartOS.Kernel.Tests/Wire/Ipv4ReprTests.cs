using SmartOS.Kernel.Wire;

namespace SmartOS.Kernel.Tests.Wire;

/// <summary>Ipv4Repr against fixed bytes (parse and emit both), malformed headers, and PacketDotNet.</summary>
public class Ipv4ReprTests
{
    /// <summary>The header worked through in the Internet checksum's usual example: 192.168.0.1 to
    /// 192.168.0.199, UDP, TTL 64, DF, total length 115, checksum 0xb861.</summary>
    private static readonly byte[] s_header =
    [
        0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0xb8, 0x61,
        0xc0, 0xa8, 0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7,
    ];

    private static byte[] Datagram()
    {
        var b = new byte[115 + 6]; // and 6 bytes of Ethernet padding after it
        s_header.CopyTo(b, 0);
        return b;
    }

    private static Ipv4Repr Expected() => new()
    {
        Source = IpAddress.V4(0xC0A80001), Destination = IpAddress.V4(0xC0A800C7), Protocol = IpProtocol.Udp,
        PayloadLength = 95, Ttl = 64, DontFragment = true,
    };

    [Test]
    public void Parse_reads_every_field_and_leaves_the_padding_out()
    {
        var e = Ipv4Repr.Parse(Datagram(), ChecksumCaps.All, out var view, out var repr);

        using (Assert.EnterMultipleScope())
        {
            Assert.That(e, Is.EqualTo(WireError.None));
            Assert.That(repr, Is.EqualTo(Expected()));
            Assert.That(view.Packet.Length, Is.EqualTo(115));
            Assert.That(view.Payload.Length, Is.EqualTo(95));
        }
    }

    [Test]
    public void Emit_writes_the_same_bytes_checksum_included()
    {
        var b = new byte[20];
        Assert.That(Expected().TryEmit(b), Is.True);
        Assert.That(b, Is.EqualTo(s_header));
    }

    [Test]
    public void Emitted_fragments_round_trip()
    {
        var repr = new Ipv4Repr
        {
            Source = IpAddress.V4(0xC6120001), Destination = IpAddress.V4(0xC6120002), Protocol = IpProtocol.Icmp,
            PayloadLength = 1480, Ttl = 7, Tos = 0x10, Identification = 0xBEEF, MoreFragments = true, FragmentOffset = 2960,
        };
        var b = new byte[repr.BufferLength];
        Assert.That(repr.TryEmit(b), Is.True);

        var e = Ipv4Repr.Parse(b, ChecksumCaps.All, out _, out var parsed);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(e, Is.EqualTo(WireError.None));
            Assert.That(parsed, Is.EqualTo(repr));
            Assert.That(parsed.IsFragment, Is.True);
        }
    }

    [TestCase(19, TestName = "A buffer shorter than 20 bytes is truncated")]
    [TestCase(114, TestName = "A buffer shorter than the total length is truncated")]
    public void Short_buffers_are_truncated(int length)
    {
        Assert.That(Ipv4Repr.Parse(Datagram().AsSpan(0, length), ChecksumCaps.All, out _, out _), Is.EqualTo(WireError.Truncated));
    }

    [TestCase(0, 0x65, TestName = "Version 6 in an IPv4 header is malformed")]
    [TestCase(0, 0x44, TestName = "IHL 4 is malformed")]
    [TestCase(3, 0x10, TestName = "A total length shorter than the header is malformed")]
    public void Impossible_fields_are_malformed(int at, int value)
    {
        var b = Datagram();
        b[2] = 0;
        b[at] = (byte)value;
        if (at != 3) b[3] = 0x73;
        Assert.That(Ipv4Repr.Parse(b, ChecksumCaps.None, out _, out _), Is.EqualTo(WireError.Malformed));
    }

    [Test]
    public void Options_beyond_the_buffer_are_truncated()
    {
        var b = Datagram().AsSpan(0, 22).ToArray();
        b[0] = 0x46; // 24-byte header
        b[3] = 22;
        Assert.That(Ipv4Repr.Parse(b, ChecksumCaps.None, out _, out _), Is.EqualTo(WireError.Truncated));
    }

    [Test]
    public void A_bad_checksum_is_refused_only_when_checked()
    {
        var b = Datagram();
        b[8] = 63;

        using (Assert.EnterMultipleScope())
        {
            Assert.That(Ipv4Repr.Parse(b, ChecksumCaps.All, out _, out _), Is.EqualTo(WireError.BadChecksum));
            Assert.That(Ipv4Repr.Parse(b, ChecksumCaps.None, out _, out var repr), Is.EqualTo(WireError.None));
            Assert.That(repr.Ttl, Is.EqualTo(63));
        }
    }

    [Test]
    public void Options_are_skipped_and_the_payload_starts_after_them()
    {
        var b = new byte[28];
        new Ipv4Repr { Source = IpAddress.V4(1), Destination = IpAddress.V4(2), Protocol = 99, PayloadLength = 8, Ttl = 1 }.TryEmit(b);
        // Rebuild as a 24-byte header with one 4-byte NOP option row.
        var withOptions = new byte[28];
        b.AsSpan(0, 20).CopyTo(withOptions);
        withOptions[0] = 0x46;
        withOptions[20] = 1; withOptions[21] = 1; withOptions[22] = 1; withOptions[23] = 0;
        Ipv4View.TryCreate(withOptions, out var view);
        view.FillChecksum();

        var e = Ipv4Repr.Parse(withOptions, ChecksumCaps.All, out view, out var repr);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(e, Is.EqualTo(WireError.None));
            Assert.That(view.HeaderLength, Is.EqualTo(24));
            Assert.That(repr.PayloadLength, Is.EqualTo(4));
        }
    }

    [Test]
    public void Decrementing_the_ttl_in_place_keeps_the_checksum_right()
    {
        var b = Datagram();
        Ipv4View.TryCreate(b, out var view);
        view.DecrementTtl();

        using (Assert.EnterMultipleScope())
        {
            Assert.That(view.Ttl, Is.EqualTo(63));
            Assert.That(view.ChecksumValid, Is.True);
        }
    }

    [Test]
    public void Emit_refuses_a_short_buffer_or_an_IPv6_address()
    {
        using (Assert.EnterMultipleScope())
        {
            Assert.That(Expected().TryEmit(new byte[19]), Is.False);
            var v6 = Expected();
            v6.Destination = IpAddress.V6(0xFE80_0000_0000_0000UL, 1);
            Assert.That(v6.TryEmit(new byte[20]), Is.False);
        }
    }

    [Test]
    public void Emitted_headers_agree_with_PacketDotNet()
    {
        var random = new HostRandom(23);
        for (int n = 0; n < 20; n++)
        {
            var repr = new Ipv4Repr
            {
                Source = IpAddress.V4(random.NextUInt32()), Destination = IpAddress.V4(random.NextUInt32()),
                Protocol = (byte)random.Next(256), PayloadLength = random.Next(100), Ttl = (byte)random.Next(256),
                Tos = (byte)random.Next(256), Identification = (ushort)random.Next(65536), DontFragment = (n & 1) != 0,
            };
            var b = new byte[repr.BufferLength];
            repr.TryEmit(b);

            var ip = new PacketDotNet.IPv4Packet(new PacketDotNet.Utils.ByteArraySegment(b));
            using (Assert.EnterMultipleScope())
            {
                Assert.That(ip.ValidIPChecksum, Is.True, $"case {n}");
                Assert.That(ip.SourceAddress.ToString(), Is.EqualTo(repr.Source.ToString()), $"case {n}");
                Assert.That(ip.DestinationAddress.ToString(), Is.EqualTo(repr.Destination.ToString()), $"case {n}");
                Assert.That((byte)ip.Protocol, Is.EqualTo(repr.Protocol), $"case {n}");
                Assert.That(ip.TimeToLive, Is.EqualTo(repr.Ttl), $"case {n}");
                Assert.That(ip.TypeOfService, Is.EqualTo(repr.Tos), $"case {n}");
                Assert.That(ip.Id, Is.EqualTo(repr.Identification), $"case {n}");
                Assert.That(ip.TotalLength, Is.EqualTo(repr.BufferLength), $"case {n}");
                Assert.That((ip.FragmentFlags & 0x2) != 0, Is.EqualTo(repr.DontFragment), $"case {n}");
            }
        }
    }
}
