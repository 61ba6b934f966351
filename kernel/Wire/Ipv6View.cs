using System.Buffers.Binary;

namespace SmartOS.Kernel.Wire;

/// <summary>
/// A view over the fixed IPv6 header (RFC 8200). TryCreate checks the version and that the payload
/// length fits the buffer; extension headers are the caller's to walk (NextHeader, Payload).
/// </summary>
public readonly ref struct Ipv6View
{
    public const int HeaderLength = 40;
    private readonly Span<byte> _b;
    private Ipv6View(Span<byte> b) { _b = b; }

    public static bool TryCreate(Span<byte> packet, out Ipv6View view)
    {
        view = default;
        if (packet.Length < HeaderLength || (packet[0] >> 4) != 6) return false;
        int payload = BinaryPrimitives.ReadUInt16BigEndian(packet[4..]);
        if (HeaderLength + payload > packet.Length) return false;
        view = new Ipv6View(packet[..(HeaderLength + payload)]);
        return true;
    }

    public byte TrafficClass => (byte)((BinaryPrimitives.ReadUInt16BigEndian(_b) >> 4) & 0xFF);
    public uint FlowLabel => BinaryPrimitives.ReadUInt32BigEndian(_b) & 0xFFFFF;
    public int PayloadLength => BinaryPrimitives.ReadUInt16BigEndian(_b[4..]);
    public byte NextHeader => _b[6];
    public byte HopLimit { get => _b[7]; set => _b[7] = value; }
    public IpAddress Source => IpAddress.Read(_b[8..], v4: false);
    public IpAddress Destination => IpAddress.Read(_b[24..], v4: false);
    public Span<byte> Payload => _b[HeaderLength..];
    public Span<byte> Packet => _b;

    /// <summary>Writes a 40-byte header; false when the buffer is short.</summary>
    public static bool TryWrite(Span<byte> b, IpAddress src, IpAddress dst, byte nextHeader, int payloadLength, byte hopLimit, byte trafficClass = 0)
    {
        if (b.Length < HeaderLength || payloadLength > ushort.MaxValue) return false;
        BinaryPrimitives.WriteUInt32BigEndian(b, 0x6000_0000u | ((uint)trafficClass << 20));
        BinaryPrimitives.WriteUInt16BigEndian(b[4..], (ushort)payloadLength);
        b[6] = nextHeader;
        b[7] = hopLimit;
        src.Write(b[8..]);
        dst.Write(b[24..]);
        return true;
    }

    /// <summary>The link-local address a host forms from its MAC address (RFC 4291 modified EUI-64).</summary>
    public static IpAddress LinkLocalFromMac(MacAddress mac)
    {
        ulong m = mac.Value;
        ulong eui = ((m >> 24) << 40) | (0xFFFEUL << 24) | (m & 0xFFFFFF);
        eui ^= 0x0200_0000_0000_0000UL;
        return IpAddress.V6(0xFE80_0000_0000_0000UL, eui);
    }

    /// <summary>The sum of a pseudo-header (RFC 8200 section 8.1 for IPv6, RFC 768 for IPv4), to be
    /// added to the transport segment and folded.</summary>
    public static uint PseudoHeaderSum(IpAddress src, IpAddress dst, byte protocol, int length)
    {
        uint sum = protocol + (uint)(length & 0xFFFF) + (uint)(length >> 16);
        sum += Words(src) + Words(dst);
        return sum;
    }

    private static uint Words(IpAddress a)
    {
        if (a.IsV4) return (a.V4Raw >> 16) + (a.V4Raw & 0xFFFF);
        uint s = 0;
        for (int shift = 48; shift >= 0; shift -= 16) s += (uint)((a.High >> shift) & 0xFFFF) + (uint)((a.Low >> shift) & 0xFFFF);
        return s;
    }

    /// <summary>The transport checksum of <paramref name="segment"/> (with its checksum field zero or
    /// as received) over the pseudo-header; 0 over a received segment means valid.</summary>
    public static ushort TransportChecksum(IpAddress src, IpAddress dst, byte protocol, ReadOnlySpan<byte> segment)
        => Checksum.Fold(Checksum.Add(PseudoHeaderSum(src, dst, protocol, segment.Length), segment));
}
