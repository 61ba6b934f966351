using SmartOS.Cli.Observe;
using SmartOS.Vnic;
using SmartOS.Zones;

namespace SmartOS.Cli.Dashboard;

/// <summary>One interval of a link's history: when it ended (seconds of the host's clock), bits and
/// packets per second each way, and the frames dropped in it.</summary>
public sealed record SeriesPoint(double T, long RBps, long OBps, long IPps, long OPps, long Drops);

/// <summary>A link as /api/links shows it: its node in the topology (tools/Observe/Topology.cs) with
/// the name of the link it is over, its counters, and its rates over the last interval (null before
/// its second sample).</summary>
public sealed record LinkView(
    string Id, string Name, string Class, string? Over, string Zone, string State, long SpeedMbps, int Mtu, string? Mac, int Vid, long? MaxBwBps,
    long IPackets, long RBytes, long OPackets, long OBytes, long Drops, SeriesPoint? Rate);

/// <summary>A flow as /api/flows shows it: its node in the topology, with the link's name, and its use.</summary>
public sealed record FlowView(
    string Id, string Name, string Link, string Attributes, long? MaxBwBps, string Priority,
    long IPackets, long RBytes, long IDrops, long OPackets, long OBytes, long ODrops);

/// <summary>A link's history as /api/series answers it: one point per interval, up to capacity.</summary>
public sealed record SeriesView(string Id, string Link, double Interval, int Capacity, SeriesPoint[] Points);

/// <summary>What every event-stream client gets once a second.</summary>
public sealed record TickView(double Time, LinkView[] Links, IReadOnlyList<ZoneNode> Zones, FlowView[] Flows);

/// <summary>Copies of host state for the API, taken on the loop (DashboardServer.cs rule 3): the
/// Observe models (tools/Observe/), plain records that the handlers serialise off the loop.</summary>
internal static class Snapshots
{
    public static LinkView Link(Host host, Datalink l, LinkSeries series)
    {
        var node = LinkNode.Of(host.Name, l);
        var s = l.Stats;
        var last = series.ReadLink(l.LinkId, 2);
        return new LinkView(node.Id, node.Name, node.Class, l.Over?.Name, node.Zone, node.State, node.SpeedMbps, node.Mtu, node.Mac, node.Vid,
            node.MaxBwBps, s.IPackets, s.RBytes, s.OPackets, s.OBytes, last?.Samples is [_, var b] ? b.Drops : 0,
            last?.Samples.Count == 2 ? Point(last, 1) : null);
    }

    public static LinkView[] Links(Host host, LinkSeries series)
    {
        var list = new List<LinkView>();
        foreach (var l in host.Mac.Links) list.Add(Link(host, l, series));
        list.Sort((a, b) => string.CompareOrdinal(a.Name, b.Name));
        return [.. list];
    }

    public static IReadOnlyList<ZoneNode> Zones(Host host) => HostNode.Of(host).Zones;

    public static FlowView[] Flows(Host host)
    {
        var list = new List<FlowView>();
        foreach (var f in host.Mac.Flows)
        {
            var node = FlowNode.Of(host.Name, f);
            var s = f.Stats;
            list.Add(new FlowView(node.Id, node.Name, f.Link.Name, node.Attributes, node.MaxBwBps, node.Priority,
                s.IPackets, s.RBytes, s.IDrops, s.OPackets, s.OBytes, s.ODrops));
        }
        return [.. list];
    }

    /// <summary>The present link's history as points, or null when there is no such link.</summary>
    public static SeriesView? Series(LinkSeries series, string name)
    {
        var h = series.ReadLink(name);
        if (h == null) return null;
        var points = new SeriesPoint[Math.Max(0, h.Samples.Count - 1)];
        for (int i = 1; i < h.Samples.Count; i++) points[i - 1] = Point(h, i);
        return new SeriesView(h.Id, h.Name, series.IntervalNs / 1e9, series.Capacity, points);
    }

    /// <summary>Rates between sample i - 1 and i: throughput as LinkHistory gives it, packets and drops
    /// the same way (a counter reset shows as 0, never negative).</summary>
    private static SeriesPoint Point(LinkHistory h, int i)
    {
        var a = h.Samples[i - 1];
        var b = h.Samples[i];
        var (rx, tx) = h.Throughput(i);
        double dt = Math.Max(1, b.TimeNs - a.TimeNs) / 1e9;
        return new SeriesPoint(b.TimeNs / 1e9, (long)rx, (long)tx,
            (long)(Math.Max(0, b.IPackets - a.IPackets) / dt), (long)(Math.Max(0, b.OPackets - a.OPackets) / dt), Math.Max(0, b.Drops - a.Drops));
    }

    public static TickView Tick(Host host, LinkSeries series, long now)
        => new(now / 1e9, Links(host, series), Zones(host), Flows(host));
}
