using SmartOS.Kernel;
using SmartOS.Kernel.Wire;

namespace SmartOS.Netstack;

// IPv6 (RFC 8200): address autoconfiguration's configuration side (ipadm create-addr -T addrconf,
// a stack told to advertise a prefix, as illumos's in.ndpd with an ndpd.conf, so a zone can be the
// router of a test network), then receive with the extension-header walk, forwarding and output.
// Fragments are in IpStack.Fragments.cs, ICMPv6 in IpStack.Icmp.cs, neighbour discovery and the
// router advertisements SLAAC learns from in IpStack.Ndp.cs. Headers are read and written only
// through Ipv6View, Ipv6Repr and the extension-header views.
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
        if (Ipv6Repr.Parse(p.Data, out var view, out var ip) != WireError.None)
        {
            Counters6.ipv6InHdrErrors++;
            p.Free();
            return;
        }
        p.TrySetLength(view.Packet.Length); // drop Ethernet padding
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
        while (next == Ipv6ExtensionHeaderView.Fragment || Ipv6ExtensionHeaderView.IsWalked(next))
        {
            if (next == Ipv6ExtensionHeaderView.Fragment)
            {
                var whole = ReassembleV6(p, offset);
                if (whole == null) return;
                p = whole;
                b = p.Data;
                Ipv6View.TryCreate(b, out var reassembled);
                next = reassembled.NextHeader;
                offset = Ipv6View.HeaderLength;
                continue;
            }
            if (!Ipv6ExtensionHeaderView.TryCreate(b[offset..], out var ext)) { Counters6.ipv6InHdrErrors++; p.Free(); return; }
            next = ext.NextHeader;
            offset += ext.Length;
        }
        Counters6.ipv6InDelivers++;
        if (_probes.IpReceiveV6.Enabled) FireIp(_probes.IpReceiveV6, p.Data, v6: true, ifc);
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
            if (!dst.IsMulticast) SendIcmpErrorV6(p.Data, IcmpType.V6ParameterProblem, 1, Ipv6View.NextHeaderOffset);
            p.Free();
            return;
        }
        p.TrimFront(offset);
        t.Receive(p, src, dst);
    }

    private bool IsForUsV6(IpInterface ifc, IpAddress dst)
    {
        if (LookupLocal(dst) is { } a) return a.IsUsable;
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
        if (p.Length > outIfc.Mtu && !LargeSegmentsFit(p, Ipv6View.HeaderLength, outIfc.Mtu))
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
        var ip = new Ipv6Repr
        {
            Source = src, Destination = dst, NextHeader = proto, PayloadLength = p.Length,
            HopLimit = hopLimit, TrafficClass = trafficClass,
        };
        if (!p.TryPrepend(Ipv6Repr.HeaderLength) || !ip.TryEmit(p.Data))
        {
            Counters.noBuffers++;
            p.Free();
            return false;
        }
        if (_probes.IpSend.Enabled) FireIp(_probes.IpSend, p.Data, v6: true, ifc);
        int mtu = ifc.Mtu;
        if (_pmtu.TryGetValue(dst, out var learned) && learned.Expires > Scheduler.Now && learned.Mtu < mtu)
            mtu = Math.Max(MinimumMtuV6, learned.Mtu);
        if (p.Length > mtu && p.LsoMss == 0) // a large send is cut below IP (IIpLayer.LsoMax)
        {
            // Only the source fragments in IPv6 (RFC 8200 4.5); routers answer Packet Too Big.
            return FragmentV6(ifc, p, nextHop, mtu);
        }
        OutputV6(ifc, p, nextHop);
        return true;
    }

    /// <summary>IPv6's minimum link MTU (RFC 8200 5).</summary>
    public const int MinimumMtuV6 = 1280;

    private void OutputV6(IpInterface ifc, Packet p, IpAddress nextHop)
    {
        if (ifc.IsLoopback) { TransmitFrame(ifc, p, MacAddress.Zero, EtherType.Ipv6); return; }
        if (nextHop.IsMulticast) { TransmitFrame(ifc, p, MulticastMac(nextHop), EtherType.Ipv6); return; }
        if (ifc.Ndp.TryLookup(nextHop, out var mac)) { TransmitFrame(ifc, p, mac, EtherType.Ipv6); return; }
        ifc.Ndp.Enqueue(nextHop, p);
    }
}
