using System.Buffers.Binary;
using System.Net;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace SmartOS.Kernel.Wire;

public static class IpProtocol
{
    public const byte Icmp = 1;
    public const byte Tcp = 6;
    public const byte Udp = 17;
    public const byte Icmpv6 = 58;
    public const byte Sctp = 132;
}

/// <summary>The Internet checksum (RFC 1071) over spans, with a pseudo-header helper.</summary>
/// <summary>
/// The Internet checksum (RFC 1071). <see cref="Sum"/> adds the data as little-endian 32-bit words
/// into 64-bit lanes, 32 bytes a step where the CPU has 256-bit vectors, and swaps the folded result
/// back: ones' complement sums commute with byte swapping (RFC 1071 2(B)), and 2^16 is 1 modulo
/// 2^16-1, so 32-bit words fold to the sum of their 16-bit halves. TCP and UDP checksum every
/// segment they send and receive, so this is on the hot path.
/// </summary>
public static class Checksum
{
    /// <summary>Adds <paramref name="data"/> (big-endian 16-bit words, an odd last byte padded with
    /// zero) to <paramref name="sum"/>; <see cref="Fold"/> finishes it.</summary>
    public static uint Add(uint sum, ReadOnlySpan<byte> data) => sum + Sum(data);

    /// <summary>The ones' complement sum of <paramref name="data"/> as big-endian 16-bit words,
    /// folded to 16 bits (0 only when every byte is 0).</summary>
    public static uint Sum(ReadOnlySpan<byte> data)
    {
        ulong le = 0;
        int i = 0;
        if (Vector256.IsHardwareAccelerated && BitConverter.IsLittleEndian && data.Length >= 64)
        {
            ref byte start = ref MemoryMarshal.GetReference(data);
            var acc = Vector256<ulong>.Zero;
            for (; i + 32 <= data.Length; i += 32)
            {
                var (lo, hi) = Vector256.Widen(Vector256.LoadUnsafe(ref start, (nuint)i).AsUInt32());
                acc += lo + hi;
            }
            le = Vector256.Sum(acc);
        }
        for (; i + 8 <= data.Length; i += 8)
        {
            ulong v = BinaryPrimitives.ReadUInt64LittleEndian(data[i..]);
            le += (v >> 32) + (v & 0xFFFFFFFF);
        }
        for (; i + 1 < data.Length; i += 2) le += BinaryPrimitives.ReadUInt16LittleEndian(data[i..]);
        if (i < data.Length) le += data[i];
        le = (le & 0xFFFFFFFF) + (le >> 32);
        le = (le & 0xFFFFFFFF) + (le >> 32);
        uint s = (uint)(le & 0xFFFF) + (uint)(le >> 16);
        s = (s & 0xFFFF) + (s >> 16);
        s = (s & 0xFFFF) + (s >> 16);
        return BinaryPrimitives.ReverseEndianness((ushort)s);
    }

    public static ushort Fold(uint sum)
    {
        while ((sum >> 16) != 0) sum = (sum & 0xFFFF) + (sum >> 16);
        return (ushort)~sum;
    }

    public static ushort Compute(ReadOnlySpan<byte> data) => Fold(Add(0, data));
}

