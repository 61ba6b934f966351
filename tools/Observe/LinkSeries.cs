using SmartOS.Kernel;
using SmartOS.Vnic;
using SmartOS.Zones;

namespace SmartOS.Cli.Observe;

/// <summary>
/// Per-link counters of one host sampled at a fixed interval into a bounded history (Topology.cs
/// has the theory statement of Observe). Each sample reads, for every datalink of the host, the
/// cumulative rbytes, obytes, ipackets and opackets and the sum of its drop counters (LinkStats:
/// every drop_* counter and link protection's four), and keeps the latest count of each drop
/// reason. Readers turn two samples into a rate.
///
/// Rules
///   1. Samples fall on multiples of the interval of the host's clock (the first at the first
///      multiple at or after the series is made), so the series of several hosts line up.
///      Two drivers: <see cref="Start"/> arms one timer on the host's scheduler (smartos boot: real
///      time); a scenario runner instead calls <see cref="Sample(long)"/> at each
///      <see cref="NextSampleTime"/> between its steps, so that a timer of its own never keeps a
///      virtual-time world from going idle (the runner's "nothing else is left to run").
///   2. The history is bounded: <see cref="Capacity"/> samples (an hour at 1 s by default); older
///      ones are overwritten. A link's ring starts small and doubles up to the capacity as it
///      fills, so a short run holds little; once it is full, a sample allocates nothing.
///   3. Links come and go: the set is listed again only when the MAC layer's Generation moves
///      (a create, delete or rename). A new link's history starts at the sample that first sees it;
///      a deleted link's ends at the last sample that saw it, and is kept (marked gone) until that
///      sample falls out of the history. A link is known by its link id (Topology.cs rule 2), so a
///      new link with a deleted link's name is a new history.
///   4. Sampling runs on the host's loop; reading may happen on any thread (the dashboard's
///      requests): both hold one lock, which is uncontended on the loop's side.
/// </summary>
public sealed class LinkSeries : IDisposable
{
    /// <summary>An hour of samples at one a second (issue 19's dashboard).</summary>
    public const int HourAtOneSecond = 3600;

    private const int FieldRBytes = 0, FieldOBytes = 1, FieldIPackets = 2, FieldOPackets = 3, FieldDrops = 4, Fields = 5;
    private const int FirstRing = 16;

    private static readonly string[] s_protectionDrops = ["macspoofed", "ipspoofed", "dhcpspoofed", "restricted"];

    private readonly object _gate = new();
    private readonly Host _host;
    private readonly long[] _times;
    private readonly List<Entry> _entries = [];
    private readonly Dictionary<Datalink, Entry> _present = new(ReferenceEqualityComparer.Instance);
    private readonly List<KeyValuePair<string, long>> _scratch = new(64);
    private readonly int[] _fieldIndex = new int[4];
    private readonly int[] _dropIndex;
    private readonly string[] _dropReasons;
    private readonly KTimer _timer;
    private long _count;
    private long _generation = -1;
    private long _next;

    /// <summary>One link's history: cumulative counters per sample, in a ring indexed by sample number.</summary>
    private sealed class Entry(Datalink link, long first, int reasons)
    {
        public readonly Datalink Link = link;
        public readonly int LinkId = link.LinkId;
        public string Name = link.Name;
        public readonly string Class = LinkNode.ClassName(link.Class);
        public readonly long First = first;
        public long End = -1; // exclusive end once gone; -1 while present
        public long GoneAt;
        public long[] Ring = new long[FirstRing * Fields];
        public readonly long[] Reasons = new long[reasons];
        public bool Seen;

        public int Slots => Ring.Length / Fields;
    }

    /// <param name="host">The host whose links are sampled.</param>
    /// <param name="intervalNs">Time between samples (1 s unless a test wants finer).</param>
    /// <param name="capacity">Samples kept per link (rule 2).</param>
    public LinkSeries(Host host, long intervalNs = Time.Second, int capacity = HourAtOneSecond)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(intervalNs, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(capacity, 2);
        _host = host;
        IntervalNs = intervalNs;
        Capacity = capacity;
        _times = new long[capacity];
        _timer = new KTimer(host.Scheduler, static s => ((LinkSeries)s!).Tick(), this);
        _next = AlignUp(host.Scheduler.Now);

        // Where each counter sits in LinkStats' kstat order, and which are drops: found by name, so a
        // drop counter added to LinkStats later (drop_*) is a reason here without a change.
        new LinkStats().Snapshot(_scratch);
        var drops = new List<int>();
        var reasons = new List<string>();
        string[] fields = ["rbytes", "obytes", "ipackets", "opackets"];
        for (int i = 0; i < _scratch.Count; i++)
        {
            string name = _scratch[i].Key;
            int f = Array.IndexOf(fields, name);
            if (f >= 0) _fieldIndex[f] = i;
            if (name.StartsWith("drop_", StringComparison.Ordinal) || Array.IndexOf(s_protectionDrops, name) >= 0)
            {
                drops.Add(i);
                reasons.Add(name);
            }
        }
        _dropIndex = [.. drops];
        _dropReasons = [.. reasons];
        _scratch.Clear();
    }

