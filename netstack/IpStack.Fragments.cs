using SmartOS.Kernel;
using SmartOS.Kernel.Wire;

namespace SmartOS.Netstack;

// Fragmentation and reassembly, IPv4 (RFC 791, RFC 815's hole list) and IPv6 (RFC 8200 4.5,
// overlaps per RFC 5722, atomic fragments per RFC 6946), bounded alike (rule 3): entries, bytes
// and time. Reassembly keeps a datagram's payload at a fixed offset in one large pooled buffer,
// with room in front for the longest header, so the whole datagram comes out in place.
public sealed partial class IpStack
{
    /// <summary>RFC 1122 suggests 60 to 120 s; illumos's ip_reassembly_timeout is 60 s.</summary>
    public const long ReassemblyTimeout = 60 * Time.Second;
    /// <summary>Datagrams being reassembled at once; past it the oldest is abandoned (rule 3).</summary>
    public const int ReassemblyMaxEntries = 64;
    /// <summary>Where a reassembled datagram's payload starts: room for the longest IPv4 header.</summary>
    private const int ReassemblyHeaderRoom = Ipv4View.MaxHeaderLength;
    /// <summary>Reassembly holds payload at a fixed offset (room for the longest header), so a datagram
    /// may be this long at most: the pool's large buffer less 60 header bytes.</summary>
    public const int ReassemblyMaxPayload = PacketPool.LargeSize - ReassemblyHeaderRoom;

    private sealed class Reassembly
    {
        public (uint Src, uint Dst, ushort Id, byte Proto) Key;
        /// <summary>IPv6: the key, and the upper-layer protocol the fragment header names.</summary>
        public (IpAddress Src, IpAddress Dst, uint Id) Key6;
        public bool IsV6;
        public byte NextHeader;
        public Packet Buffer = null!;
        public int HeaderLength;
        public int Total = -1;
        public readonly List<(int Start, int End)> Ranges = [];
        /// <summary>IPv6: each fragment's extent as received (overlap and duplicate checks).</summary>
        public readonly List<(int Start, int End)> Pieces = [];
        public KTimer Timer = null!;
        public long Created;
        public bool HaveFirst;
        public IpStack? Owner;
    }

    private readonly Dictionary<(uint, uint, ushort, byte), Reassembly> _reasm = new();
    private readonly Dictionary<(IpAddress, IpAddress, uint), Reassembly> _reasm6 = new();

    /// <summary>Datagrams waiting for fragments (tests: the reassembly table stays bounded).</summary>
    public int ReassemblyCount => _reasm.Count + _reasm6.Count;

    // ---- IPv4 fragmentation ---------------------------------------------------------------------

    /// <summary>Splits a datagram (Data = IP header onward) into fragments that fit the interface.
    /// Consumes the packet.</summary>
    private void FragmentV4(IpInterface ifc, Packet p, IpAddress nextHop)
    {
        p.FinishChecksum(); // the fragments are copies
        Ipv4View.TryCreate(p.Data, out var ip);
        int ihl = ip.HeaderLength;
        var payload = ip.Payload;
        int chunk = (ifc.Mtu - ihl) & ~7;
        int baseOffset = ip.FragmentOffset;
        bool lastHasMore = ip.MoreFragments;
        if (chunk <= 0)
        {
            Counters.ipFragFails++;
            p.Free();
            return;
        }
        for (int off = 0; off < payload.Length; off += chunk)
        {
            int len = Math.Min(chunk, payload.Length - off);
            var f = Pool.Rent(ihl + len);
            if (f == null)
            {
                Counters.noBuffers++;
                Counters.ipFragFails++;
                p.Free();
                return;
            }
            ip.Header.CopyTo(f.Data);
            Ipv4View.TryCreateHeader(f.Data, out var fragment);
            payload.Slice(off, len).CopyTo(fragment.Payload);
            fragment.TotalLength = ihl + len;
            fragment.SetFragment(dontFragment: false, moreFragments: off + len < payload.Length || lastHasMore, baseOffset + off);
            fragment.FillChecksum();
            Counters.ipFragCreates++;
            OutputV4(ifc, f, nextHop);
        }
        Counters.ipFragOKs++;
        p.Free();
    }

    // ---- IPv4 reassembly (RFC 815 hole list, bounded: rule 3) ----------------------------------

