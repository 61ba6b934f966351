using SmartOS.Kernel;
using SmartOS.Kernel.Wire;

namespace SmartOS.Vnic;

/// <summary>
/// The virtual switch inside a phys or an etherstub (MacLayer.cs, "Data path"). Classification is
/// one hash lookup on (VID, destination MAC), skipped when a frame goes where the last one from the
/// same port (or from the uplink) went and no port has changed since (a one-entry hint per sender);
/// group frames go to the VLAN's port array. Adding a
/// port adds its address to the unicast table and its VLAN's member list, and marks that VLAN's
/// array stale; it is rebuilt once, by the first frame that needs it, so booting N ports costs O(N),
/// not O(N^2), and forwarding in steady state allocates nothing. Only the VLAN that changed is
/// rebuilt: a port added to one of 100 VLANs of 100 ports each costs a 100-port rebuild, not one of
/// every port on the switch (tests/SmartOS.Benchmarks zones, the vlan build).
/// </summary>
public sealed class VSwitch
{
    private readonly Dictionary<ulong, PortLink> _unicast = new();
    private readonly Dictionary<ushort, PortLink[]> _byVlan = new();
    private readonly List<PortLink> _ports = [];
    /// <summary>Each VLAN's ports in port order: what its array is rebuilt from.</summary>
    private readonly Dictionary<ushort, List<PortLink>> _members = new();
    private readonly HashSet<ushort> _staleVlans = [];
    private bool _vlansStale;
    private readonly Etherstub? _stub;
    private readonly UplinkLink? _uplink;
    private readonly OverlayLink? _overlay;

    // Bumped whenever the ports change, so that a port's cached forwarding answer (PortLink.ForwardPort)
    // from before the change is never used.
    private int _generation;

    internal VSwitch(Datalink owner)
    {
        Owner = owner;
        _stub = owner as Etherstub;
        _uplink = owner as UplinkLink;
        _overlay = owner as OverlayLink;
    }

    /// <summary>The phys, aggregation, etherstub or overlay this switch belongs to.</summary>
    public Datalink Owner { get; }
    public UplinkLink? Uplink => _uplink;

    /// <summary>The bridge port of this switch's link, or null (Bridge.cs): frames its ports send
    /// that the switch does not deliver itself go to the bridge instead of the uplink.</summary>
    internal BridgePort? Bridged;
    public IReadOnlyList<PortLink> Ports => _ports;

    private static ulong Key(ushort vid, MacAddress mac) => ((ulong)vid << 48) | mac.Value;

    /// <summary>Whether a port of this switch has the address in the VLAN (one hash lookup).</summary>
    internal bool HasAddress(MacAddress mac, ushort vid) => _unicast.ContainsKey(Key(vid, mac));

    /// <summary>The port with the address in the VLAN, or null.</summary>
    internal PortLink? PortWith(MacAddress mac, ushort vid) => _unicast.GetValueOrDefault(Key(vid, mac));

    internal void AddPort(PortLink port)
    {
        _ports.Add(port);
        _unicast.TryAdd(Key(port.Vid, port.MacAddress), port);
        if (!_members.TryGetValue(port.Vid, out var members)) _members[port.Vid] = members = [];
        members.Add(port);
        _staleVlans.Add(port.Vid);
        _vlansStale = true;
        _generation++;
    }

    internal void RemovePort(PortLink port)
    {
        _ports.Remove(port);
        var members = _members[port.Vid];
        members.Remove(port);
        // The address goes to the next port of the VLAN that has it, as if the table were built
        // afresh in port order (the first port with an address holds it).
        var key = Key(port.Vid, port.MacAddress);
        if (_unicast.TryGetValue(key, out var holder) && holder == port)
        {
            _unicast.Remove(key);
            foreach (var p in members)
                if (p.MacAddress == port.MacAddress) { _unicast.Add(key, p); break; }
        }
        if (members.Count == 0) _members.Remove(port.Vid);
        _staleVlans.Add(port.Vid);
        _vlansStale = true;
        _generation++;
    }

    /// <summary>The arrays of the VLANs that changed, from their members in port order (the order
    /// floods deliver in); a VLAN left without ports has none.</summary>
    private void RebuildVlans()
    {
        foreach (ushort vid in _staleVlans)
        {
            if (_members.TryGetValue(vid, out var list)) _byVlan[vid] = list.ToArray();
            else _byVlan.Remove(vid);
        }
        _staleVlans.Clear();
        _vlansStale = false;
    }

    public bool HasVlan(ushort vid)
    {
        if (_vlansStale) RebuildVlans();
        return _byVlan.ContainsKey(vid);
    }

    /// <summary>A frame sent by a port's client (already counted and tapped by the port). Consumes it.</summary>
    internal void Forward(Packet p, PortLink from)
    {
        if (p.LsoMss != 0 && !LsoLeavesWhole(p, from))
        {
            ForwardSegmented(p, from);
            return;
        }
        _stub?.Observe(p);
        var dst = MacAddress.Read(p.Data);
        var uplink = _uplink;
        if (dst.IsGroup)
        {
            Flood(p, from, sendUp: uplink != null || Bridged != null || _overlay != null);
            return;
        }
        if (Lookup(from, Key(p.Vid, dst)) is PortLink port)
        {
            if (port == from)
            {
                // A frame to one's own address: the wire would never bring it back.
                from.Stats.DropUnknownDst++;
                p.Free();
                return;
            }
            port.Deliver(p); // Rule 1: local unicast never touches the wire.
            return;
        }
        if (Bridged is { } bp)
        {
            bp.Bridge.FromLocal(bp, p); // the bridge knows the other links and its wires
            return;
        }
        if (uplink != null)
        {
            uplink.SendToWire(p); // Unknown unicast leaves by the NIC.
            return;
        }
        if (_overlay != null)
        {
            _overlay.Encapsulate(p); // ... or over the underlay (Overlay.cs)
            return;
        }
        Owner.Stats.DropUnknownDst++;
        p.Free();
    }

