using System.Buffers.Binary;
using SmartOS.Kernel.Wire;

namespace SmartOS.Netstack.Tests;

/// <summary>Hand-built frames for injection tests (independent of the stack's own emitters).</summary>
internal static class Frames
{
    public static byte[] ToIPAddressBytes(this IpAddress a)
    {
        var b = new byte[a.ByteLength];
        a.Write(b);
        return b;
    }

    public static byte[] Ipv4(MacAddress dst, MacAddress src, string ipSrc, string ipDst, byte proto, byte[] payload, byte ttl = 64, ushort flagsOffset = 0, ushort id = 1)
    {
        var f = new byte[14 + 20 + payload.Length];
        EthernetView.WriteHeader(f, dst, src, EtherType.Ipv4);
        var ip = f.AsSpan(14);
        ip[0] = 0x45;
        BinaryPrimitives.WriteUInt16BigEndian(ip[2..], (ushort)(20 + payload.Length));
        BinaryPrimitives.WriteUInt16BigEndian(ip[4..], id);
        BinaryPrimitives.WriteUInt16BigEndian(ip[6..], flagsOffset);
        ip[8] = ttl; ip[9] = proto;
        World.Ip(ipSrc).Write(ip[12..]);
        World.Ip(ipDst).Write(ip[16..]);
        BinaryPrimitives.WriteUInt16BigEndian(ip[10..], Checksum.Compute(ip[..20]));
        payload.CopyTo(ip[20..]);
        return f;
    }

    public static byte[] Ipv6(MacAddress dst, MacAddress src, IpAddress ipSrc, IpAddress ipDst, byte next, byte hopLimit, byte[] payload)
    {
        var f = new byte[14 + 40 + payload.Length];
        EthernetView.WriteHeader(f, dst, src, EtherType.Ipv6);
        Ipv6View.TryWrite(f.AsSpan(14), ipSrc, ipDst, next, payload.Length, hopLimit);
        payload.CopyTo(f, 54);
        return f;
    }

    public static byte[] Icmpv6(IpAddress src, IpAddress dst, byte type, byte code, uint rest, byte[] body)
    {
        var m = new byte[8 + body.Length];
        IcmpView.TryWriteHeader(m, type, code, rest);
        body.CopyTo(m, 8);
        IcmpView.FinishV6(m, src, dst);
        return m;
    }

    public static byte[] Udp(string src, string dst, ushort sport, ushort dport, byte[] data, bool checksum = true)
    {
        var u = new byte[8 + data.Length];
        data.CopyTo(u, 8);
        BinaryPrimitives.WriteUInt16BigEndian(u, sport);
        BinaryPrimitives.WriteUInt16BigEndian(u.AsSpan(2), dport);
        BinaryPrimitives.WriteUInt16BigEndian(u.AsSpan(4), (ushort)u.Length);
        if (checksum)
        {
            ushort c = Ipv6View.TransportChecksum(World.Ip(src), World.Ip(dst), IpProtocol.Udp, u);
            BinaryPrimitives.WriteUInt16BigEndian(u.AsSpan(6), c == 0 ? (ushort)0xFFFF : c);
        }
        return u;
    }
}
