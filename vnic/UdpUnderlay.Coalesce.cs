using System.Buffers.Binary;
using SmartOS.Kernel.Wire;

namespace SmartOS.Vnic;

/// <summary>
/// Large receive over the socket (rule 6 of UdpUnderlay.cs): the datagrams of a drain (its slots'
/// GRO runs, each of one sender) that carry consecutive segments of one inner TCP flow are joined
/// into one large segment for the overlay (IOverlayLargeReceive), as Linux's tcp_gro_receive joins a
/// NIC's segments: the receiving zone's stack then handles one segment where it had dozens, and
/// acknowledges once. The run stays open from one slot to the next: a GRO receive holds at most
/// one GSO send's datagrams, and joining only within it made segments of ~23 pieces where 45 fit.
///
/// A datagram joins the open run when both are VXLAN with the same header, carry untagged or
/// tagged Ethernet with the same addresses, IPv4 without options or fragments with the same TOS,
/// TTL and addresses, and TCP with the same ports, acknowledgement, window and options, flags ACK
/// (PSH allowed on the last), a payload, and the next sequence number; the run's pieces but the
/// last have equal payloads (the MSS), and the joined datagram stays within 65507 bytes. Each
/// piece's IPv4 header checksum is verified before, and its TCP checksum while its payload is
/// copied into the joined frame (Checksum.CopyAndSum: one pass over the bytes where a checksum pass and then a
/// copy made two), so the joined segment's TCP checksum is left pending: its field holds the
/// pseudo-header sum. A piece whose checksum is wrong goes to the receiver alone and unchanged
/// (the zone's stack drops and counts it), and the run before it goes on without it; a datagram
/// that cannot be a piece hands the open run over first, so order is kept; a run of one is handed
/// over as the datagram it was. The drain's end hands the open run over.
/// </summary>
public sealed partial class UdpUnderlay
{
    private const int MinPiece = VxlanHeader.Length + EthernetView.HeaderLength + Ipv4View.MinHeaderLength + TcpView.MinHeaderLength;

    private readonly byte[] _merged = new byte[GroSlotBytes];
    private Action<UnderlayEndpoint, ReadOnlyMemory<byte>, int>? _receiveLarge;
    private long _coalesced, _coalescedPieces;

    /// <inheritdoc/>
    public void SetLargeReceiver(Action<UnderlayEndpoint, ReadOnlyMemory<byte>, int>? receive) => _receiveLarge = receive;

    /// <summary>Large segments handed to the overlay, and the datagrams they were made of.</summary>
    public long Coalesced => _coalesced;
    public long CoalescedPieces => _coalescedPieces;

    // The run being joined in _merged (rule 6): its length so far (0: none), where its IPv4 and TCP
    // headers start, its sender, MSS, next sequence number, last payload, pieces and PSH.
    private int _openLength, _openL3, _openL4, _openMss, _openLast, _openCount;
    private uint _openNext;
    private bool _openPushed;
    private UnderlayEndpoint _openFrom;

    // One datagram of a drain, on the loop: joined to the open run when it continues it, else the
    // run is handed over and the datagram opens the next one (or, when it cannot be a piece, goes to
    // the receiver as it is). The run stays open across slots, so the runs of several GRO receives
    // (the kernel hands over at most one GSO send's datagrams at a time) join into one segment of up
    // to 64 KiB; FlushRun at the drain's end hands the last one over.
    internal void Offer(UnderlayEndpoint from, ReadOnlyMemory<byte> datagram,
        Action<UnderlayEndpoint, ReadOnlyMemory<byte>> receive, Action<UnderlayEndpoint, ReadOnlyMemory<byte>, int> large)
    {
        var d = datagram.Span;
        if (!TryPiece(d, out int l3, out int l4, out int payload, out uint seq, out uint pseudo))
        {
            FlushRun(receive, large);
            receive(from, datagram);
            return;
        }
        int header = l4 + (d[l4 + 12] >> 4) * 4;
        var m = _merged.AsSpan();
        if (_openLength > 0 && from == _openFrom && l3 == _openL3 && l4 == _openL4 && seq == _openNext && !_openPushed
            && _openLast == _openMss && payload <= _openMss && _openLength + payload <= UdpSocketCalls.MaxGsoBytes
            && header == _openL4 + (m[_openL4 + 12] >> 4) * 4 && SameFlow(m, d, l3, l4))
        {
            // The piece's TCP checksum, its payload summed as it is copied into place: one pass.
            uint sum = pseudo + Checksum.Sum(d[l4..header]) + Checksum.CopyAndSum(d[header..], m.Slice(_openLength, payload));
            if (Checksum.Fold(sum) != 0)
            {
                // Broken: the run so far goes on whole, the piece alone (the stack drops and counts it).
                FlushRun(receive, large);
                receive(from, datagram);
                return;
            }
            _openLength += payload;
            _openNext += (uint)payload;
            _openLast = payload;
            _openCount++;
            _openPushed = (d[l4 + 13] & (byte)TcpFlags.Psh) != 0;
            return;
        }
        FlushRun(receive, large);
        d[..header].CopyTo(m);
        uint first = pseudo + Checksum.Sum(d[l4..header]) + Checksum.CopyAndSum(d[header..], m[header..d.Length]);
        if (Checksum.Fold(first) != 0)
        {
            receive(from, datagram);
            return;
        }
        _openLength = d.Length;
        _openL3 = l3;
        _openL4 = l4;
        _openMss = payload;
        _openLast = payload;
        _openNext = seq + (uint)payload;
        _openCount = 1;
        _openPushed = (d[l4 + 13] & (byte)TcpFlags.Psh) != 0;
        _openFrom = from;
    }