/// <summary>A view over an IPv4 header (RFC 791). TryCreate checks the version, IHL and total length.</summary>
public readonly ref struct Ipv4View
{
    public const int MinHeaderLength = 20;
    private readonly Span<byte> _b;
    private Ipv4View(Span<byte> b) { _b = b; }

    public static bool TryCreate(Span<byte> packet, out Ipv4View view)
    {
        view = default;
        if (packet.Length < MinHeaderLength || (packet[0] >> 4) != 4) return false;
        int ihl = (packet[0] & 0xF) * 4;
        int total = BinaryPrimitives.ReadUInt16BigEndian(packet[2..]);
        if (ihl < MinHeaderLength || total < ihl || total > packet.Length) return false;
        view = new Ipv4View(packet[..total]);
        return true;
    }

    public int HeaderLength => (_b[0] & 0xF) * 4;
    public int TotalLength => BinaryPrimitives.ReadUInt16BigEndian(_b[2..]);
    public byte Tos => _b[1];
    public ushort Identification => BinaryPrimitives.ReadUInt16BigEndian(_b[4..]);
    public bool DontFragment => (_b[6] & 0x40) != 0;
    public bool MoreFragments => (_b[6] & 0x20) != 0;
    public int FragmentOffset => (BinaryPrimitives.ReadUInt16BigEndian(_b[6..]) & 0x1FFF) * 8;
    public bool IsFragment => MoreFragments || FragmentOffset != 0;
    public byte Ttl => _b[8];
    public byte Protocol => _b[9];
    public uint SourceRaw => BinaryPrimitives.ReadUInt32BigEndian(_b[12..]);
    public uint DestinationRaw => BinaryPrimitives.ReadUInt32BigEndian(_b[16..]);
    public Span<byte> Payload => _b[HeaderLength..];
    public bool ChecksumValid => Checksum.Compute(_b[..HeaderLength]) == 0;

    /// <summary>Writes a 20-byte header with a correct checksum.</summary>
    public static void Write(Span<byte> b, uint src, uint dst, byte protocol, int payloadLength, byte ttl = 64, ushort id = 0, byte tos = 0)
    {
        b[0] = 0x45; b[1] = tos;
        BinaryPrimitives.WriteUInt16BigEndian(b[2..], (ushort)(MinHeaderLength + payloadLength));
        BinaryPrimitives.WriteUInt16BigEndian(b[4..], id);
        BinaryPrimitives.WriteUInt16BigEndian(b[6..], 0x4000);
        b[8] = ttl; b[9] = protocol;
        BinaryPrimitives.WriteUInt16BigEndian(b[10..], 0);
        BinaryPrimitives.WriteUInt32BigEndian(b[12..], src);
        BinaryPrimitives.WriteUInt32BigEndian(b[16..], dst);
        BinaryPrimitives.WriteUInt16BigEndian(b[10..], Checksum.Compute(b[..MinHeaderLength]));
    }

    public static uint ToRaw(IPAddress a)
    {
        Span<byte> tmp = stackalloc byte[4];
        a.TryWriteBytes(tmp, out _);
        return BinaryPrimitives.ReadUInt32BigEndian(tmp);
    }

    public static IPAddress FromRaw(uint raw)
    {
        Span<byte> tmp = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32BigEndian(tmp, raw);
        return new IPAddress(tmp);
    }
}

/// <summary>A view over a UDP header (RFC 768).</summary>
public readonly ref struct UdpView
{
    public const int HeaderLength = 8;
    private readonly Span<byte> _b;
    private UdpView(Span<byte> b) { _b = b; }

    public static bool TryCreate(Span<byte> segment, out UdpView view)
    {
        view = default;
        if (segment.Length < HeaderLength) return false;
        int len = BinaryPrimitives.ReadUInt16BigEndian(segment[4..]);
        if (len < HeaderLength || len > segment.Length) return false;
        view = new UdpView(segment[..len]);
        return true;
    }

    public ushort SourcePort => BinaryPrimitives.ReadUInt16BigEndian(_b);
    public ushort DestinationPort => BinaryPrimitives.ReadUInt16BigEndian(_b[2..]);
    public int Length => BinaryPrimitives.ReadUInt16BigEndian(_b[4..]);
    public ushort ChecksumField => BinaryPrimitives.ReadUInt16BigEndian(_b[6..]);
    public Span<byte> Payload => _b[HeaderLength..];

    /// <summary>Writes a UDP header over IPv4 and computes its checksum over the payload already in place.</summary>
    public static void WriteIpv4(Span<byte> segment, uint src, uint dst, ushort srcPort, ushort dstPort)
    {
        BinaryPrimitives.WriteUInt16BigEndian(segment, srcPort);
        BinaryPrimitives.WriteUInt16BigEndian(segment[2..], dstPort);
        BinaryPrimitives.WriteUInt16BigEndian(segment[4..], (ushort)segment.Length);
        BinaryPrimitives.WriteUInt16BigEndian(segment[6..], 0);
        uint sum = (src >> 16) + (src & 0xFFFF) + (dst >> 16) + (dst & 0xFFFF) + IpProtocol.Udp + (uint)segment.Length;
        ushort c = Checksum.Fold(Checksum.Add(sum, segment));
        BinaryPrimitives.WriteUInt16BigEndian(segment[6..], c == 0 ? (ushort)0xFFFF : c);
    }
}
