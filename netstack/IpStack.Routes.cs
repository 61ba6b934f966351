using SmartOS.Kernel;
using SmartOS.Kernel.Wire;

namespace SmartOS.Netstack;

// Routing table and path MTU cache (IpStack.cs, "route"). Routes are kept sorted by prefix length,
// longest first, so the first match is the longest-prefix match and the default route (length 0)
// comes last. A zone's table holds tens of routes, so a scan of a List beats a trie here and
// allocates nothing.
public sealed partial class IpStack
{
    /// <summary>PMTU entries age out after ten minutes, as illumos's ip_pathmtu_interval.</summary>
    public const long PmtuLifetime = 600 * Time.Second;
    private const int PmtuCacheLimit = 1024;

    private readonly List<RouteEntry> _routes4 = [];
    private readonly List<RouteEntry> _routes6 = [];
    private readonly Dictionary<IpAddress, (int Mtu, long Expires)> _pmtu = new();

    /// <summary>The routes of a family, longest prefix first (netstat -rn). Router-learned routes
    /// whose lifetime ended are dropped here (lookups already skip them).</summary>
    public IReadOnlyList<RouteEntry> Routes(bool v4)
    {
        var list = v4 ? _routes4 : _routes6;
        long now = Scheduler.Now;
        if (list.RemoveAll(r => r.Expires <= now) > 0) InvalidatePaths();
        return list;
    }

    private void InsertRoute(RouteEntry r)
    {
        var list = r.Destination.IsV4 ? _routes4 : _routes6;
        int i = 0;
        while (i < list.Count && list[i].PrefixLength >= r.PrefixLength) i++;
        list.Insert(i, r);
        InvalidatePaths();
    }

    /// <summary>Bumped whenever what a resolved path depends on changes (a route, an address, an
    /// interface or its MTU, an ARP or NDP entry): a PathCacheV4 filled under an older value is stale.</summary>
    internal int PathGeneration { get; private set; }

    internal void InvalidatePaths() => PathGeneration++;

    /// <summary>
    /// route add: a static route to destination/prefix through a gateway that a connected route
    /// reaches (illumos refuses an off-link gateway with "Network is unreachable"). Returns the errno
    /// the routing socket would: EEXIST for a route already there, ENETUNREACH for an off-link gateway.
    /// </summary>
    public NetError AddRoute(IpAddress destination, int prefixLength, IpAddress gateway)
    {
        if (destination.IsV4 != gateway.IsV4) return NetError.InvalidArgument;
        if (prefixLength < 0 || prefixLength > (destination.IsV4 ? 32 : 128)) return NetError.InvalidArgument;
        var net = Network(destination, prefixLength);
        var list = destination.IsV4 ? _routes4 : _routes6;
        foreach (var r in list)
            if (r.Destination == net && r.PrefixLength == prefixLength && r.Gateway == gateway) return NetError.Exists;
        if (!IsLocalAddress(gateway) && FindConnected(gateway) == null) return NetError.NetworkUnreachable;
        var flags = RouteFlags.Up | RouteFlags.Static | RouteFlags.Gateway;
        if (prefixLength == (destination.IsV4 ? 32 : 128)) flags |= RouteFlags.Host;
        if (IsLocalAddress(gateway))
        {
            // "route add -interface": the gateway is our own address, so the destination is on-link.
            var a = FindLocal(gateway)!;
            InsertRoute(new RouteEntry(net, prefixLength, gateway, a.Interface, (flags & ~RouteFlags.Gateway)));
            return NetError.None;
        }
        InsertRoute(new RouteEntry(net, prefixLength, gateway, null, flags));
        return NetError.None;
    }

    /// <summary>route delete: removes a matching route (gateway unspecified: any gateway); ESRCH when
    /// none matches.</summary>
    public NetError DeleteRoute(IpAddress destination, int prefixLength, IpAddress gateway)
    {
        var net = Network(destination, prefixLength);
        var list = destination.IsV4 ? _routes4 : _routes6;
        for (int i = 0; i < list.Count; i++)
        {
            var r = list[i];
            if (r.Destination != net || r.PrefixLength != prefixLength) continue;
            if (!gateway.IsUnspecified && r.Gateway != gateway) continue;
            if (r.Owner != null) continue;
            list.RemoveAt(i);
            InvalidatePaths();
            return NetError.None;
        }
        return NetError.NoSuchEntry;
    }