    private Packet? Reassemble(Packet p)
    {
        Counters.ipReasmReqds++;
        Ipv4View.TryCreate(p.Data, out var ip);
        int ihl = ip.HeaderLength;
        int off = ip.FragmentOffset;
        var payload = ip.Payload;
        int len = payload.Length;
        bool more = ip.MoreFragments;
        var key = (ip.SourceRaw, ip.DestinationRaw, ip.Identification, ip.Protocol);
        if ((more && (len & 7) != 0) || len == 0 || off + len > ReassemblyMaxPayload)
        {
            Counters.ipReasmFails++;
            if (_reasm.TryGetValue(key, out var bad)) AbandonReassembly(bad);
            p.Free();
            return null;
        }
        if (!_reasm.TryGetValue(key, out var r))
        {
            r = StartReassembly(_reasm, key, ref Counters.ipReasmOverflows, ref Counters.ipReasmFails);
            if (r == null)
            {
                p.Free();
                return null;
            }
            r.Key = key;
        }
        var data = r.Buffer.Data;
        payload.CopyTo(data[(ReassemblyHeaderRoom + off)..]);
        if (off == 0)
        {
            r.HaveFirst = true;
            r.HeaderLength = ihl;
            ip.Header.CopyTo(data[(ReassemblyHeaderRoom - ihl)..]);
        }
        if (!more)
        {
            if (r.Total >= 0 && r.Total != off + len)
            {
                Counters.ipReasmFails++;
                AbandonReassembly(r);
                p.Free();
                return null;
            }
            r.Total = off + len;
        }
        p.Free();
        AddRange(r.Ranges, off, off + len);
        if (r.Total < 0 || !r.HaveFirst || r.Ranges.Count != 1 || r.Ranges[0].Start != 0 || r.Ranges[0].End < r.Total) return null;

        _reasm.Remove(key);
        r.Timer.Cancel();
        var whole = r.Buffer;
        Uncharge(whole);
        int h = r.HeaderLength;
        whole.TrimFront(ReassemblyHeaderRoom - h);
        whole.TrySetLength(h + r.Total);
        Ipv4View.TryCreateHeader(whole.Data, out var header);
        header.TotalLength = h + r.Total;
        header.SetFragment(dontFragment: false, moreFragments: false, 0);
        header.FillChecksum();
        Counters.ipReasmOKs++;
        return whole;
    }

    /// <summary>Starts reassembling a datagram under <paramref name="key"/> (shared by IPv4 and IPv6):
    /// a full table first gives up its oldest entry; null when no buffer is to be had (the pool, or
    /// the zone's memory cap), in which case the datagram is lost and counted.</summary>
    private Reassembly? StartReassembly<TKey>(Dictionary<TKey, Reassembly> table, TKey key, ref long overflows, ref long fails)
        where TKey : notnull
    {
        if (table.Count >= ReassemblyMaxEntries)
        {
            Reassembly? oldest = null;
            foreach (var e in table.Values) if (oldest == null || e.Created < oldest.Created) oldest = e;
            overflows++;
            fails++;
            AbandonReassembly(oldest!);
        }
        var buf = Pool.Rent(PacketPool.LargeSize);
        if (buf == null || !TryCharge(buf))
        {
            buf?.Free();
            Counters.noBuffers++;
            fails++;
            return null;
        }
        var r = new Reassembly { Buffer = buf, Created = Scheduler.Now, Owner = this };
        r.Timer = new KTimer(Scheduler, ReassemblyTimerCallback, r);
        r.Timer.ArmAfter(ReassemblyTimeout);
        table[key] = r;
        return r;
    }

    private static readonly Action<object?> ReassemblyTimerCallback = static s =>
    {
        var r = (Reassembly)s!;
        if (r.IsV6) r.Owner!.ReassemblyTimedOutV6(r);
        else r.Owner!.ReassemblyTimedOut(r);
    };

    internal static void AddRange(List<(int Start, int End)> ranges, int start, int end)
    {
        int i = 0;
        while (i < ranges.Count && ranges[i].End < start) i++;
        while (i < ranges.Count && ranges[i].Start <= end)
        {
            start = Math.Min(start, ranges[i].Start);
            end = Math.Max(end, ranges[i].End);
            ranges.RemoveAt(i);
        }
        ranges.Insert(i, (start, end));
    }

    private void AbandonReassembly(Reassembly r)
    {
        r.Timer.Cancel();
        if (r.IsV6) _reasm6.Remove(r.Key6);
        else _reasm.Remove(r.Key);
        Uncharge(r.Buffer);
        r.Buffer.Free();
    }

    private void ReassemblyTimedOut(Reassembly r)
    {
        Counters.ipReasmTimeout++;
        Counters.ipReasmFails++;
        if (r.HaveFirst)
        {
            // RFC 792: time exceeded, code 1, quoting the first fragment's header and 8 bytes.
            int h = r.HeaderLength;
            var quote = r.Buffer.Data.Slice(ReassemblyHeaderRoom - h, h + 8);
            Ipv4View.TryCreateHeader(quote, out var header);
            header.TotalLength = h + 8;
            SendIcmpErrorV4(quote, IcmpType.TimeExceeded, 1, checkFragment: false);
        }
        AbandonReassembly(r);
    }

