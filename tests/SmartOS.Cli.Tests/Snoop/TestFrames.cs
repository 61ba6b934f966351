using System.Buffers.Binary;
using System.Net;
using SmartOS.Kernel.Wire;

namespace SmartOS.Cli.Tests.Snoop;

/// <summary>Hand-built frames for the snoop tests: one builder per protocol, optional 802.1Q tag.</summary>
internal static class TestFrames
{
    public static readonly MacAddress MacA = new(0x0208_200A_0B0CUL); // 2:8:20:a:b:c
    public static readonly MacAddress MacB = new(0x0208_2001_0203UL); // 2:8:20:1:2:3
    public static readonly uint IpA = Ipv4View.ToRaw(IPAddress.Parse("192.0.2.1"));
    public static readonly uint IpB = Ipv4View.ToRaw(IPAddress.Parse("192.0.2.2"));
    public static readonly byte[] Ip6A = IPAddress.Parse("2001:db8::1").GetAddressBytes();
    public static readonly byte[] Ip6B = IPAddress.Parse("2001:db8::2").GetAddressBytes();

    /// <summary>An Ethernet frame around payload, tagged when vid is given, padded to 60 bytes.</summary>
    public static byte[] Ether(MacAddress dst, MacAddress src, ushort type, ReadOnlySpan<byte> payload, int? vid = null)
    {
        int header = vid is null ? 14 : 18;
        var f = new byte[Math.Max(60, header + payload.Length)];
        dst.Write(f);
        src.Write(f.AsSpan(6));
        if (vid is int v)
        {
            BinaryPrimitives.WriteUInt16BigEndian(f.AsSpan(12), EtherType.Vlan);
            BinaryPrimitives.WriteUInt16BigEndian(f.AsSpan(14), (ushort)v);
            BinaryPrimitives.WriteUInt16BigEndian(f.AsSpan(16), type);
        }
        else
        {
            BinaryPrimitives.WriteUInt16BigEndian(f.AsSpan(12), type);
        }
        payload.CopyTo(f.AsSpan(header));
        return f;
    }

    public static byte[] Ipv4(uint src, uint dst, byte protocol, ReadOnlySpan<byte> l4, int? vid = null, MacAddress? dstMac = null)
    {
        var ip = new byte[20 + l4.Length];
        l4.CopyTo(ip.AsSpan(20));
        Ipv4View.Write(ip, src, dst, protocol, l4.Length);
        return Ether(dstMac ?? MacB, MacA, EtherType.Ipv4, ip, vid);
    }

    public static byte[] Udp(ushort sport, ushort dport, int payloadLength = 18, int? vid = null, uint? src = null, uint? dst = null, MacAddress? dstMac = null)
    {
        var u = new byte[8 + payloadLength];
        for (int i = 8; i < u.Length; i++) u[i] = (byte)i;
        UdpView.WriteIpv4(u, src ?? IpA, dst ?? IpB, sport, dport);
        return Ipv4(src ?? IpA, dst ?? IpB, IpProtocol.Udp, u, vid, dstMac);
    }

    public static byte[] Tcp(ushort sport, ushort dport, byte flags, uint seq, uint ack = 0, ushort window = 65535, int? vid = null)
    {
        var t = new byte[20];
        BinaryPrimitives.WriteUInt16BigEndian(t, sport);
        BinaryPrimitives.WriteUInt16BigEndian(t.AsSpan(2), dport);
        BinaryPrimitives.WriteUInt32BigEndian(t.AsSpan(4), seq);
        BinaryPrimitives.WriteUInt32BigEndian(t.AsSpan(8), ack);
        t[12] = 5 << 4;
        t[13] = flags;
        BinaryPrimitives.WriteUInt16BigEndian(t.AsSpan(14), window);
        uint sum = (IpA >> 16) + (IpA & 0xFFFF) + (IpB >> 16) + (IpB & 0xFFFF) + IpProtocol.Tcp + (uint)t.Length;
        BinaryPrimitives.WriteUInt16BigEndian(t.AsSpan(16), Checksum.Fold(Checksum.Add(sum, t)));
        return Ipv4(IpA, IpB, IpProtocol.Tcp, t, vid);
    }

    public static byte[] IcmpEcho(bool request, ushort id, ushort seq, int? vid = null)
    {
        var c = new byte[8 + 32];
        c[0] = request ? (byte)8 : (byte)0;
        BinaryPrimitives.WriteUInt16BigEndian(c.AsSpan(4), id);
        BinaryPrimitives.WriteUInt16BigEndian(c.AsSpan(6), seq);
        BinaryPrimitives.WriteUInt16BigEndian(c.AsSpan(2), Checksum.Compute(c));
        return request ? Ipv4(IpA, IpB, IpProtocol.Icmp, c, vid) : Ipv4(IpB, IpA, IpProtocol.Icmp, c, vid);
    }

