using SmartOS.Vnic;
using SmartOS.Zones;

namespace SmartOS.Cli.Dashboard;

/// <summary>A link as /api/links shows it: what dladm show-link and show-vnic say, its counters,
/// and its rates over the last second (null before its second sample).</summary>
public sealed record LinkView(
    string Name, string Class, string? Over, string Zone, string State, long SpeedMbps, int Mtu, string? MacAddress, int Vid,
    long IPackets, long RBytes, long OPackets, long OBytes, long Drops, SeriesPoint? Rate);

/// <summary>A zone or VM as /api/zones shows it: state and memory (bytes; cap null when uncapped).</summary>
public sealed record ZoneView(
    string Name, string Brand, string State, bool IsVm, string? Alias, int? Id, long? MemoryCap, long? MemoryUsage, string[] Links);

/// <summary>A flow as /api/flows shows it: its attributes, limits and use.</summary>
public sealed record FlowView(
    string Name, string Link, string Spec, long? MaxBw, string Priority, long IPackets, long RBytes, long IDrops, long OPackets, long OBytes, long ODrops);

/// <summary>A node of the topology graph: kind is host, phys, wire, etherstub, vnic, vlan, zone or vm.</summary>
public sealed record TopologyNode(string Id, string Kind, string Label, string State);

/// <summary>An edge of the topology graph, from the upper node to the lower one.</summary>
public sealed record TopologyEdge(string From, string To);

/// <summary>The host's topology: its nodes and edges, and a version that changes when they do.</summary>
public sealed record TopologyView(string Host, TopologyNode[] Nodes, TopologyEdge[] Edges, string Version);

/// <summary>What every event-stream client gets once a second.</summary>
public sealed record TickView(double Time, LinkView[] Links, ZoneView[] Zones, FlowView[] Flows, string TopologyVersion);

/// <summary>Copies of host state for the API, taken on the loop (DashboardServer.cs rule 3): plain
/// records that the handlers serialise off the loop.</summary>
internal static class Snapshots
{
    public static string ClassName(LinkClass c) => c switch
    {
        LinkClass.Phys => "phys",
        LinkClass.Etherstub => "etherstub",
        LinkClass.Vnic => "vnic",
        _ => "vlan",
    };

    public static LinkView Link(Datalink l, LinkHistory history)
    {
        var s = l.Stats;
        var port = l as PortLink;
        return new LinkView(l.Name, ClassName(l.Class), l.Over?.Name, l.Zone, l.State, l.SpeedMbps, l.Mtu,
            port?.MacAddress.ToString(), port?.Vid ?? 0,
            s.IPackets, s.RBytes, s.OPackets, s.OBytes, LinkHistory.Drops(s), history.Last(l.Name));
    }

    public static LinkView[] Links(Host host, LinkHistory history)
    {
        var list = new List<LinkView>();
        foreach (var l in host.Mac.Links) list.Add(Link(l, history));
        list.Sort((a, b) => string.CompareOrdinal(a.Name, b.Name));
        return [.. list];
    }

    public static ZoneView Zone(Zone z)
    {
        var links = new string[z.Links.Count];
        for (int i = 0; i < links.Length; i++) links[i] = z.Links[i].Name;
        long? cap = z.Memory is { IsCapped: true } m ? m.Cap : z.Config.CappedMemory;
        return new ZoneView(z.Name, z.Config.Brand, SmartOS.Zones.Zone.StateName(z.State), z.IsVm, z.Config.Vm?.Alias, z.Id,
            cap, z.Memory?.Usage, links);
    }

    public static ZoneView[] Zones(Host host)
    {
        var list = new List<ZoneView>();
        foreach (var z in host.Zones.Zones) list.Add(Zone(z));
        return [.. list];
    }

    public static FlowView[] Flows(Host host)
    {
        var list = new List<FlowView>();
        foreach (var f in host.Mac.Flows)
        {
            var s = f.Stats;
            list.Add(new FlowView(f.Name, f.Link.Name, f.Spec.ToString(), f.MaxBw, f.Priority.ToString().ToLowerInvariant(),
                s.IPackets, s.RBytes, s.IDrops, s.OPackets, s.OBytes, s.ODrops));
        }
        list.Sort((a, b) => string.CompareOrdinal(a.Name, b.Name));
        return [.. list];
    }

    /// <summary>The graph: the host; its NICs and, for a wired one, the wire to the far NIC; every
    /// other link under the link it is over (etherstubs under the host); every ready or running zone
    /// over the links it holds. The version is a digest of the ids and states, so clients redraw only
    /// when something came, went or changed state.</summary>
    public static TopologyView Topology(Host host)
    {
        var nodes = new List<TopologyNode>();
        var edges = new List<TopologyEdge>();
        string hostId = "host:" + host.Name;
        nodes.Add(new TopologyNode(hostId, "host", host.Name, "up"));
        foreach (var l in host.Mac.Links)
        {
            string id = "link:" + l.Name;
            nodes.Add(new TopologyNode(id, ClassName(l.Class), l.Name, l.State));
            edges.Add(new TopologyEdge(l.Over != null ? "link:" + l.Over.Name : hostId, id));
            if (l is PhysLink phys && WireOf(host, phys) is { } w)
            {
                var far = w.A == phys ? w.B : w.A;
                string wireId = "wire:" + w.A.Mac.HostName + "/" + w.A.Name + "-" + w.B.Mac.HostName + "/" + w.B.Name;
                nodes.Add(new TopologyNode(wireId, "wire", $"wire to {far.Mac.HostName}/{far.Name}", l.State));
                edges.Add(new TopologyEdge(id, wireId));
            }
        }
        foreach (var z in host.Zones.Zones)
        {
            if (z.State is not (ZoneState.Ready or ZoneState.Running)) continue;
            string id = "zone:" + z.Name;
            string label = z.Config.Vm?.Alias is { } alias ? $"{alias} ({z.Name})" : z.Name;
            nodes.Add(new TopologyNode(id, z.IsVm ? "vm" : "zone", label, SmartOS.Zones.Zone.StateName(z.State)));
            foreach (var l in z.Links) edges.Add(new TopologyEdge("link:" + l.Name, id));
        }
        nodes.Sort((a, b) => string.CompareOrdinal(a.Id, b.Id));
        edges.Sort((a, b) => string.CompareOrdinal(a.From + " " + a.To, b.From + " " + b.To));
        return new TopologyView(host.Name, [.. nodes], [.. edges], Version(nodes, edges));
    }

    private static Wire? WireOf(Host host, PhysLink phys)
    {
        foreach (var w in host.World.Wires)
            if (w.A == phys || w.B == phys) return w;
        return null;
    }

    /// <summary>FNV-1a over the graph's text: the same graph gives the same version.</summary>
    private static string Version(List<TopologyNode> nodes, List<TopologyEdge> edges)
    {
        ulong h = 14695981039346656037;
        void Add(string s)
        {
            foreach (char c in s) h = (h ^ c) * 1099511628211;
            h = (h ^ 0xFF) * 1099511628211;
        }
        foreach (var n in nodes) { Add(n.Id); Add(n.State); Add(n.Label); }
        foreach (var e in edges) { Add(e.From); Add(e.To); }
        return h.ToString("x16", System.Globalization.CultureInfo.InvariantCulture);
    }

    public static TickView Tick(Host host, LinkHistory history, long now, TopologyView topology)
        => new(now / 1e9, Links(host, history), Zones(host), Flows(host), topology.Version);
}
