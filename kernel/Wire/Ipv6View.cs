using System.Buffers.Binary;

namespace SmartOS.Kernel.Wire;

/// <summary>A view over an IPv6 fixed header (RFC 8200). TryCreate checks the version and that the
/// payload length fits the buffer. Extension headers are not walked: NextHeader is the first one.</summary>
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
    public int PayloadLength => BinaryPrimitives.ReadUInt16BigEndian(_b[4..]);
    public byte NextHeader => _b[6];
    public byte HopLimit => _b[7];
    public IpAddress Source => IpAddress.Read(_b[8..], v4: false);
    public IpAddress Destination => IpAddress.Read(_b[24..], v4: false);
    public Span<byte> Payload => _b[HeaderLength..];

    /// <summary>Writes a fixed header (no extension headers).</summary>
    public static void Write(Span<byte> b, IpAddress src, IpAddress dst, byte nextHeader, int payloadLength, byte hopLimit = 64, byte trafficClass = 0)
    {
        BinaryPrimitives.WriteUInt32BigEndian(b, 0x6000_0000u | ((uint)trafficClass << 20));
        BinaryPrimitives.WriteUInt16BigEndian(b[4..], (ushort)payloadLength);
        b[6] = nextHeader;
        b[7] = hopLimit;
        src.Write(b[8..]);
        dst.Write(b[24..]);
    }

    /// <summary>The link-local address a host forms from its MAC address (RFC 4291 modified EUI-64).</summary>
    public static IpAddress LinkLocalFromMac(MacAddress mac)
    {
        ulong m = mac.Value;
        ulong eui = ((m >> 24) << 40) | (0xFFFEUL << 24) | (m & 0xFFFFFF);
        eui ^= 0x0200_0000_0000_0000UL;
        return IpAddress.V6(0xFE80_0000_0000_0000UL, eui);
    }
}

/// <summary>A view over an ARP packet for IPv4 over Ethernet (RFC 826): 28 bytes.</summary>
public readonly ref struct ArpView
{
    public const int Length = 28;
    public const ushort OpRequest = 1, OpReply = 2;
    private readonly Span<byte> _b;
    private ArpView(Span<byte> b) { _b = b; }

    /// <summary>Accepts only hardware type Ethernet, protocol IPv4, address lengths 6 and 4.</summary>
    public static bool TryCreate(Span<byte> packet, out ArpView view)
    {
        view = default;
        if (packet.Length < Length) return false;
        if (BinaryPrimitives.ReadUInt16BigEndian(packet) != 1 || BinaryPrimitives.ReadUInt16BigEndian(packet[2..]) != EtherType.Ipv4) return false;
        if (packet[4] != 6 || packet[5] != 4) return false;
        view = new ArpView(packet[..Length]);
        return true;
    }

    public ushort Operation => BinaryPrimitives.ReadUInt16BigEndian(_b[6..]);
    public MacAddress SenderHardware => MacAddress.Read(_b[8..]);
    public uint SenderProtocolRaw => BinaryPrimitives.ReadUInt32BigEndian(_b[14..]);
    public MacAddress TargetHardware => MacAddress.Read(_b[18..]);
    public uint TargetProtocolRaw => BinaryPrimitives.ReadUInt32BigEndian(_b[24..]);

    public static void Write(Span<byte> b, ushort op, MacAddress sha, uint spa, MacAddress tha, uint tpa)
    {
        BinaryPrimitives.WriteUInt16BigEndian(b, 1);
        BinaryPrimitives.WriteUInt16BigEndian(b[2..], EtherType.Ipv4);
        b[4] = 6; b[5] = 4;
        BinaryPrimitives.WriteUInt16BigEndian(b[6..], op);
        sha.Write(b[8..]);
        BinaryPrimitives.WriteUInt32BigEndian(b[14..], spa);
        tha.Write(b[18..]);
        BinaryPrimitives.WriteUInt32BigEndian(b[24..], tpa);
    }
}
