using System.Buffers.Binary;
using SmartOS.Kernel;
using SmartOS.Kernel.Wire;

namespace SmartOS.Netstack;

// IPv4 (RFC 791, 1122, 1812): receive, local delivery, forwarding, output, fragmentation and
// reassembly, and ICMP (RFC 792, 1191 path MTU discovery).
public sealed partial class IpStack
{
    /// <summary>RFC 1122 suggests 60 to 120 s; illumos's ip_reassembly_timeout is 60 s.</summary>
    public const long ReassemblyTimeout = 60 * Time.Second;
    /// <summary>Datagrams being reassembled at once; past it the oldest is abandoned (rule 3).</summary>
    public const int ReassemblyMaxEntries = 64;
    /// <summary>Reassembly holds payload at a fixed offset (room for the longest header), so a datagram
    /// may be this long at most: the pool's large buffer less 60 header bytes.</summary>
    public const int ReassemblyMaxPayload = PacketPool.LargeSize - 60;
    /// <summary>ICMP errors: a token bucket of this many, refilled one per interval (illumos icmp_err_burst/interval).</summary>
    public const int IcmpErrorBurst = 10;
    public const long IcmpErrorInterval = 100 * Time.Millisecond;

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
    private int _icmpTokens = IcmpErrorBurst;
    private long _icmpRefill;
    private int _deliveredHeaderLength;

    /// <summary>Datagrams waiting for fragments (tests: the reassembly table stays bounded).</summary>
    public int ReassemblyCount => _reasm.Count + _reasm6.Count;

    // ---- receive --------------------------------------------------------------------------------

    private void ReceiveIpv4(IpInterface ifc, Packet p)
    {
        Counters.ipInReceives++;
        p.TrimFront(EthernetView.HeaderLength);
        if (!Ipv4View.TryCreate(p.Data, out var ip))
        {
            Counters.ipInHdrErrors++;
            p.Free();
            return;
        }
        if (!ip.ChecksumValid)
        {
            Counters.ipInCksumErrs++;
            p.Free();
            return;
        }
        p.TrySetLength(ip.TotalLength); // drop Ethernet padding
        var src = IpAddress.V4(ip.SourceRaw);
        var dst = IpAddress.V4(ip.DestinationRaw);
        if (src.IsMulticast || src == IpAddress.BroadcastV4 || (src.IsLoopback && !ifc.IsLoopback))
        {
            Counters.ipInAddrErrors++; // martian source (RFC 1812 5.3.7)
            p.Free();
            return;
        }
        if (!IsForUsV4(ifc, dst))
        {
            if (!ForwardingV4 || ifc.IsLoopback || dst.IsMulticast || src.IsUnspecified)
            {
                if (ForwardingV4 || dst.IsMulticast) Counters.ipInAddrErrors++;
                else Counters.ipForwProhibits++;
                p.Free();
                return;
            }
            ForwardV4(p);
            return;
        }
        DeliverV4(ifc, p);
    }

    private bool IsForUsV4(IpInterface ifc, IpAddress dst)
    {
        if (_local.TryGetValue(dst, out var a)) return a.IsUsable;
        if (dst == IpAddress.BroadcastV4) return true;
        if (dst.V4Raw == 0xE0000001) return true; // all-hosts
        foreach (var o in _addresses)
            if (o.Interface == ifc && o.Address.IsV4 && o.IsUsable && o.Broadcast == dst) return true;
        return false;
    }