    public Host Host => _host;
    public long IntervalNs { get; }
    public int Capacity { get; }

    /// <summary>The kstat names of the drop reasons, in the order <see cref="LinkHistory.Drops"/> gives them.</summary>
    public IReadOnlyList<string> DropReasons => _dropReasons;

    /// <summary>When the next sample is due (rule 1).</summary>
    public long NextSampleTime
    {
        get { lock (_gate) return _next; }
    }

    /// <summary>Samples taken since the series was made (more than are held once the ring wraps).</summary>
    public long SamplesTaken
    {
        get { lock (_gate) return _count; }
    }

    /// <summary>Samples by a timer on the host's scheduler from the next multiple of the interval on
    /// (rule 1). On the loop only.</summary>
    public void Start()
    {
        if (!_timer.IsArmed) _timer.ArmAt(NextSampleTime);
    }

    /// <summary>Stops the timer; the history stays readable.</summary>
    public void Stop() => _timer.Cancel();

    public void Dispose() => Stop();

    private void Tick()
    {
        Sample(_host.Scheduler.Now);
        _timer.ArmAt(NextSampleTime);
    }

    private long AlignUp(long t) => t <= 0 ? 0 : (t + IntervalNs - 1) / IntervalNs * IntervalNs;

    /// <summary>Takes one sample now, on the host's loop.</summary>
    public void Sample() => Sample(_host.Scheduler.Now);

    /// <summary>Takes one sample, stamped <paramref name="timeNs"/> (a scenario runner passes the
    /// due time it ran the world to). The next sample is due at the next multiple of the interval
    /// after it. On the host's loop, or between a world's steps.</summary>
    public void Sample(long timeNs)
    {
        lock (_gate)
        {
            long previous = _count == 0 ? long.MinValue : _times[(_count - 1) % Capacity];
            if (timeNs < previous) timeNs = previous;
            if (_host.Mac.Generation != _generation) Relist(timeNs);
            long seq = _count;
            _times[seq % Capacity] = timeNs;
            foreach (var e in _entries)
                if (e.End < 0) Record(e, seq);
            _count = seq + 1;
            _next = AlignUp(timeNs + 1);
            Evict();
        }
    }

    /// <summary>Rule 3: marks links that went away, starts links that came, takes renames.</summary>
    private void Relist(long timeNs)
    {
        _generation = _host.Mac.Generation;
        foreach (var e in _entries) e.Seen = false;
        foreach (var link in _host.Mac.Links)
        {
            if (!_present.TryGetValue(link, out var found))
            {
                found = new Entry(link, _count, _dropIndex.Length);
                _entries.Add(found);
                _present.Add(link, found);
            }
            found.Seen = true;
            found.Name = link.Name;
        }
        foreach (var e in _entries)
        {
            if (e.End >= 0 || e.Seen) continue;
            e.End = _count;
            e.GoneAt = timeNs;
            _present.Remove(e.Link);
        }
    }

    private void Record(Entry e, long seq)
    {
        if (seq - e.First >= e.Slots && e.Slots < Capacity) Grow(e, seq);
        _scratch.Clear();
        e.Link.Stats.Snapshot(_scratch);
        int at = (int)(seq % e.Slots) * Fields;
        var ring = e.Ring;
        ring[at + FieldRBytes] = _scratch[_fieldIndex[0]].Value;
        ring[at + FieldOBytes] = _scratch[_fieldIndex[1]].Value;
        ring[at + FieldIPackets] = _scratch[_fieldIndex[2]].Value;
        ring[at + FieldOPackets] = _scratch[_fieldIndex[3]].Value;
        long drops = 0;
        for (int i = 0; i < _dropIndex.Length; i++)
        {
            long v = _scratch[_dropIndex[i]].Value;
            e.Reasons[i] = v;
            drops += v;
        }
        ring[at + FieldDrops] = drops;
    }

    /// <summary>Rule 2: doubles a ring (up to the capacity), keeping its samples at their new places.</summary>
    private void Grow(Entry e, long seq)
    {
        int slots = (int)Math.Min((long)e.Slots * 2, Capacity);
        var ring = new long[slots * Fields];
        long from = Math.Max(e.First, seq - e.Slots);
        for (long s = from; s < seq; s++)
            Array.Copy(e.Ring, (int)(s % e.Slots) * Fields, ring, (int)(s % slots) * Fields, Fields);
        e.Ring = ring;
    }

