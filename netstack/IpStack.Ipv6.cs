using System.Buffers.Binary;
using SmartOS.Kernel;
using SmartOS.Kernel.Wire;

namespace SmartOS.Netstack;

// IPv6 (RFC 8200), ICMPv6 (RFC 4443), neighbour discovery (RFC 4861) and stateless address
// autoconfiguration (RFC 4862). Router advertisements are sent by a stack told to advertise a
// prefix (illumos: in.ndpd with an ndpd.conf), so a zone can be the router of a test network.
public sealed partial class IpStack
{
    /// <summary>RFC 4861 MAX_RTR_SOLICITATIONS and RTR_SOLICITATION_INTERVAL.</summary>
    public const int RouterSolicitations = 3;
    public const long RouterSolicitationInterval = 4 * Time.Second;
    /// <summary>Unsolicited RA period; RFC 4861's MaxRtrAdvInterval default is 600 s.</summary>
    public const long RouterAdvertisementInterval = 200 * Time.Second;
    public const ushort RouterLifetimeSeconds = 1800;
    public const uint PrefixValidSeconds = 2592000, PrefixPreferredSeconds = 604800;

    private static readonly IpAddress AllNodes = IpAddress.V6(0xFF02_0000_0000_0000UL, 1);
    private static readonly IpAddress AllRouters = IpAddress.V6(0xFF02_0000_0000_0000UL, 2);

    internal static IpAddress SolicitedNode(IpAddress a) => IpAddress.V6(0xFF02_0000_0000_0000UL, 0x0000_0001_FF00_0000UL | (a.Low & 0xFFFFFF));

    internal static MacAddress MulticastMac(IpAddress group) => new(0x3333_0000_0000UL | (group.Low & 0xFFFF_FFFFUL));

    // ---- addrconf and router advertisement -----------------------------------------------------

    /// <summary>
    /// ipadm create-addr -T addrconf: a link-local address from the interface identifier (after DAD),
    /// then router solicitations; prefixes from router advertisements become addresses (SLAAC) under
    /// the same address object.
    /// </summary>
    public IpStatus StartAddrconf(string addrObj, out IpAddressObject? linkLocal)
    {
        linkLocal = null;
        int slash = addrObj.IndexOf('/');
        string ifName = slash < 0 ? addrObj : addrObj[..slash];
        var ifc = FindInterface(ifName);
        if (ifc == null || ifc.IsLoopback) return IpadmStatus.Enxio;
        if (ifc.Addrconf) return IpadmStatus.AddrconfExists;
        if (!TrySplitAddrObj(addrObj, v4: false, out _, out string name)) return IpadmStatus.InvalidArg;
        if (FindAddressObject(name) != null) return IpadmStatus.AddrObjExists;
        var ll = IpAddress.V6(0xFE80_0000_0000_0000UL, ifc.InterfaceId);
        if (_local.ContainsKey(ll)) return IpadmStatus.AddrInUse;
        ifc.Addrconf = true;
        ifc.AddrconfName = name;
        linkLocal = AddAddressCore(ifc, name, ll, 10, AddressType.Addrconf, dad: DadTransmits > 0);
        ifc.RouterSolicitsLeft = RouterSolicitations;
        ifc.SolicitTimer ??= new KTimer(Scheduler, static s => { var i = (IpInterface)s!; i.Stack.RouterSolicitTick(i); }, ifc);
        // The first RS waits for the link-local address to pass DAD (RFC 4861 6.3.7 allows :: but
        // a link-local source lets the router answer unicast).
        ifc.SolicitTimer.ArmAfter(DadTransmits > 0 ? DadTransmits * NeighborCache.SolicitInterval + Time.Millisecond : 0);
        return IpStatus.Ok;
    }

    private void RouterSolicitTick(IpInterface ifc)
    {
        if (!ifc.Addrconf || ifc.RouterSolicitsLeft <= 0 || HasDefaultRouter(ifc)) return;
        ifc.RouterSolicitsLeft--;
        SendRouterSolicit(ifc);
        if (ifc.RouterSolicitsLeft > 0) ifc.SolicitTimer!.ArmAfter(RouterSolicitationInterval);
    }

    private bool HasDefaultRouter(IpInterface ifc)
    {
        foreach (var r in _routes6) if (r.PrefixLength == 0 && r.Interface == ifc && r.Expires > Scheduler.Now) return true;
        return false;
    }

