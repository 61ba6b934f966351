using SmartOS.Kernel.Wire;

namespace SmartOS.Kernel.Tests.Wire;

/// <summary>The views link protection and flow classification read (Ipv6View, ArpView, DhcpView):
/// fixed bytes parse, emitted bytes match, and PacketDotNet (an independent dissector) agrees.</summary>
public class ResourceViewTests
{
    private static readonly MacAddress s_mac = new(0x0208_2000_0001UL);

    [Test]
    public void Ipv6_header_parses_from_fixed_bytes()
    {
        byte[] b =
        [
            0x6B, 0x80, 0x00, 0x00, 0x00, 0x08, 0x11, 0x40,
            0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01,
            0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x02,
            0, 1, 0, 2, 0, 8, 0, 0,
        ];
        Assert.That(Ipv6View.TryCreate(b, out var v), Is.True);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(v.TrafficClass, Is.EqualTo(0xB8));
            Assert.That(v.PayloadLength, Is.EqualTo(8));
            Assert.That(v.NextHeader, Is.EqualTo(IpProtocol.Udp));
            Assert.That(v.HopLimit, Is.EqualTo(64));
            Assert.That(v.Source.ToString(), Is.EqualTo("2001:db8::1"));
            Assert.That(v.Destination.ToString(), Is.EqualTo("fe80::2"));
        }
        var emitted = new byte[48];
        Ipv6View.TryWrite(emitted, v.Source, v.Destination, IpProtocol.Udp, 8, 64, trafficClass: 0xB8);
        b.AsSpan(40).CopyTo(emitted.AsSpan(40));
        Assert.That(emitted, Is.EqualTo(b));
    }

    [TestCase(39)]
    [TestCase(47)]
    public void Ipv6_view_refuses_short_buffers(int length)
    {
        var b = new byte[length];
        if (length > 0) b[0] = 0x60;
        if (length > 5) b[5] = 8;
        Assert.That(Ipv6View.TryCreate(b, out _), Is.False);
    }

    [Test]
    public void Link_local_from_mac_is_the_modified_eui64()
        => Assert.That(Ipv6View.LinkLocalFromMac(s_mac).ToString(), Is.EqualTo("fe80::8:20ff:fe00:1"));

    [Test]
    public void Arp_round_trips_and_packetdotnet_agrees()
    {
        var b = new byte[ArpView.Length];
        ArpView.TryWrite(b, ArpView.OpReply, s_mac, 0x0A000001, MacAddress.Broadcast, 0x0A000002);
        Assert.That(ArpView.TryCreate(b, out var v), Is.True);
        var pd = new PacketDotNet.ArpPacket(new PacketDotNet.Utils.ByteArraySegment(b));
        using (Assert.EnterMultipleScope())
        {
            Assert.That(v.Operation, Is.EqualTo(ArpView.OpReply));
            Assert.That(v.SenderMac, Is.EqualTo(s_mac));
            Assert.That(v.SenderIp, Is.EqualTo(0x0A000001u));
            Assert.That(v.TargetIp, Is.EqualTo(0x0A000002u));
            Assert.That(pd.Operation, Is.EqualTo(PacketDotNet.ArpOperation.Response));
            Assert.That(pd.SenderProtocolAddress.ToString(), Is.EqualTo("10.0.0.1"));
        }
        b[5] = 16; // not IPv4 addresses
        Assert.That(ArpView.TryCreate(b, out _), Is.False);
    }

    [Test]
    public void Dhcp_message_round_trips_with_its_options()
    {
        var b = new byte[300];
        int n = DhcpView.Write(b, 2, DhcpOption.Ack, 0xCAFE, s_mac, 0x0A00002A, [1, 2, 3]);
        Assert.That(DhcpView.TryCreate(b.AsSpan(0, n), out var v), Is.True);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(v.Op, Is.EqualTo(2));
            Assert.That(v.TransactionId, Is.EqualTo(0xCAFEu));
            Assert.That(v.ClientMac, Is.EqualTo(s_mac));
            Assert.That(v.YourIp, Is.EqualTo(0x0A00002Au));
            Assert.That(v.MessageType, Is.EqualTo(DhcpOption.Ack));
            Assert.That(v.TryGetOption(DhcpOption.ClientIdentifier, out var cid), Is.True);
            Assert.That(cid.ToArray(), Is.EqualTo(new byte[] { 1, 2, 3 }));
            Assert.That(v.TryGetOption(50, out _), Is.False);
        }
    }

    [Test]
    public void Dhcp_options_that_run_past_the_buffer_are_not_found_and_nothing_throws()
    {
        var b = new byte[DhcpView.FixedLength + 4 + 3];
        b[1] = 1; b[2] = 6; // Ethernet hardware type and length
        new byte[] { 0x63, 0x82, 0x53, 0x63 }.CopyTo(b, DhcpView.FixedLength);
        b[DhcpView.FixedLength + 4] = DhcpOption.ClientIdentifier;
        b[DhcpView.FixedLength + 5] = 40;
        Assert.That(DhcpView.TryCreate(b, out var v), Is.True);
        Assert.That(v.TryGetOption(DhcpOption.ClientIdentifier, out _), Is.False);
        Assert.That(v.MessageType, Is.Zero);
        Assert.That(DhcpView.TryCreate(b.AsSpan(0, 100), out _), Is.False);
    }
}