    private void DeliverV4(IpInterface ifc, Packet p)
    {
        Ipv4View.TryCreate(p.Data, out var ip);
        if (ip.IsFragment)
        {
            var whole = Reassemble(p);
            if (whole == null) return;
            p = whole;
            Ipv4View.TryCreate(p.Data, out ip);
        }
        int ihl = ip.HeaderLength;
        byte proto = ip.Protocol;
        byte ttl = ip.Ttl;
        var src = IpAddress.V4(ip.SourceRaw);
        var dst = IpAddress.V4(ip.DestinationRaw);
        Counters.ipInDelivers++;
        if (proto == IpProtocol.Icmp)
        {
            _deliveredHeaderLength = ihl;
            p.TrimFront(ihl);
            ReceiveIcmpV4(ifc, p, src, dst, ttl);
            return;
        }
        var t = _transports[proto];
        if (t == null)
        {
            Counters.ipInUnknownProtos++;
            if (!dst.IsMulticast && dst != IpAddress.BroadcastV4) SendIcmpErrorV4(p.Data, IcmpType.DestinationUnreachable, 2, 0);
            p.Free();
            return;
        }
        _deliveredHeaderLength = ihl;
        p.TrimFront(ihl);
        t.Receive(p, src, dst);
    }

    /// <summary>For a transport that got a segment for a closed port: sends ICMP port unreachable
    /// quoting the datagram (rule 6: the IP header sits in front of packet.Offset). Does not consume.</summary>
    public void SendPortUnreachable(Packet segment, IpAddress source, IpAddress destination)
    {
        if (destination.IsMulticast || destination == IpAddress.BroadcastV4) return;
        int ihl = _deliveredHeaderLength;
        if (segment.Offset < ihl) return;
        var original = segment.Buffer.AsSpan(segment.Offset - ihl, segment.Length + ihl);
        if (source.IsV4)
        {
            if (!IsForUsBroadcast(destination)) SendIcmpErrorV4(original, IcmpType.DestinationUnreachable, 3, 0);
        }
        else SendIcmpErrorV6(original, IcmpType.V6DestinationUnreachable, 4, 0);
    }

    private bool IsForUsBroadcast(IpAddress dst)
    {
        foreach (var o in _addresses) if (o.Address.IsV4 && o.Broadcast == dst) return true;
        return false;
    }

    // ---- forwarding (RFC 1812) ------------------------------------------------------------------

    private void ForwardV4(Packet p)
    {
        Ipv4View.TryCreate(p.Data, out var ip);
        var dst = IpAddress.V4(ip.DestinationRaw);
        if (ip.Ttl <= 1)
        {
            p.FinishChecksum(); // quoted in the ICMP error as it would be on a wire
            Counters.ipTtlExpired++;
            SendIcmpErrorV4(p.Data, IcmpType.TimeExceeded, 0, 0);
            p.Free();
            return;
        }
        if (!TryRoute(dst, out var outIfc, out var nextHop, out _) || outIfc.IsLoopback)
        {
            p.FinishChecksum();
            Counters.ipOutNoRoutes++;
            SendIcmpErrorV4(p.Data, IcmpType.DestinationUnreachable, 0, 0);
            p.Free();
            return;
        }
        var b = p.Data;
        b[8]--;
        // RFC 1624 incremental update: TTL is the high byte of its word, so the sum gains 0x0100.
        uint sum = (uint)(BinaryPrimitives.ReadUInt16BigEndian(b[10..]) + 0x0100);
        BinaryPrimitives.WriteUInt16BigEndian(b[10..], (ushort)(sum + (sum >> 16)));
        if (p.Length > outIfc.Mtu)
        {
            p.FinishChecksum(); // quoted, or copied into fragments
            if (ip.DontFragment)
            {
                Counters.ipFragFails++;
                b[8]++; // quote the datagram as it arrived
                BinaryPrimitives.WriteUInt16BigEndian(b[10..], 0);
                BinaryPrimitives.WriteUInt16BigEndian(b[10..], Checksum.Compute(b[..ip.HeaderLength]));
                SendIcmpErrorV4(p.Data, IcmpType.DestinationUnreachable, 4, (uint)outIfc.Mtu);
                p.Free();
                return;
            }
            Counters.ipForwDatagrams++;
            FragmentV4(outIfc, p, nextHop);
            return;
        }
        Counters.ipForwDatagrams++;
        OutputV4(outIfc, p, nextHop);
    }

