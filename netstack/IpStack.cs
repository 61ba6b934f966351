/*
 * SmartOS.Netstack: one TCP/IP stack per zone.
 *
 * An IpStack is the network layer of one zone (illumos: one ip_stack_t per netstack). It plumbs IP
 * interfaces on MAC clients, holds their addresses, neighbour caches and routes, and carries
 * datagrams between the links and the transports. UDP, ICMP, ARP, NDP and DHCP live here; TCP is a
 * separate transport (namespace SmartOS.Netstack.Tcp) that plugs in through IIpLayer/ITransport
 * (IpLayer.cs) with RegisterTransport(IpProtocol.Tcp, ...).
 *
 * Glossary
 *   interface   an IpInterface: a MAC client plus IP state (ipadm create-if), or the loopback lo0.
 *   address     an IpAddressObject: "net0/v4", static, dhcp or addrconf, with a prefix length and a
 *               state (tentative while duplicate address detection runs, ok, duplicate).
 *   route       a RouteEntry: destination/prefix, then either an interface (connected) or a gateway
 *               that a connected route reaches. Lookup is longest prefix first, then the default.
 *   neighbour   an ARP (IPv4) or NDP (IPv6) cache entry per interface: incomplete (packets wait in
 *               a bounded queue while we solicit), reachable (until a timeout), or permanent.
 *   transport   an ITransport registered by protocol number; UDP is built in, and every stack
 *               creates and registers its TCP (Tcp, a TcpProtocol) the same way any transport plugs in.
 *
 * Data path
 *   receive:    MacClient -> Receive (IMacReceiver): queue on the stack's receive ring -> Drain
 *               (a zero-delay event) -> Ethernet demux -> ARP | IPv4 | IPv6 -> local delivery
 *               (reassembly, ICMP, transports) or forwarding (TTL, route, fragmentation).
 *   transmit:   transport -> Send -> route lookup -> IP header -> fragmentation -> neighbour
 *               resolution (or the pending queue) -> Ethernet header -> MacClient.Transmit. A
 *               kernel consumer's in-place send (the overlay's VXLAN socket) may skip the route
 *               and neighbour lookups through its PathCacheV4 (PathCache.cs), valid while
 *               PathGeneration is unchanged.
 *
 * Rules
 *   1. Received frames are processed from the stack's own event (Drain), never inside another
 *      component's call: a transmit on an etherstub delivers synchronously, and without the ring a
 *      reply could re-enter the stack in the middle of a send. One exception, early demux: a
 *      unicast IPv4 UDP datagram for a port whose kernel consumer takes packets (the overlay's
 *      VXLAN socket, UdpSocket.PacketUpcall, as illumos's overlay_mux is a ksocket callback) is
 *      processed at once when the ring is empty and the stack is not transmitting, so it cannot
 *      overtake a queued frame nor re-enter a send; the full receive path still checks it. The
 *      common such datagram (no IP options, no UDP checksum: VXLAN's, RFC 7348 section 5) is checked
 *      in one pass (TryDeliverUdpEarly: the same checks and counters, no second parse, the header
 *      checksum summed as five 32-bit words in a register), and the
 *      local address and port it goes to are found by last-hit caches (the address's _lastLocal
 *      and the port's, each cleared when its table changes); with ip:::receive or
 *      udp:::receive enabled, or anything unusual, it takes the full path.
 *   2. Nothing on the receive path throws on malformed input. Every frame that is not delivered or
 *      forwarded increments a counter that says why (Counters.cs, kstat modules ip, udp, icmp).
 *   3. Every queue and table is bounded: the receive ring, neighbour caches and their pending
 *      queues, reassembly (entries, bytes and time), socket receive queues, the PMTU cache.
 *   4. Time is Scheduler.Now and KTimers; randomness is HostRandom (Kernel.cs rule 1).
 *   5. The steady-state data path allocates nothing: pooled packets travel by ownership
 *      (Kernel.cs rule 3); headers are built in the packet's headroom; lookups are loops over
 *      small arrays or dictionaries keyed by value types.
 *   6. After local delivery the network header is still in the bytes in front of packet.Offset, so
 *      a transport's "port unreachable" can quote it (SendPortUnreachable).
 *   7. Headers are read and written only through kernel/Wire's views and representations
 *      (Ipv4Repr, Ipv6Repr, UdpRepr, IcmpV4Repr, IcmpV6Repr, TcpRepr; smoltcp's wire module): no
 *      byte offsets here. A Repr's refusal (WireError) is what rule 2 counts: Truncated and
 *      Malformed as header errors, BadChecksum as checksum errors, Unrecognized as unknown.
 *
 * Files
 *   IpStack.cs            interfaces, addresses, the receive ring and Ethernet demux/transmit
 *   IpStack.Ipv4.cs       IPv4 receive, delivery, forwarding, output
 *   IpStack.Ipv6.cs       addrconf's configuration, IPv6 receive (extension headers), forwarding, output
 *   IpStack.Fragments.cs  fragmentation and reassembly, both families
 *   IpStack.Icmp.cs       ICMP and ICMPv6: echo, errors received and sent, the error rate limit
 *   IpStack.Ndp.cs        neighbour and router discovery, SLAAC from router advertisements
 *   IpStack.Arp.cs        ARP, the neighbour tables' API, duplicate address detection timers
 *   IpStack.Routes.cs     routes and the path MTU cache
 *
 * Using it
 *   var ip = new IpStack("zone1", scheduler, pool, random, kstats, zoneId);
 *   ip.CreateInterface("net0", vnic.OpenClient("ip")!);         // ipadm create-if
 *   ip.AddAddress("net0/v4", addr, 24, out var a);             // then a.Ready (DAD, ~0.6 s)
 *   ip.AddRoute(IpAddress.AnyV4, 0, gateway);                  // route add default
 *   var l = new TcpListener(ip.Tcp); l.Listen(IpAddress.AnyV4, 80); // TCP is registered already
 *   var u = ip.OpenUdpSocket(); u.Bind(...); await u.ReceiveFromAsync(buffer);
 * DadTransmits = 0 before adding addresses makes them usable at once (tests of other layers).
 *
 * IPv6 fragments what it originates beyond the path MTU (RFC 8200 4.5; routers answer Packet Too
 * Big) and reassembles with IPv4's bounds, abandoning a datagram whose fragments overlap (RFC 5722)
 * and taking an atomic fragment as the datagram itself (RFC 6946).
 *
 * Not done yet: IPv6 forwarding of multicast, ICMP redirects, IP multicast group membership
 * (IGMP/MLD), IPsec, and a reassembled datagram larger than the pool's large buffers (9 KiB,
 * counted in ipReasmFails / ipv6ReasmFails).
 */
