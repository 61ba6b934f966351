using System.Buffers.Binary;

namespace SmartOS.Kernel.Wire;

/// <summary>
/// A view over the fixed IPv6 header (RFC 8200). <see cref="Check"/> holds the version and payload
/// length against the buffer; once a view exists no accessor throws. Extension headers are the
/// caller's to walk (<see cref="Ipv6ExtensionHeaderView"/>, <see cref="Ipv6FragmentRepr"/>);
/// <see cref="Ipv6Repr"/> is the fixed header's meaning.
/// </summary>
public readonly ref struct Ipv6View
{
    public const int HeaderLength = 40;
    /// <summary>Where the payload length and next header fields sit (ICMPv6 parameter problem pointers, RFC 4443 3.4).</summary>
    public const int PayloadLengthOffset = 4, NextHeaderOffset = 6;
    private readonly Span<byte> _b;
    private Ipv6View(Span<byte> b) { _b = b; }

    /// <summary>A view over the header and the payload it names (padding after it left out), or why not.</summary>
    public static WireError Check(Span<byte> packet, out Ipv6View view)
    {
        view = default;
        if (packet.Length < HeaderLength) return WireError.Truncated;
        if ((packet[0] >> 4) != 6) return WireError.Malformed;
        int payload = BinaryPrimitives.ReadUInt16BigEndian(packet[4..]);
        if (HeaderLength + payload > packet.Length) return WireError.Truncated;
        view = new Ipv6View(packet[..(HeaderLength + payload)]);
        return WireError.None;
    }

    public static bool TryCreate(Span<byte> packet, out Ipv6View view) => Check(packet, out view) == WireError.None;

    /// <summary>The header alone, its payload length not held against the buffer: the datagram an
    /// ICMPv6 error quotes, or a header copied to be rewritten. <see cref="Payload"/> is what follows.</summary>
    public static bool TryCreateHeader(Span<byte> packet, out Ipv6View view)
    {
        view = default;
        if (packet.Length < HeaderLength || (packet[0] >> 4) != 6) return false;
        view = new Ipv6View(packet);
        return true;
    }

    public byte TrafficClass => (byte)((BinaryPrimitives.ReadUInt16BigEndian(_b) >> 4) & 0xFF);
    public uint FlowLabel => BinaryPrimitives.ReadUInt32BigEndian(_b) & 0xFFFFF;
    public int PayloadLength { get => BinaryPrimitives.ReadUInt16BigEndian(_b[4..]); set => BinaryPrimitives.WriteUInt16BigEndian(_b[4..], (ushort)value); }
    public byte NextHeader { get => _b[6]; set => _b[6] = value; }
    public byte HopLimit { get => _b[7]; set => _b[7] = value; }
    public IpAddress Source => IpAddress.Read(_b[8..], v4: false);
    public IpAddress Destination => IpAddress.Read(_b[24..], v4: false);
    public Span<byte> Header => _b[..HeaderLength];
    public Span<byte> Payload => _b[HeaderLength..];
    public Span<byte> Packet => _b;

    /// <summary>Writes a 40-byte header; false when the buffer is short.</summary>
    public static bool TryWrite(Span<byte> b, IpAddress src, IpAddress dst, byte nextHeader, int payloadLength, byte hopLimit, byte trafficClass = 0)
        => new Ipv6Repr
        {
            Source = src, Destination = dst, NextHeader = nextHeader, PayloadLength = payloadLength,
            HopLimit = hopLimit, TrafficClass = trafficClass,
        }.TryEmit(b);

    /// <summary>The link-local address a host forms from its MAC address (RFC 4291 modified EUI-64).</summary>
    public static IpAddress LinkLocalFromMac(MacAddress mac) => IpAddress.V6(0xFE80_0000_0000_0000UL, InterfaceIdFromMac(mac));

    /// <summary>The modified EUI-64 interface identifier of a MAC address (RFC 4291 appendix A):
    /// ff:fe in the middle, the universal/local bit flipped.</summary>
    public static ulong InterfaceIdFromMac(MacAddress mac)
    {
        ulong m = mac.Value;
        return (((m >> 24) << 40) | (0xFFFEUL << 24) | (m & 0xFFFFFF)) ^ 0x0200_0000_0000_0000UL;
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

/// <summary>
/// The fixed IPv6 header as values (smoltcp's Ipv6Repr). <see cref="NextHeader"/> names what
/// follows the fixed header (an extension header or the upper layer); <see cref="PayloadLength"/>
/// counts everything after the 40 bytes.
/// </summary>
public struct Ipv6Repr
{
    public IpAddress Source;
    public IpAddress Destination;
    public byte NextHeader;
    public int PayloadLength;
    public byte HopLimit;
    public byte TrafficClass;
    public uint FlowLabel;

    public const int HeaderLength = Ipv6View.HeaderLength;
    public readonly int BufferLength => HeaderLength + PayloadLength;

    /// <summary>Reads a checked view (IPv6 has no header checksum, so nothing here can be refused).</summary>
    public static Ipv6Repr Parse(in Ipv6View view) => new()
    {
        Source = view.Source,
        Destination = view.Destination,
        NextHeader = view.NextHeader,
        PayloadLength = view.PayloadLength,
        HopLimit = view.HopLimit,
        TrafficClass = view.TrafficClass,
        FlowLabel = view.FlowLabel,
    };

    /// <summary>Checks <paramref name="packet"/> and parses its fixed header: the view covers the datagram.</summary>
    public static WireError Parse(Span<byte> packet, out Ipv6View view, out Ipv6Repr repr)
    {
        var e = Ipv6View.Check(packet, out view);
        repr = e == WireError.None ? Parse(view) : default;
        return e;
    }

    /// <summary>Writes the 40-byte header; false when the buffer is short, the payload too long for
    /// the 16-bit field, or an address is not IPv6.</summary>
    public readonly bool TryEmit(Span<byte> b)
    {
        if (b.Length < HeaderLength || (uint)PayloadLength > ushort.MaxValue || Source.IsV4 || Destination.IsV4) return false;
        BinaryPrimitives.WriteUInt32BigEndian(b, 0x6000_0000u | ((uint)TrafficClass << 20) | (FlowLabel & 0xFFFFF));
        BinaryPrimitives.WriteUInt16BigEndian(b[4..], (ushort)PayloadLength);
        b[6] = NextHeader;
        b[7] = HopLimit;
        Source.Write(b[8..]);
        Destination.Write(b[24..]);
        return true;
    }
}

/// <summary>
/// The extension headers a receiver walks over (RFC 8200 4.3, 4.4, 4.6: hop-by-hop options,
/// routing, destination options): next header and length in 8-octet units past the first 8.
/// </summary>
public readonly ref struct Ipv6ExtensionHeaderView
{
    public const byte HopByHop = 0;
    public const byte Routing = 43;
    public const byte Fragment = 44;
    public const byte DestinationOptions = 60;
    public const int MinLength = 8;
    private readonly Span<byte> _b;
    private Ipv6ExtensionHeaderView(Span<byte> b) { _b = b; }

    /// <summary>Whether <paramref name="nextHeader"/> names a header walked by its length.</summary>
    public static bool IsWalked(byte nextHeader) => nextHeader is HopByHop or Routing or DestinationOptions;

    /// <summary>A view over the whole extension header; false when it runs past the buffer.</summary>
    public static bool TryCreate(Span<byte> b, out Ipv6ExtensionHeaderView view)
    {
        view = default;
        if (b.Length < MinLength) return false;
        int len = (b[1] + 1) * 8;
        if (len > b.Length) return false;
        view = new Ipv6ExtensionHeaderView(b[..len]);
        return true;
    }

    public byte NextHeader => _b[0];
    public int Length => _b.Length;
}

/// <summary>
/// The IPv6 fragment header (RFC 8200 4.5) as values: the upper-layer protocol, the fragment's
/// offset in bytes (a multiple of 8), whether more follow, and the identification.
/// </summary>
public struct Ipv6FragmentRepr
{
    public const int HeaderLength = 8;
    /// <summary>Where the fragment offset field sits in the header (ICMPv6 parameter problem pointers).</summary>
    public const int OffsetFieldOffset = 2;
    public byte NextHeader;
    public int Offset;
    public bool MoreFragments;
    public uint Identification;

    /// <summary>False when the buffer is shorter than the header.</summary>
    public static bool TryParse(ReadOnlySpan<byte> b, out Ipv6FragmentRepr repr)
    {
        repr = default;
        if (b.Length < HeaderLength) return false;
        ushort field = BinaryPrimitives.ReadUInt16BigEndian(b[OffsetFieldOffset..]);
        repr.NextHeader = b[0];
        repr.Offset = field & 0xFFF8;
        repr.MoreFragments = (field & 1) != 0;
        repr.Identification = BinaryPrimitives.ReadUInt32BigEndian(b[4..]);
        return true;
    }

    public readonly bool TryEmit(Span<byte> b)
    {
        if (b.Length < HeaderLength || (Offset & 7) != 0 || (uint)Offset > 0xFFF8) return false;
        b[0] = NextHeader;
        b[1] = 0;
        BinaryPrimitives.WriteUInt16BigEndian(b[OffsetFieldOffset..], (ushort)(Offset | (MoreFragments ? 1 : 0)));
        BinaryPrimitives.WriteUInt32BigEndian(b[4..], Identification);
        return true;
    }
}