    /// <summary>Makes this stack a router on an interface: it answers router solicitations and sends
    /// periodic advertisements of the prefix (on-link, autonomous). Starts addrconf if needed, since
    /// advertisements come from the link-local address.</summary>
    public IpStatus AdvertisePrefix(string ifName, IpAddress prefix, int prefixLength)
    {
        var ifc = FindInterface(ifName);
        if (ifc == null || ifc.IsLoopback) return IpadmStatus.Enxio;
        if (prefix.IsV4 || prefixLength != 64) return IpadmStatus.InvalidArg;
        if (!ifc.Addrconf)
        {
            var st = StartAddrconf(ifName, out _);
            if (!st.IsOk) return st;
            ifc.RouterSolicitsLeft = 0;
        }
        ifc.AdvertiseRouter = true;
        ifc.RouterPrefix = Network(prefix, prefixLength);
        ifc.RouterPrefixLength = prefixLength;
        ifc.RouterTimer ??= new KTimer(Scheduler, static s => { var i = (IpInterface)s!; i.Stack.RouterAdvertTick(i); }, ifc);
        ifc.RouterTimer.ArmAfter(DadTransmits > 0 ? DadTransmits * NeighborCache.SolicitInterval + Time.Millisecond : 0);
        return IpStatus.Ok;
    }

    private void RouterAdvertTick(IpInterface ifc)
    {
        if (!ifc.AdvertiseRouter) return;
        SendRouterAdvert(ifc, AllNodes);
        ifc.RouterTimer!.ArmAfter(RouterAdvertisementInterval);
    }

    // ---- receive --------------------------------------------------------------------------------

    private void ReceiveIpv6(IpInterface ifc, Packet p)
    {
        Counters6.ipv6InReceives++;
        p.TrimFront(EthernetView.HeaderLength);
        if (!Ipv6View.TryCreate(p.Data, out var ip))
        {
            Counters6.ipv6InHdrErrors++;
            p.Free();
            return;
        }
        p.TrySetLength(Ipv6View.HeaderLength + ip.PayloadLength);
        var src = ip.Source;
        var dst = ip.Destination;
        if (src.IsMulticast || (src.IsLoopback && !ifc.IsLoopback))
        {
            Counters6.ipv6InAddrErrors++;
            p.Free();
            return;
        }
        if (!IsForUsV6(ifc, dst))
        {
            if (!ForwardingV6 || ifc.IsLoopback || dst.IsMulticast || dst.IsLinkLocalV6 || src.IsLinkLocalV6 || src.IsUnspecified)
            {
                Counters6.ipv6InAddrErrors++;
                p.Free();
                return;
            }
            ForwardV6(p);
            return;
        }
        // Walk extension headers to the upper layer (RFC 8200 4.1 order is not enforced). A fragment
        // header hands the packet to reassembly; the whole datagram, once there, is walked again.
        byte next = ip.NextHeader;
        int offset = Ipv6View.HeaderLength;
        byte hopLimit = ip.HopLimit;
        var b = p.Data;
        while (next is 0 or 43 or 60 or 44)
        {
            if (next == 44)
            {
                var whole = ReassembleV6(p, offset);
                if (whole == null) return;
                p = whole;
                b = p.Data;
                next = b[6];
                offset = Ipv6View.HeaderLength;
                continue;
            }
            if (offset + 8 > b.Length) { Counters6.ipv6InHdrErrors++; p.Free(); return; }
            byte n = b[offset];
            int len = (b[offset + 1] + 1) * 8;
            if (offset + len > b.Length) { Counters6.ipv6InHdrErrors++; p.Free(); return; }
            next = n;
            offset += len;
        }
        Counters6.ipv6InDelivers++;
        _deliveredHeaderLength = offset;
        if (next == IpProtocol.Icmpv6)
        {
            p.TrimFront(offset);
            ReceiveIcmpV6(ifc, p, src, dst, hopLimit);
            return;
        }
        var t = _transports[next];
        if (t == null || next == IpProtocol.Icmp)
        {
            Counters6.ipv6InUnknownProtos++;
            if (!dst.IsMulticast) SendIcmpErrorV6(p.Data, IcmpType.V6ParameterProblem, 1, 6);
            p.Free();
            return;
        }
        p.TrimFront(offset);
        t.Receive(p, src, dst);
    }