using SmartOS.Kernel;
using SmartOS.Kernel.Wire;
using SmartOS.Netstack.Tcp;
using SmartOS.Vnic;

namespace SmartOS.Netstack;

/// <summary>The IP stack of one zone (see the theory statement above).</summary>
public sealed partial class IpStack : IIpLayer, IMacReceiver
{
    /// <summary>Receive ring entries; past this, frames are dropped and counted (rule 3).</summary>
    public const int ReceiveRingSize = 4096;
    /// <summary>The ring a stack starts with. It doubles when full, up to ReceiveRingSize, so an idle
    /// zone's stack holds 2 x 16 references, not 2 x 4096 (64 KiB: most of an idle zone's memory
    /// before, tests/SmartOS.Benchmarks zones); a busy one grows once and keeps its ring.</summary>
    internal const int InitialRingSize = 16;
    private const int DrainBudget = 256;

    private readonly List<IpInterface> _interfaces = [];
    private readonly List<IpAddressObject> _addresses = [];
    private readonly Dictionary<IpAddress, IpAddressObject> _local = new();
    // The last address found in _local on receive (IsForUsV4/V6): a stream of datagrams to one
    // address is one compare instead of a hash of the address per frame. Cleared whenever _local
    // changes; the object's state (IsUsable) is read afresh each time.
    private IpAddressObject? _lastLocal;
    private readonly ITransport?[] _transports = new ITransport?[256];
    private Packet?[] _ring = new Packet?[InitialRingSize];
    private IpInterface?[] _ringIf = new IpInterface?[InitialRingSize];
    private int _ringHead, _ringCount;
    private int _transmitting;
    private readonly KTimer _drainTimer;
    private readonly List<Kstat> _kstats = [];
    private readonly KstatRegistry? _kstatRegistry;
    private int _nextIfIndex = 1;
    private ushort _ipId;

    /// <summary>The account the stack's memory is charged to (a zone's capped-memory), or null when
    /// uncapped: TCP state and buffers, queued UDP datagrams and IP reassembly buffers.</summary>
    public ITcpMemoryAccount? Memory { get; }

    /// <summary>Charges a buffer held on behalf of the zone; false when the cap refuses it.</summary>
    internal bool TryCharge(Packet p) => Memory == null || Memory.TryCharge(p.Buffer.Length);

    internal void Uncharge(Packet p) => Memory?.Release(p.Buffer.Length);

