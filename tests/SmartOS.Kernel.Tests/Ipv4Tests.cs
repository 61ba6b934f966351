using System.Net;
using SmartOS.Kernel.Wire;

namespace SmartOS.Kernel.Tests;

public class Ipv4ViewTests
{
    // The worked example of an IPv4 header checksum: 192.168.0.1 -> 192.168.0.199, UDP, 115 bytes.
    private static readonly byte[] s_header =
    [
        0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0xb8, 0x61,
        0xc0, 0xa8, 0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7,
    ];

    private static uint Ip(string s) => Ipv4View.ToRaw(IPAddress.Parse(s));

    [Test]
    public void Write_emits_the_reference_header_and_checksum()
    {
        var b = new byte[20];

        Ipv4View.Write(b, Ip("192.168.0.1"), Ip("192.168.0.199"), IpProtocol.Udp, payloadLength: 0x73 - 20);

        Assert.That(b, Is.EqualTo(s_header));
    }

    [Test]
    public void Reads_the_reference_header()
    {
        var packet = new byte[0x73];
        s_header.CopyTo(packet, 0);

        Assert.That(Ipv4View.TryCreate(packet, out var ip), Is.True);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(ip.HeaderLength, Is.EqualTo(20));
            Assert.That(ip.TotalLength, Is.EqualTo(0x73));
            Assert.That(ip.Ttl, Is.EqualTo(64));
            Assert.That(ip.Protocol, Is.EqualTo(IpProtocol.Udp));
            Assert.That(ip.DontFragment, Is.True);
            Assert.That(ip.IsFragment, Is.False);
            Assert.That(Ipv4View.FromRaw(ip.SourceRaw).ToString(), Is.EqualTo("192.168.0.1"));
            Assert.That(Ipv4View.FromRaw(ip.DestinationRaw).ToString(), Is.EqualTo("192.168.0.199"));
            Assert.That(ip.ChecksumValid, Is.True);
            Assert.That(ip.Payload.Length, Is.EqualTo(0x73 - 20));
        }
    }

    [Test]
    public void A_flipped_bit_fails_the_checksum()
    {
        var packet = new byte[0x73];
        s_header.CopyTo(packet, 0);
        packet[8] ^= 1;

        Ipv4View.TryCreate(packet, out var ip);
        Assert.That(ip.ChecksumValid, Is.False);
    }

    [Test]
    public void View_is_cut_to_the_total_length()
    {
        var packet = new byte[0x73 + 30];
        s_header.CopyTo(packet, 0);

        Ipv4View.TryCreate(packet, out var ip);
        Assert.That(ip.Payload.Length, Is.EqualTo(0x73 - 20), "Ethernet padding is not payload");
    }

    [TestCase(19, 0x45, 19)]
    [TestCase(20, 0x65, 20)]
    [TestCase(20, 0x44, 20)]
    [TestCase(20, 0x46, 20)]
    [TestCase(40, 0x45, 41)]
    [TestCase(40, 0x45, 19)]
    public void Bad_headers_are_rejected(int length, int versionIhl, int totalLength)
    {
        var packet = new byte[length];
        packet[0] = (byte)versionIhl;
        packet[2] = (byte)(totalLength >> 8);
        packet[3] = (byte)totalLength;

        Assert.That(Ipv4View.TryCreate(packet, out _), Is.False);
    }

    [Test]
    public void Ip_and_udp_checksums_agree_with_PacketDotNet()
    {
        var random = new HostRandom(17);
        for (int n = 0; n < 50; n++)
        {
            int payload = random.Next(200);
            var frame = new byte[14 + 20 + 8 + payload];
            EthernetView.WriteHeader(frame, new MacAddress(0x0208_2000_0001UL), new MacAddress(0x0208_2000_0002UL), EtherType.Ipv4);
            random.NextBytes(frame.AsSpan(42));
            uint src = random.NextUInt32(), dst = random.NextUInt32();
            UdpView.WriteIpv4(frame.AsSpan(34), src, dst, (ushort)random.Next(65536), (ushort)random.Next(65536));
            Ipv4View.Write(frame.AsSpan(14), src, dst, IpProtocol.Udp, 8 + payload, ttl: (byte)random.Next(256), id: (ushort)n);

            var parsed = PacketDotNet.Packet.ParsePacket(PacketDotNet.LinkLayers.Ethernet, frame);
            var ip = parsed.Extract<PacketDotNet.IPv4Packet>();
            var udp = parsed.Extract<PacketDotNet.UdpPacket>();

            using (Assert.EnterMultipleScope())
            {
                Assert.That(ip.ValidIPChecksum, Is.True, $"IP checksum of case {n}");
                Assert.That(udp.ValidUdpChecksum, Is.True, $"UDP checksum of case {n}");
                Assert.That(udp.Checksum, Is.Not.Zero, "a zero result is sent as 0xffff");
            }
        }
    }

    [Test]
    public void Udp_view_reads_what_WriteIpv4_wrote()
    {
        var seg = new byte[8 + 4];
        seg[8] = 1; seg[9] = 2; seg[10] = 3; seg[11] = 4;
        UdpView.WriteIpv4(seg, Ip("10.0.0.1"), Ip("10.0.0.2"), 5353, 53);

        Assert.That(UdpView.TryCreate(seg, out var udp), Is.True);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(udp.SourcePort, Is.EqualTo(5353));
            Assert.That(udp.DestinationPort, Is.EqualTo(53));
            Assert.That(udp.Length, Is.EqualTo(12));
            Assert.That(udp.Payload.ToArray(), Is.EqualTo(new byte[] { 1, 2, 3, 4 }));
            Assert.That(seg[..6], Is.EqualTo(new byte[] { 0x14, 0xe9, 0x00, 0x35, 0x00, 0x0c }));
        }
    }

    [TestCase(7, 8)]
    [TestCase(8, 7)]
    [TestCase(8, 9)]
    public void Bad_udp_lengths_are_rejected(int segmentLength, int lengthField)
    {
        var seg = new byte[segmentLength];
        if (segmentLength >= 6) seg[5] = (byte)lengthField;

        Assert.That(UdpView.TryCreate(seg, out _), Is.False);
    }

    [Test]
    public void Checksum_of_an_odd_length_pads_with_a_zero_byte()
    {
        Assert.That(Checksum.Compute([0x01, 0x02, 0x03]), Is.EqualTo(Checksum.Compute([0x01, 0x02, 0x03, 0x00])));
    }
}

