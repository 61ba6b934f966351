using SmartOS.Kernel.Wire;

namespace SmartOS.Netstack;

/// <summary>
/// One IPv4 destination's resolved path, kept by a kernel UDP consumer (the overlay's VXLAN socket)
/// so that its common datagram does no route or ARP lookup: the outgoing interface, the route, the
/// next hop and its link address, as Linux's vxlan keeps a dst_cache per remote and illumos's
/// overlay_mux a conn_t whose transmit attributes hold the IRE and NCE. It is valid while the
/// stack's path generation (IpStack.PathGeneration) is the one it was filled under: the stack
/// bumps it whenever a route, an address, an interface, its MTU or an ARP entry changes, so the next
/// datagram after any of those takes the full path again and refills the cache. The interface's
/// MTU is read per datagram, and the route's use count and lifetime are honoured as on the full
/// path, so counters and pcaps are the same whether or not a datagram hit the cache. A checksum-less
/// datagram over a valid cache (the VXLAN socket's) has its UDP, IPv4 and Ethernet headers written
/// in one go (IpStack.TrySendUdpCached), with the same bytes and counters as the layered path.
/// </summary>
internal sealed class PathCacheV4
{
    private IpAddress _destination;
    private IpInterface? _interface;
    private RouteEntry? _route;
    private IpAddress _nextHop;
    private MacAddress _mac;
    private int _generation = -1;

    /// <summary>Datagrams that used the cache, and those that took the full path.</summary>
    public long Hits, Misses;

    /// <summary>The cached path to <paramref name="destination"/>, when still valid; counts the
    /// route's use as TryRoute does.</summary>
    public bool TryUse(IpStack stack, IpAddress destination, out IpInterface ifc, out IpAddress nextHop, out MacAddress mac)
    {
        nextHop = default;
        mac = default;
        ifc = Peek(stack, destination)!;
        if (ifc == null)
        {
            Misses++;
            return false;
        }
        nextHop = _nextHop;
        mac = UsePeeked();
        return true;
    }

    /// <summary>The cached path's interface when the cache is valid for <paramref name="destination"/>,
    /// without counting anything (a sender that goes on calls TryUse); null otherwise.</summary>
    public IpInterface? Peek(IpStack stack, IpAddress destination)
        => _generation == stack.PathGeneration && _destination == destination && _route is { } r && r.Expires > stack.Scheduler.Now ? _interface : null;

    /// <summary>Counts a use of the path <see cref="Peek"/> has just returned (the route's use and a
    /// hit, as <see cref="TryUse"/> does) and gives its link-layer address, without checking it again:
    /// the caller has changed nothing since Peek.</summary>
    public MacAddress UsePeeked()
    {
        _route!.Use++;
        Hits++;
        return _mac;
    }

    /// <summary>Remembers a unicast path the full lookup found, when its next hop is resolved.</summary>
    public void Fill(IpStack stack, IpAddress destination, IpInterface ifc, IpAddress nextHop, RouteEntry? route, MacAddress mac)
    {
        _destination = destination;
        _interface = ifc;
        _nextHop = nextHop;
        _route = route;
        _mac = mac;
        _generation = stack.PathGeneration;
    }
}