    /// <summary>Takes a charged packet off a waiting queue and releases its charge.</summary>
    internal Packet Unqueue(Queue<Packet> queue)
    {
        var p = queue.Dequeue();
        Uncharge(p);
        return p;
    }

    public IpStack(string name, Scheduler scheduler, PacketPool pool, HostRandom random, KstatRegistry? kstats = null, int instance = 0,
        TcpConfig? tcpConfig = null, ITcpMemoryAccount? tcpMemory = null)
    {
        Name = name;
        Scheduler = scheduler;
        Pool = pool;
        Random = random;
        Instance = instance;
        _drainTimer = new KTimer(scheduler, static s => ((IpStack)s!).Drain(), this);
        _ipId = (ushort)random.NextUInt32();
        Udp = new UdpLayer(this);
        _transports[IpProtocol.Udp] = Udp;
        Memory = tcpMemory;
        Tcp = new TcpProtocol(this, tcpConfig, tcpMemory);
        _transports[IpProtocol.Tcp] = Tcp;
        Loopback = new IpInterface(this, "lo0", null, _nextIfIndex++);
        _interfaces.Add(Loopback);
        AddAddressCore(Loopback, "lo0/v4", IpAddress.V4(0x7F000001), 8, AddressType.Static, dad: false);
        AddAddressCore(Loopback, "lo0/v6", IpAddress.V6(0, 1), 128, AddressType.Static, dad: false);
        _kstatRegistry = kstats;
        if (kstats != null)
        {
            _kstats.Add(kstats.Add("ip", instance, "ip", "mib2", Counters));
            _kstats.Add(kstats.Add("ip", instance, "ip6", "mib2", Counters6));
            _kstats.Add(kstats.Add("ip", instance, "arp", "net", ArpStats));
            _kstats.Add(kstats.Add("icmp", instance, "icmp", "mib2", Icmp));
            _kstats.Add(kstats.Add("icmp", instance, "icmp6", "mib2", Icmp6));
            _kstats.Add(kstats.Add("udp", instance, "udp", "mib2", UdpStats));
            _kstats.Add(kstats.Add("tcp", instance, "tcp", "mib2", Tcp.Stats));
            foreach (var k in _kstats) k.Zone = name;
        }
    }

    /// <summary>The zone the stack belongs to.</summary>
    public string Name { get; }
    public int Instance { get; }
    public Scheduler Scheduler { get; }
    public HostRandom Random { get; }
    public PacketPool Pool { get; }
    public IpInterface Loopback { get; }

    public IpCounters Counters { get; } = new();
    public Ip6Counters Counters6 { get; } = new();
    public ArpCounters ArpStats { get; } = new();
    public IcmpCounters Icmp { get; } = new();
    public IcmpCounters Icmp6 { get; } = new();
    public UdpCounters UdpStats { get; } = new();
    internal UdpLayer Udp { get; }

    /// <summary>The stack's TCP, registered for IpProtocol.Tcp at construction. Sockets:
    /// new TcpSocket(stack.Tcp), new TcpListener(stack.Tcp).</summary>
    public TcpProtocol Tcp { get; }

    /// <summary>Link (14) plus the larger IP header (IPv6, 40): what a transport leaves in front.</summary>
    public int HeaderRoom => EthernetView.HeaderLength + Ipv6View.HeaderLength;

    /// <summary>TCP leaves its checksum to the MAC layer (IIpLayer.ChecksumOffload): filled in where a
    /// frame leaves the host or is captured, never computed for a stack of the same host.</summary>
    public bool ChecksumOffload => true;

    /// <summary>Frames from another stack of this host may come with their checksum pending.</summary>
    public bool AcceptsPendingChecksum => true;

    /// <summary>Large TCP segments from a TAP's GSO frames come whole (MacLayer.cs rule 9): TCP takes
    /// any size, and forwarding keeps the mark so the MAC layer cuts them for the next link.</summary>
    public bool AcceptsLargeReceive => true;

    /// <summary>IPv4 forwarding (ipadm set-prop -p forwarding=on ipv4).</summary>
    public bool ForwardingV4 { get; set; }
    /// <summary>IPv6 forwarding (ipadm set-prop -p forwarding=on ipv6).</summary>
    public bool ForwardingV6 { get; set; }
    /// <summary>Default TTL / hop limit of datagrams this stack originates (ipadm ttl / hoplimit).</summary>
    public byte DefaultTtl { get; set; } = 255;
    /// <summary>Duplicate address detection probes per address (0 turns DAD off, as dupaddrdetect_transmits).</summary>
    public int DadTransmits { get; set; } = 1;