public class IpAddressTests
{
    [TestCase("192.0.2.1")]
    [TestCase("0.0.0.0")]
    [TestCase("255.255.255.255")]
    [TestCase("2001:db8::1")]
    [TestCase("fe80::1")]
    [TestCase("::")]
    public void Parses_and_formats_round_trip(string text)
    {
        Assert.That(IpAddress.TryParse(text, out var a), Is.True);
        Assert.That(a.ToString(), Is.EqualTo(text));
    }

    [TestCase(null)]
    [TestCase("")]
    [TestCase("1")]
    [TestCase("1.2")]
    [TestCase("1.2.3")]
    [TestCase("256.1.1.1")]
    [TestCase("1.2.3.4.5")]
    [TestCase("host")]
    [TestCase("2001:db8::g")]
    public void Rejects_bad_addresses(string? text)
    {
        Assert.That(IpAddress.TryParse(text, out _), Is.False);
    }

    [Test]
    public void Properties_classify_addresses()
    {
        IpAddress.TryParse("224.0.0.1", out var mcast4);
        IpAddress.TryParse("ff02::1", out var mcast6);
        IpAddress.TryParse("fe80::1", out var ll);
        IpAddress.TryParse("127.0.0.1", out var lo4);
        IpAddress.TryParse("::1", out var lo6);
        IpAddress.TryParse("192.0.2.1", out var plain);

        using (Assert.EnterMultipleScope())
        {
            Assert.That(mcast4.IsMulticast, Is.True);
            Assert.That(mcast6.IsMulticast, Is.True);
            Assert.That(ll.IsLinkLocalV6, Is.True);
            Assert.That(lo4.IsLoopback, Is.True);
            Assert.That(lo6.IsLoopback, Is.True);
            Assert.That(plain.IsMulticast || plain.IsLoopback || plain.IsUnspecified, Is.False);
            Assert.That(plain.IsV4, Is.True);
            Assert.That(ll.IsV6, Is.True);
            Assert.That(plain.V4Raw, Is.EqualTo(0xC0000201u));
        }
    }

    [TestCase("192.0.2.77", "192.0.2.0", 24, true)]
    [TestCase("192.0.3.77", "192.0.2.0", 24, false)]
    [TestCase("192.0.3.77", "192.0.2.0", 23, true)]
    [TestCase("10.1.2.3", "0.0.0.0", 0, true)]
    [TestCase("10.1.2.3", "10.1.2.3", 32, true)]
    [TestCase("10.1.2.4", "10.1.2.3", 32, false)]
    [TestCase("2001:db8:1::5", "2001:db8::", 32, true)]
    [TestCase("2001:db9::5", "2001:db8::", 32, false)]
    [TestCase("2001:db8::5", "2001:db8::", 64, true)]
    [TestCase("2001:db8::1:5", "2001:db8::", 112, false)]
    [TestCase("2001:db8::5", "2001:db8::", 120, true)]
    [TestCase("2001:db8::5", "2001:db8::5", 128, true)]
    [TestCase("2001:db8::5", "192.0.2.0", 0, false)]
    public void InPrefix_compares_the_leading_bits(string address, string network, int prefix, bool expected)
    {
        IpAddress.TryParse(address, out var a);
        IpAddress.TryParse(network, out var n);

        Assert.That(a.InPrefix(n, prefix), Is.EqualTo(expected));
    }

    [Test]
    public void Read_and_Write_use_network_byte_order()
    {
        byte[] v4 = [192, 0, 2, 1];
        var a = IpAddress.Read(v4, v4: true);
        var back = new byte[4];
        a.Write(back);

        using (Assert.EnterMultipleScope())
        {
            Assert.That(a.ToString(), Is.EqualTo("192.0.2.1"));
            Assert.That(back, Is.EqualTo(v4));
            Assert.That(a.ByteLength, Is.EqualTo(4));
            Assert.That(a.ToIPAddress(), Is.EqualTo(IPAddress.Parse("192.0.2.1")));
        }
    }

    [Test]
    public void Ipv4_sorts_before_ipv6_and_by_value()
    {
        IpAddress.TryParse("10.0.0.2", out var b);
        IpAddress.TryParse("10.0.0.1", out var a);
        IpAddress.TryParse("::1", out var c);

        var list = new List<IpAddress> { c, b, a };
        list.Sort();

        Assert.That(list.Select(x => x.ToString()), Is.EqualTo(new[] { "10.0.0.1", "10.0.0.2", "::1" }));
    }
}