    // ---- output ---------------------------------------------------------------------------------

    /// <summary>
    /// Sends a transport payload (packet.Data = transport header + payload) over IPv4. With
    /// <paramref name="via"/> the datagram leaves that interface on-link (DHCP, limited broadcast).
    /// Consumes the packet; false when it was dropped (counted).
    /// </summary>
    internal bool SendV4(Packet p, IpAddress src, IpAddress dst, byte proto, byte ttl, bool dontFragment, IpInterface? via, byte tos = 0)
    {
        Counters.ipOutRequests++;
        IpInterface ifc;
        IpAddress nextHop = dst;
        if (via != null) ifc = via;
        else if (dst.IsLoopback || IsLocalAddress(dst)) ifc = Loopback;
        else if (dst == IpAddress.BroadcastV4 || dst.IsMulticast)
        {
            ifc = FirstInterfaceWithV4() ?? Loopback;
        }
        else if (!TryRoute(dst, out ifc, out nextHop, out _))
        {
            Counters.ipOutNoRoutes++;
            p.Free();
            return false;
        }
        if (src.IsUnspecified && via == null)
        {
            var a = InterfaceAddress(ifc, v4: true, toward: dst);
            if (a != null) src = a.Address;
        }
        if (!p.TryPrepend(Ipv4View.MinHeaderLength))
        {
            Counters.noBuffers++;
            p.Free();
            return false;
        }
        WriteIpv4Header(p.Data, src.V4Raw, dst.V4Raw, proto, p.Length, ttl, NextIpId(), dontFragment, tos);
        if (p.Length > ifc.Mtu)
        {
            if (dontFragment)
            {
                Counters.ipOutMtuExceeded++;
                Counters.ipOutDiscards++;
                p.Free();
                return false;
            }
            FragmentV4(ifc, p, nextHop);
            return true;
        }
        OutputV4(ifc, p, nextHop);
        return true;
    }

    private IpInterface? FirstInterfaceWithV4()
    {
        foreach (var i in _interfaces)
            if (!i.IsLoopback && InterfaceAddress(i, v4: true) != null) return i;
        foreach (var i in _interfaces) if (!i.IsLoopback) return i;
        return null;
    }

    internal static void WriteIpv4Header(Span<byte> b, uint src, uint dst, byte proto, int totalLength, byte ttl, ushort id, bool dontFragment, byte tos = 0)
    {
        b[0] = 0x45; b[1] = tos;
        BinaryPrimitives.WriteUInt16BigEndian(b[2..], (ushort)totalLength);
        BinaryPrimitives.WriteUInt16BigEndian(b[4..], id);
        BinaryPrimitives.WriteUInt16BigEndian(b[6..], dontFragment ? (ushort)0x4000 : (ushort)0);
        b[8] = ttl; b[9] = proto;
        BinaryPrimitives.WriteUInt16BigEndian(b[10..], 0);
        BinaryPrimitives.WriteUInt32BigEndian(b[12..], src);
        BinaryPrimitives.WriteUInt32BigEndian(b[16..], dst);
        BinaryPrimitives.WriteUInt16BigEndian(b[10..], Checksum.Compute(b[..Ipv4View.MinHeaderLength]));
    }

    /// <summary>Chooses the link address of the next hop and transmits, or waits for ARP. Consumes the packet.</summary>
    private void OutputV4(IpInterface ifc, Packet p, IpAddress nextHop)
    {
        if (ifc.IsLoopback)
        {
            TransmitFrame(ifc, p, MacAddress.Zero, EtherType.Ipv4);
            return;
        }
        if (nextHop == IpAddress.BroadcastV4 || IsSubnetBroadcast(ifc, nextHop))
        {
            TransmitFrame(ifc, p, MacAddress.Broadcast, EtherType.Ipv4);
            return;
        }
        if (nextHop.IsMulticast)
        {
            // RFC 1112 6.4: 01:00:5e plus the low 23 bits of the group.
            TransmitFrame(ifc, p, new MacAddress(0x01005E000000UL | (nextHop.V4Raw & 0x7FFFFF)), EtherType.Ipv4);
            return;
        }
        if (ifc.Arp.TryLookup(nextHop, out var mac))
        {
            TransmitFrame(ifc, p, mac, EtherType.Ipv4);
            return;
        }
        ifc.Arp.Enqueue(nextHop, p);
    }