    public IReadOnlyList<IpInterface> Interfaces => _interfaces;
    public IReadOnlyList<IpAddressObject> Addresses => _addresses;

    /// <summary>Resets every TCP connection (pending calls fail with ECONNABORTED), unregisters the
    /// stack's kstats and closes its MAC clients (zone halt).</summary>
    public void Shutdown()
    {
        Tcp.AbortAll();
        if (_kstatRegistry != null) foreach (var k in _kstats) _kstatRegistry.Remove(k);
        _kstats.Clear();
        for (int i = _interfaces.Count - 1; i >= 0; i--)
            if (!_interfaces[i].IsLoopback) DeleteInterface(_interfaces[i].Name);
    }

    // ---- transports -----------------------------------------------------------------------------

    /// <summary>Registers the transport for an IP protocol number (TCP: IpProtocol.Tcp). Segments for
    /// it are delivered to ITransport.Receive; ICMP errors quoting it to ReceiveError. A transport
    /// that implements ISocketLister has its sockets listed by netstat -an.</summary>
    public void RegisterTransport(byte protocol, ITransport transport)
    {
        if (protocol is IpProtocol.Icmp or IpProtocol.Icmpv6 or IpProtocol.Udp)
            throw new ArgumentException("protocol " + protocol + " is built into the stack", nameof(protocol));
        _transports[protocol] = transport;
    }

    public void UnregisterTransport(byte protocol)
    {
        if (protocol != IpProtocol.Udp) _transports[protocol] = null;
    }

    public ITransport? GetTransport(byte protocol) => _transports[protocol];

    /// <summary>Every socket of every transport (netstat -an).</summary>
    public void ListSockets(List<TransportSocketInfo> into)
    {
        for (int i = 0; i < _transports.Length; i++)
            if (_transports[i] is ISocketLister l) l.ListSockets(into);
    }

    // ---- interfaces -----------------------------------------------------------------------------

    public IpInterface? FindInterface(string name)
    {
        foreach (var i in _interfaces) if (i.Name == name) return i;
        return null;
    }

    /// <summary>ipadm create-if: plumbs IPv4 and IPv6 on a MAC client. The stack becomes its receiver.</summary>
    public IpStatus CreateInterface(string name, MacClient client)
    {
        if (FindInterface(name) != null) return IpadmStatus.IfExists;
        foreach (var i in _interfaces)
            if (i.Client == client) return IpadmStatus.IfExists;
        var ifc = new IpInterface(this, name, client, _nextIfIndex++);
        _interfaces.Add(ifc);
        client.Receiver = this;
        return IpStatus.Ok;
    }

    /// <summary>ipadm delete-if: removes the interface's addresses and routes and closes its MAC client.</summary>
    public IpStatus DeleteInterface(string name)
    {
        var ifc = FindInterface(name);
        if (ifc == null || ifc.IsLoopback) return IpadmStatus.Enxio;
        for (int i = _addresses.Count - 1; i >= 0; i--)
            if (_addresses[i].Interface == ifc) RemoveAddressCore(_addresses[i]);
        StopDhcp(ifc);
        _routes4.RemoveAll(r => r.Interface == ifc);
        _routes6.RemoveAll(r => r.Interface == ifc);
        ifc.Arp.Clear();
        ifc.Ndp.Clear();
        ifc.RouterTimer?.Cancel();
        ifc.SolicitTimer?.Cancel();
        _interfaces.Remove(ifc);
        InvalidatePaths();
        for (int i = 0; i < _ringIf.Length; i++) if (_ringIf[i] == ifc) _ringIf[i] = null;
        ifc.Client!.Close();
        return IpStatus.Ok;
    }

    /// <summary>Lowers (or restores with 0) an interface's IP MTU (ipadm set-ifprop -p mtu).</summary>
    public IpStatus SetInterfaceMtu(string name, int mtu)
    {
        var ifc = FindInterface(name);
        if (ifc == null) return IpadmStatus.Enxio;
        if (mtu != 0 && (mtu < 68 || (ifc.Client != null && mtu > ifc.Client.Mtu))) return IpadmStatus.InvalidArg;
        ifc._mtuOverride = mtu;
        InvalidatePaths();
        return IpStatus.Ok;
    }

    // ---- addresses ------------------------------------------------------------------------------

    public IpAddressObject? FindAddressObject(string name)
    {
        foreach (var a in _addresses) if (a.Name == name) return a;
        return null;
    }

    /// <summary>The usable address object holding an address, if it is one of ours.</summary>
    public IpAddressObject? FindLocal(IpAddress address) => _local.TryGetValue(address, out var a) ? a : null;