    /// <summary>Whether a large-send frame goes on whole (MacLayer.cs rule 9): only to a unicast
    /// destination that is no port of this switch, out of a NIC whose device segments or an overlay
    /// whose underlay does (Overlay.LargeSend.cs).</summary>
    private bool LsoLeavesWhole(Packet p, PortLink from)
    {
        var dst = MacAddress.Read(p.Data);
        return !dst.IsGroup && TakesLso && Lookup(from, Key(p.Vid, dst)) == null;
    }

    /// <summary>Whether frames this switch sends out may be large sends (MacClient.LsoMax).</summary>
    internal bool TakesLso => _uplink is PhysLink phys ? phys.TakesLso : _uplink == null && Bridged == null && _overlay is { TakesLso: true };

    /// <summary>The largest IP packet a port with MTU <paramref name="mtu"/> may send as one large
    /// send (MacClient.LsoMax): 0 without large send; over an overlay what its underlay sends in one
    /// call (OverlayLink.LsoMax).</summary>
    internal int LsoMax(int mtu) => !TakesLso ? 0
        : _overlay != null ? _overlay.LsoMax(mtu)
        : PacketPool.LsoSize - EthernetView.HeaderLength - EthernetView.TagLength;

    /// <summary>Software segmentation (rule 9): a large-send frame that may not go on whole is cut
    /// into the MSS segments the NIC would have put on the wire, each forwarded in turn (lso_soft on
    /// the sending link).</summary>
    private void ForwardSegmented(Packet p, PortLink from)
    {
        if (!Owner.Mac.ForEachSegment(p, from.Stats, (this, from), static (t, q) => t.Item1.Forward(q, t.from)))
            from.Stats.OErrors++; // Datalink.Transmit checked it; kept so a bad frame can never throw here
    }

    /// <summary>The port for a unicast key, through the sender's one-entry cache (a hit is two compares;
    /// a miss is the hash lookup, remembered for the next frame).</summary>
    private PortLink? Lookup(PortLink from, ulong key)
    {
        if (from.ForwardKey == key && from.ForwardGeneration == _generation) return from.ForwardPort;
        var port = _unicast.GetValueOrDefault(key);
        from.ForwardKey = key;
        from.ForwardPort = port;
        from.ForwardGeneration = _generation;
        return port;
    }

    // The port the uplink's last unicast frame went to, as PortLink.ForwardPort caches a sender's
    // answer: a stream of frames from the wire to one port is one compare instead of the VLAN and
    // address lookups per frame. Valid while _generation is unchanged; a port in _unicast has a
    // VLAN array (HasVlan), so a hit needs neither lookup.
    private ulong _uplinkKey;
    private PortLink? _uplinkPort;
    private int _uplinkGeneration = -1;

    /// <summary>A frame from the wire (tag already removed into p.Vid). Consumes it.</summary>
    internal void ForwardFromUplink(Packet p)
    {
        var dst = MacAddress.Read(p.Data);
        if (p.LsoMss == 0 && _uplinkGeneration == _generation && _uplinkKey == Key(p.Vid, dst))
        {
            _uplinkPort!.Deliver(p);
            return;
        }
        if (p.LsoMss != 0 && !(HasVlan(p.Vid) && !dst.IsGroup && _unicast.TryGetValue(Key(p.Vid, dst), out var whole)
                               && whole.Client is { ReceiverAcceptsLargeReceive: true }))
        {
            // A large frame from the device (rule 9) goes whole only to a client that takes it.
            if (!Owner.Mac.ForEachSegment(p, Owner.Stats, this, static (sw, q) => sw.ForwardFromUplink(q)))
                Owner.Stats.IErrors++;
            return;
        }
        if (!HasVlan(p.Vid))
        {
            Owner.Stats.DropNoVlan++;
            p.Free();
            return;
        }
        if (dst.IsGroup)
        {
            Flood(p, null, sendUp: false);
            return;
        }
        if (_unicast.TryGetValue(Key(p.Vid, dst), out var port))
        {
            _uplinkKey = Key(p.Vid, dst);
            _uplinkPort = port;
            _uplinkGeneration = _generation;
            port.Deliver(p);
            return;
        }
        // Not for any port: a NIC's address filter drops it (counted, rule 3).
        Owner.Stats.DropUnknownDst++;
        p.Free();
    }

    /// <summary>Replicates a group frame to every port of its VLAN but the sender (rule 6), then
    /// the uplink. The original goes to the last receiver.</summary>
    private void Flood(Packet p, PortLink? from, bool sendUp)
    {
        if (_vlansStale) RebuildVlans();
        _byVlan.TryGetValue(p.Vid, out var members);
        members ??= [];
        PortLink? last = null;
        foreach (var m in members)
        {
            if (m == from) continue;
            if (last != null)
            {
                var copy = p.Clone();
                if (copy == null) Owner.Stats.DropNoBuf++;
                else last.Deliver(copy);
            }
            last = m;
        }
        var uplink = Uplink;
        if (sendUp && (uplink != null || Bridged != null || _overlay != null))
        {
            if (last != null)
            {
                var copy = p.Clone();
                if (copy == null) Owner.Stats.DropNoBuf++;
                else last.Deliver(copy);
            }
            if (Bridged is { } bp) bp.Bridge.FromLocal(bp, p);
            else if (uplink != null) uplink.SendToWire(p);
            else _overlay!.Encapsulate(p);
            return;
        }
        if (last != null) last.Deliver(p);
        else p.Free();
    }
}