    /// <summary>Rule 3: a gone link is dropped once none of its samples is held any more.</summary>
    private void Evict()
    {
        long oldest = _count - Capacity;
        for (int i = _entries.Count - 1; i >= 0; i--)
            if (_entries[i].End >= 0 && _entries[i].End <= oldest) _entries.RemoveAt(i);
    }

    /// <summary>The history of every link held, in link id order, each with at most
    /// <paramref name="lastSamples"/> samples (the newest). Allocates: for readers, not the loop's hot path.</summary>
    public IReadOnlyList<LinkHistory> ReadAll(int lastSamples = int.MaxValue)
    {
        lock (_gate)
        {
            var list = new List<LinkHistory>(_entries.Count);
            foreach (var e in _entries) list.Add(History(e, lastSamples));
            list.Sort((a, b) => a.LinkId.CompareTo(b.LinkId));
            return list;
        }
    }

    /// <summary>The history of the link with <paramref name="linkId"/> (a present link first, else
    /// the newest gone one), or null.</summary>
    public LinkHistory? ReadLink(int linkId, int lastSamples = int.MaxValue)
    {
        lock (_gate)
        {
            Entry? best = null;
            foreach (var e in _entries)
                if (e.LinkId == linkId && (best == null || e.End < 0 || (best.End >= 0 && e.End > best.End))) best = e;
            return best == null ? null : History(best, lastSamples);
        }
    }

    /// <summary>The history of the present link named <paramref name="name"/>, or null.</summary>
    public LinkHistory? ReadLink(string name, int lastSamples = int.MaxValue)
    {
        lock (_gate)
        {
            foreach (var e in _entries)
                if (e.End < 0 && e.Name == name) return History(e, lastSamples);
            return null;
        }
    }

    private LinkHistory History(Entry e, int lastSamples)
    {
        long end = e.End >= 0 ? e.End : _count;
        long from = Math.Max(e.First, Math.Max(end - e.Slots, _count - Capacity));
        if (lastSamples >= 0 && end - from > lastSamples) from = end - lastSamples;
        var samples = new LinkSample[Math.Max(0, end - from)];
        for (long s = from; s < end; s++)
        {
            int at = (int)(s % e.Slots) * Fields;
            var r = e.Ring;
            samples[s - from] = new LinkSample(_times[s % Capacity], r[at + FieldRBytes], r[at + FieldOBytes], r[at + FieldIPackets],
                r[at + FieldOPackets], r[at + FieldDrops]);
        }
        var drops = new DropCount[_dropReasons.Length];
        for (int i = 0; i < drops.Length; i++) drops[i] = new DropCount(_dropReasons[i], e.Reasons[i]);
        return new LinkHistory(Topology.LinkId(_host.Name, e.LinkId), e.LinkId, _host.Name, e.Name, e.Class,
            e.End >= 0 ? e.GoneAt : null, samples, drops);
    }
}

/// <summary>One sample of a link: cumulative counters at <see cref="TimeNs"/> (as kstat link:0:NAME
/// tells them; a counter reset, kstat -z style, shows as a step down).</summary>
/// <param name="Drops">The sum of every drop reason's counter.</param>
public readonly record struct LinkSample(long TimeNs, long RBytes, long OBytes, long IPackets, long OPackets, long Drops);

/// <summary>A drop reason (its kstat name) and its count.</summary>
public readonly record struct DropCount(string Reason, long Count);

/// <summary>The samples held of one link (LinkSeries rule 3).</summary>
/// <param name="Id">The link's id (Topology.cs rule 2), as in <see cref="LinkNode.Id"/>.</param>
/// <param name="GoneAtNs">When the link was first seen gone, or null while it exists.</param>
/// <param name="Drops">The latest count of each drop reason, in <see cref="LinkSeries.DropReasons"/> order.</param>
public sealed record LinkHistory(string Id, int LinkId, string Host, string Name, string Class, long? GoneAtNs,
    IReadOnlyList<LinkSample> Samples, IReadOnlyList<DropCount> Drops)
{
    /// <summary>Bits per second received and sent between sample <paramref name="i"/> - 1 and
    /// <paramref name="i"/> (0 for the first, and across a counter reset).</summary>
    public (double ReceivedBps, double SentBps) Throughput(int i)
    {
        if (i <= 0 || i >= Samples.Count) return (0, 0);
        var a = Samples[i - 1];
        var b = Samples[i];
        double dt = (b.TimeNs - a.TimeNs) / 1e9;
        if (dt <= 0) return (0, 0);
        return (Math.Max(0, b.RBytes - a.RBytes) * 8 / dt, Math.Max(0, b.OBytes - a.OBytes) * 8 / dt);
    }
}
