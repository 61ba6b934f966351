using SmartOS.Kernel;
using SmartOS.Kernel.Wire;

namespace SmartOS.Netstack;

// ARP (RFC 826) and IPv4 address conflict detection (RFC 5227): probes before an address is used,
// a gratuitous announcement after, defence when another host claims a usable address.
public sealed partial class IpStack
{
    /// <summary>RFC 5227 PROBE_NUM; probes go PROBE_MIN apart here (illumos waits about as long).</summary>
    public const int ArpProbeCount = 3;
    public const long ArpProbeInterval = 200 * Time.Millisecond;

    /// <summary>The ARP cache of every interface plus our own addresses as permanent local entries (arp -a).</summary>
    public List<NeighborInfo> ArpTable()
    {
        var list = new List<NeighborInfo>();
        foreach (var ifc in _interfaces)
        {
            if (ifc.IsLoopback) continue;
            ifc.Arp.List(list);
            foreach (var a in _addresses)
                if (a.Interface == ifc && a.Address.IsV4 && a.IsUsable)
                    list.Add(new NeighborInfo(ifc.Name, a.Address, ifc.MacAddress, NeighborState.Permanent, true, long.MaxValue));
        }
        return list;
    }

    /// <summary>The NDP caches (netstat -p -f inet6).</summary>
    public List<NeighborInfo> NdpTable()
    {
        var list = new List<NeighborInfo>();
        foreach (var ifc in _interfaces) if (!ifc.IsLoopback) ifc.Ndp.List(list);
        return list;
    }

    /// <summary>arp -s: a permanent entry on the interface whose subnet holds the address (the
    /// errno the ioctl would give: ENETUNREACH when no subnet holds it).</summary>
    public NetError AddStaticArp(IpAddress address, MacAddress mac)
    {
        var r = FindConnected(address);
        if (r?.Interface == null || !address.IsV4) return NetError.NetworkUnreachable;
        r.Interface.Arp.AddPermanent(address, mac);
        return NetError.None;
    }

    /// <summary>arp -d (ENXIO when there is no such entry).</summary>
    public NetError DeleteArp(IpAddress address)
    {
        foreach (var ifc in _interfaces)
            if (ifc.Arp.Remove(address)) return NetError.None;
        return NetError.NoSuchDevice;
    }

    internal void SendArpRequest(IpInterface ifc, IpAddress target)
    {
        var src = InterfaceAddress(ifc, v4: true, toward: target);
        SendArp(ifc, ArpView.OpRequest, src?.Address.V4Raw ?? 0, MacAddress.Zero, target.V4Raw, MacAddress.Broadcast);
        ArpStats.arpOutRequests++;
    }

    private void SendGratuitousArp(IpAddressObject a)
    {
        // RFC 5227 announcement: a request with sender and target both our address.
        SendArp(a.Interface, ArpView.OpRequest, a.Address.V4Raw, MacAddress.Zero, a.Address.V4Raw, MacAddress.Broadcast);
        ArpStats.arpOutGratuitous++;
    }

    private void SendArp(IpInterface ifc, ushort op, uint senderIp, MacAddress targetMac, uint targetIp, MacAddress frameDst)
    {
        if (ifc.IsLoopback) return;
        var p = Pool.Rent(ArpView.Length);
        if (p == null) { Counters.noBuffers++; return; }
        ArpView.TryWrite(p.Data, op, ifc.MacAddress, senderIp, targetMac, targetIp);
        TransmitFrame(ifc, p, frameDst, EtherType.Arp);
    }

    /// <summary>Address DAD and lifetime share one timer per address object.</summary>
    private void AddressTimer(IpAddressObject a)
    {
        if (a.State != AddressState.Tentative)
        {
            AddressTimerFired(a);
            return;
        }
        if (a.DadProbesLeft > 0)
        {
            a.DadProbesLeft--;
            if (a.Address.IsV4)
            {
                // RFC 5227 probe: sender address zero, so no one's cache learns a tentative address.
                SendArp(a.Interface, ArpView.OpRequest, 0, MacAddress.Zero, a.Address.V4Raw, MacAddress.Broadcast);
                ArpStats.arpOutRequests++;
                a.Timer!.ArmAfter(ArpProbeInterval);
            }
            else
            {
                SendNeighborSolicit(a.Interface, a.Address, dad: true);
                a.Timer!.ArmAfter(NeighborCache.SolicitInterval);
            }
            return;
        }
        MarkUsable(a);
    }


    private void ReceiveArp(IpInterface ifc, Packet p)
    {
        p.TrimFront(EthernetView.HeaderLength);
        if (!ArpView.TryCreate(p.Data, out var arp) || (arp.Operation != ArpView.OpRequest && arp.Operation != ArpView.OpReply))
        {
            ArpStats.arpInMalformed++;
            p.Free();
            return;
        }
        ushort op = arp.Operation;
        var senderMac = arp.SenderMac;
        var senderIp = IpAddress.V4(arp.SenderIp);
        var targetIp = IpAddress.V4(arp.TargetIp);
        p.Free();
        if (op == ArpView.OpRequest) ArpStats.arpInRequests++; else ArpStats.arpInReplies++;
        if (senderMac == ifc.MacAddress || senderMac.IsGroup || senderIp.IsMulticast || senderIp == IpAddress.BroadcastV4)
        {
            ArpStats.arpInIgnored++;
            return;
        }

        // Conflict detection (RFC 5227 2.1.1 and 2.4).
        if (_local.TryGetValue(senderIp, out var mine) && mine.Interface == ifc && !senderIp.IsUnspecified)
        {
            if (mine.State == AddressState.Tentative)
            {
                ArpStats.arpDadDuplicates++;
                MarkDuplicate(mine);
            }
            else if (mine.IsUsable)
            {
                ArpStats.arpDefends++;
                SendGratuitousArp(mine);
            }
            return;
        }
        if (senderIp.IsUnspecified && _local.TryGetValue(targetIp, out var probed) && probed.Interface == ifc)
        {
            if (probed.State == AddressState.Tentative)
            {
                // Another host probes for the address we are probing for.
                ArpStats.arpDadDuplicates++;
                MarkDuplicate(probed);
                return;
            }
            if (probed.IsUsable)
            {
                SendArp(ifc, ArpView.OpReply, targetIp.V4Raw, senderMac, 0, senderMac);
                ArpStats.arpOutReplies++;
            }
            return;
        }

        bool forUs = _local.TryGetValue(targetIp, out var target) && target.Interface == ifc && target.IsUsable;
        if (!senderIp.IsUnspecified) ifc.Arp.Update(senderIp, senderMac, create: forUs);
        if (forUs && op == ArpView.OpRequest)
        {
            SendArp(ifc, ArpView.OpReply, targetIp.V4Raw, senderMac, senderIp.V4Raw, senderMac);
            ArpStats.arpOutReplies++;
        }
    }

    /// <summary>Resolution gave up: the waiting packets are dropped; forwarded ones earn a host unreachable.</summary>
    internal void ResolutionFailed(IpInterface ifc, Queue<Packet> pending, bool v6)
    {
        while (pending.Count > 0)
        {
            var p = Unqueue(pending);
            if (v6) Counters6.ndpPendingDrops++;
            else
            {
                ArpStats.arpPendingDrops++;
                if (Ipv4View.TryCreate(p.Data, out var ip) && !IsLocalAddress(ip.Source))
                    SendIcmpErrorV4(p.Data, IcmpType.DestinationUnreachable, 1);
            }
            p.Free();
        }
    }
}
