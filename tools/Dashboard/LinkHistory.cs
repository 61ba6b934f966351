using SmartOS.Vnic;
using SmartOS.Zones;

namespace SmartOS.Cli.Dashboard;

/// <summary>
/// The dashboard's per-link history (DashboardServer.cs, "tick"): every link's counters sampled
/// once a second into a ring of the last Capacity samples (3600: an hour). Touched on the loop
/// only; readers get copies (Points).
///
/// A sample keeps cumulative counters; a point's rate is the difference to the sample before it,
/// so a missed tick (a busy loop) widens one interval instead of inventing a spike. A link that
/// is deleted loses its history; one made again under the same name starts afresh (its counters
/// start at 0 again, and a negative difference would be nonsense).
///
/// This is the seam to tools/Observe/LinkSeries.cs (the `report` branch's per-link sampled
/// history): once it lands, Sample and Points delegate to it and this file keeps only the adapter.
/// </summary>
internal sealed class LinkHistory(int capacity)
{
    /// <summary>One sample of a link's cumulative counters at a time of the host's clock.</summary>
    internal readonly record struct Reading(long Time, long RBytes, long OBytes, long IPackets, long OPackets, long Drops);

    private sealed class Ring(Datalink link, int capacity)
    {
        public readonly Datalink Link = link;
        public readonly Reading[] Samples = new Reading[capacity];
        public int Count, Next;
        public bool Seen;
    }

    private readonly Dictionary<string, Ring> _rings = new(StringComparer.Ordinal);
    private readonly List<string> _gone = [];

    public int Capacity { get; } = capacity;

    /// <summary>Every drop counter of a link, summed: what the dashboard plots as drops.</summary>
    public static long Drops(LinkStats s)
        => s.DropNoClient + s.DropUnknownDst + s.DropNoVlan + s.DropTagged + s.DropMtu + s.DropNoBuf + s.DropLinkDown
           + s.DropTxQueue + s.DropWireLoss + s.DropWireMtu + s.MacSpoofed + s.IpSpoofed + s.DhcpSpoofed + s.Restricted
           + s.DropMaxbw + s.DropMaxbwRx + s.IErrors + s.OErrors;

    /// <summary>Samples every link of <paramref name="host"/> at <paramref name="now"/>; forgets links
    /// that are gone. On the loop.</summary>
    public void Sample(Host host, long now)
    {
        foreach (var ring in _rings.Values) ring.Seen = false;
        foreach (var link in host.Mac.Links)
        {
            if (!_rings.TryGetValue(link.Name, out var ring) || ring.Link != link)
                _rings[link.Name] = ring = new Ring(link, Capacity);
            ring.Seen = true;
            var s = link.Stats;
            ring.Samples[ring.Next] = new Reading(now, s.RBytes, s.OBytes, s.IPackets, s.OPackets, Drops(s));
            ring.Next = (ring.Next + 1) % Capacity;
            if (ring.Count < Capacity) ring.Count++;
        }
        _gone.Clear();
        foreach (var (name, ring) in _rings)
            if (!ring.Seen) _gone.Add(name);
        foreach (string name in _gone) _rings.Remove(name);
    }

    /// <summary>The link's points, oldest first: one per interval between samples (so one fewer than
    /// the samples), each with its rates per second. False for a link with no history.</summary>
    public bool TryGetPoints(string link, out SeriesPoint[] points)
    {
        points = [];
        if (!_rings.TryGetValue(link, out var ring)) return false;
        int n = Math.Max(0, ring.Count - 1);
        points = new SeriesPoint[n];
        int first = (ring.Next - ring.Count + Capacity) % Capacity;
        for (int i = 0; i < n; i++)
        {
            var a = ring.Samples[(first + i) % Capacity];
            var b = ring.Samples[(first + i + 1) % Capacity];
            points[i] = Point(a, b);
        }
        return true;
    }

    /// <summary>The link's last point (its rates over the last interval), when it has one.</summary>
    public SeriesPoint? Last(string link)
    {
        if (!_rings.TryGetValue(link, out var ring) || ring.Count < 2) return null;
        var b = ring.Samples[(ring.Next - 1 + Capacity) % Capacity];
        var a = ring.Samples[(ring.Next - 2 + Capacity) % Capacity];
        return Point(a, b);
    }

    private static SeriesPoint Point(Reading a, Reading b)
    {
        double seconds = Math.Max(1, b.Time - a.Time) / 1e9;
        return new SeriesPoint(
            b.Time / 1_000_000_000.0,
            (long)((b.RBytes - a.RBytes) * 8 / seconds),
            (long)((b.OBytes - a.OBytes) * 8 / seconds),
            (long)((b.IPackets - a.IPackets) / seconds),
            (long)((b.OPackets - a.OPackets) / seconds),
            b.Drops - a.Drops);
    }
}

/// <summary>One interval of a link's history: when it ended (seconds of the host's clock), bits and
/// packets per second each way, and the frames dropped in it.</summary>
public sealed record SeriesPoint(double T, long RBps, long OBps, long IPps, long OPps, long Drops);
