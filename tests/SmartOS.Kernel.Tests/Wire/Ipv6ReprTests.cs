using SmartOS.Kernel.Wire;

namespace SmartOS.Kernel.Tests.Wire;

/// <summary>Ipv6Repr, the extension-header view and Ipv6FragmentRepr against fixed bytes and PacketDotNet.</summary>
public class Ipv6ReprTests
{
    /// <summary>fe80::1 to ff02::1, traffic class 0x12, flow label 0x34567, payload 8, UDP, hop limit 255.</summary>
    private static readonly byte[] s_header =
    [
        0x61, 0x23, 0x45, 0x67, 0x00, 0x08, 0x11, 0xff,
        0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01,
        0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01,
    ];

    private static Ipv6Repr Expected() => new()
    {
        Source = IpAddress.V6(0xFE80_0000_0000_0000UL, 1), Destination = IpAddress.V6(0xFF02_0000_0000_0000UL, 1),
        NextHeader = IpProtocol.Udp, PayloadLength = 8, HopLimit = 255, TrafficClass = 0x12, FlowLabel = 0x34567,
    };

    private static byte[] Datagram()
    {
        var b = new byte[40 + 8 + 4]; // and 4 bytes of padding
        s_header.CopyTo(b, 0);
        return b;
    }

    [Test]
    public void Parse_reads_every_field_and_leaves_the_padding_out()
    {
        var e = Ipv6Repr.Parse(Datagram(), out var view, out var repr);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(e, Is.EqualTo(WireError.None));
            Assert.That(repr, Is.EqualTo(Expected()));
            Assert.That(view.Payload.Length, Is.EqualTo(8));
        }
    }

    [Test]
    public void Emit_writes_the_same_bytes()
    {
        var b = new byte[40];
        Assert.That(Expected().TryEmit(b), Is.True);
        Assert.That(b, Is.EqualTo(s_header));
    }

    [Test]
    public void Refusals_say_why()
    {
        var badVersion = Datagram();
        badVersion[0] = 0x41;
        using (Assert.EnterMultipleScope())
        {
            Assert.That(Ipv6Repr.Parse(Datagram().AsSpan(0, 39), out _, out _), Is.EqualTo(WireError.Truncated));
            Assert.That(Ipv6Repr.Parse(Datagram().AsSpan(0, 47), out _, out _), Is.EqualTo(WireError.Truncated));
            Assert.That(Ipv6Repr.Parse(badVersion, out _, out _), Is.EqualTo(WireError.Malformed));
            var v4 = Expected();
            v4.Source = IpAddress.V4(1);
            Assert.That(v4.TryEmit(new byte[40]), Is.False);
            Assert.That(Expected().TryEmit(new byte[39]), Is.False);
        }
    }

    [Test]
    public void Emitted_headers_agree_with_PacketDotNet()
    {
        var repr = Expected();
        var b = new byte[48];
        repr.TryEmit(b);
        var ip = new PacketDotNet.IPv6Packet(new PacketDotNet.Utils.ByteArraySegment(b));
        using (Assert.EnterMultipleScope())
        {
            Assert.That(ip.SourceAddress.ToString(), Is.EqualTo("fe80::1"));
            Assert.That(ip.DestinationAddress.ToString(), Is.EqualTo("ff02::1"));
            Assert.That(ip.TrafficClass, Is.EqualTo(0x12));
            Assert.That(ip.FlowLabel, Is.EqualTo(0x34567));
            Assert.That(ip.PayloadLength, Is.EqualTo(8));
            Assert.That(ip.HopLimit, Is.EqualTo(255));
            Assert.That((byte)ip.NextHeader, Is.EqualTo(IpProtocol.Udp));
        }
    }

    [Test]
    public void A_fragment_header_round_trips()
    {
        var repr = new Ipv6FragmentRepr { NextHeader = IpProtocol.Tcp, Offset = 1232, MoreFragments = true, Identification = 0xDEADBEEF };
        var b = new byte[8];
        Assert.That(repr.TryEmit(b), Is.True);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(b, Is.EqualTo(new byte[] { 6, 0, 0x04, 0xd1, 0xde, 0xad, 0xbe, 0xef }));
            Assert.That(Ipv6FragmentRepr.TryParse(b, out var parsed), Is.True);
            Assert.That(parsed, Is.EqualTo(repr));
            Assert.That(Ipv6FragmentRepr.TryParse(b.AsSpan(0, 7), out _), Is.False);
            Assert.That(new Ipv6FragmentRepr { Offset = 3 }.TryEmit(b), Is.False);
        }
    }

    [Test]
    public void An_extension_header_is_walked_by_its_length()
    {
        // Hop-by-hop, length 1 (16 bytes), then UDP.
        var b = new byte[20];
        b[0] = IpProtocol.Udp;
        b[1] = 1;
        using (Assert.EnterMultipleScope())
        {
            Assert.That(Ipv6ExtensionHeaderView.TryCreate(b, out var ext), Is.True);
            Assert.That(ext.NextHeader, Is.EqualTo(IpProtocol.Udp));
            Assert.That(ext.Length, Is.EqualTo(16));
            Assert.That(Ipv6ExtensionHeaderView.TryCreate(b.AsSpan(0, 15), out _), Is.False);
            Assert.That(Ipv6ExtensionHeaderView.TryCreate(b.AsSpan(0, 7), out _), Is.False);
            Assert.That(Ipv6ExtensionHeaderView.IsWalked(Ipv6ExtensionHeaderView.HopByHop), Is.True);
            Assert.That(Ipv6ExtensionHeaderView.IsWalked(Ipv6ExtensionHeaderView.Fragment), Is.False);
        }
    }
}