    // ---- IPv6 fragmentation (only the source fragments, RFC 8200 4.5) --------------------------

    private uint _ipId6;
    private bool _ipId6Seeded;

    /// <summary>Fragment identifications: a per-stack counter from a random start (RFC 7739).</summary>
    private uint NextIpId6()
    {
        if (!_ipId6Seeded)
        {
            _ipId6 = Random.NextUInt32();
            _ipId6Seeded = true;
        }
        return _ipId6++;
    }

    /// <summary>Splits a datagram we originate (Data = IPv6 header, then the upper layer; no
    /// extension headers) into fragments that fit <paramref name="mtu"/>. Consumes the packet.</summary>
    private bool FragmentV6(IpInterface ifc, Packet p, IpAddress nextHop, int mtu)
    {
        p.FinishChecksum(); // the fragments are copies
        Ipv6View.TryCreate(p.Data, out var ip);
        var payload = ip.Payload;
        int chunk = (mtu - Ipv6View.HeaderLength - Ipv6FragmentRepr.HeaderLength) & ~7;
        if (chunk <= 0 || payload.Length > ReassemblyMaxPayload)
        {
            Counters6.ipv6OutFragFails++;
            Counters6.ipv6OutDiscards++;
            p.Free();
            return false;
        }
        var fh = new Ipv6FragmentRepr { NextHeader = ip.NextHeader, Identification = NextIpId6() };
        for (int off = 0; off < payload.Length; off += chunk)
        {
            int len = Math.Min(chunk, payload.Length - off);
            var f = Pool.Rent(Ipv6View.HeaderLength + Ipv6FragmentRepr.HeaderLength + len);
            if (f == null)
            {
                Counters.noBuffers++;
                Counters6.ipv6OutFragFails++;
                p.Free();
                return false;
            }
            ip.Header.CopyTo(f.Data);
            Ipv6View.TryCreateHeader(f.Data, out var fragment);
            fragment.NextHeader = Ipv6ExtensionHeaderView.Fragment;
            fragment.PayloadLength = Ipv6FragmentRepr.HeaderLength + len;
            fh.Offset = off;
            fh.MoreFragments = off + len < payload.Length;
            fh.TryEmit(fragment.Payload);
            payload.Slice(off, len).CopyTo(fragment.Payload[Ipv6FragmentRepr.HeaderLength..]);
            Counters6.ipv6OutFragCreates++;
            OutputV6(ifc, f, nextHop);
        }
        Counters6.ipv6OutFragOKs++;
        p.Free();
        return true;
    }

    // ---- IPv6 reassembly (RFC 8200 4.5, overlaps per RFC 5722, bounded as IPv4's: rule 3) -------