    private bool IsSubnetBroadcast(IpInterface ifc, IpAddress a)
    {
        foreach (var o in _addresses)
            if (o.Interface == ifc && o.Address.IsV4 && o.Broadcast == a) return true;
        return false;
    }

    /// <summary>Splits a datagram (Data = IP header onward) into fragments that fit the interface.
    /// Consumes the packet.</summary>
    private void FragmentV4(IpInterface ifc, Packet p, IpAddress nextHop)
    {
        p.FinishChecksum(); // the fragments are copies
        Ipv4View.TryCreate(p.Data, out var ip);
        int ihl = ip.HeaderLength;
        int payload = ip.TotalLength - ihl;
        int chunk = (ifc.Mtu - ihl) & ~7;
        int baseOffset = ip.FragmentOffset;
        bool lastHasMore = ip.MoreFragments;
        if (chunk <= 0)
        {
            Counters.ipFragFails++;
            p.Free();
            return;
        }
        var whole = p.Data;
        for (int off = 0; off < payload; off += chunk)
        {
            int len = Math.Min(chunk, payload - off);
            var f = Pool.Rent(ihl + len);
            if (f == null)
            {
                Counters.noBuffers++;
                Counters.ipFragFails++;
                p.Free();
                return;
            }
            var d = f.Data;
            whole[..ihl].CopyTo(d);
            whole.Slice(ihl + off, len).CopyTo(d[ihl..]);
            bool more = off + len < payload || lastHasMore;
            BinaryPrimitives.WriteUInt16BigEndian(d[2..], (ushort)(ihl + len));
            BinaryPrimitives.WriteUInt16BigEndian(d[6..], (ushort)((more ? 0x2000 : 0) | ((baseOffset + off) >> 3)));
            BinaryPrimitives.WriteUInt16BigEndian(d[10..], 0);
            BinaryPrimitives.WriteUInt16BigEndian(d[10..], Checksum.Compute(d[..ihl]));
            Counters.ipFragCreates++;
            OutputV4(ifc, f, nextHop);
        }
        Counters.ipFragOKs++;
        p.Free();
    }

    // ---- reassembly (RFC 815 hole list, bounded: rule 3) ---------------------------------------

    private Packet? Reassemble(Packet p)
    {
        Counters.ipReasmReqds++;
        Ipv4View.TryCreate(p.Data, out var ip);
        int ihl = ip.HeaderLength;
        int off = ip.FragmentOffset;
        int len = ip.TotalLength - ihl;
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
        p.Data.Slice(ihl, len).CopyTo(data[(60 + off)..]);
        if (off == 0)
        {
            r.HaveFirst = true;
            r.HeaderLength = ihl;
            p.Data[..ihl].CopyTo(data[(60 - ihl)..]);
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
        whole.TrimFront(60 - h);
        whole.TrySetLength(h + r.Total);
        var d = whole.Data;
        BinaryPrimitives.WriteUInt16BigEndian(d[2..], (ushort)(h + r.Total));
        BinaryPrimitives.WriteUInt16BigEndian(d[6..], 0);
        BinaryPrimitives.WriteUInt16BigEndian(d[10..], 0);
        BinaryPrimitives.WriteUInt16BigEndian(d[10..], Checksum.Compute(d[..h]));
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
            var d = r.Buffer.Data;
            int h = r.HeaderLength;
            var quote = d.Slice(60 - h, h + 8);
            BinaryPrimitives.WriteUInt16BigEndian(quote[2..], (ushort)(h + 8));
            SendIcmpErrorV4(quote, IcmpType.TimeExceeded, 1, 0, checkFragment: false);
        }
        AbandonReassembly(r);
    }

