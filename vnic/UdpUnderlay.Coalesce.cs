using System.Buffers.Binary;
using SmartOS.Kernel.Wire;

namespace SmartOS.Vnic;

/// <summary>
/// Large receive over the socket (rule 6 of UdpUnderlay.cs): a UDP_GRO run holds datagrams of one
/// sender; consecutive ones that carry consecutive segments of one inner TCP flow are joined into
/// one large segment for the overlay (IOverlayLargeReceive), as Linux's tcp_gro_receive joins a
/// NIC's segments: the receiving zone's stack then handles one segment where it had dozens.
///
/// A datagram joins the run of the one before when both are VXLAN with the same header, carry
/// untagged or tagged Ethernet with the same addresses, IPv4 without options or fragments with the
/// same TOS, TTL and addresses, and TCP with the same ports, acknowledgement, window and options,
/// flags ACK (PSH allowed on the last), a payload, and the next sequence number; the run's pieces
/// but the last have equal payloads (the MSS). Each piece's IPv4 and TCP checksums are verified as
/// it joins (one pass over its bytes, as the stack would have made), so the joined segment's TCP
/// checksum is left pending: its field holds the pseudo-header sum. A piece that does not join is
/// handed over alone, and so is a run of one.
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

    // A GRO slot's datagrams, joined where they may be; on the loop.
    private void DeliverRun(UnderlayEndpoint from, byte[] buffer, int length, int step,
        Action<UnderlayEndpoint, ReadOnlyMemory<byte>> receive, Action<UnderlayEndpoint, ReadOnlyMemory<byte>, int> large)
    {
        int at = 0;
        while (at < length)
        {
            int n = Math.Min(step, length - at);
            var first = buffer.AsSpan(at, n);
            if (!TryPiece(first, out int l3, out int l4, out int payload, out uint seq))
            {
                receive(from, buffer.AsMemory(at, n));
                at += n;
                continue;
            }
            int end = at + n, count = 1, mss = payload;
            uint next = seq + (uint)payload;
            int last = payload;
            bool pushed = (first[l4 + 13] & (byte)TcpFlags.Psh) != 0;
            while (!pushed && last == mss && end < length)
            {
                int m = Math.Min(step, length - end);
                var piece = buffer.AsSpan(end, m);
                if (!TryPiece(piece, out int pl3, out int pl4, out int p, out uint s) || pl3 != l3 || pl4 != l4 || s != next
                    || p > mss || !SameFlow(first, piece, l3, l4))
                    break;
                pushed = (piece[l4 + 13] & (byte)TcpFlags.Psh) != 0;
                next += (uint)p;
                last = p;
                end += m;
                count++;
            }
            if (count == 1) receive(from, buffer.AsMemory(at, n));
            else large(from, _merged.AsMemory(0, Join(buffer, at, end, step, l3, l4, pushed)), mss);
            if (count > 1)
            {
                _coalesced++;
                _coalescedPieces += count;
            }
            at = end;
        }
    }

    // Whether the datagram is a piece that may join a run (see above), its checksums verified.
    private static bool TryPiece(ReadOnlySpan<byte> d, out int l3, out int l4, out int payload, out uint seq)
    {
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
        uint pseudo = Checksum.Sum(ip.Slice(12, 8)) + IpProtocol.Tcp + (uint)tcp.Length;
        if (Checksum.Fold(pseudo + Checksum.Sum(tcp)) != 0) return false;
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
               && a.Slice(l4 + 8, 3).SequenceEqual(b.Slice(l4 + 8, 3)) // ack, data offset
               && a.Slice(l4 + 14, 2).SequenceEqual(b.Slice(l4 + 14, 2))
               && a.Slice(l4 + TcpView.MinHeaderLength, header - TcpView.MinHeaderLength)
                   .SequenceEqual(b.Slice(l4 + TcpView.MinHeaderLength, header - TcpView.MinHeaderLength));
    }

    // Writes the joined datagram into _merged: the first piece's headers, every piece's payload,
    // IPv4 length and checksum made right, PSH if the last had it, the TCP checksum field holding
    // the pseudo-header sum. Returns its length.
    private int Join(byte[] buffer, int start, int end, int step, int l3, int l4, bool pushed)
    {
        int header = l4 + (buffer[start + l4 + 12] >> 4) * 4;
        var m = _merged.AsSpan();
        buffer.AsSpan(start, header).CopyTo(m);
        int length = header;
        for (int at = start; at < end; at += step)
        {
            int n = Math.Min(step, end - at);
            buffer.AsSpan(at + header, n - header).CopyTo(m[length..]);
            length += n - header;
        }
        var ip = m.Slice(l3, Ipv4View.MinHeaderLength);
        BinaryPrimitives.WriteUInt16BigEndian(ip[2..], (ushort)(length - l3));
        ip[10] = 0;
        ip[11] = 0;
        BinaryPrimitives.WriteUInt16BigEndian(ip[10..], Checksum.Compute(ip));
        var tcp = m[l4..length];
        if (pushed) tcp[13] |= (byte)TcpFlags.Psh;
        uint pseudo = Checksum.Sum(ip.Slice(12, 8)) + IpProtocol.Tcp + (uint)tcp.Length;
        while ((pseudo >> 16) != 0) pseudo = (pseudo & 0xFFFF) + (pseudo >> 16);
        BinaryPrimitives.WriteUInt16BigEndian(tcp[TcpView.ChecksumOffset..], (ushort)pseudo);
        return length;
    }
}
