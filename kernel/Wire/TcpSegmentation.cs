using System.Buffers.Binary;

namespace SmartOS.Kernel.Wire;

/// <summary>
/// TCP segmentation in software (Linux's GSO, a NIC's TSO): one Ethernet frame carrying a TCP segment
/// larger than the path allows, cut into frames of at most <c>mss</c> payload bytes each, as a NIC
/// with TSO puts them on the wire. Every segment gets the original's headers (Ethernet, any 802.1Q
/// tag, IPv4 or IPv6 without extension headers, TCP with its options) with these fields made right:
/// IPv4 total length, identification (the original's plus the segment's index, as Linux numbers
/// them) and header checksum; IPv6 payload length; TCP sequence number; FIN and PSH only on the
/// last segment, CWR only on the first; the TCP checksum computed in full.
///
/// A view: <see cref="TryCreate"/> checks the frame once, then <see cref="Write"/> cannot fail on a
/// destination of <see cref="SegmentLength"/> bytes. Nothing is allocated, so a TAP reader can cut
/// a 64 KiB GSO frame from Linux straight into pooled buffers.
/// </summary>
public readonly ref struct TcpSegmentation
{
    private readonly ReadOnlySpan<byte> _frame;
    private readonly int _l3, _l4, _headers, _end, _mss;
    private readonly bool _v4;

    private TcpSegmentation(ReadOnlySpan<byte> frame, int l3, int l4, int headers, int end, int mss, bool v4)
    {
        _frame = frame; _l3 = l3; _l4 = l4; _headers = headers; _end = end; _mss = mss; _v4 = v4;
        int payload = end - headers;
        Count = payload == 0 ? 1 : (payload + mss - 1) / mss;
    }

    /// <summary>How many frames the original becomes (1 when its payload already fits).</summary>
    public int Count { get; }

    /// <summary>Bytes of headers every segment repeats (Ethernet, IP, TCP).</summary>
    public int HeaderLength => _headers;

    /// <summary>Where the TCP header starts in the frame.</summary>
    public int TransportOffset => _l4;

    /// <summary>IPv4 (else IPv6).</summary>
    public bool IsV4 => _v4;

    /// <summary>The payload bytes the frame carries in all.</summary>
    public int PayloadLength => _end - _headers;

    /// <summary>The folded pseudo-header sum of the whole (unsegmented) TCP segment, as a device
    /// given a GSO frame wants it in the checksum field (Linux's tcp_v4_send_check).</summary>
    public ushort WholePseudoHeaderSum()
    {
        uint sum = PseudoHeaderSum(_frame[_l3.._l4], _end - _l4);
        while ((sum >> 16) != 0) sum = (sum & 0xFFFF) + (sum >> 16);
        return (ushort)sum; // folded, not complemented: the device adds the segment's bytes to it
    }

    /// <summary>Checks that <paramref name="frame"/> is Ethernet (optionally tagged) with IPv4 or
    /// IPv6 and TCP, whole, and that <paramref name="mss"/> is positive.</summary>
    public static bool TryCreate(ReadOnlySpan<byte> frame, int mss, out TcpSegmentation segmentation)
    {
        segmentation = default;
        if (mss <= 0 || !TryLocate(frame, out int l3, out int l4, out int headers, out int end, out bool v4)) return false;
        segmentation = new TcpSegmentation(frame, l3, l4, headers, end, mss, v4);
        return true;
    }

    /// <summary>Finds the headers of a whole TCP segment in an Ethernet frame (optionally tagged) of
    /// IPv4 that is not a fragment or IPv6 without extension headers: the offsets of the IP header
    /// (<paramref name="l3"/>), the TCP header (<paramref name="l4"/>), the end of the TCP header and
    /// its options (<paramref name="headers"/>) and of the IP packet (<paramref name="end"/>). False
    /// for anything else, or a frame cut short or with lengths that do not fit.</summary>
    public static bool TryLocate(ReadOnlySpan<byte> frame, out int l3, out int l4, out int headers, out int end, out bool v4)
    {
        l4 = headers = end = 0;
        v4 = false;
        if (!EthernetView.TryReadType(frame, out ushort type, out l3)) return false;
        v4 = type == EtherType.Ipv4;
        if (v4)
        {
            if (frame.Length < l3 + Ipv4View.MinHeaderLength || frame[l3] >> 4 != 4) return false;
            int ihl = (frame[l3] & 0xF) * 4;
            end = l3 + BinaryPrimitives.ReadUInt16BigEndian(frame[(l3 + 2)..]);
            if (ihl < Ipv4View.MinHeaderLength || frame[l3 + 9] != IpProtocol.Tcp) return false;
            if ((BinaryPrimitives.ReadUInt16BigEndian(frame[(l3 + 6)..]) & 0x3FFF) != 0) return false; // a fragment
            l4 = l3 + ihl;
        }
        else if (type == EtherType.Ipv6)
        {
            if (frame.Length < l3 + Ipv6View.HeaderLength || frame[l3] >> 4 != 6) return false;
            if (frame[l3 + Ipv6View.NextHeaderOffset] != IpProtocol.Tcp) return false;
            l4 = l3 + Ipv6View.HeaderLength;
            end = l4 + BinaryPrimitives.ReadUInt16BigEndian(frame[(l3 + Ipv6View.PayloadLengthOffset)..]);
        }
        else
        {
            return false;
        }
        if (end > frame.Length || l4 + TcpView.MinHeaderLength > end) return false;
        headers = l4 + (frame[l4 + 12] >> 4) * 4;
        return headers >= l4 + TcpView.MinHeaderLength && headers <= end;
    }

    /// <summary>The length of frame <paramref name="index"/>.</summary>
    public int SegmentLength(int index) => _headers + SegmentPayload(index);

    private int SegmentPayload(int index) => Math.Min(_mss, _end - _headers - index * _mss);

    /// <summary>Writes frame <paramref name="index"/> (0 to Count-1) into <paramref name="destination"/>,
    /// which holds at least <see cref="SegmentLength"/> bytes; returns its length.</summary>
    public int Write(int index, Span<byte> destination)
    {
        int payload = SegmentPayload(index);
        int length = _headers + payload;
        var f = destination[..length];
        _frame[.._headers].CopyTo(f);
        _frame.Slice(_headers + index * _mss, payload).CopyTo(f[_headers..]);
        var ip = f[_l3.._l4];
        var tcp = f[_l4..];
        if (_v4)
        {
            BinaryPrimitives.WriteUInt16BigEndian(ip[2..], (ushort)(length - _l3));
            BinaryPrimitives.WriteUInt16BigEndian(ip[4..], (ushort)(BinaryPrimitives.ReadUInt16BigEndian(ip[4..]) + index));
            ip[10] = 0; ip[11] = 0;
            BinaryPrimitives.WriteUInt16BigEndian(ip[10..], Checksum.Compute(ip));
        }
        else
        {
            BinaryPrimitives.WriteUInt16BigEndian(ip[Ipv6View.PayloadLengthOffset..], (ushort)tcp.Length);
        }
        BinaryPrimitives.WriteUInt32BigEndian(tcp[4..], BinaryPrimitives.ReadUInt32BigEndian(tcp[4..]) + (uint)(index * _mss));
        var flags = (TcpFlags)tcp[13];
        if (index < Count - 1) flags &= ~(TcpFlags.Fin | TcpFlags.Psh);
        if (index > 0) flags &= ~TcpFlags.Cwr;
        tcp[13] = (byte)flags;
        tcp[TcpView.ChecksumOffset] = 0; tcp[TcpView.ChecksumOffset + 1] = 0;
        BinaryPrimitives.WriteUInt16BigEndian(tcp[TcpView.ChecksumOffset..], Checksum.Fold(PseudoHeaderSum(ip, tcp.Length) + Checksum.Sum(tcp)));
        return length;
    }

    /// <summary>The TCP pseudo-header's sum from the segment's own addresses.</summary>
    private uint PseudoHeaderSum(ReadOnlySpan<byte> ip, int tcpLength)
    {
        var addresses = _v4 ? ip.Slice(12, 8) : ip.Slice(8, 32);
        // Sum returns the folded 16-bit sum; adding the protocol and length words keeps it exact.
        return Checksum.Sum(addresses) + IpProtocol.Tcp + (uint)tcpLength;
    }
}