    public bool IsLocalAddress(IpAddress address) => LookupLocal(address) is { IsUsable: true };

    /// <summary>The address object that holds <paramref name="address"/> in _local, through the
    /// one-entry hint (_lastLocal): the receive path's destination and the VXLAN socket's source
    /// are looked up per datagram.</summary>
    private IpAddressObject? LookupLocal(IpAddress address)
    {
        var last = _lastLocal;
        if (last != null && last.Address == address) return last;
        if (!_local.TryGetValue(address, out var a)) return null;
        _lastLocal = a;
        return a;
    }

    /// <summary>
    /// ipadm create-addr -T static: adds an address to an interface ("net0/v4" or "net0" to pick a
    /// name). Duplicate address detection starts; the object's Ready task ends it. A connected route
    /// for the prefix is added when the address becomes usable.
    /// </summary>
    public IpStatus AddAddress(string addrObj, IpAddress address, int prefixLength, out IpAddressObject? result)
    {
        result = null;
        if (!TrySplitAddrObj(addrObj, address.IsV4, out string ifName, out string name)) return IpadmStatus.InvalidArg;
        var ifc = FindInterface(ifName);
        if (ifc == null) return IpadmStatus.Enxio;
        if (FindAddressObject(name) != null) return IpadmStatus.AddrObjExists;
        if (prefixLength < 0 || prefixLength > (address.IsV4 ? 32 : 128)) return IpadmStatus.InvalidArg;
        if (address.IsUnspecified || address.IsMulticast || address == IpAddress.BroadcastV4) return IpadmStatus.BadAddr;
        if (_local.ContainsKey(address)) return IpadmStatus.AddrInUse;
        result = AddAddressCore(ifc, name, address, prefixLength, AddressType.Static, dad: !ifc.IsLoopback && DadTransmits > 0);
        return IpStatus.Ok;
    }

    /// <summary>"net0/v4" stays; "net0" gets the next free "net0/v4", "net0/v4a", ... as ipadm does.</summary>
    private bool TrySplitAddrObj(string addrObj, bool v4, out string ifName, out string name)
    {
        int slash = addrObj.IndexOf('/');
        if (slash < 0)
        {
            ifName = addrObj;
            string baseName = addrObj + (v4 ? "/v4" : "/v6");
            name = baseName;
            for (char c = 'a'; FindAddressObject(name) != null && c <= 'z'; c++) name = baseName + c;
            return addrObj.Length > 0;
        }
        ifName = addrObj[..slash];
        name = addrObj;
        string tail = addrObj[(slash + 1)..];
        if (ifName.Length == 0 || tail.Length == 0 || tail.Length > 32) return false;
        foreach (char c in tail) if (!char.IsAsciiLetterOrDigit(c) && c != '_') return false;
        return char.IsAsciiLetter(tail[0]);
    }

    internal IpAddressObject AddAddressCore(IpInterface ifc, string name, IpAddress address, int prefixLength, AddressType type, bool dad)
    {
        var a = new IpAddressObject(name, ifc, address, prefixLength, type);
        _addresses.Add(a);
        _local[address] = a;
        _lastLocal = null;
        InvalidatePaths();
        a.Timer = new KTimer(Scheduler, static s => { var o = (IpAddressObject)s!; o.Interface.Stack.AddressTimer(o); }, a);
        if (dad)
        {
            a.State = AddressState.Tentative;
            a.DadProbesLeft = address.IsV4 ? ArpProbeCount : DadTransmits;
            a.Timer.ArmAfter(0);
        }
        else MarkUsable(a);
        return a;
    }

    /// <summary>DAD passed (or was skipped): the address is usable, its connected route exists, neighbours hear of it.</summary>
    private void MarkUsable(IpAddressObject a)
    {
        a.State = AddressState.Ok;
        InvalidatePaths();
        var ifc = a.Interface;
        if (!ifc.IsLoopback)
        {
            var net = Network(a.Address, a.PrefixLength);
            var routes = a.Address.IsV4 ? _routes4 : _routes6;
            bool exists = false;
            foreach (var r in routes)
                if (r.Interface == ifc && r.PrefixLength == a.PrefixLength && r.Destination == net && (r.Flags & RouteFlags.Gateway) == 0) exists = true;
            if (!exists)
                InsertRoute(new RouteEntry(net, a.PrefixLength, a.Address, ifc, RouteFlags.Up | (a.PrefixLength == (a.Address.IsV4 ? 32 : 128) ? RouteFlags.Host : 0)) { Owner = a });
            if (a.Address.IsV4) SendGratuitousArp(a);
            else SendUnsolicitedNa(a);
        }
        if (a.Expires != long.MaxValue) a.Timer!.ArmAt(a.Expires);
        a._ready.TrySetResult(IpStatus.Ok);
    }