    private bool IsForUsV6(IpInterface ifc, IpAddress dst)
    {
        if (_local.TryGetValue(dst, out var a)) return a.IsUsable;
        if (!dst.IsMulticast) return false;
        if (dst == AllNodes || dst == IpAddress.V6(0xFF01_0000_0000_0000UL, 1)) return true;
        if (dst == AllRouters) return ForwardingV6 || ifc.AdvertiseRouter;
        foreach (var o in _addresses)
            if (o.Interface == ifc && o.Address.IsV6 && SolicitedNode(o.Address) == dst) return true;
        return false;
    }

    private void ForwardV6(Packet p)
    {
        Ipv6View.TryCreate(p.Data, out var ip);
        var dst = ip.Destination;
        if (ip.HopLimit <= 1)
        {
            p.FinishChecksum(); // quoted in the ICMP error as it would be on a wire
            Counters6.ipv6HopLimitExpired++;
            SendIcmpErrorV6(p.Data, IcmpType.V6TimeExceeded, 0, 0);
            p.Free();
            return;
        }
        if (!TryRoute(dst, out var outIfc, out var nextHop, out _) || outIfc.IsLoopback)
        {
            p.FinishChecksum();
            Counters6.ipv6OutNoRoutes++;
            SendIcmpErrorV6(p.Data, IcmpType.V6DestinationUnreachable, 0, 0);
            p.Free();
            return;
        }
        if (p.Length > outIfc.Mtu)
        {
            p.FinishChecksum();
            Counters6.ipv6InTooBigErrors++;
            SendIcmpErrorV6(p.Data, IcmpType.V6PacketTooBig, 0, (uint)outIfc.Mtu);
            p.Free();
            return;
        }
        ip.HopLimit = (byte)(ip.HopLimit - 1);
        Counters6.ipv6ForwDatagrams++;
        OutputV6(outIfc, p, nextHop);
    }

    // ---- output ---------------------------------------------------------------------------------

    internal bool SendV6(Packet p, IpAddress src, IpAddress dst, byte proto, byte hopLimit, IpInterface? via, byte trafficClass = 0)
    {
        Counters6.ipv6OutRequests++;
        IpInterface ifc;
        IpAddress nextHop = dst;
        if (via != null) ifc = via;
        else if (dst.IsLoopback || IsLocalAddress(dst)) ifc = Loopback;
        else if (!TryRoute(dst, out ifc, out nextHop, out _))
        {
            Counters6.ipv6OutNoRoutes++;
            p.Free();
            return false;
        }
        if (src.IsUnspecified && via == null)
        {
            var a = InterfaceAddress(ifc, v4: false, preferGlobal: !dst.IsLinkLocalV6 && !dst.IsMulticast, toward: dst);
            if (a != null) src = a.Address;
        }
        int payload = p.Length;
        if (!p.TryPrepend(Ipv6View.HeaderLength))
        {
            Counters.noBuffers++;
            p.Free();
            return false;
        }
        Ipv6View.TryWrite(p.Data, src, dst, proto, payload, hopLimit, trafficClass);
        int mtu = ifc.Mtu;
        if (_pmtu.TryGetValue(dst, out var learned) && learned.Expires > Scheduler.Now && learned.Mtu < mtu)
            mtu = Math.Max(MinimumMtuV6, learned.Mtu);
        if (p.Length > mtu)
        {
            // Only the source fragments in IPv6 (RFC 8200 4.5); routers answer Packet Too Big.
            return FragmentV6(ifc, p, nextHop, mtu);
        }
        OutputV6(ifc, p, nextHop);
        return true;
    }