    // ---- ICMP -----------------------------------------------------------------------------------

    private void ReceiveIcmpV4(IpInterface ifc, Packet p, IpAddress src, IpAddress dst, byte ttl)
    {
        Icmp.icmpInMsgs++;
        if (!IcmpView.TryCreate(p.Data, out var icmp))
        {
            Icmp.icmpInErrors++;
            p.Free();
            return;
        }
        if (!icmp.ChecksumValidV4)
        {
            Icmp.icmpInCksumErrs++;
            p.Free();
            return;
        }
        switch (icmp.Type)
        {
            case IcmpType.EchoRequest:
            {
                Icmp.icmpInEchos++;
                var from = dst;
                if (!_local.ContainsKey(dst))
                {
                    var a = InterfaceAddress(ifc, v4: true, toward: src);
                    if (a == null) { p.Free(); return; }
                    from = a.Address;
                }
                p.Data[0] = IcmpType.EchoReply;
                IcmpView.FinishV4(p.Data);
                Icmp.icmpOutMsgs++;
                Icmp.icmpOutEchoReps++;
                SendV4(p, from, src, IpProtocol.Icmp, DefaultTtl, dontFragment: false, null);
                return;
            }
            case IcmpType.EchoReply:
                Icmp.icmpInEchoReps++;
                DeliverToIcmpSockets(v6: false, p.Data, src, dst, ttl, icmp.Identifier, isError: false);
                p.Free();
                return;
            case IcmpType.DestinationUnreachable:
            case IcmpType.TimeExceeded:
            case IcmpType.ParameterProblem:
                if (icmp.Type == IcmpType.DestinationUnreachable) Icmp.icmpInDestUnreachs++;
                else if (icmp.Type == IcmpType.TimeExceeded) Icmp.icmpInTimeExcds++;
                else Icmp.icmpInParmProbs++;
                HandleIcmpErrorV4(icmp.Type, icmp.Code, icmp.Mtu, icmp.Body);
                DeliverToIcmpSockets(v6: false, p.Data, src, dst, ttl, 0, isError: true);
                p.Free();
                return;
            default:
                Icmp.icmpInUnknowns++;
                p.Free();
                return;
        }
    }

    private void HandleIcmpErrorV4(byte type, byte code, int mtu, Span<byte> quoted)
    {
        if (quoted.Length < Ipv4View.MinHeaderLength + 8 || (quoted[0] >> 4) != 4)
        {
            Icmp.icmpInBadQuote++;
            return;
        }
        int ihl = (quoted[0] & 0xF) * 4;
        if (ihl < Ipv4View.MinHeaderLength || quoted.Length < ihl + 8)
        {
            Icmp.icmpInBadQuote++;
            return;
        }
        var qsrc = IpAddress.V4(BinaryPrimitives.ReadUInt32BigEndian(quoted[12..]));
        var qdst = IpAddress.V4(BinaryPrimitives.ReadUInt32BigEndian(quoted[16..]));
        byte proto = quoted[9];
        IcmpErrorKind kind;
        if (type == IcmpType.TimeExceeded) kind = IcmpErrorKind.TimeExceeded;
        else if (type == IcmpType.ParameterProblem) return;
        else
        {
            kind = code switch
            {
                0 or 6 => IcmpErrorKind.NetUnreachable,
                2 => IcmpErrorKind.ProtocolUnreachable,
                3 => IcmpErrorKind.PortUnreachable,
                4 => IcmpErrorKind.FragmentationNeeded,
                9 or 10 or 13 => IcmpErrorKind.AdminProhibited,
                _ => IcmpErrorKind.HostUnreachable,
            };
        }
        if (kind == IcmpErrorKind.FragmentationNeeded)
        {
            Icmp.icmpInFragNeeded++;
            // RFC 1191 section 5: an old router sends 0; assume the next plateau below the quoted length.
            if (mtu == 0) mtu = Math.Max(68, BinaryPrimitives.ReadUInt16BigEndian(quoted[2..]) >= 1500 ? 1492 : 576);
            LearnPathMtu(qdst, mtu);
        }
        _transports[proto]?.ReceiveError(kind, mtu, qsrc, qdst, quoted[ihl..]);
    }