    internal void MarkDuplicate(IpAddressObject a)
    {
        if (a.State == AddressState.Duplicate) return;
        bool wasUsable = a.IsUsable;
        a.State = AddressState.Duplicate;
        InvalidatePaths();
        a.Timer?.Cancel();
        if (wasUsable) RemoveConnectedRoute(a);
        a._ready.TrySetResult(IpadmStatus.DadFound);
    }

    private void AddressTimerFired(IpAddressObject a)
    {
        // Lifetime ended (SLAAC valid lifetime, DHCP lease without renewal).
        if (a.Expires <= Scheduler.Now) RemoveAddressCore(a);
    }

    internal void SetExpiry(IpAddressObject a, long expires)
    {
        a.Expires = expires;
        if (a.State != AddressState.Ok || a.Timer == null) return;
        if (expires == long.MaxValue) a.Timer.Cancel();
        else a.Timer.ArmAt(expires);
    }

    /// <summary>ipadm delete-addr: removes the address object (all addresses of an addrconf object).</summary>
    public IpStatus DeleteAddress(string addrObj)
    {
        bool found = false;
        for (int i = _addresses.Count - 1; i >= 0; i--)
        {
            var a = _addresses[i];
            if (a.Name != addrObj) continue;
            if (a.Interface.IsLoopback) return IpadmStatus.IfInUse;
            found = true;
            if (a.Type == AddressType.Dhcp) StopDhcp(a.Interface);
            if (a.Type == AddressType.Addrconf) a.Interface.Addrconf = false;
            RemoveAddressCore(a);
        }
        if (!found)
        {
            // A DHCP client still discovering has no address yet but owns the name.
            foreach (var ifc in _interfaces)
                if (_dhcp.TryGetValue(ifc, out var c) && c.AddrObjName == addrObj) { StopDhcp(ifc); return IpStatus.Ok; }
            return IpadmStatus.NotFound;
        }
        return IpStatus.Ok;
    }

    internal void RemoveAddressCore(IpAddressObject a)
    {
        if (a.Removed) return;
        a.Removed = true;
        a.Timer?.Cancel();
        _addresses.Remove(a);
        if (_local.TryGetValue(a.Address, out var cur) && cur == a) _local.Remove(a.Address);
        _lastLocal = null;
        RemoveConnectedRoute(a);
        InvalidatePaths();
        a._ready.TrySetResult(IpadmStatus.NotFound);
    }

    private void RemoveConnectedRoute(IpAddressObject a)
    {
        var routes = a.Address.IsV4 ? _routes4 : _routes6;
        for (int i = routes.Count - 1; i >= 0; i--)
        {
            if (routes[i].Owner != a) continue;
            // Hand the route to another address on the same subnet and interface, if there is one.
            IpAddressObject? heir = null;
            foreach (var o in _addresses)
                if (o != a && o.Interface == a.Interface && o.IsUsable && o.PrefixLength == a.PrefixLength && o.Address.InPrefix(a.Address, a.PrefixLength)) heir = o;
            if (heir != null) routes[i].Owner = heir;
            else routes.RemoveAt(i);
        }
    }

    internal static IpAddress Network(IpAddress a, int prefix)
    {
        if (a.IsV4) return IpAddress.V4(prefix <= 0 ? 0 : a.V4Raw & ~(prefix >= 32 ? 0u : 0xFFFFFFFFu >> prefix));
        ulong hm = prefix <= 0 ? 0 : prefix >= 64 ? ulong.MaxValue : ~(ulong.MaxValue >> prefix);
        ulong lm = prefix <= 64 ? 0 : prefix >= 128 ? ulong.MaxValue : ~(ulong.MaxValue >> (prefix - 64));
        return IpAddress.V6(a.High & hm, a.Low & lm);
    }

    /// <summary>The preferred usable address of a family on an interface (link-local last for IPv6 globals).</summary>
    internal IpAddressObject? InterfaceAddress(IpInterface ifc, bool v4, bool preferGlobal = true, IpAddress toward = default)
    {
        IpAddressObject? best = null;
        foreach (var a in _addresses)
        {
            if (a.Interface != ifc || a.Address.IsV4 != v4 || !a.IsUsable) continue;
            if (best == null) { best = a; continue; }
            if (!toward.IsUnspecified && a.Address.InPrefix(toward, a.PrefixLength) && !best.Address.InPrefix(toward, best.PrefixLength)) { best = a; continue; }
            if (!v4 && preferGlobal && best.Address.IsLinkLocalV6 && !a.Address.IsLinkLocalV6) best = a;
        }
        return best;
    }

