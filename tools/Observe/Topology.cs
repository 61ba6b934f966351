/*
 * Observe: what a host looks like and how busy its links are, for the two views of issue 19, the
 * live dashboard (smartos boot --http, tools/Dashboard/) and the report of a scenario (smartos run
 * --report, tools/Report/). Both read the same two models, so what the web page draws and what the
 * report prints are one thing:
 *   Topology.cs    a snapshot of the graph: hosts, their datalinks (physical NICs, etherstubs,
 *                  VNICs, VLANs, and whatever classes the MAC layer grows), the wires between hosts'
 *                  NICs, zones and VMs with their state, flows with their limits.
 *   LinkSeries.cs  per-link counters sampled at a fixed interval into a bounded ring.
 *
 * Rules
 *   1. A snapshot is plain data: records of strings and numbers, with no reference into live state,
 *      so it can be serialised (System.Text.Json, as the dashboard's /api serves it), compared, and
 *      handed to another thread once built.
 *   2. Ids are stable for the life of the object they name and never reused while the host runs:
 *      a host is its name; a datalink is HOST/link/LINKID (the MAC layer's link id, which a rename
 *      keeps and a delete retires); a zone HOST/zone/NAME; a flow HOST/flow/NAME; a wire
 *      wire/HOSTA/NICA-HOSTB/NICB. A view that redraws keeps what did not change in place.
 *   3. Order is deterministic: hosts by name (ordinal), links by link id (creation order), zones
 *      as the zone table lists them, flows in creation order, wires as the world made them. The
 *      same scenario gives the same snapshot, byte for byte once serialised.
 *   4. A snapshot reads live state, so it is built on the loop that owns it: in a scenario between
 *      commands, under smartos boot through RealTimeDriver.Invoke.
 */
using SmartOS.Vnic;
using SmartOS.Zones;

namespace SmartOS.Cli.Observe;

/// <summary>A snapshot of a world's graph at one instant (see the theory statement above).</summary>
/// <param name="TimeNs">The world's clock when taken (virtual or real nanoseconds since it began).</param>
public sealed record Topology(long TimeNs, IReadOnlyList<HostNode> Hosts, IReadOnlyList<WireEdge> Wires)
{
    /// <summary>The graph of every host of <paramref name="world"/> and the wires between them.</summary>
    public static Topology Of(World world)
    {
        var hosts = new List<Host>(world.Hosts);
        hosts.Sort((a, b) => string.CompareOrdinal(a.Name, b.Name));
        var nodes = new List<HostNode>(hosts.Count);
        foreach (var h in hosts) nodes.Add(HostNode.Of(h));
        var wires = new List<WireEdge>(world.Wires.Count);
        foreach (var w in world.Wires) wires.Add(WireEdge.Of(w));
        return new Topology(world.Scheduler.Now, nodes, wires);
    }

    /// <summary>The graph of one host alone, with the wires that touch it (smartos boot's view).</summary>
    public static Topology Of(Host host)
    {
        var wires = new List<WireEdge>();
        foreach (var w in host.World.Wires)
            if (w.A.Mac == host.Mac || w.B.Mac == host.Mac) wires.Add(WireEdge.Of(w));
        return new Topology(host.Scheduler.Now, [HostNode.Of(host)], wires);
    }

    /// <summary>The id rule 2 gives a datalink.</summary>
    public static string LinkId(string host, int linkId) => $"{host}/link/{linkId}";

    /// <summary>The id rule 2 gives a zone.</summary>
    public static string ZoneId(string host, string zone) => $"{host}/zone/{zone}";

    /// <summary>The id rule 2 gives a flow.</summary>
    public static string FlowId(string host, string flow) => $"{host}/flow/{flow}";
}

/// <summary>One host: its datalinks, zones and flows.</summary>
public sealed record HostNode(string Id, string Name, IReadOnlyList<LinkNode> Links, IReadOnlyList<ZoneNode> Zones, IReadOnlyList<FlowNode> Flows)
{
    public static HostNode Of(Host host)
    {
        var links = new List<LinkNode>();
        foreach (var l in host.Mac.Links) links.Add(LinkNode.Of(host.Name, l));
        var zones = new List<ZoneNode>(host.Zones.Zones.Count);
        foreach (var z in host.Zones.Zones) zones.Add(ZoneNode.Of(host.Name, z));
        var flows = new List<FlowNode>();
        foreach (var f in host.Mac.Flows) flows.Add(FlowNode.Of(host.Name, f));
        return new HostNode(host.Name, host.Name, links, zones, flows);
    }
}