    /// <summary>Takes a fragment (Data = IPv6 header ..., its fragment header at
    /// <paramref name="fragmentAt"/>); returns the whole datagram (IPv6 header, then the upper layer)
    /// once complete, else null. Consumes the fragment.</summary>
    private Packet? ReassembleV6(Packet p, int fragmentAt)
    {
        Counters6.ipv6ReasmReqds++;
        Ipv6View.TryCreate(p.Data, out var ip);
        var b = ip.Packet;
        if (!Ipv6FragmentRepr.TryParse(b[fragmentAt..], out var fh))
        {
            Counters6.ipv6InHdrErrors++;
            p.Free();
            return null;
        }
        int off = fh.Offset;
        bool more = fh.MoreFragments;
        int dataAt = fragmentAt + Ipv6FragmentRepr.HeaderLength;
        var fragmentData = b[dataAt..];
        int len = fragmentData.Length;
        var src = ip.Source;
        var dst = ip.Destination;
        if (more && (len & 7) != 0)
        {
            // RFC 8200 4.5: not a multiple of 8 octets and not the last; points at Payload Length.
            Counters6.ipv6ReasmFails++;
            SendIcmpErrorV6(b, IcmpType.V6ParameterProblem, 0, Ipv6View.PayloadLengthOffset);
            p.Free();
            return null;
        }
        if (off + len > ushort.MaxValue)
        {
            Counters6.ipv6ReasmFails++;
            SendIcmpErrorV6(b, IcmpType.V6ParameterProblem, 0, (uint)(fragmentAt + Ipv6FragmentRepr.OffsetFieldOffset));
            p.Free();
            return null;
        }
        if (off == 0 && !more)
        {
            // An atomic fragment (RFC 6946): the datagram itself, without the fragment header.
            ip.Header.CopyTo(b[(dataAt - Ipv6View.HeaderLength)..]);
            p.TrimFront(dataAt - Ipv6View.HeaderLength);
            Ipv6View.TryCreateHeader(p.Data, out var atomic);
            atomic.NextHeader = fh.NextHeader;
            atomic.PayloadLength = len;
            Counters6.ipv6ReasmOKs++;
            return p;
        }
        var key = (src, dst, fh.Identification);
        if (len == 0 || off + len > ReassemblyMaxPayload)
        {
            Counters6.ipv6ReasmFails++;
            if (_reasm6.TryGetValue(key, out var bad)) AbandonReassembly(bad);
            p.Free();
            return null;
        }
        if (!_reasm6.TryGetValue(key, out var r))
        {
            r = StartReassembly(_reasm6, key, ref Counters6.ipv6ReasmOverflows, ref Counters6.ipv6ReasmFails);
            if (r == null)
            {
                p.Free();
                return null;
            }
            r.Key6 = key;
            r.IsV6 = true;
        }
        // RFC 5722: a fragment that overlaps another abandons the datagram; an exact duplicate of
        // one already held is only dropped.
        foreach (var piece in r.Pieces)
        {
            if (piece.Start == off && piece.End == off + len)
            {
                p.Free();
                return null;
            }
            if (piece.Start < off + len && off < piece.End)
            {
                Counters6.ipv6ReasmFails++;
                AbandonReassembly(r);
                p.Free();
                return null;
            }
        }
        var data = r.Buffer.Data;
        fragmentData.CopyTo(data[(ReassemblyHeaderRoom + off)..]);
        if (off == 0)
        {
            r.HaveFirst = true;
            r.NextHeader = fh.NextHeader;
            r.HeaderLength = Ipv6View.HeaderLength;
            ip.Header.CopyTo(data[(ReassemblyHeaderRoom - Ipv6View.HeaderLength)..]);
        }
        if (!more)
        {
            if (r.Total >= 0 && r.Total != off + len)
            {
                Counters6.ipv6ReasmFails++;
                AbandonReassembly(r);
                p.Free();
                return null;
            }
            r.Total = off + len;
        }
        p.Free();
        r.Pieces.Add((off, off + len));
        AddRange(r.Ranges, off, off + len);
        if (r.Total < 0 || !r.HaveFirst || r.Ranges.Count != 1 || r.Ranges[0].Start != 0 || r.Ranges[0].End < r.Total) return null;

        _reasm6.Remove(key);
        r.Timer.Cancel();
        var whole = r.Buffer;
        Uncharge(whole);
        whole.TrimFront(ReassemblyHeaderRoom - Ipv6View.HeaderLength);
        whole.TrySetLength(Ipv6View.HeaderLength + r.Total);
        Ipv6View.TryCreateHeader(whole.Data, out var header);
        header.NextHeader = r.NextHeader;
        header.PayloadLength = r.Total;
        Counters6.ipv6ReasmOKs++;
        return whole;
    }

    private void ReassemblyTimedOutV6(Reassembly r)
    {
        Counters6.ipv6ReasmTimeout++;
        Counters6.ipv6ReasmFails++;
        if (r.HaveFirst)
        {
            // RFC 8200 4.5: time exceeded, code 1, quoting the first fragment (header, fragment
            // header and what of its data fits).
            var data = r.Buffer.Data;
            int have = r.Ranges.Count > 0 && r.Ranges[0].Start == 0 ? r.Ranges[0].End : 0;
            int room = MinimumMtuV6 - Ipv6View.HeaderLength - IcmpView.HeaderLength - Ipv6View.HeaderLength - Ipv6FragmentRepr.HeaderLength;
            int take = Math.Min(have, room);
            var quote = new byte[Ipv6View.HeaderLength + Ipv6FragmentRepr.HeaderLength + take];
            data.Slice(ReassemblyHeaderRoom - Ipv6View.HeaderLength, Ipv6View.HeaderLength).CopyTo(quote);
            Ipv6View.TryCreateHeader(quote, out var header);
            header.NextHeader = Ipv6ExtensionHeaderView.Fragment;
            header.PayloadLength = Ipv6FragmentRepr.HeaderLength + take;
            new Ipv6FragmentRepr { NextHeader = r.NextHeader, MoreFragments = true, Identification = r.Key6.Id }.TryEmit(header.Payload);
            data.Slice(ReassemblyHeaderRoom, take).CopyTo(header.Payload[Ipv6FragmentRepr.HeaderLength..]);
            SendIcmpErrorV6(quote, IcmpType.V6TimeExceeded, 1, 0);
        }
        AbandonReassembly(r);
    }
}
