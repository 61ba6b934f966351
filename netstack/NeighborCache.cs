using SmartOS.Kernel;
using SmartOS.Kernel.Wire;

namespace SmartOS.Netstack;

/// <summary>arp -a FLAGS and NDP states, reduced to what this stack tracks.</summary>
public enum NeighborState { Incomplete, Reachable, Permanent }

/// <summary>A neighbour cache row for arp -a / netstat -p.</summary>
public readonly record struct NeighborInfo(string Interface, IpAddress Address, MacAddress Mac, NeighborState State, bool IsLocal, long Expires);

/// <summary>
/// One entry of an ARP or NDP cache (IpStack.cs, "neighbour"). An incomplete entry holds the
/// packets waiting for resolution, bounded by <see cref="NeighborCache.PendingLimit"/>.
/// </summary>
internal sealed class Neighbor
{
    public IpAddress Address;
    public MacAddress Mac;
    public NeighborState State;
    public long Expires;
    public int Solicits;
    public readonly Queue<Packet> Pending = new();
    public KTimer Timer = null!;
    public NeighborCache Cache = null!;
}

/// <summary>
/// The ARP (IPv4) or NDP (IPv6) cache of one interface. Resolution: the first packet to an unknown
/// neighbour creates an incomplete entry and a solicitation; up to <see cref="MaxSolicits"/>
/// solicitations one second apart (RFC 1122 2.3.2.1 flood limit; RFC 4861 MAX_MULTICAST_SOLICIT),
/// then the pending packets are dropped and counted. Reachable entries expire after
/// <see cref="ReachableTime"/> and are resolved again on next use. At <see cref="Limit"/> entries
/// the one closest to expiry is evicted (rule 3).
/// </summary>
internal sealed class NeighborCache
{
    public const int Limit = 512;
    public const int PendingLimit = 64;
    public const int MaxSolicits = 3;
    public const long SolicitInterval = Time.Second;

    private readonly IpStack _stack;
    private readonly IpInterface _ifc;
    private readonly bool _v6;
    private readonly Dictionary<IpAddress, Neighbor> _map = new();

    public NeighborCache(IpStack stack, IpInterface ifc, bool v6)
    {
        _stack = stack; _ifc = ifc; _v6 = v6;
        // ARP entries live five minutes (the classic arp_cleanup_interval); NDP's REACHABLE_TIME is 30 s.
        ReachableTime = v6 ? 30 * Time.Second : 300 * Time.Second;
    }

    public long ReachableTime { get; set; }
    public int Count => _map.Count;

    public bool TryLookup(IpAddress address, out MacAddress mac)
    {
        if (_map.TryGetValue(address, out var n) && n.State != NeighborState.Incomplete)
        {
            mac = n.Mac;
            return true;
        }
        mac = default;
        return false;
    }

    public bool Contains(IpAddress address) => _map.ContainsKey(address);

    /// <summary>Queues an IP packet (Data = IP header onward) until the neighbour resolves. Consumes it.</summary>
    public void Enqueue(IpAddress nextHop, Packet p)
    {
        if (!_map.TryGetValue(nextHop, out var n))
        {
            n = Create(nextHop);
            n.State = NeighborState.Incomplete;
            n.Solicits = 0;
            if (!_stack.TryCharge(p)) { CountPendingDrop(); p.Free(); Solicit(n); return; }
            n.Pending.Enqueue(p);
            Solicit(n);
            return;
        }
        if (n.State != NeighborState.Incomplete)
        {
            _stack.TransmitFrame(_ifc, p, n.Mac, _v6 ? EtherType.Ipv6 : EtherType.Ipv4);
            return;
        }
        // Packets waiting for resolution are held for the zone: bounded in count and by its memory cap.
        if (n.Pending.Count >= PendingLimit || !_stack.TryCharge(p))
        {
            CountPendingDrop();
            p.Free();
            return;
        }
        n.Pending.Enqueue(p);
    }

    private void CountPendingDrop()
    {
        if (_v6) _stack.Counters6.ndpPendingDrops++;
        else _stack.ArpStats.arpPendingDrops++;
    }

