using PacketDotNet;
using SmartOS.Cli.Snoop;
using SmartOS.Kernel.Wire;
using static SmartOS.Cli.Tests.Snoop.TestFrames;

namespace SmartOS.Cli.Tests.Snoop;

public class SnoopFormatTests
{
    [Test]
    public void Summary_of_icmp_echo_request_names_id_and_sequence()
        => Assert.That(SnoopFormat.Summary(IcmpEcho(request: true, 1, 0)),
            Is.EqualTo("   192.0.2.1 -> 192.0.2.2    ICMP Echo request (ID: 1 Sequence number: 0)"));

    [Test]
    public void Summary_of_icmp_echo_reply_comes_from_the_replier()
        => Assert.That(SnoopFormat.Summary(IcmpEcho(request: false, 1, 4)),
            Is.EqualTo("   192.0.2.2 -> 192.0.2.1    ICMP Echo reply (ID: 1 Sequence number: 4)"));

    [Test]
    public void Summary_of_arp_request_goes_to_broadcast()
        => Assert.That(SnoopFormat.Summary(Arp(request: true)),
            Is.EqualTo("   192.0.2.1 -> (broadcast)  ARP C Who is 192.0.2.2, 192.0.2.2 ?"));

    [Test]
    public void Summary_of_arp_reply_gives_the_hardware_address()
        => Assert.That(SnoopFormat.Summary(Arp(request: false)),
            Is.EqualTo("   192.0.2.2 -> 192.0.2.1    ARP R 192.0.2.2, 192.0.2.2 is 2:8:20:1:2:3"));

    [Test]
    public void Summary_of_udp_gives_ports_and_length()
        => Assert.That(SnoopFormat.Summary(Udp(1234, 9, payloadLength: 64)),
            Is.EqualTo("   192.0.2.1 -> 192.0.2.2    UDP D=9 S=1234 LEN=72"));

    [Test]
    public void Summary_of_tcp_syn_gives_flags_sequence_and_window()
        => Assert.That(SnoopFormat.Summary(Tcp(40000, 80, 0x02, 1)),
            Is.EqualTo("   192.0.2.1 -> 192.0.2.2    TCP D=80 S=40000 Syn Seq=1 Len=0 Win=65535"));

    [Test]
    public void Summary_of_tcp_syn_ack_shows_the_acknowledgement()
        => Assert.That(SnoopFormat.Summary(Tcp(80, 40000, 0x12, 100, 2, 1000)),
            Is.EqualTo("   192.0.2.1 -> 192.0.2.2    TCP D=40000 S=80 Syn Ack=2 Seq=100 Len=0 Win=1000"));

    [Test]
    public void Summary_of_icmpv6_echo_uses_ipv6_addresses()
        => Assert.That(SnoopFormat.Summary(Icmp6Echo(7, 3)),
            Is.EqualTo(" 2001:db8::1 -> 2001:db8::2  ICMPv6 Echo request (ID: 7 Sequence number: 3)"));

    [TestCase(0, true, " 2001:db8::1 -> 2001:db8::2  ICMPv6 IPv6 fragment ID=77 Offset=0    MF=1")]
    [TestCase(1448, false, " 2001:db8::1 -> 2001:db8::2  ICMPv6 IPv6 fragment ID=77 Offset=1448 MF=0")]
    public void Summary_of_an_ipv6_fragment_gives_its_id_offset_and_more_flag(int offset, bool more, string expected)
        => Assert.That(SnoopFormat.Summary(Ipv6Fragment(77, offset, more)), Is.EqualTo(expected));

    [Test]
    public void Summary_of_neighbor_solicitation_names_it()
        => Assert.That(SnoopFormat.Summary(Icmp6(135, new byte[20], dst: System.Net.IPAddress.Parse("ff02::1:ff00:2").GetAddressBytes())),
            Is.EqualTo(" 2001:db8::1 -> ff02::1:ff00:2 ICMPv6 Neighbor solicitation"));

    [Test]
    public void Summary_of_unknown_ethertype_shows_ether_header()
        => Assert.That(SnoopFormat.Summary(Unknown()),
            Is.EqualTo("2:8:20:a:b:c -> (broadcast)  ETHER Type=88B5 (Unknown), size=60 bytes"));

    [Test]
    public void Summary_of_frame_to_group_address_says_multicast()
        => Assert.That(SnoopFormat.Summary(Ether(new MacAddress(0x0180_C200_000EUL), MacA, 0x88CC, new byte[46])),
            Is.EqualTo("2:8:20:a:b:c -> (multicast)  ETHER Type=88CC (LLDP), size=60 bytes"));

    [Test]
    public void Summary_of_tagged_frame_starts_with_its_vlan()
        => Assert.That(SnoopFormat.Summary(Udp(1234, 9, vid: 5)),
            Is.EqualTo("VLAN#5:    192.0.2.1 -> 192.0.2.2    UDP D=9 S=1234 LEN=26"));

