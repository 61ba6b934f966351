using SmartOS.Kernel.Wire;

namespace SmartOS.Netstack.Tests;

/// <summary>Header views against fixed byte arrays: parse what the bytes say, emit the same bytes.</summary>
public class WireViewTests
{
    private static byte[] Hex(string s) => Convert.FromHexString(s.Replace(" ", "", StringComparison.Ordinal));

    // who-has 192.168.1.1 tell 192.168.1.100, from 00:11:22:33:44:55
    private static readonly byte[] s_arpRequest = Hex("0001 0800 06 04 0001 001122334455 c0a80164 000000000000 c0a80101");

    [Test]
    public void Arp_request_parses_from_fixed_bytes()
    {
        var b = (byte[])s_arpRequest.Clone();
        Assert.That(ArpView.TryCreate(b, out var arp), Is.True);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(arp.Operation, Is.EqualTo(ArpView.OpRequest));
            Assert.That(arp.SenderMac, Is.EqualTo(new MacAddress(0x001122334455)));
            Assert.That(IpAddress.V4(arp.SenderIp).ToString(), Is.EqualTo("192.168.1.100"));
            Assert.That(arp.TargetMac, Is.EqualTo(MacAddress.Zero));
            Assert.That(IpAddress.V4(arp.TargetIp).ToString(), Is.EqualTo("192.168.1.1"));
        }
    }

    [Test]
    public void Arp_request_emits_the_fixed_bytes()
    {
        var b = new byte[28];
        Assert.That(ArpView.TryWrite(b, ArpView.OpRequest, new MacAddress(0x001122334455), 0xC0A80164, MacAddress.Zero, 0xC0A80101), Is.True);
        Assert.That(b, Is.EqualTo(s_arpRequest));
    }

    [TestCase("0001 0800 06 04 0001 001122334455 c0a8")]
    [TestCase("0006 0800 06 04 0001 001122334455 c0a80164 000000000000 c0a80101")]
    [TestCase("0001 86dd 06 04 0001 001122334455 c0a80164 000000000000 c0a80101")]
    [TestCase("0001 0800 06 10 0001 001122334455 c0a80164 000000000000 c0a80101")]
    public void Arp_view_refuses_short_or_foreign_packets(string hex)
    {
        Assert.That(ArpView.TryCreate(Hex(hex), out _), Is.False);
    }

    // fe80::1 -> ff02::1, ICMPv6 (58), hop limit 255, payload 8 bytes
    private static readonly byte[] s_ipv6Header = Hex("60000000 0008 3a ff fe800000000000000000000000000001 ff020000000000000000000000000001");

    [Test]
    public void Ipv6_header_parses_and_emits_from_fixed_bytes()
    {
        var packet = new byte[48];
        s_ipv6Header.CopyTo(packet, 0);
        Assert.That(Ipv6View.TryCreate(packet, out var v), Is.True);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(v.PayloadLength, Is.EqualTo(8));
            Assert.That(v.NextHeader, Is.EqualTo(IpProtocol.Icmpv6));
            Assert.That(v.HopLimit, Is.EqualTo(255));
            Assert.That(v.Source.ToString(), Is.EqualTo("fe80::1"));
            Assert.That(v.Destination.ToString(), Is.EqualTo("ff02::1"));
        }
        var emitted = new byte[40];
        Ipv6View.TryWrite(emitted, World.Ip("fe80::1"), World.Ip("ff02::1"), IpProtocol.Icmpv6, 8, 255);
        Assert.That(emitted, Is.EqualTo(s_ipv6Header));
        Assert.That(Ipv6View.TryCreate(packet.AsSpan(0, 47), out _), Is.False, "payload length past the end");
    }

    // echo request, id 1, seq 2, no data: checksum ~(0x0800 + 1 + 2) = 0xf7fc
    private static readonly byte[] s_echo = Hex("08 00 f7fc 0001 0002");

    [Test]
    public void Icmp_echo_parses_and_emits_from_fixed_bytes()
    {
        var b = (byte[])s_echo.Clone();
        Assert.That(IcmpView.TryCreate(b, out var icmp), Is.True);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(icmp.Type, Is.EqualTo(IcmpType.EchoRequest));
            Assert.That(icmp.Identifier, Is.EqualTo(1));
            Assert.That(icmp.Sequence, Is.EqualTo(2));
            Assert.That(icmp.ChecksumValidV4, Is.True);
        }
        var e = new byte[8];
        IcmpView.TryWriteHeader(e, IcmpType.EchoRequest, 0, 0x00010002);
        IcmpView.FinishV4(e);
        Assert.That(e, Is.EqualTo(s_echo));
    }

    [Test]
    public void Icmp_frag_needed_reports_the_next_hop_mtu()
    {
        var b = Hex("03 04 0000 0000 0500");
        Assert.That(IcmpView.TryCreate(b, out var icmp), Is.True);
        Assert.That(icmp.Mtu, Is.EqualTo(1280));
    }

    [Test]
    public void Icmpv6_checksum_covers_the_pseudo_header()
    {
        var m = Frames.Icmpv6(World.Ip("fe80::1"), World.Ip("fe80::2"), IcmpType.V6EchoRequest, 0, 0x00010001, []);
        Assert.That(IcmpView.TryCreate(m, out var v), Is.True);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(v.ChecksumValidV6(World.Ip("fe80::1"), World.Ip("fe80::2")), Is.True);
            Assert.That(v.ChecksumValidV6(World.Ip("fe80::1"), World.Ip("fe80::3")), Is.False);
        }
    }

    [Test]
    public void Ndp_options_stop_at_a_zero_length_option()
    {
        var ok = Hex("01 01 001122334455 03 04 40c0 00000e10 00000708 00000000 20010db8000000000000000000000000");
        var reader = new NdpOptionReader(ok);
        var types = new List<byte>();
        while (reader.MoveNext()) types.Add(reader.Type);
        Assert.That(types, Is.EqualTo(new byte[] { 1, 3 }));
        var bad = new NdpOptionReader(Hex("01 00 001122334455"));
        Assert.That(bad.MoveNext(), Is.False);
        Assert.That(bad.Malformed, Is.True);
    }

    private static byte[] DhcpDiscoverBytes()
    {
        // op 1, htype 1, hlen 6, hops 0, xid 0x3903f326, secs 0, flags 0x8000, addresses 0,
        // chaddr 00:0b:82:01:fc:42, sname/file zero, cookie, option 53 = 1, end.
        var b = new byte[244];
        Hex("01010600 3903f326 0000 8000 00000000 00000000 00000000 00000000 000b8201fc42").CopyTo(b, 0);
        Hex("63825363").CopyTo(b, 236);
        var full = new byte[244 + 4];
        b.CopyTo(full, 0);
        Hex("350101ff").CopyTo(full, 240);
        return full[..244];
    }

    [Test]
    public void Dhcp_discover_parses_and_emits_from_fixed_bytes()
    {
        var bytes = DhcpDiscoverBytes();
        Assert.That(DhcpView.TryCreate(bytes, out var d), Is.True);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(d.Op, Is.EqualTo(DhcpView.BootRequest));
            Assert.That(d.TransactionId, Is.EqualTo(0x3903f326));
            Assert.That(d.Broadcast, Is.True);
            Assert.That(d.ClientMac, Is.EqualTo(new MacAddress(0x000b8201fc42)));
            Assert.That(d.MessageType, Is.EqualTo(DhcpOption.Discover));
            Assert.That(d.TryGetOption(DhcpOption.Router, out _), Is.False);
        }
        var e = new byte[244];
        DhcpView.TryWriteFixed(e, DhcpView.BootRequest, 0x3903f326, true, 0, 0, 0, new MacAddress(0x000b8201fc42));
        var w = new DhcpOptionWriter(e.AsSpan(DhcpView.OptionsOffset));
        w.AddByte(DhcpOption.MessageType, DhcpOption.Discover);
        w.End();
        Assert.That(e, Is.EqualTo(bytes));
    }

    [Test]
    public void Dhcp_options_never_read_past_the_end()
    {
        var bytes = DhcpDiscoverBytes();
        bytes[240] = DhcpOption.LeaseTime; bytes[241] = 200; // length runs off the buffer
        Assert.That(DhcpView.TryCreate(bytes, out var d), Is.True);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(d.TryGetOption(DhcpOption.LeaseTime, out _), Is.False);
            Assert.That(d.MessageType, Is.Zero);
        }
        Assert.That(DhcpView.TryCreate(bytes.AsSpan(0, 239), out _), Is.False);
    }
}