    private bool TakeIcmpToken()
    {
        long now = Scheduler.Now;
        if (now >= _icmpRefill)
        {
            long periods = (now - _icmpRefill) / IcmpErrorInterval + 1;
            _icmpTokens = (int)Math.Min(IcmpErrorBurst, _icmpTokens + periods);
            _icmpRefill = now + IcmpErrorInterval;
        }
        if (_icmpTokens == 0) return false;
        _icmpTokens--;
        return true;
    }

    /// <summary>
    /// Sends an ICMP error about <paramref name="original"/> (an IPv4 datagram from its header on),
    /// obeying RFC 1122 3.2.2: never about an ICMP error, a broadcast or multicast, a non-initial
    /// fragment, or a datagram whose source does not name a single host. Rate limited.
    /// </summary>
    internal void SendIcmpErrorV4(ReadOnlySpan<byte> original, byte type, byte code, uint rest, bool checkFragment = true)
    {
        if (original.Length < Ipv4View.MinHeaderLength) return;
        int ihl = (original[0] & 0xF) * 4;
        if (ihl < Ipv4View.MinHeaderLength || original.Length < ihl) return;
        var src = IpAddress.V4(BinaryPrimitives.ReadUInt32BigEndian(original[12..]));
        var dst = IpAddress.V4(BinaryPrimitives.ReadUInt32BigEndian(original[16..]));
        bool suppressed = src.IsUnspecified || src.IsMulticast || src == IpAddress.BroadcastV4 || src.IsLoopback
            || dst.IsMulticast || dst == IpAddress.BroadcastV4 || IsForUsBroadcast(dst)
            || (checkFragment && (BinaryPrimitives.ReadUInt16BigEndian(original[6..]) & 0x1FFF) != 0);
        if (!suppressed && original[9] == IpProtocol.Icmp && original.Length >= ihl + 1)
        {
            byte t = original[ihl];
            suppressed = t != IcmpType.EchoRequest && t != IcmpType.EchoReply;
        }
        if (suppressed)
        {
            Icmp.icmpOutSuppressed++;
            return;
        }
        if (!TakeIcmpToken())
        {
            Icmp.icmpOutRateLimited++;
            return;
        }
        // Quote the header and as much as keeps the error within 576 bytes (RFC 1812 4.3.2.3).
        int quote = Math.Min(original.Length, 576 - Ipv4View.MinHeaderLength - IcmpView.HeaderLength);
        var p = Pool.Rent(IcmpView.HeaderLength + quote);
        if (p == null) { Counters.noBuffers++; return; }
        var m = p.Data;
        IcmpView.TryWriteHeader(m, type, code, rest);
        original[..quote].CopyTo(m[IcmpView.HeaderLength..]);
        IcmpView.FinishV4(m);
        Icmp.icmpOutMsgs++;
        Icmp.icmpOutErrors++;
        if (type == IcmpType.DestinationUnreachable)
        {
            Icmp.icmpOutDestUnreachs++;
            if (code == 4) Icmp.icmpOutFragNeeded++;
        }
        else if (type == IcmpType.TimeExceeded) Icmp.icmpOutTimeExcds++;
        IpAddress from = IsLocalAddress(dst) ? dst : default;
        if (from.IsUnspecified && TrySelectSource(src, out var s)) from = s;
        SendV4(p, from, src, IpProtocol.Icmp, DefaultTtl, dontFragment: false, null);
    }
}