    [Test]
    public void Summary_of_short_frames_says_so()
    {
        byte[] udp = Udp(1234, 9);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(SnoopFormat.Summary(udp.AsSpan(0, 10)), Is.EqualTo("           ? -> *            ETHER (short packet, 10 bytes)"));
            Assert.That(SnoopFormat.Summary(udp.AsSpan(0, 24)), Is.EqualTo("2:8:20:a:b:c -> 2:8:20:1:2:3 IP truncated: header missing 10 bytes"));
            Assert.That(SnoopFormat.Summary(udp.AsSpan(0, 38)), Is.EqualTo("   192.0.2.1 -> 192.0.2.2    UDP truncated: header missing 4 bytes"));
            Assert.That(SnoopFormat.Summary(Arp(request: true).AsSpan(0, 30)), Is.EqualTo("2:8:20:a:b:c -> (broadcast)  ARP (short packet)"));
        }
    }

    [Test]
    public void VerboseSummary_gives_one_line_per_layer()
        => Assert.That(SnoopFormat.VerboseSummary(Udp(1234, 9)), Is.EqualTo(
            "ETHER Type=0800 (IP), size=60 bytes\n" +
            "IP  D=192.0.2.2 S=192.0.2.1 LEN=46, ID=0, TOS=0x0, TTL=64\n" +
            "UDP D=9 S=1234 LEN=26"));

    [Test]
    public void VerboseSummary_of_tagged_arp_names_the_vlan()
        => Assert.That(SnoopFormat.VerboseSummary(Arp(request: true, vid: 5)), Is.EqualTo(
            "ETHER VLAN ID=5, Priority=0, Type=0806 (ARP), size=60 bytes\n" +
            "ARP C Who is 192.0.2.2, 192.0.2.2 ?"));

    [Test]
    public void Verbose_shows_ether_ip_and_udp_headers()
    {
        string text = SnoopFormat.Verbose(Udp(1234, 9), 1, 1_000_000_000);
        string[] lines = text.Split('\n');
        using (Assert.EnterMultipleScope())
        {
            Assert.That(lines[..9], Is.EqualTo(new[]
            {
                "ETHER:  ----- Ether Header -----",
                "ETHER:  ",
                "ETHER:  Packet 1 arrived at 0:00:1.00000",
                "ETHER:  Packet size = 60 bytes",
                "ETHER:  Destination = 2:8:20:1:2:3",
                "ETHER:  Source      = 2:8:20:a:b:c",
                "ETHER:  Ethertype = 0800 (IP)",
                "ETHER:  ",
                "IP:   ----- IP Header -----",
            }));
            Assert.That(lines, Does.Contain("IP:   Version = 4"));
            Assert.That(lines, Does.Contain("IP:   Header length = 20 bytes"));
            Assert.That(lines, Does.Contain("IP:   Type of service = 0x00"));
            Assert.That(lines, Does.Contain("IP:   Total length = 46 bytes"));
            Assert.That(lines, Does.Contain("IP:   Identification = 0"));
            Assert.That(lines, Does.Contain("IP:   Flags = 0x4"));
            Assert.That(lines, Does.Contain("IP:         .1.. .... = do not fragment"));
            Assert.That(lines, Does.Contain("IP:         ..0. .... = last fragment"));
            Assert.That(lines, Does.Contain("IP:   Fragment offset = 0 bytes"));
            Assert.That(lines, Does.Contain("IP:   Time to live = 64 seconds/hops"));
            Assert.That(lines, Does.Contain("IP:   Protocol = 17 (UDP)"));
            Assert.That(lines.Any(l => l.StartsWith("IP:   Header checksum = ", StringComparison.Ordinal)), Is.True);
            Assert.That(lines, Does.Contain("IP:   Source address = 192.0.2.1, 192.0.2.1"));
            Assert.That(lines, Does.Contain("IP:   Destination address = 192.0.2.2, 192.0.2.2"));
            Assert.That(lines, Does.Contain("UDP:  ----- UDP Header -----"));
            Assert.That(lines, Does.Contain("UDP:  Source port = 1234"));
            Assert.That(lines, Does.Contain("UDP:  Destination port = 9 (DISCARD)"));
            Assert.That(lines, Does.Contain("UDP:  Length = 26 "));
        }
    }

    [Test]
    public void Verbose_of_broadcast_arp_shows_vlan_and_arp_fields()
    {
        string[] lines = SnoopFormat.Verbose(Arp(request: true, vid: 5), 3, 3_723_500_000_000).Split('\n');
        using (Assert.EnterMultipleScope())
        {
            Assert.That(lines, Does.Contain("ETHER:  Packet 3 arrived at 1:02:3.50000"));
            Assert.That(lines, Does.Contain("ETHER:  Destination = ff:ff:ff:ff:ff:ff, (broadcast)"));
            Assert.That(lines, Does.Contain("ETHER:  VLAN ID = 5"));
            Assert.That(lines, Does.Contain("ETHER:  VLAN Priority = 0"));
            Assert.That(lines, Does.Contain("ETHER:  Ethertype = 0806 (ARP)"));
            Assert.That(lines, Does.Contain("ARP:  ----- ARP/RARP Frame -----"));
            Assert.That(lines, Does.Contain("ARP:  Opcode 1 (ARP Request)"));
            Assert.That(lines, Does.Contain("ARP:  Sender's hardware address = 2:8:20:a:b:c"));
            Assert.That(lines, Does.Contain("ARP:  Target hardware address = ?"));
            Assert.That(lines, Does.Contain("ARP:  Target protocol address = 192.0.2.2, 192.0.2.2"));
        }
    }

    [Test]
    public void Verbose_shows_tcp_flags_bit_by_bit()
    {
        string[] lines = SnoopFormat.Verbose(Tcp(40000, 80, 0x02, 1), 1, 0).Split('\n');
        using (Assert.EnterMultipleScope())
        {
            Assert.That(lines, Does.Contain("TCP:  Sequence number = 1"));
            Assert.That(lines, Does.Contain("TCP:  Flags = 0x02"));
            Assert.That(lines, Does.Contain("TCP:        .... ..1. = Syn"));
            Assert.That(lines, Does.Contain("TCP:        ...0 .... = No acknowledgement"));
            Assert.That(lines, Does.Contain("TCP:  Window = 65535"));
        }
    }

    [Test]
    public void Verbose_shows_icmp_and_ipv6_headers()
    {
        string[] icmp = SnoopFormat.Verbose(IcmpEcho(request: true, 1, 0), 1, 0).Split('\n');
        string[] v6 = SnoopFormat.Verbose(Icmp6Echo(7, 3), 2, 0).Split('\n');
        using (Assert.EnterMultipleScope())
        {
            Assert.That(icmp, Does.Contain("ICMP:  Type = 8 (Echo request)"));
            Assert.That(icmp, Does.Contain("ICMP:  Code = 0 (ID: 1 Sequence number: 0)"));
            Assert.That(v6, Does.Contain("IPv6:   ----- IPv6 Header -----"));
            Assert.That(v6, Does.Contain("IPv6:   Next Header = 58 (ICMPv6)"));
            Assert.That(v6, Does.Contain("IPv6:   Hop Limit = 255"));
            Assert.That(v6, Does.Contain("IPv6:   Source address = 2001:db8::1"));
            Assert.That(v6, Does.Contain("ICMPv6:  Type = 128 (Echo request)"));
        }
    }

    /// <summary>PacketDotNet, which no one here wrote, must read the same fields our -v prints.</summary>
    [Test]
    public void Verbose_agrees_with_packetdotnet_on_header_fields()
    {
        foreach (byte[] frame in TestFrames.All())
        {
            string[] lines = SnoopFormat.Verbose(frame, 1, 0).Split('\n');
            var packet = Packet.ParsePacket(LinkLayers.Ethernet, frame);
            using (Assert.EnterMultipleScope())
            {
                if (packet.Extract<IPv4Packet>() is { } ip)
                {
                    Assert.That(lines, Does.Contain($"IP:   Total length = {ip.TotalLength} bytes"));
                    Assert.That(lines, Does.Contain($"IP:   Time to live = {ip.TimeToLive} seconds/hops"));
                    Assert.That(lines, Does.Contain($"IP:   Source address = {ip.SourceAddress}, {ip.SourceAddress}"));
                    Assert.That(lines, Does.Contain($"IP:   Header checksum = {ip.Checksum:x4}"));
                }
                if (packet.Extract<IPv6Packet>() is { } ip6)
                    Assert.That(lines, Does.Contain($"IPv6:   Destination address = {ip6.DestinationAddress}"));
                if (packet.Extract<UdpPacket>() is { } udp)
                    Assert.That(lines, Does.Contain($"UDP:  Length = {udp.Length} "));
                if (packet.Extract<TcpPacket>() is { } tcp)
                {
                    Assert.That(lines, Does.Contain($"TCP:  Sequence number = {tcp.SequenceNumber}"));
                    Assert.That(lines, Does.Contain($"TCP:  Window = {tcp.WindowSize}"));
                }
                if (packet.Extract<ArpPacket>() is { } arp)
                    Assert.That(lines, Does.Contain($"ARP:  Sender's protocol address = {arp.SenderProtocolAddress}, {arp.SenderProtocolAddress}"));
            }
        }
    }
}
