using SmartOS.Kernel;
using SmartOS.Kernel.Wire;

namespace SmartOS.Netstack;

// Neighbour discovery (RFC 4861): solicitations and advertisements for neighbours and routers,
// duplicate address detection's probes (RFC 4862 5.4), and the router advertisements that
// stateless address autoconfiguration (RFC 4862 5.5) learns prefixes and the default route from.
// Messages are read and written through IcmpV6Repr, NdpOptionReader and NdpPrefixInformation.
public sealed partial class IpStack
{
    /// <summary>Sends an NDP message already emitted in <paramref name="p"/> with hop limit 255 (RFC 4861 7.1.1).</summary>
    private void SendNdp(IpInterface ifc, Packet p, IpAddress src, IpAddress dst)
    {
        var ip = new Ipv6Repr { Source = src, Destination = dst, NextHeader = IpProtocol.Icmpv6, PayloadLength = p.Length, HopLimit = 255 };
        if (!p.TryPrepend(Ipv6Repr.HeaderLength) || !ip.TryEmit(p.Data)) { p.Free(); return; }
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
        var dst = SolicitedNode(target);
        bool withOption = !src.IsUnspecified; // RFC 4861 4.3: never from the unspecified address
        int fixedLength = IcmpV6Repr.FixedLength(IcmpType.NeighborSolicitation);
        var p = Pool.Rent(fixedLength + (withOption ? NdpOptionReader.LinkLayerLength : 0));
        if (p == null) { Counters.noBuffers++; return; }
        var options = p.Data[fixedLength..];
        if (withOption) NdpOptionReader.WriteLinkLayer(options, NdpOptionReader.SourceLinkLayer, ifc.MacAddress);
        new IcmpV6Repr { Type = IcmpType.NeighborSolicitation, Target = target, Data = options }.TryEmit(p.Data, src, dst);
        Icmp6.icmpOutNeighborSolicits++;
        SendNdp(ifc, p, src, dst);
    }

    private void SendNeighborAdvert(IpInterface ifc, IpAddress target, IpAddress dst, bool solicited)
    {
        int fixedLength = IcmpV6Repr.FixedLength(IcmpType.NeighborAdvertisement);
        var p = Pool.Rent(fixedLength + NdpOptionReader.LinkLayerLength);
        if (p == null) { Counters.noBuffers++; return; }
        var options = p.Data[fixedLength..];
        NdpOptionReader.WriteLinkLayer(options, NdpOptionReader.TargetLinkLayer, ifc.MacAddress);
        new IcmpV6Repr
        {
            Type = IcmpType.NeighborAdvertisement, Target = target, Data = options,
            IsRouter = ForwardingV6 || ifc.AdvertiseRouter, Solicited = solicited, Override = true,
        }.TryEmit(p.Data, target, dst);
        Icmp6.icmpOutNeighborAdvertisements++;
        SendNdp(ifc, p, target, dst);
    }

    private void SendUnsolicitedNa(IpAddressObject a) => SendNeighborAdvert(a.Interface, a.Address, AllNodes, solicited: false);

    private void SendRouterSolicit(IpInterface ifc)
    {
        var src = LinkLocalOf(ifc);
        int fixedLength = IcmpV6Repr.FixedLength(IcmpType.RouterSolicitation);
        var p = Pool.Rent(fixedLength + (src.IsUnspecified ? 0 : NdpOptionReader.LinkLayerLength));
        if (p == null) { Counters.noBuffers++; return; }
        var options = p.Data[fixedLength..];
        if (!src.IsUnspecified) NdpOptionReader.WriteLinkLayer(options, NdpOptionReader.SourceLinkLayer, ifc.MacAddress);
        new IcmpV6Repr { Type = IcmpType.RouterSolicitation, Data = options }.TryEmit(p.Data, src, AllRouters);
        Icmp6.icmpOutRouterSolicits++;
        SendNdp(ifc, p, src, AllRouters);
    }

