using System.Buffers.Binary;

namespace SmartOS.Kernel.Wire;

/// <summary>
/// A view over a UDP header (RFC 768). <see cref="Check"/> holds the length field against the
/// buffer: the view covers the datagram (bytes after it in the IP payload are left out); once a view
/// exists no accessor throws. <see cref="UdpRepr"/> is the header's meaning.
/// </summary>
public readonly ref struct UdpView
{
    public const int HeaderLength = 8;
    private readonly Span<byte> _b;
    private UdpView(Span<byte> b) { _b = b; }

    /// <summary>A view over the datagram its length field names, or why not.</summary>
    public static WireError Check(Span<byte> segment, out UdpView view)
    {
        view = default;
        if (segment.Length < HeaderLength) return WireError.Truncated;
        int len = BinaryPrimitives.ReadUInt16BigEndian(segment[4..]);
        if (len < HeaderLength) return WireError.Malformed;
        if (len > segment.Length) return WireError.Truncated;
        view = new UdpView(segment[..len]);
        return WireError.None;
    }

    public static bool TryCreate(Span<byte> segment, out UdpView view) => Check(segment, out view) == WireError.None;

    /// <summary>The header alone, its length not held against the buffer: what an ICMP error quotes.</summary>
    public static bool TryCreateHeader(Span<byte> segment, out UdpView view)
    {
        view = default;
        if (segment.Length < HeaderLength) return false;
        view = new UdpView(segment);
        return true;
    }

    public ushort SourcePort => BinaryPrimitives.ReadUInt16BigEndian(_b);
    public ushort DestinationPort => BinaryPrimitives.ReadUInt16BigEndian(_b[2..]);
    public int Length => BinaryPrimitives.ReadUInt16BigEndian(_b[4..]);
    public ushort ChecksumField => BinaryPrimitives.ReadUInt16BigEndian(_b[6..]);
    public Span<byte> Payload => _b[HeaderLength..];
    public Span<byte> Datagram => _b;

    /// <summary>Writes a UDP header over IPv4 and computes its checksum over the payload already in place.</summary>
    public static void WriteIpv4(Span<byte> segment, uint src, uint dst, ushort srcPort, ushort dstPort)
        => new UdpRepr { SourcePort = srcPort, DestinationPort = dstPort }.TryEmit(segment, IpAddress.V4(src), IpAddress.V4(dst));
}

/// <summary>
/// A UDP header as values (smoltcp's UdpRepr): the ports. The payload stays in the packet; the
/// length and checksum are the datagram's and are checked by <see cref="Parse"/> and written by
/// <see cref="TryEmit"/>.
/// </summary>
public struct UdpRepr
{
    public ushort SourcePort;
    public ushort DestinationPort;

    public const int HeaderLength = UdpView.HeaderLength;

    /// <summary>
    /// Reads a checked view. The checksum covers the pseudo-header (RFC 768; RFC 8200 8.1 for IPv6);
    /// a zero checksum means "none" over IPv4 and is invalid over IPv6 (RFC 8200 8.1). Both count as
    /// <see cref="WireError.BadChecksum"/> when <paramref name="caps"/> asks for UDP checksums.
    /// </summary>
    public static WireError Parse(in UdpView view, IpAddress source, IpAddress destination, ChecksumCaps caps, out UdpRepr repr)
    {
        repr = default;
        if ((caps & ChecksumCaps.Udp) != 0)
        {
            ushort sum = view.ChecksumField;
            if ((sum != 0 || !source.IsV4)
                && (sum == 0 || Ipv6View.TransportChecksum(source, destination, IpProtocol.Udp, view.Datagram) != 0))
                return WireError.BadChecksum;
        }
        repr.SourcePort = view.SourcePort;
        repr.DestinationPort = view.DestinationPort;
        return WireError.None;
    }

    /// <summary>The ports of the header an ICMP error quotes (RFC 792 quotes the first 8 bytes); false when shorter.</summary>
    public static bool TryParseQuoted(ReadOnlySpan<byte> quoted, out UdpRepr repr)
    {
        repr = default;
        if (quoted.Length < 4) return false;
        repr.SourcePort = BinaryPrimitives.ReadUInt16BigEndian(quoted);
        repr.DestinationPort = BinaryPrimitives.ReadUInt16BigEndian(quoted[2..]);
        return true;
    }

    /// <summary>Checks <paramref name="segment"/> (the IP payload) and parses it: the view covers the datagram.</summary>
    public static WireError Parse(Span<byte> segment, IpAddress source, IpAddress destination, ChecksumCaps caps, out UdpView view, out UdpRepr repr)
    {
        repr = default;
        var e = UdpView.Check(segment, out view);
        return e != WireError.None ? e : Parse(view, source, destination, caps, out repr);
    }

    /// <summary>Writes the header in front of the payload already in place (<paramref name="datagram"/>
    /// is header and payload) with the length and the checksum over the pseudo-header; a computed 0 is
    /// sent as 0xFFFF (RFC 768). False when the buffer cannot hold a header or is longer than UDP allows.</summary>
    /// <summary>Writes the header with a zero checksum, which means "none" over IPv4 (RFC 768): for
    /// VXLAN's outer UDP, which RFC 7348 section 5 says SHOULD carry none. Not for IPv6, where zero
    /// is invalid.</summary>
    public readonly bool TryEmitWithoutChecksum(Span<byte> datagram)
    {
        if (datagram.Length < HeaderLength || datagram.Length > ushort.MaxValue) return false;
        BinaryPrimitives.WriteUInt16BigEndian(datagram, SourcePort);
        BinaryPrimitives.WriteUInt16BigEndian(datagram[2..], DestinationPort);
        BinaryPrimitives.WriteUInt16BigEndian(datagram[4..], (ushort)datagram.Length);
        BinaryPrimitives.WriteUInt16BigEndian(datagram[6..], 0);
        return true;
    }

    public readonly bool TryEmit(Span<byte> datagram, IpAddress source, IpAddress destination)
    {
        if (datagram.Length < HeaderLength || datagram.Length > ushort.MaxValue) return false;
        BinaryPrimitives.WriteUInt16BigEndian(datagram, SourcePort);
        BinaryPrimitives.WriteUInt16BigEndian(datagram[2..], DestinationPort);
        BinaryPrimitives.WriteUInt16BigEndian(datagram[4..], (ushort)datagram.Length);
        BinaryPrimitives.WriteUInt16BigEndian(datagram[6..], 0);
        ushort sum = Ipv6View.TransportChecksum(source, destination, IpProtocol.Udp, datagram);
        BinaryPrimitives.WriteUInt16BigEndian(datagram[6..], sum == 0 ? (ushort)0xFFFF : sum);
        return true;
    }
}