/// <summary>One datalink.</summary>
/// <param name="Class">dladm's CLASS column: phys, etherstub, vnic, vlan (and the classes added later).</param>
/// <param name="Over">The id of the link it is over (a VNIC's phys or etherstub, a VLAN's phys), or null.</param>
/// <param name="Zone">The zone that has the link ("global" when none does: Host.cs rule 4).</param>
/// <param name="Mac">The port's MAC address (null for links that are not ports, as an etherstub).</param>
/// <param name="Vid">The VLAN ID of a port (0: untagged).</param>
/// <param name="MaxBwBps">The maxbw link property in bit/s, or null when unlimited.</param>
public sealed record LinkNode(string Id, int LinkId, string Name, string Class, string? Over, string State, long SpeedMbps, int Mtu,
    string Zone, string? Mac, int Vid, long? MaxBwBps)
{
    public static LinkNode Of(string host, Datalink link)
    {
        var port = link as PortLink;
        return new LinkNode(Topology.LinkId(host, link.LinkId), link.LinkId, link.Name, ClassName(link.Class),
            link.Over is { } over ? Topology.LinkId(host, over.LinkId) : null, link.State, link.SpeedMbps, link.Mtu, link.Zone,
            port?.MacAddress.ToString(), port?.Vid ?? 0, port?.Control?.MaxBw);
    }

    /// <summary>dladm's name for a class: the enum's name in lower case, so a class added to the MAC
    /// layer shows without a change here.</summary>
    public static string ClassName(LinkClass c) => c.ToString().ToLowerInvariant();
}

/// <summary>One zone or VM.</summary>
/// <param name="Alias">A VM's alias (vmadm), or null.</param>
/// <param name="State">zoneadm's state name (configured, installed, running ...).</param>
/// <param name="Links">The ids of the links the zone has while ready or running.</param>
/// <param name="MemoryCapBytes">capped-memory physical (max_physical_memory), or null when uncapped.</param>
/// <param name="MemoryUseBytes">What the zone's memory account holds while it is ready or running, else null.</param>
public sealed record ZoneNode(string Id, string Name, string? Alias, string Brand, bool IsVm, string State, IReadOnlyList<string> Links,
    long? MemoryCapBytes, long? MemoryUseBytes)
{
    public static ZoneNode Of(string host, Zone zone)
    {
        var links = new List<string>(zone.Links.Count);
        foreach (var l in zone.Links) links.Add(Topology.LinkId(host, l.LinkId));
        return new ZoneNode(Topology.ZoneId(host, zone.Name), zone.Name, zone.Config.Vm?.Alias, zone.Config.Brand, zone.IsVm,
            Zone.StateName(zone.State), links, zone.Config.CappedMemory, zone.Memory?.Usage);
    }
}

/// <summary>One flow (flowadm) with its limits.</summary>
/// <param name="Link">The id of the link the flow is on.</param>
/// <param name="Attributes">flowadm's attribute text (local_port=80, remote_ip=10.0.0.1/32 ...).</param>
/// <param name="MaxBwBps">maxbw in bit/s, or null when unlimited.</param>
/// <param name="Priority">high, medium or low.</param>
public sealed record FlowNode(string Id, string Name, string Link, string Attributes, long? MaxBwBps, string Priority)
{
    public static FlowNode Of(string host, Flow flow) => new(Topology.FlowId(host, flow.Name), flow.Name,
        Topology.LinkId(host, flow.Link.LinkId), flow.Spec.ToString(), flow.MaxBw, LinkControl.FormatPriority(flow.Priority));
}

/// <summary>A wire between two physical NICs (of one host or two).</summary>
/// <param name="A">The id of one end's NIC.</param>
/// <param name="B">The id of the other end's.</param>
public sealed record WireEdge(string Id, string A, string B, long SpeedBps, long DelayNs, double Loss, int Mtu)
{
    public static WireEdge Of(Wire w)
    {
        string a = w.A.Mac.HostName, b = w.B.Mac.HostName;
        return new WireEdge($"wire/{a}/{w.A.Device}-{b}/{w.B.Device}", Topology.LinkId(a, w.A.LinkId), Topology.LinkId(b, w.B.LinkId),
            w.SpeedBps, w.DelayNs, w.Loss, w.Mtu);
    }
}