    private void SendRouterAdvert(IpInterface ifc, IpAddress dst)
    {
        var src = LinkLocalOf(ifc);
        if (!src.IsLinkLocalV6) return; // RFC 4861 6.1.2: an RA must come from a link-local address
        int fixedLength = IcmpV6Repr.FixedLength(IcmpType.RouterAdvertisement);
        var p = Pool.Rent(fixedLength + NdpOptionReader.LinkLayerLength + NdpPrefixInformation.Length + NdpOptionReader.MtuLength);
        if (p == null) { Counters.noBuffers++; return; }
        // Options: our link-layer address, the prefix (on-link, autonomous), the link MTU.
        var options = p.Data[fixedLength..];
        NdpOptionReader.WriteLinkLayer(options, NdpOptionReader.SourceLinkLayer, ifc.MacAddress);
        var prefix = new NdpPrefixInformation
        {
            Prefix = ifc.RouterPrefix, PrefixLength = (byte)ifc.RouterPrefixLength, OnLink = true, Autonomous = true,
            ValidLifetime = PrefixValidSeconds, PreferredLifetime = PrefixPreferredSeconds,
        };
        prefix.TryEmit(options[NdpOptionReader.LinkLayerLength..]);
        NdpOptionReader.WriteMtu(options[(NdpOptionReader.LinkLayerLength + NdpPrefixInformation.Length)..], (uint)ifc.Mtu);
        // Cur hop limit 64, no M/O flags, router lifetime; reachable time and retrans timer unspecified.
        new IcmpV6Repr { Type = IcmpType.RouterAdvertisement, CurHopLimit = 64, RouterLifetime = RouterLifetimeSeconds, Data = options }
            .TryEmit(p.Data, src, dst);
        Icmp6.icmpOutRouterAdvertisements++;
        SendNdp(ifc, p, src, dst);
    }

    /// <summary>An NDP message that passed IcmpV6Repr.Parse (code 0, fixed part and options well
    /// formed) from on-link (hop limit 255).</summary>
    private void ReceiveNdp(IpInterface ifc, IcmpV6Repr m, IpAddress src)
    {
        MacAddress linkLayer = MacAddress.Zero;
        var options = new NdpOptionReader(m.Data);
        bool hasPrefix = false;
        while (options.MoveNext())
        {
            if ((options.Type == NdpOptionReader.SourceLinkLayer || options.Type == NdpOptionReader.TargetLinkLayer)
                && NdpOptionReader.TryReadLinkLayer(options.Value, out var mac))
                linkLayer = mac;
            if (options.Type == NdpOptionReader.PrefixInformation) hasPrefix = true;
        }
        switch (m.Type)
        {
            case IcmpType.NeighborSolicitation:
            {
                Icmp6.icmpInNeighborSolicits++;
                var target = m.Target;
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
                var target = m.Target;
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

    private void ReceiveRouterAdvert(IpInterface ifc, IcmpV6Repr m, IpAddress router, bool hasPrefix)
    {
        long now = Scheduler.Now;
        int lifetime = m.RouterLifetime;
        if (lifetime > 0) AddDynamicRoute(IpAddress.AnyV6, 0, router, ifc, now + lifetime * Time.Second);
        else if (_routes6.RemoveAll(r => r.PrefixLength == 0 && r.Gateway == router && (r.Flags & RouteFlags.Dynamic) != 0) > 0) InvalidatePaths();
        if (!hasPrefix) return;
        var options = new NdpOptionReader(m.Data);
        while (options.MoveNext())
        {
            if (!NdpPrefixInformation.TryParse(options.Value, out var pi)) continue;
            int len = pi.PrefixLength;
            uint valid = pi.ValidLifetime;
            var prefix = pi.Prefix;
            if (prefix.IsLinkLocalV6 || len > 128) continue;
            prefix = Network(prefix, len);
            long expires = valid == uint.MaxValue ? long.MaxValue : now + valid * Time.Second;
            if (pi.OnLink && valid > 0) AddDynamicRoute(prefix, len, IpAddress.AnyV6, ifc, expires);
            if (!pi.Autonomous || len != 64 || !ifc.Addrconf || valid == 0) continue;
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
}