    private void Solicit(Neighbor n)
    {
        n.Solicits++;
        n.Timer.ArmAfter(SolicitInterval);
        if (_v6) _stack.SendNeighborSolicit(_ifc, n.Address);
        else _stack.SendArpRequest(_ifc, n.Address);
    }

    /// <summary>Learns (or refreshes) a neighbour's link address; sends what waited for it.
    /// With <paramref name="create"/> false only an existing entry is updated (RFC 826 merge).</summary>
    public void Update(IpAddress address, MacAddress mac, bool create)
    {
        if (!_map.TryGetValue(address, out var n))
        {
            if (!create) return;
            n = Create(address);
        }
        if (n.State == NeighborState.Permanent) return;
        if (n.Mac != mac || n.State != NeighborState.Reachable) _stack.InvalidatePaths(); // PathCacheV4
        n.Mac = mac;
        n.State = NeighborState.Reachable;
        n.Expires = _stack.Scheduler.Now + ReachableTime;
        n.Timer.ArmAt(n.Expires);
        while (n.Pending.Count > 0)
            _stack.TransmitFrame(_ifc, _stack.Unqueue(n.Pending), mac, _v6 ? EtherType.Ipv6 : EtherType.Ipv4);
    }

    /// <summary>Adds a permanent entry (arp -s).</summary>
    public void AddPermanent(IpAddress address, MacAddress mac)
    {
        if (!_map.TryGetValue(address, out var n)) n = Create(address);
        n.Timer.Cancel();
        n.Mac = mac;
        n.State = NeighborState.Permanent;
        _stack.InvalidatePaths();
        n.Expires = long.MaxValue;
        while (n.Pending.Count > 0)
            _stack.TransmitFrame(_ifc, _stack.Unqueue(n.Pending), mac, _v6 ? EtherType.Ipv6 : EtherType.Ipv4);
    }

    public bool Remove(IpAddress address)
    {
        if (!_map.TryGetValue(address, out var n)) return false;
        Drop(n);
        return true;
    }

    private Neighbor Create(IpAddress address)
    {
        if (_map.Count >= Limit) Evict();
        var n = new Neighbor { Address = address, Cache = this, Expires = _stack.Scheduler.Now + MaxSolicits * SolicitInterval };
        n.Timer = new KTimer(_stack.Scheduler, static s => { var e = (Neighbor)s!; e.Cache.TimerFired(e); }, n);
        _map[address] = n;
        return n;
    }

    private void Evict()
    {
        Neighbor? victim = null;
        foreach (var n in _map.Values)
            if (n.State != NeighborState.Permanent && (victim == null || n.Expires < victim.Expires)) victim = n;
        if (victim == null) return;
        if (_v6) _stack.Counters6.ndpCacheEvictions++;
        else _stack.ArpStats.arpCacheEvictions++;
        Drop(victim);
    }

    private void Drop(Neighbor n)
    {
        n.Timer.Cancel();
        while (n.Pending.Count > 0)
        {
            CountPendingDrop();
            _stack.Unqueue(n.Pending).Free();
        }
        _map.Remove(n.Address);
        _stack.InvalidatePaths();
    }

    private void TimerFired(Neighbor n)
    {
        if (n.State == NeighborState.Incomplete)
        {
            if (n.Solicits < MaxSolicits)
            {
                Solicit(n);
                return;
            }
            if (_v6) _stack.Counters6.ndpResolveFailed++;
            else _stack.ArpStats.arpResolveFailed++;
            _stack.ResolutionFailed(_ifc, n.Pending, _v6);
        }
        Drop(n);
    }

    public void Clear()
    {
        var all = new List<Neighbor>(_map.Values);
        foreach (var n in all) Drop(n);
    }

    public void List(List<NeighborInfo> into)
    {
        foreach (var n in _map.Values)
            into.Add(new NeighborInfo(_ifc.Name, n.Address, n.Mac, n.State, false, n.Expires));
    }
}