    /// <summary>IPv6's minimum link MTU (RFC 8200 5).</summary>
    public const int MinimumMtuV6 = 1280;

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
        var whole = p.Data;
        byte proto = whole[6];
        int payload = whole.Length - Ipv6View.HeaderLength;
        int chunk = (mtu - Ipv6View.HeaderLength - FragmentHeaderLength) & ~7;
        if (chunk <= 0 || payload > ReassemblyMaxPayload)
        {
            Counters6.ipv6OutFragFails++;
            Counters6.ipv6OutDiscards++;
            p.Free();
            return false;
        }
        uint id = NextIpId6();
        for (int off = 0; off < payload; off += chunk)
        {
            int len = Math.Min(chunk, payload - off);
            var f = Pool.Rent(Ipv6View.HeaderLength + FragmentHeaderLength + len);
            if (f == null)
            {
                Counters.noBuffers++;
                Counters6.ipv6OutFragFails++;
                p.Free();
                return false;
            }
            var d = f.Data;
            whole[..Ipv6View.HeaderLength].CopyTo(d);
            d[6] = FragmentHeader;
            BinaryPrimitives.WriteUInt16BigEndian(d[4..], (ushort)(FragmentHeaderLength + len));
            var fh = d.Slice(Ipv6View.HeaderLength, FragmentHeaderLength);
            fh[0] = proto;
            fh[1] = 0;
            BinaryPrimitives.WriteUInt16BigEndian(fh[2..], (ushort)(off | (off + len < payload ? 1 : 0)));
            BinaryPrimitives.WriteUInt32BigEndian(fh[4..], id);
            whole.Slice(Ipv6View.HeaderLength + off, len).CopyTo(d[(Ipv6View.HeaderLength + FragmentHeaderLength)..]);
            Counters6.ipv6OutFragCreates++;
            OutputV6(ifc, f, nextHop);
        }
        Counters6.ipv6OutFragOKs++;
        p.Free();
        return true;
    }

    private const byte FragmentHeader = 44;
    private const int FragmentHeaderLength = 8;

    // ---- reassembly (RFC 8200 4.5, overlaps per RFC 5722, bounded as IPv4's: rule 3) ------------

    private readonly Dictionary<(IpAddress, IpAddress, uint), Reassembly> _reasm6 = new();

    /// <summary>Takes a fragment (Data = IPv6 header ..., its fragment header at
    /// <paramref name="fragmentAt"/>); returns the whole datagram (IPv6 header, then the upper layer)
    /// once complete, else null. Consumes the fragment.</summary>
    private Packet? ReassembleV6(Packet p, int fragmentAt)
    {
        Counters6.ipv6ReasmReqds++;
        var b = p.Data;
        if (fragmentAt + FragmentHeaderLength > b.Length)
        {
            Counters6.ipv6InHdrErrors++;
            p.Free();
            return null;
        }
        byte upper = b[fragmentAt];
        ushort field = BinaryPrimitives.ReadUInt16BigEndian(b[(fragmentAt + 2)..]);
        int off = field & 0xFFF8;
        bool more = (field & 1) != 0;
        uint id = BinaryPrimitives.ReadUInt32BigEndian(b[(fragmentAt + 4)..]);
        int dataAt = fragmentAt + FragmentHeaderLength;
        int len = b.Length - dataAt;
        var src = IpAddress.Read(b[8..], v4: false);
        var dst = IpAddress.Read(b[24..], v4: false);
        if (more && (len & 7) != 0)
        {
            // RFC 8200 4.5: not a multiple of 8 octets and not the last; points at Payload Length.
            Counters6.ipv6ReasmFails++;
            SendIcmpErrorV6(b, IcmpType.V6ParameterProblem, 0, 4);
            p.Free();
            return null;
        }
        if (off + len > ushort.MaxValue)
        {
            Counters6.ipv6ReasmFails++;
            SendIcmpErrorV6(b, IcmpType.V6ParameterProblem, 0, (uint)(fragmentAt + 2));
            p.Free();
            return null;
        }
        if (off == 0 && !more)
        {
            // An atomic fragment (RFC 6946): the datagram itself, without the fragment header.
            b[..Ipv6View.HeaderLength].CopyTo(b[(dataAt - Ipv6View.HeaderLength)..]);
            p.TrimFront(dataAt - Ipv6View.HeaderLength);
            var h = p.Data;
            h[6] = upper;
            BinaryPrimitives.WriteUInt16BigEndian(h[4..], (ushort)len);
            Counters6.ipv6ReasmOKs++;
            return p;
        }
        var key = (src, dst, id);
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
        b.Slice(dataAt, len).CopyTo(data[(60 + off)..]);
        if (off == 0)
        {
            r.HaveFirst = true;
            r.NextHeader = upper;
            r.HeaderLength = Ipv6View.HeaderLength;
            b[..Ipv6View.HeaderLength].CopyTo(data[(60 - Ipv6View.HeaderLength)..]);
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
        whole.TrimFront(60 - Ipv6View.HeaderLength);
        whole.TrySetLength(Ipv6View.HeaderLength + r.Total);
        var d = whole.Data;
        d[6] = r.NextHeader;
        BinaryPrimitives.WriteUInt16BigEndian(d[4..], (ushort)r.Total);
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
            int room = MinimumMtuV6 - Ipv6View.HeaderLength - IcmpView.HeaderLength - Ipv6View.HeaderLength - FragmentHeaderLength;
            int take = Math.Min(have, room);
            var quote = new byte[Ipv6View.HeaderLength + FragmentHeaderLength + take];
            data.Slice(60 - Ipv6View.HeaderLength, Ipv6View.HeaderLength).CopyTo(quote);
            quote[6] = FragmentHeader;
            BinaryPrimitives.WriteUInt16BigEndian(quote.AsSpan(4), (ushort)(FragmentHeaderLength + take));
            quote[Ipv6View.HeaderLength] = r.NextHeader;
            BinaryPrimitives.WriteUInt16BigEndian(quote.AsSpan(Ipv6View.HeaderLength + 2), 1);
            BinaryPrimitives.WriteUInt32BigEndian(quote.AsSpan(Ipv6View.HeaderLength + 4), r.Key6.Id);
            data.Slice(60, take).CopyTo(quote.AsSpan(Ipv6View.HeaderLength + FragmentHeaderLength));
            SendIcmpErrorV6(quote, IcmpType.V6TimeExceeded, 1, 0);
        }
        AbandonReassembly(r);
    }

    private void OutputV6(IpInterface ifc, Packet p, IpAddress nextHop)
    {
        if (ifc.IsLoopback) { TransmitFrame(ifc, p, MacAddress.Zero, EtherType.Ipv6); return; }
        if (nextHop.IsMulticast) { TransmitFrame(ifc, p, MulticastMac(nextHop), EtherType.Ipv6); return; }
        if (ifc.Ndp.TryLookup(nextHop, out var mac)) { TransmitFrame(ifc, p, mac, EtherType.Ipv6); return; }
        ifc.Ndp.Enqueue(nextHop, p);
    }

    /// <summary>Builds and sends an NDP message: ICMPv6 body already in <paramref name="p"/>, hop limit 255.</summary>
    private void SendNdp(IpInterface ifc, Packet p, IpAddress src, IpAddress dst)
    {
        IcmpView.FinishV6(p.Data, src, dst);
        int payload = p.Length;
        if (!p.TryPrepend(Ipv6View.HeaderLength)) { p.Free(); return; }
        Ipv6View.TryWrite(p.Data, src, dst, IpProtocol.Icmpv6, payload, 255);
        Icmp6.icmpOutMsgs++;
        OutputV6(ifc, p, dst);
    }

    private IpAddress LinkLocalOf(IpInterface ifc)
    {
        foreach (var a in _addresses)
            if (a.Interface == ifc && a.Address.IsLinkLocalV6 && a.IsUsable) return a.Address;
        var any = InterfaceAddress(ifc, v4: false);
        return any?.Address ?? IpAddress.AnyV6;
    }

    internal void SendNeighborSolicit(IpInterface ifc, IpAddress target, bool dad = false)
    {
        var src = dad ? IpAddress.AnyV6 : LinkLocalOf(ifc);
        bool withOption = !src.IsUnspecified;
        var p = Pool.Rent(24 + (withOption ? 8 : 0));
        if (p == null) { Counters.noBuffers++; return; }
        var m = p.Data;
        IcmpView.TryWriteHeader(m, IcmpType.NeighborSolicitation, 0, 0);
        target.Write(m[8..]);
        if (withOption) NdpOptionReader.WriteLinkLayer(m[24..], NdpOptionReader.SourceLinkLayer, ifc.MacAddress);
        Icmp6.icmpOutNeighborSolicits++;
        SendNdp(ifc, p, src, SolicitedNode(target));
    }

    private void SendNeighborAdvert(IpInterface ifc, IpAddress target, IpAddress dst, bool solicited)
    {
        var p = Pool.Rent(32);
        if (p == null) { Counters.noBuffers++; return; }
        var m = p.Data;
        uint flags = (ForwardingV6 || ifc.AdvertiseRouter ? 0x8000_0000u : 0) | (solicited ? 0x4000_0000u : 0) | 0x2000_0000u;
        IcmpView.TryWriteHeader(m, IcmpType.NeighborAdvertisement, 0, flags);
        target.Write(m[8..]);
        NdpOptionReader.WriteLinkLayer(m[24..], NdpOptionReader.TargetLinkLayer, ifc.MacAddress);
        Icmp6.icmpOutNeighborAdvertisements++;
        SendNdp(ifc, p, target, dst);
    }

    private void SendUnsolicitedNa(IpAddressObject a) => SendNeighborAdvert(a.Interface, a.Address, AllNodes, solicited: false);

    private void SendRouterSolicit(IpInterface ifc)
    {
        var src = LinkLocalOf(ifc);
        var p = Pool.Rent(src.IsUnspecified ? 8 : 16);
        if (p == null) { Counters.noBuffers++; return; }
        IcmpView.TryWriteHeader(p.Data, IcmpType.RouterSolicitation, 0, 0);
        if (!src.IsUnspecified) NdpOptionReader.WriteLinkLayer(p.Data[8..], NdpOptionReader.SourceLinkLayer, ifc.MacAddress);
        Icmp6.icmpOutRouterSolicits++;
        SendNdp(ifc, p, src, AllRouters);
    }

    private void SendRouterAdvert(IpInterface ifc, IpAddress dst)
    {
        var src = LinkLocalOf(ifc);
        if (!src.IsLinkLocalV6) return; // RFC 4861 6.1.2: an RA must come from a link-local address
        var p = Pool.Rent(16 + 8 + 32 + 8);
        if (p == null) { Counters.noBuffers++; return; }
        var m = p.Data;
        // Cur hop limit 64, no M/O flags, router lifetime; reachable time and retrans timer unspecified.
        IcmpView.TryWriteHeader(m, IcmpType.RouterAdvertisement, 0, (64u << 24) | RouterLifetimeSeconds);
        m[8..16].Clear();
        NdpOptionReader.WriteLinkLayer(m[16..], NdpOptionReader.SourceLinkLayer, ifc.MacAddress);
        NdpOptionReader.WritePrefix(m[24..], ifc.RouterPrefix, ifc.RouterPrefixLength, true, true, PrefixValidSeconds, PrefixPreferredSeconds);
        m[56] = NdpOptionReader.Mtu; m[57] = 1; m[58] = 0; m[59] = 0;
        BinaryPrimitives.WriteUInt32BigEndian(m[60..], (uint)ifc.Mtu);
        Icmp6.icmpOutRouterAdvertisements++;
        SendNdp(ifc, p, src, dst);
    }

    // ---- ICMPv6 ---------------------------------------------------------------------------------

    private void ReceiveIcmpV6(IpInterface ifc, Packet p, IpAddress src, IpAddress dst, byte hopLimit)
    {
        Icmp6.icmpInMsgs++;
        if (!IcmpView.TryCreate(p.Data, out var icmp))
        {
            Icmp6.icmpInErrors++;
            p.Free();
            return;
        }
        if (!icmp.ChecksumValidV6(src, dst))
        {
            Icmp6.icmpInCksumErrs++;
            p.Free();
            return;
        }
        byte type = icmp.Type;
        if (type is >= IcmpType.RouterSolicitation and <= IcmpType.NeighborAdvertisement)
        {
            // RFC 4861 7.1.1: NDP from off-link (hop limit below 255) or with a code is invalid.
            if (hopLimit != 255 || icmp.Code != 0 || ifc.IsLoopback) Counters6.ndpInMalformed++;
            else ReceiveNdp(ifc, type, p.Data, src, dst);
            p.Free();
            return;
        }
        switch (type)
        {
            case IcmpType.V6EchoRequest:
            {
                Icmp6.icmpInEchos++;
                var from = dst;
                if (dst.IsMulticast)
                {
                    var a = InterfaceAddress(ifc, v4: false, preferGlobal: !src.IsLinkLocalV6, toward: src);
                    if (a == null) { p.Free(); return; }
                    from = a.Address;
                }
                p.Data[0] = IcmpType.V6EchoReply;
                IcmpView.FinishV6(p.Data, from, src);
                Icmp6.icmpOutMsgs++;
                Icmp6.icmpOutEchoReps++;
                SendV6(p, from, src, IpProtocol.Icmpv6, DefaultTtl, null);
                return;
            }
            case IcmpType.V6EchoReply:
                Icmp6.icmpInEchoReps++;
                DeliverToIcmpSockets(v6: true, p.Data, src, dst, hopLimit, icmp.Identifier, isError: false);
                p.Free();
                return;
            case IcmpType.V6DestinationUnreachable:
            case IcmpType.V6PacketTooBig:
            case IcmpType.V6TimeExceeded:
            case IcmpType.V6ParameterProblem:
                if (type == IcmpType.V6DestinationUnreachable) Icmp6.icmpInDestUnreachs++;
                else if (type == IcmpType.V6PacketTooBig) Icmp6.icmpInFragNeeded++;
                else if (type == IcmpType.V6TimeExceeded) Icmp6.icmpInTimeExcds++;
                else Icmp6.icmpInParmProbs++;
                HandleIcmpErrorV6(type, icmp.Code, icmp.Mtu, icmp.Body);
                DeliverToIcmpSockets(v6: true, p.Data, src, dst, hopLimit, 0, isError: true);
                p.Free();
                return;
            default:
                Icmp6.icmpInUnknowns++;
                p.Free();
                return;
        }
    }

    private void HandleIcmpErrorV6(byte type, byte code, int mtu, Span<byte> quoted)
    {
        if (quoted.Length < Ipv6View.HeaderLength + 8 || (quoted[0] >> 4) != 6)
        {
            Icmp6.icmpInBadQuote++;
            return;
        }
        var qsrc = IpAddress.Read(quoted[8..], v4: false);
        var qdst = IpAddress.Read(quoted[24..], v4: false);
        byte proto = quoted[6];
        IcmpErrorKind kind;
        switch (type)
        {
            case IcmpType.V6PacketTooBig:
                kind = IcmpErrorKind.PacketTooBig;
                LearnPathMtu(qdst, mtu);
                break;
            case IcmpType.V6TimeExceeded: kind = IcmpErrorKind.TimeExceeded; break;
            case IcmpType.V6DestinationUnreachable:
                kind = code switch { 0 => IcmpErrorKind.NetUnreachable, 1 => IcmpErrorKind.AdminProhibited, 4 => IcmpErrorKind.PortUnreachable, _ => IcmpErrorKind.HostUnreachable };
                break;
            default: return;
        }
        _transports[proto]?.ReceiveError(kind, mtu, qsrc, qdst, quoted[Ipv6View.HeaderLength..]);
    }

    private void ReceiveNdp(IpInterface ifc, byte type, Span<byte> m, IpAddress src, IpAddress dst)
    {
        int fixedLength = type switch { IcmpType.RouterSolicitation => 8, IcmpType.RouterAdvertisement => 16, _ => 24 };
        if (m.Length < fixedLength)
        {
            Counters6.ndpInMalformed++;
            return;
        }
        MacAddress linkLayer = MacAddress.Zero;
        var options = new NdpOptionReader(m[fixedLength..]);
        bool hasPrefix = false;
        while (options.MoveNext())
        {
            if ((options.Type == NdpOptionReader.SourceLinkLayer || options.Type == NdpOptionReader.TargetLinkLayer) && options.Value.Length >= 8)
                linkLayer = MacAddress.Read(options.Value[2..]);
            if (options.Type == NdpOptionReader.PrefixInformation) hasPrefix = true;
        }
        if (options.Malformed)
        {
            Counters6.ndpInMalformed++;
            return;
        }
        switch (type)
        {
            case IcmpType.NeighborSolicitation:
            {
                Icmp6.icmpInNeighborSolicits++;
                var target = IpAddress.Read(m[8..], v4: false);
                if (!_local.TryGetValue(target, out var mine) || mine.Interface != ifc) return;
                if (mine.State == AddressState.Tentative)
                {
                    // RFC 4862 5.4.3: someone else's DAD for our tentative address.
                    if (src.IsUnspecified)
                    {
                        Counters6.ndpDadDuplicates++;
                        MarkDuplicate(mine);
                    }
                    return;
                }
                if (!mine.IsUsable) return;
                if (src.IsUnspecified)
                {
                    SendNeighborAdvert(ifc, target, AllNodes, solicited: false);
                    return;
                }
                if (!linkLayer.IsZero) ifc.Ndp.Update(src, linkLayer, create: true);
                SendNeighborAdvert(ifc, target, src, solicited: true);
                return;
            }
            case IcmpType.NeighborAdvertisement:
            {
                Icmp6.icmpInNeighborAdvertisements++;
                var target = IpAddress.Read(m[8..], v4: false);
                if (_local.TryGetValue(target, out var mine) && mine.Interface == ifc)
                {
                    if (linkLayer == ifc.MacAddress) return;
                    Counters6.ndpDadDuplicates++;
                    if (mine.State == AddressState.Tentative) MarkDuplicate(mine);
                    return;
                }
                if (!linkLayer.IsZero) ifc.Ndp.Update(target, linkLayer, create: false);
                return;
            }
            case IcmpType.RouterSolicitation:
                Icmp6.icmpInRouterSolicits++;
                if (!ifc.AdvertiseRouter) return;
                if (!src.IsUnspecified && !linkLayer.IsZero) ifc.Ndp.Update(src, linkLayer, create: true);
                SendRouterAdvert(ifc, src.IsUnspecified ? AllNodes : src);
                return;
            case IcmpType.RouterAdvertisement:
                Icmp6.icmpInRouterAdvertisements++;
                if (!src.IsLinkLocalV6 || ifc.AdvertiseRouter) return;
                if (!linkLayer.IsZero) ifc.Ndp.Update(src, linkLayer, create: true);
                ReceiveRouterAdvert(ifc, m, src, hasPrefix);
                return;
        }
    }

    private void ReceiveRouterAdvert(IpInterface ifc, Span<byte> m, IpAddress router, bool hasPrefix)
    {
        long now = Scheduler.Now;
        int lifetime = BinaryPrimitives.ReadUInt16BigEndian(m[6..]);
        if (lifetime > 0) AddDynamicRoute(IpAddress.AnyV6, 0, router, ifc, now + lifetime * Time.Second);
        else _routes6.RemoveAll(r => r.PrefixLength == 0 && r.Gateway == router && (r.Flags & RouteFlags.Dynamic) != 0);
        if (!hasPrefix) return;
        var options = new NdpOptionReader(m[16..]);
        while (options.MoveNext())
        {
            var o = options.Value;
            if (options.Type != NdpOptionReader.PrefixInformation || o.Length < 32) continue;
            int len = o[2];
            bool onLink = (o[3] & 0x80) != 0, auto = (o[3] & 0x40) != 0;
            uint valid = BinaryPrimitives.ReadUInt32BigEndian(o[4..]);
            var prefix = IpAddress.Read(o[16..], v4: false);
            if (prefix.IsLinkLocalV6 || len > 128) continue;
            prefix = Network(prefix, len);
            long expires = valid == uint.MaxValue ? long.MaxValue : now + valid * Time.Second;
            if (onLink && valid > 0) AddDynamicRoute(prefix, len, IpAddress.AnyV6, ifc, expires);
            if (!auto || len != 64 || !ifc.Addrconf || valid == 0) continue;
            var address = IpAddress.V6(prefix.High, ifc.InterfaceId);
            if (_local.TryGetValue(address, out var existing))
            {
                if (existing.Type == AddressType.Addrconf) SetExpiry(existing, expires);
                continue;
            }
            var a = AddAddressCore(ifc, ifc.AddrconfName ?? ifc.Name + "/v6", address, 64, AddressType.Addrconf, dad: DadTransmits > 0);
            a.Expires = expires;
            Counters6.slaacAddresses++;
        }
    }

    /// <summary>Sends an ICMPv6 error about <paramref name="original"/> (IPv6 header onward), per
    /// RFC 4443 2.4: never about an error, never to a multicast source; packet too big and
    /// parameter problems may answer multicast. Rate limited.</summary>
    internal void SendIcmpErrorV6(ReadOnlySpan<byte> original, byte type, byte code, uint rest)
    {
        if (original.Length < Ipv6View.HeaderLength) return;
        var src = IpAddress.Read(original[8..], v4: false);
        var dst = IpAddress.Read(original[24..], v4: false);
        bool suppressed = src.IsUnspecified || src.IsMulticast || (dst.IsMulticast && type != IcmpType.V6PacketTooBig);
        if (!suppressed && original[6] == IpProtocol.Icmpv6 && original.Length > Ipv6View.HeaderLength)
            suppressed = original[Ipv6View.HeaderLength] < 128;
        if (suppressed) { Icmp6.icmpOutSuppressed++; return; }
        if (!TakeIcmpToken()) { Icmp6.icmpOutRateLimited++; return; }
        int quote = Math.Min(original.Length, 1280 - Ipv6View.HeaderLength - IcmpView.HeaderLength);
        var p = Pool.Rent(IcmpView.HeaderLength + quote);
        if (p == null) { Counters.noBuffers++; return; }
        IcmpView.TryWriteHeader(p.Data, type, code, rest);
        original[..quote].CopyTo(p.Data[IcmpView.HeaderLength..]);
        IpAddress from = IsLocalAddress(dst) ? dst : default;
        if (from.IsUnspecified && !TrySelectSource(src, out from)) { p.Free(); return; }
        IcmpView.FinishV6(p.Data, from, src);
        Icmp6.icmpOutMsgs++;
        Icmp6.icmpOutErrors++;
        if (type == IcmpType.V6DestinationUnreachable) Icmp6.icmpOutDestUnreachs++;
        else if (type == IcmpType.V6TimeExceeded) Icmp6.icmpOutTimeExcds++;
        else if (type == IcmpType.V6PacketTooBig) Icmp6.icmpOutFragNeeded++;
        SendV6(p, from, src, IpProtocol.Icmpv6, DefaultTtl, null);
    }
}