    /// <summary>An ARP request from A for B (broadcast), or B's reply to A.</summary>
    public static byte[] Arp(bool request, int? vid = null)
    {
        var a = new byte[28];
        BinaryPrimitives.WriteUInt16BigEndian(a, 1);
        BinaryPrimitives.WriteUInt16BigEndian(a.AsSpan(2), EtherType.Ipv4);
        a[4] = 6;
        a[5] = 4;
        BinaryPrimitives.WriteUInt16BigEndian(a.AsSpan(6), request ? (ushort)1 : (ushort)2);
        var (sha, spa, tha, tpa) = request ? (MacA, IpA, MacAddress.Zero, IpB) : (MacB, IpB, MacA, IpA);
        sha.Write(a.AsSpan(8));
        BinaryPrimitives.WriteUInt32BigEndian(a.AsSpan(14), spa);
        tha.Write(a.AsSpan(18));
        BinaryPrimitives.WriteUInt32BigEndian(a.AsSpan(24), tpa);
        return request ? Ether(MacAddress.Broadcast, MacA, EtherType.Arp, a, vid) : Ether(MacA, MacB, EtherType.Arp, a, vid);
    }

    /// <summary>An ICMPv6 message from 2001:db8::1 to dst (2001:db8::2 by default).</summary>
    public static byte[] Icmp6(byte type, ReadOnlySpan<byte> body, byte[]? dst = null, int? vid = null)
    {
        dst ??= Ip6B;
        var ip = new byte[40 + 4 + body.Length];
        ip[0] = 0x60;
        BinaryPrimitives.WriteUInt16BigEndian(ip.AsSpan(4), (ushort)(4 + body.Length));
        ip[6] = IpProtocol.Icmpv6;
        ip[7] = 255;
        Ip6A.CopyTo(ip, 8);
        dst.CopyTo(ip, 24);
        ip[40] = type;
        body.CopyTo(ip.AsSpan(44));
        uint sum = Checksum.Add(0, ip.AsSpan(8, 32)) + (uint)(4 + body.Length) + IpProtocol.Icmpv6;
        BinaryPrimitives.WriteUInt16BigEndian(ip.AsSpan(42), Checksum.Fold(Checksum.Add(sum, ip.AsSpan(40))));
        return Ether(MacB, MacA, EtherType.Ipv6, ip, vid);
    }

    /// <summary>An IPv6 fragment of an ICMPv6 datagram: fragment header (id, offset, M) and 16 bytes.</summary>
    public static byte[] Ipv6Fragment(uint id, int offset, bool more)
    {
        var ip = new byte[40 + 8 + 16];
        ip[0] = 0x60;
        BinaryPrimitives.WriteUInt16BigEndian(ip.AsSpan(4), 8 + 16);
        ip[6] = 44;
        ip[7] = 64;
        Ip6A.CopyTo(ip, 8);
        Ip6B.CopyTo(ip, 24);
        ip[40] = IpProtocol.Icmpv6;
        BinaryPrimitives.WriteUInt16BigEndian(ip.AsSpan(42), (ushort)(offset | (more ? 1 : 0)));
        BinaryPrimitives.WriteUInt32BigEndian(ip.AsSpan(44), id);
        return Ether(MacB, MacA, EtherType.Ipv6, ip);
    }

    public static byte[] Icmp6Echo(ushort id, ushort seq, int? vid = null)
    {
        var body = new byte[4 + 16];
        BinaryPrimitives.WriteUInt16BigEndian(body, id);
        BinaryPrimitives.WriteUInt16BigEndian(body.AsSpan(2), seq);
        return Icmp6(128, body, vid: vid);
    }

    public static byte[] Unknown(ushort type = 0x88B5)
        => Ether(MacAddress.Broadcast, MacA, type, new byte[46]);

    /// <summary>Every kind above, plain and tagged: the corpus for robustness and tshark tests.</summary>
    public static IEnumerable<byte[]> All()
    {
        foreach (int? vid in new int?[] { null, 5 })
        {
            yield return Arp(request: true, vid);
            yield return Arp(request: false, vid);
            yield return Udp(1234, 9, vid: vid);
            yield return Tcp(40000, 80, 0x02, 1, vid: vid);
            yield return Tcp(80, 40000, 0x12, 100, 2, 1000, vid);
            yield return IcmpEcho(request: true, 1, 0, vid);
            yield return IcmpEcho(request: false, 1, 0, vid);
            yield return Icmp6Echo(7, 3, vid);
        }
        yield return Unknown();
    }
}