    // ---- IIpLayer -------------------------------------------------------------------------------

    public bool TrySelectSource(IpAddress destination, out IpAddress source)
    {
        source = default;
        if (IsLocalAddress(destination)) { source = destination; return true; }
        if (destination.IsLoopback) { source = destination.IsV4 ? IpAddress.V4(0x7F000001) : IpAddress.V6(0, 1); return true; }
        if (!TryRoute(destination, out var ifc, out _, out _, countUse: false)) return false;
        var a = InterfaceAddress(ifc, destination.IsV4, preferGlobal: !destination.IsLinkLocalV6, toward: destination);
        if (a == null) return false;
        source = a.Address;
        return true;
    }

    public int PathMtu(IpAddress destination)
    {
        if (IsLocalAddress(destination) || destination.IsLoopback) return Loopback.Mtu;
        if (!TryRoute(destination, out var ifc, out _, out _, countUse: false)) return destination.IsV4 ? 576 : 1280;
        int mtu = ifc.Mtu;
        if (_pmtu.TryGetValue(destination, out var e) && e.Expires > Scheduler.Now && e.Mtu < mtu) mtu = e.Mtu;
        return mtu;
    }

    public int LsoMax(IpAddress destination)
    {
        if (IsLocalAddress(destination) || destination.IsLoopback) return 0;
        if (!TryRoute(destination, out var ifc, out _, out _, countUse: false)) return 0;
        return ifc.Client?.LsoMax ?? 0;
    }

    public bool OnLink(IpAddress destination)
    {
        if (IsLocalAddress(destination) || destination.IsLoopback) return true;
        return TryRoute(destination, out _, out var nextHop, out _, countUse: false) && nextHop == destination;
    }

    bool IIpLayer.Send(Packet packet, IpAddress source, IpAddress destination, byte protocol, PathCacheV4 path)
    {
        if (destination.IsV4)
            return SendV4(packet, source, destination, protocol, DefaultTtl, dontFragment: protocol == IpProtocol.Tcp, null, path: path);
        return SendV6(packet, source, destination, protocol, DefaultTtl, null);
    }

    public bool Send(Packet packet, IpAddress source, IpAddress destination, byte protocol)
    {
        if (destination.IsV4)
            return SendV4(packet, source, destination, protocol, DefaultTtl, dontFragment: protocol == IpProtocol.Tcp, null);
        return SendV6(packet, source, destination, protocol, DefaultTtl, null);
    }

    // ---- receive ring (rule 1) ------------------------------------------------------------------

    /// <summary>IMacReceiver: a frame from one of our MAC clients. Queued; processed by Drain.</summary>
    public void Receive(MacClient client, Packet packet)
    {
        IpInterface? ifc = null;
        foreach (var i in _interfaces) if (i.Client == client) { ifc = i; break; }
        if (ifc == null) { Counters.ipInDiscards++; packet.Free(); return; }
        if (_ringCount == 0 && _transmitting == 0 && Udp.PacketUpcalls > 0 && IsEarlyDemux(ifc, packet))
        {
            ifc.InPackets++; // as Drain counts it
            // ReceiveFrame's checks (an untagged IPv4 frame to the interface's MAC) are IsEarlyDemux's.
            if (!TryDeliverUdpEarly(ifc, packet)) ReceiveIpv4(ifc, packet);
            return;
        }
        Enqueue(ifc, packet);
    }

    /// <summary>Rule 1's exception: an untagged IPv4 frame to the interface's own MAC, not a fragment,
    /// carrying UDP to a port whose consumer takes packets. Only peeks; ReceiveFrame checks it all.</summary>
    private bool IsEarlyDemux(IpInterface ifc, Packet p)
    {
        var data = p.Data;
        if (!EthernetView.TryCreate(data, out var eth) || eth.IsTagged || eth.EtherType != EtherType.Ipv4 || eth.Destination != ifc.MacAddress) return false;
        var l3 = data[EthernetView.HeaderLength..];
        if (!Ipv4View.TryCreateHeader(l3, out var ip) || ip.Protocol != IpProtocol.Udp || ip.IsFragment || l3.Length < ip.HeaderLength) return false;
        return UdpView.TryCreateHeader(l3[ip.HeaderLength..], out var udp) && Udp.HasPacketUpcall(udp.DestinationPort);
    }