    /// <summary>The route a destination uses (route get), or null.</summary>
    public RouteEntry? LookupRoute(IpAddress destination)
        => TryRoute(destination, out _, out _, out var r, countUse: false) ? r : null;

    private RouteEntry? FindConnected(IpAddress address)
    {
        var list = address.IsV4 ? _routes4 : _routes6;
        for (int i = 0; i < list.Count; i++)
        {
            var r = list[i];
            if (r.Interface != null && (r.Flags & RouteFlags.Gateway) == 0 && address.InPrefix(r.Destination, r.PrefixLength)) return r;
        }
        return null;
    }

    /// <summary>Longest-prefix match: the outgoing interface and the next hop (the destination itself
    /// when it is on-link). Gateway routes resolve their gateway through a connected route.</summary>
    internal bool TryRoute(IpAddress destination, out IpInterface ifc, out IpAddress nextHop, out RouteEntry route, bool countUse = true)
    {
        ifc = null!; nextHop = default; route = null!;
        var list = destination.IsV4 ? _routes4 : _routes6;
        long now = Scheduler.Now;
        for (int i = 0; i < list.Count; i++)
        {
            var r = list[i];
            if (r.Expires <= now || !destination.InPrefix(r.Destination, r.PrefixLength)) continue;
            if ((r.Flags & RouteFlags.Gateway) == 0)
            {
                if (r.Interface == null) continue;
                ifc = r.Interface; nextHop = destination; route = r;
                if (countUse) r.Use++;
                return true;
            }
            IpInterface? via = r.Interface;
            if (via == null)
            {
                var c = FindConnected(r.Gateway);
                if (c == null) continue;
                via = c.Interface!;
            }
            ifc = via; nextHop = r.Gateway; route = r;
            if (countUse) r.Use++;
            return true;
        }
        // IPv6 link-local destinations are on-link on the first interface that has a link-local address.
        if (destination.IsLinkLocalV6 || (destination.IsMulticast && !destination.IsV4))
        {
            foreach (var i in _interfaces)
            {
                if (i.IsLoopback) continue;
                if (InterfaceAddress(i, v4: false, preferGlobal: false) == null) continue;
                ifc = i; nextHop = destination;
                route = null!;
                return true;
            }
        }
        return false;
    }

    /// <summary>Adds or replaces a router-learned route (RA default route, on-link prefix).</summary>
    internal void AddDynamicRoute(IpAddress destination, int prefixLength, IpAddress gateway, IpInterface ifc, long expires)
    {
        var list = destination.IsV4 ? _routes4 : _routes6;
        foreach (var r in list)
        {
            if (r.Destination == destination && r.PrefixLength == prefixLength && r.Gateway == gateway && r.Interface == ifc)
            {
                r.Expires = expires;
                return;
            }
        }
        var flags = RouteFlags.Up | RouteFlags.Dynamic | (gateway == destination || gateway.IsUnspecified ? 0 : RouteFlags.Gateway);
        InsertRoute(new RouteEntry(destination, prefixLength, gateway, ifc, flags) { Expires = expires });
    }

    /// <summary>Records a smaller path MTU learned from ICMP (fragmentation needed / packet too big).</summary>
    internal void LearnPathMtu(IpAddress destination, int mtu)
    {
        int floor = destination.IsV4 ? 68 : 1280;
        if (mtu < floor) mtu = floor;
        if (!_pmtu.ContainsKey(destination) && _pmtu.Count >= PmtuCacheLimit)
        {
            // Bounded (rule 3): forget expired entries, else the table is simply full.
            long now = Scheduler.Now;
            var expired = new List<IpAddress>();
            foreach (var kv in _pmtu) if (kv.Value.Expires <= now) expired.Add(kv.Key);
            foreach (var k in expired) _pmtu.Remove(k);
            if (_pmtu.Count >= PmtuCacheLimit) return;
        }
        _pmtu[destination] = (mtu, Scheduler.Now + PmtuLifetime);
    }
}

public sealed partial class IpStack
{
    /// <summary>The outgoing interface name for a destination (route get, netstat).</summary>
    public bool TryRouteInterface(IpAddress destination, out string name)
    {
        if (IsLocalAddress(destination) || destination.IsLoopback) { name = Loopback.Name; return true; }
        bool ok = TryRoute(destination, out var ifc, out _, out _, countUse: false);
        name = ok ? ifc.Name : "";
        return ok;
    }
}