    // Hands the open run over: a run of one as the datagram it was (copied whole into _merged), a
    // longer one joined, with its IPv4 length and checksum made right, PSH if its last piece had it,
    // the TCP checksum field holding the pseudo-header sum.
    internal void FlushRun(Action<UnderlayEndpoint, ReadOnlyMemory<byte>> receive, Action<UnderlayEndpoint, ReadOnlyMemory<byte>, int> large)
    {
        int length = _openLength;
        if (length == 0) return;
        _openLength = 0;
        if (_openCount == 1)
        {
            receive(_openFrom, _merged.AsMemory(0, length));
            return;
        }
        var m = _merged.AsSpan();
        var ip = m.Slice(_openL3, Ipv4View.MinHeaderLength);
        BinaryPrimitives.WriteUInt16BigEndian(ip[2..], (ushort)(length - _openL3));
        ip[10] = 0;
        ip[11] = 0;
        BinaryPrimitives.WriteUInt16BigEndian(ip[10..], Checksum.Compute(ip));
        var tcp = m[_openL4..length];
        if (_openPushed) tcp[13] |= (byte)TcpFlags.Psh;
        uint pseudo = Checksum.Sum(ip.Slice(12, 8)) + IpProtocol.Tcp + (uint)tcp.Length;
        while ((pseudo >> 16) != 0) pseudo = (pseudo & 0xFFFF) + (pseudo >> 16);
        BinaryPrimitives.WriteUInt16BigEndian(tcp[TcpView.ChecksumOffset..], (ushort)pseudo);
        _coalesced++;
        _coalescedPieces += _openCount;
        large(_openFrom, _merged.AsMemory(0, length), _openMss);
    }

    // Whether the datagram is a piece that may join a run (see above), its IPv4 header checksum
    // verified; `pseudo` is its TCP pseudo-header sum, for the caller to verify the TCP checksum as
    // it copies the payload.
    private static bool TryPiece(ReadOnlySpan<byte> d, out int l3, out int l4, out int payload, out uint seq, out uint pseudo)
    {
        pseudo = 0;
        l3 = VxlanHeader.Length + EthernetView.HeaderLength;
        l4 = 0;
        payload = 0;
        seq = 0;
        if (d.Length < MinPiece || (d[0] & VxlanHeader.FlagVni) == 0) return false;
        ushort type = BinaryPrimitives.ReadUInt16BigEndian(d[(l3 - 2)..]);
        if (type == EtherType.Vlan)
        {
            l3 += EthernetView.TagLength;
            if (d.Length < MinPiece + EthernetView.TagLength) return false;
            type = BinaryPrimitives.ReadUInt16BigEndian(d[(l3 - 2)..]);
        }
        if (type != EtherType.Ipv4) return false;
        var ip = d[l3..];
        if (ip[0] != 0x45 || ip[9] != IpProtocol.Tcp || (BinaryPrimitives.ReadUInt16BigEndian(ip[6..]) & 0x3FFF) != 0) return false;
        int total = BinaryPrimitives.ReadUInt16BigEndian(ip[2..]);
        if (total != ip.Length || Checksum.Compute(ip[..Ipv4View.MinHeaderLength]) != 0) return false;
        l4 = l3 + Ipv4View.MinHeaderLength;
        var tcp = d[l4..];
        int header = (tcp[12] >> 4) * 4;
        if (header < TcpView.MinHeaderLength || header >= tcp.Length) return false;
        if ((tcp[13] & ~(byte)(TcpFlags.Ack | TcpFlags.Psh)) != 0 || (tcp[13] & (byte)TcpFlags.Ack) == 0) return false;
        pseudo = Checksum.Sum(ip.Slice(12, 8)) + IpProtocol.Tcp + (uint)tcp.Length;
        payload = tcp.Length - header;
        seq = BinaryPrimitives.ReadUInt32BigEndian(tcp[4..]);
        return true;
    }

    // Same VXLAN header, Ethernet (and tag), IPv4 TOS/TTL/addresses, TCP ports, ack, offset,
    // window and options.
    private static bool SameFlow(ReadOnlySpan<byte> a, ReadOnlySpan<byte> b, int l3, int l4)
    {
        int header = (a[l4 + 12] >> 4) * 4;
        return a[..l3].SequenceEqual(b[..l3])
               && a[l3 + 1] == b[l3 + 1] && a[l3 + 8] == b[l3 + 8]
               && a.Slice(l3 + 12, 8).SequenceEqual(b.Slice(l3 + 12, 8))
               && a.Slice(l4, 4).SequenceEqual(b.Slice(l4, 4))
               && a.Slice(l4 + 8, 5).SequenceEqual(b.Slice(l4 + 8, 5)) // ack, data offset
               && a.Slice(l4 + 14, 2).SequenceEqual(b.Slice(l4 + 14, 2))
               && a.Slice(l4 + TcpView.MinHeaderLength, header - TcpView.MinHeaderLength)
                   .SequenceEqual(b.Slice(l4 + TcpView.MinHeaderLength, header - TcpView.MinHeaderLength));
    }
}
