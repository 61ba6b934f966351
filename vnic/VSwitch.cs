using SmartOS.Kernel;
using SmartOS.Kernel.Wire;

namespace SmartOS.Vnic;

/// <summary>
/// The virtual switch inside a phys or an etherstub (MacLayer.cs, "Data path"). Classification is
/// one hash lookup on (VID, destination MAC); group frames go to the VLAN's port array. Both tables
/// are rebuilt when ports change (configuration time), so forwarding allocates nothing.
/// </summary>
public sealed class VSwitch
{
    private readonly Dictionary<ulong, PortLink> _unicast = new();
    private readonly Dictionary<ushort, PortLink[]> _byVlan = new();
    private readonly List<PortLink> _ports = [];

    internal VSwitch(Datalink owner) { Owner = owner; }

    /// <summary>The phys or etherstub this switch belongs to.</summary>
    public Datalink Owner { get; }
    public PhysLink? Uplink => Owner as PhysLink;
    public IReadOnlyList<PortLink> Ports => _ports;

    private static ulong Key(ushort vid, MacAddress mac) => ((ulong)vid << 48) | mac.Value;

    internal void AddPort(PortLink port)
    {
        _ports.Add(port);
        Rebuild();
    }

    internal void RemovePort(PortLink port)
    {
        _ports.Remove(port);
        Rebuild();
    }

    internal void Rebuild()
    {
        _unicast.Clear();
        _byVlan.Clear();
        var groups = new SortedDictionary<ushort, List<PortLink>>();
        foreach (var p in _ports)
        {
            _unicast.TryAdd(Key(p.Vid, p.MacAddress), p);
            if (!groups.TryGetValue(p.Vid, out var list)) groups[p.Vid] = list = [];
            list.Add(p);
        }
        foreach (var (vid, list) in groups) _byVlan[vid] = list.ToArray();
    }

    public bool HasVlan(ushort vid) => _byVlan.ContainsKey(vid);

    /// <summary>A frame sent by a port's client (already counted and tapped by the port). Consumes it.</summary>
    internal void Forward(Packet p, PortLink from)
    {
        if (Owner is Etherstub stub) stub.Observe(p);
        var dst = MacAddress.Read(p.Data);
        var uplink = Uplink;
        if (dst.IsGroup)
        {
            Flood(p, from, sendUp: uplink != null, fromWire: false);
            return;
        }
        if (_unicast.TryGetValue(Key(p.Vid, dst), out var port))
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
        if (uplink != null)
        {
            uplink.SendToWire(p, counted: from == uplink); // Unknown unicast leaves by the NIC.
            return;
        }
        Owner.Stats.DropUnknownDst++;
        p.Free();
    }

    /// <summary>A frame from the wire (tag already removed into p.Vid). Consumes it.</summary>
    internal void ForwardFromUplink(Packet p)
    {
        var dst = MacAddress.Read(p.Data);
        if (!_byVlan.ContainsKey(p.Vid))
        {
            Owner.Stats.DropNoVlan++;
            p.Free();
            return;
        }
        if (dst.IsGroup)
        {
            Flood(p, null, sendUp: false, fromWire: true);
            return;
        }
        if (_unicast.TryGetValue(Key(p.Vid, dst), out var port))
        {
            port.Deliver(p, counted: port == Owner);
            return;
        }
        // Not for any port: a NIC's address filter drops it (counted, rule 3).
        Owner.Stats.DropUnknownDst++;
        p.Free();
    }

    /// <summary>Replicates a group frame to every port of its VLAN but the sender (rule 6), then
    /// the uplink. The original goes to the last receiver. A phys counts a frame once: what came
    /// from its wire is not counted again at its primary port, and what its primary client sent is
    /// not counted again on the way out.</summary>
    private void Flood(Packet p, PortLink? from, bool sendUp, bool fromWire)
    {
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
                else last.Deliver(copy, counted: fromWire && last == Owner);
            }
            last = m;
        }
        var uplink = Uplink;
        if (sendUp && uplink != null)
        {
            if (last != null)
            {
                var copy = p.Clone();
                if (copy == null) Owner.Stats.DropNoBuf++;
                else last.Deliver(copy, counted: fromWire && last == Owner);
            }
            uplink.SendToWire(p, counted: from == uplink);
            return;
        }
        if (last != null) last.Deliver(p, counted: fromWire && last == Owner);
        else p.Free();
    }
}