    /// <summary>Queues a frame as if it came from an interface (tests, loopback). Consumes it.</summary>
    public void Inject(IpInterface ifc, Packet packet) => Enqueue(ifc, packet);

    private void Enqueue(IpInterface ifc, Packet packet)
    {
        if (_ringCount == _ring.Length && !GrowRing())
        {
            Counters.rxQueueOverflow++;
            ifc.InErrors++;
            packet.Free();
            return;
        }
        int tail = (_ringHead + _ringCount) & (_ring.Length - 1); // a power of two (InitialRingSize, doubled)
        _ring[tail] = packet;
        _ringIf[tail] = ifc;
        _ringCount++;
        if (!_drainTimer.IsArmed) _drainTimer.ArmAfter(0);
    }

    /// <summary>Doubles a full ring, oldest entry first; false at ReceiveRingSize.</summary>
    private bool GrowRing()
    {
        if (_ring.Length >= ReceiveRingSize) return false;
        var ring = new Packet?[_ring.Length * 2];
        var ringIf = new IpInterface?[ring.Length];
        for (int i = 0; i < _ringCount; i++)
        {
            int from = (_ringHead + i) & (_ring.Length - 1);
            ring[i] = _ring[from];
            ringIf[i] = _ringIf[from];
        }
        _ring = ring;
        _ringIf = ringIf;
        _ringHead = 0;
        return true;
    }

    private void Drain()
    {
        int budget = DrainBudget;
        while (_ringCount > 0 && budget-- > 0)
        {
            var p = _ring[_ringHead]!;
            var ifc = _ringIf[_ringHead];
            _ring[_ringHead] = null;
            _ringIf[_ringHead] = null;
            _ringHead = (_ringHead + 1) & (_ring.Length - 1);
            _ringCount--;
            if (ifc == null) { Counters.ipInDiscards++; p.Free(); continue; }
            ifc.InPackets++;
            ReceiveFrame(ifc, p);
        }
        // Let other events (timers, other stacks) run between batches.
        if (_ringCount > 0) _drainTimer.ArmAfter(0);
    }

    private void ReceiveFrame(IpInterface ifc, Packet p)
    {
        if (!EthernetView.TryCreate(p.Data, out var eth) || eth.IsTagged)
        {
            Counters.etherShort++;
            p.Free();
            return;
        }
        ushort type = eth.EtherType;
        var dst = eth.Destination;
        if (!dst.IsGroup && dst != ifc.MacAddress && !ifc.IsLoopback)
        {
            // Not for us (the switch would not send it; a tap or a test might).
            Counters.ipInAddrErrors++;
            p.Free();
            return;
        }
        switch (type)
        {
            case EtherType.Arp: ReceiveArp(ifc, p); break;
            case EtherType.Ipv4: ReceiveIpv4(ifc, p); break;
            case EtherType.Ipv6: ReceiveIpv6(ifc, p); break;
            default:
                Counters.etherUnknownType++;
                p.Free();
                break;
        }
    }

    internal ushort NextIpId() => _ipId++;

    /// <summary>Whether a large TCP segment received whole (Packet.LsoMss, MacLayer.cs rule 9) may be
    /// forwarded as it is: its MSS segments, with their IP header of <paramref name="ipHeader"/>
    /// bytes and its TCP header, fit <paramref name="mtu"/>; the MAC layer cuts it for the next link.</summary>
    private static bool LargeSegmentsFit(Packet p, int ipHeader, int mtu)
    {
        if (p.LsoMss == 0 || p.Length < ipHeader + TcpView.MinHeaderLength) return false;
        int tcpHeader = (p.Data[ipHeader + 12] >> 4) * 4;
        return ipHeader + tcpHeader + p.LsoMss <= mtu;
    }

    /// <summary>Prepends an Ethernet header and transmits on the interface's MAC client. Consumes the packet.</summary>
    internal void TransmitFrame(IpInterface ifc, Packet p, MacAddress dst, ushort etherType)
    {
        if (!p.TryPrepend(EthernetView.HeaderLength))
        {
            Counters.noBuffers++;
            p.Free();
            return;
        }
        if (ifc.IsLoopback)
        {
            EthernetView.WriteHeader(p.Data, MacAddress.Zero, MacAddress.Zero, etherType);
            Counters.ipLoopback++;
            Enqueue(ifc, p);
            return;
        }
        EthernetView.WriteHeader(p.Data, dst, ifc.MacAddress, etherType);
        ifc.OutPackets++;
        _transmitting++; // rule 1: no early demux while a frame of ours may come back synchronously
        ifc.Client!.Transmit(p);
        _transmitting--;
    }
}
