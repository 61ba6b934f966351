using System.Collections.Concurrent;
using System.Runtime.ExceptionServices;

namespace SmartOS.Kernel;

/*
 * Timeline: one world's virtual time, run on one thread or on several (ARCHITECTURE.md, "Many hosts,
 * many cores"), with the same bytes out either way.
 *
 * Terms
 *   domain     one Scheduler of the timeline: the world's own (domain 0, the root: what the world
 *              itself arms, a test's callbacks) and one per host (domains 1, 2, ... in the order the
 *              hosts were made). Each has its own heap, clock and arming sequence.
 *   link       something that carries work from one domain to another after a delay (a wire between
 *              two hosts' NICs: ITimelineLink). Nothing else may: hosts share no mutable state.
 *   cell       the domains joined by links of zero delay (a link of zero delay has no lookahead, so
 *              its two ends can never run apart: they are one cell, whatever the thread count).
 *   lookahead  L, the smallest delay of a link between two cells. Work sent across it at time t
 *              arrives no earlier than t + L.
 *   window     an interval [S, S + L - 1] of virtual time in which every cell runs its own events
 *              without hearing from any other: nothing sent in it can arrive before its end.
 *   barrier    the moment between two windows, when one thread runs alone: it hands over what links
 *              carried across cells (link.Exchange, in the order the links were made), runs the
 *              root's events, tests the caller's condition and plans the next window.
 *   partition  the cells one thread runs; cell c goes to partition c mod P, P = min(threads, cells).
 *
 * Rules
 *   1. The serial order of events is (time, domain, the domain's arming sequence): at an instant the
 *      lower domain's events run first, and a domain's own events in the order they were armed. A
 *      host's sequence counts only its own timers, so its order does not depend on other hosts.
 *   2. A timeline with no link between cells (one host, or hosts joined only by zero-delay wires)
 *      runs as one merge of its domains in that order, one event at a time, as the single world
 *      scheduler ran before (RunOne, and what the real-time driver uses, is always this merge).
 *   3. With a link between cells the timeline runs in windows, whatever the thread count: on one
 *      thread the cells of a window run one after another, on P threads side by side. Inside a cell
 *      events run in rule 1's order; cells do not touch each other inside a window (rule 6), and
 *      what a link carried between cells is handed over at the barrier in link order, so the state
 *      after every window, and therefore every byte of output, is the same for any P.
 *   4. A window starts at the earliest pending event (idle time is skipped) and ends at the least of
 *      S + L - 1, the instant before the root's next event, and the caller's limit. The root's
 *      events run only at barriers, before the hosts' events of the same instant (rule 1).
 *   5. RunUntil(condition) tests the condition at barriers only (after each window and after each
 *      root event), so a scenario notices a command's end at the barrier after it: the same barrier
 *      on one thread as on many. The clock then reads the window's end. RunUntil(time) leaves the
 *      clock at time, RunUntilIdle at the last event run; every domain's clock is brought to the
 *      timeline's at the end of each run, so commands typed between runs see one time.
 *   6. During a window a domain's timers are armed and cancelled only by the events of its own
 *      cell (Scheduler.Guard); the root's by none. Breaking this throws, on one thread as on
 *      several, so a path between hosts that bypasses the links is found by any test, not by a
 *      rare race.
 *   7. Randomness is per host and per link direction (HostRandom), never shared between cells.
 *
 * Threads: P - 1 workers come from a process-wide pool of parked threads (the only static state
 * here, a concurrent stack) and meet the caller's thread at a WindowBarrier whose last arrival runs
 * the barrier of rule 3. Real time (smartos boot) never runs in windows.
 *
 * The barrier (where a parallel run loses its time). Per window a run pays the barrier's serial
 * work, the imbalance between the partitions (the faster waits for the slower), the wake-up of the
 * waiters, and what the second core adds to the work (cache lines that move between cores). So:
 *   - WindowBarrier is a sense-reversing counter on cache lines of its own. A waiter first spins in
 *     pause loops without leaving its core (with no more threads than cores), then spins yielding,
 *     then blocks. The pause budget adapts: a wait that outlasts it halves it, one that ends inside
 *     it grows it back. On an idle machine the release is seen within nanoseconds (a futex wake costs
 *     5-50 us); on a busy one the thread waited for is often off its core, and a fixed budget of
 *     20,000 loops made a two-thread run 15 times slower at a load of 37.
 *   - The serial work is O(partitions + links), not O(domains): each partition writes its earliest
 *     pending event to a padded slot of its own before it arrives (the minimum its merge found
 *     last), each link's Exchange returns the earliest work it armed, and the plan is the least of
 *     those and the root's next event. Only the first plan of a run and a plan after the root's
 *     events (which may arm any host's timers) read every domain. Rule 6's guards are set once per
 *     run; the barrier's thread passes them all (Scheduler.AnyCell), and each partition brings its
 *     own domains' clocks to the window's start, so the barrier writes nothing of another thread's.
 *   - False sharing: a wire's direction is written by two threads, the sender's (serialiser,
 *     kept frames) and the receiver's (frames in flight, arrival); their state and timers sit on
 *     separate cache lines (vnic/Wire.cs, Lane). Nothing is allocated per window by the timeline.
 *
 * Measuring. An ITimelineProbe (Probe) is told when each partition starts and ends its share of a
 * window and when the serial work starts and ends; the benchmark (`parallel`) reads each thread's
 * CPU time there, which a thread waiting for a core does not accumulate, so it gives the serial
 * fraction, the imbalance and the extra work of the second core on a busy machine too. Its figures
 * for 2 hosts x 4 zones, a 100 us wire and 244 events per window, in ten runs at loads of 6-42
 * (noisy: a thread that is descheduled finds its caches cold): on one thread 67-104 us of work and
 * 3-5 us of serial barrier per window (a serial fraction of about 5%, most of it the copy of the
 * frames that crossed); on two, an imbalance of 1.09-1.20x inside each window, and from 19 us less
 * to 50 us more work in all than on one (more at higher loads). Taken together (the slower
 * partition plus the serial work, beside one thread's work plus serial work) they bound two
 * threads at 0.96-2.08x with a free wake-up, most runs 1.3-1.45x. Wall-clock speedups at loads of
 * 6-14 were 0.49-1.17x, beside 0.56-1.15x for the barrier before this work in alternating runs (on
 * an idle machine before it: 566 ms on one thread, 588 ms on two): no difference that this machine
 * could show. The 1.8x goal needs the next step below more than a faster barrier.
 *
 * Not done yet, by what the figures say it would give:
 *   - Windows that overlap by one (a partition may run window k + 1 as soon as every other has
 *     finished window k: what crosses in window k arrives after its end), which hides the
 *     per-window imbalance instead of paying it at every barrier; it needs each lane's kept frames
 *     double-buffered by window parity, the receiver taking them in at the start of its next window
 *     (in parallel, so the copy leaves the serial path too) and the sender freeing its buffers a
 *     window later, and a barrier of everyone only where the root has an event or a condition is to
 *     be tested.
 *   - Wider windows when traffic is one-sided: a cell may run to the least of the other cells' next
 *     event times plus the lookahead (and, with two cells, its own next event plus twice it); with
 *     traffic both ways, as in the benchmark, this gives nothing.
 *   - The barrier's exchange visits every link; with thousands of wires it should visit only those
 *     a partition marked as carrying frames (in link order). Cells are spread over threads by
 *     count, not by load; a partition merges its domains by scanning them (fine for tens of hosts
 *     per thread, not thousands).
 * Open: one run of the parallel benchmark in about a dozen gave a different transcript on two
 * threads (fewer events); the tests and every other run agree byte for byte, and so did every run
 * of this work's (at loads of 33-54). Suspected, not proven: a continuation that left its host's
 * thread (see Worker's stack size). One such path, not the benchmark's (its flows are TCP): iperf's
 * UDP receiver cancels through a continuation on the default task scheduler, which runs inline
 * unless the stack is deep, and then on a pool thread, where arming a host's timer inside a window
 * throws and is lost with the task.
 */

/// <summary>Something that carries work between two domains of a timeline after a delay (Timeline.cs).</summary>
public interface ITimelineLink
{
    /// <summary>The domain at one end.</summary>
    Scheduler EndA { get; }

    /// <summary>The domain at the other end.</summary>
    Scheduler EndB { get; }

    /// <summary>The least time between a send at one end and its arrival at the other.</summary>
    long DelayNs { get; }

    /// <summary>Set by the timeline: while true the link's ends run on different cells, so the link
    /// keeps what it carries until <see cref="Exchange"/> instead of handing it over at once.</summary>
    bool Crossing { set; }

    /// <summary>At a barrier: hands over to the far end what was sent since the last one, in send order.
    /// Returns the earliest time of the work it armed at the far end (long.MaxValue: none), so the
    /// barrier plans the next window without reading every domain's heap.</summary>
    long Exchange();
}

/// <summary>
/// Watches a run in windows from outside (a benchmark's clock; Timeline.cs, "Measuring"). Called on
/// the partitions' threads; nothing the timeline does depends on it.
/// </summary>
public interface ITimelineProbe
{
    /// <summary>A partition's thread starts its share of a window.</summary>
    void WindowBegin(int partition);

    /// <summary>A partition's thread has run its share and is about to wait at the barrier.</summary>
    void WindowEnd(int partition);

    /// <summary>The barrier's serial work starts (on the last thread to arrive).</summary>
    void BarrierBegin();

    /// <summary>The barrier's serial work ends; <paramref name="window"/>: whether another window follows.</summary>
    void BarrierEnd(bool window);
}

/// <summary>The domains of one world's virtual time and the loop that runs them (see the theory statement above).</summary>
public sealed class Timeline
{
    private readonly List<Scheduler> _domains = [];
    private readonly List<ITimelineLink> _links = [];
    private bool _planned;
    private int _plannedThreads;
    private long _lookahead = long.MaxValue;
    private int[] _cellOf = [];
    private Scheduler[][] _parts = [];
    private int _threads = 1;

    // The state of a run in windows, read by every partition's thread (written only at barriers).
    private Func<bool>? _done;
    private long _limit;
    private long _windowEnd;
    private long _windowStart;
    private bool _windowRan;
    private volatile bool _stop;
    private Exception? _error;
    private Exception?[] _partErrors = [];
    // Each partition's earliest pending event after its share of a window, written by its own
    // thread before it arrives at the barrier; slots a cache line pair apart (Pad longs), so the
    // partitions' writes never share a line. _rescan: the next plan reads every domain instead
    // (the first of a run, and after the root's events, which may arm any host's timers).
    private const int Pad = 16;
    private long[] _partNext = [];
    private bool _rescan;

    /// <summary>Watches the windows (a benchmark's clock); null: nothing is called.</summary>
    public ITimelineProbe? Probe { get; set; }

    /// <summary>Makes a timeline whose domain 0 is <paramref name="root"/> (the world's own scheduler).</summary>
    public Timeline(Scheduler root)
    {
        if (root.Timeline != null) throw new ArgumentException("the scheduler already belongs to a timeline", nameof(root));
        root.Timeline = this;
        root.Domain = 0;
        _domains.Add(root);
        Root = root;
    }

    /// <summary>Domain 0: the world's own events.</summary>
    public Scheduler Root { get; }

    /// <summary>The timeline's clock: the last barrier's, or the last event's in a merge.</summary>
    public long Now { get; private set; }

    /// <summary>Threads a run in windows may use (1: every cell on the caller's thread).</summary>
    public int Threads
    {
        get => _threads;
        set
        {
            if (value < 1) throw new ArgumentOutOfRangeException(nameof(value), "a timeline runs on at least one thread");
            _threads = value;
        }
    }

    /// <summary>Windows run since the timeline began (each ends at a barrier).</summary>
    public long Windows { get; private set; }

    /// <summary>The lookahead of the last plan (long.MaxValue: no link between cells, so no windows).</summary>
    public long Lookahead
    {
        get
        {
            Plan();
            return _lookahead;
        }
    }

    /// <summary>Threads the next run in windows uses (1 when it runs as a merge).</summary>
    public int Partitions
    {
        get
        {
            Plan();
            return _lookahead == long.MaxValue ? 1 : _parts.Length;
        }
    }

    internal RealTimeDriver? Driver { get; set; }

    public IReadOnlyList<Scheduler> Domains => _domains;

    /// <summary>A new domain (a host's scheduler), its clock at the timeline's.</summary>
    public Scheduler AddDomain()
    {
        var s = new Scheduler { Timeline = this, Domain = _domains.Count };
        s.SetNow(Now);
        _domains.Add(s);
        _planned = false;
        return s;
    }

    public void AddLink(ITimelineLink link)
    {
        if (link.EndA.Timeline != this || link.EndB.Timeline != this) throw new ArgumentException("both ends of a link must be domains of this timeline", nameof(link));
        _links.Add(link);
        _planned = false;
    }

    public void RemoveLink(ITimelineLink link)
    {
        _links.Remove(link);
        link.Crossing = false;
        _planned = false;
    }

    public long EventsRun
    {
        get
        {
            long n = 0;
            foreach (var d in _domains) n += d.DomainEventsRun;
            return n;
        }
    }

    public int PendingCount
    {
        get
        {
            int n = 0;
            foreach (var d in _domains) n += d.LocalPending;
            return n;
        }
    }

    public long NextEventTime
    {
        get
        {
            long next = long.MaxValue;
            foreach (var d in _domains) next = Math.Min(next, d.LocalNextTime());
            return next;
        }
    }

    /// <summary>Rule 2: runs the next event of the merge, if at or before <paramref name="limit"/>.</summary>
    public bool RunOne(long limit)
    {
        Scheduler? best = null;
        long when = long.MaxValue;
        for (int i = 0; i < _domains.Count; i++)
        {
            long w = _domains[i].LocalNextTime();
            if (w < when)
            {
                when = w;
                best = _domains[i];
            }
        }
        if (best == null || when > limit) return false;
        if (when > Now) Now = when;
        Root.SetNow(when); // code that reads the world's clock inside an event sees the event's time
        return best.RunLocal(limit);
    }

    public void RunUntil(long time)
    {
        if (Windowed()) RunWindows(time, null);
        else while (RunOne(time)) { }
        if (time > Now) Now = time;
        SyncClocks();
    }

    public bool RunUntil(Func<bool> done, long deadline = long.MaxValue)
    {
        bool result;
        if (Windowed()) result = RunWindows(deadline, done);
        else
        {
            result = true;
            while (!done())
            {
                if (!RunOne(deadline))
                {
                    result = done();
                    break;
                }
            }
        }
        SyncClocks();
        return result;
    }

    public void RunUntilIdle(long deadline = long.MaxValue)
    {
        if (Windowed())
        {
            RunWindows(deadline, null);
            long last = 0;
            foreach (var d in _domains) last = Math.Max(last, d.Now);
            Now = last;
        }
        else while (RunOne(deadline)) { }
        SyncClocks();
    }

    internal void AdvanceTo(long time)
    {
        if (time > Now) Now = time;
        SyncClocks();
    }

    private void SyncClocks()
    {
        foreach (var d in _domains) d.SetNow(Now);
    }

    private bool Windowed()
    {
        Plan();
        return _lookahead != long.MaxValue && Driver == null;
    }

    /// <summary>Finds the cells, the lookahead and the partitions, when hosts, links or the thread count changed.</summary>
    private void Plan()
    {
        if (_planned && _plannedThreads == _threads) return;
        int n = _domains.Count;
        var parent = new int[n];
        for (int i = 0; i < n; i++) parent[i] = i;
        int Find(int i)
        {
            while (parent[i] != i) i = parent[i] = parent[parent[i]];
            return i;
        }
        bool touchesRoot = false;
        foreach (var l in _links)
        {
            if (l.EndA.Domain == 0 || l.EndB.Domain == 0) touchesRoot = true;
            if (l.DelayNs <= 0)
            {
                int a = Find(l.EndA.Domain), b = Find(l.EndB.Domain);
                if (a != b) parent[Math.Max(a, b)] = Math.Min(a, b);
            }
        }
        long lookahead = long.MaxValue;
        foreach (var l in _links)
            if (Find(l.EndA.Domain) != Find(l.EndB.Domain)) lookahead = Math.Min(lookahead, l.DelayNs);
        // The root's events may touch any host: a link to it would put everything in one cell.
        if (touchesRoot) lookahead = long.MaxValue;
        // Cells numbered by their lowest host domain; the root belongs to none.
        _cellOf = new int[n];
        var cellIds = new Dictionary<int, int>();
        for (int i = 1; i < n; i++)
        {
            int r = Find(i);
            if (!cellIds.TryGetValue(r, out int c)) cellIds[r] = c = cellIds.Count;
            _cellOf[i] = c;
        }
        int parts = Math.Max(1, Math.Min(_threads, cellIds.Count));
        var lists = new List<Scheduler>[parts];
        for (int p = 0; p < parts; p++) lists[p] = [];
        for (int i = 1; i < n; i++) lists[_cellOf[i] % parts].Add(_domains[i]);
        _parts = [.. lists.Select(l => l.ToArray())];
        _partErrors = new Exception?[parts];
        _partNext = new long[parts * Pad];
        _lookahead = lookahead;
        _planned = true;
        _plannedThreads = _threads;
    }

    private void SetCrossings(bool on)
    {
        foreach (var l in _links) l.Crossing = on && _cellOf[l.EndA.Domain] != _cellOf[l.EndB.Domain];
    }

    /// <summary>Every link's handover, in link order; returns the earliest work it armed.</summary>
    private long Exchange()
    {
        long earliest = long.MaxValue;
        for (int i = 0; i < _links.Count; i++) earliest = Math.Min(earliest, _links[i].Exchange());
        return earliest;
    }

    /// <summary>Rule 3: windows until the limit, the condition, or nothing left to run.</summary>
    private bool RunWindows(long limit, Func<bool>? done)
    {
        _done = done;
        _limit = limit;
        _stop = false;
        _error = null;
        _windowRan = false;
        _rescan = true;
        Array.Clear(_partErrors);
        var workers = new Worker[_parts.Length - 1];
        for (int p = 1; p < _parts.Length; p++) workers[p - 1] = Worker.Rent();
        SetCrossings(true);
        SetGuards();
        try
        {
            Between();
            if (!_stop)
            {
                if (_parts.Length == 1)
                {
                    while (!_stop)
                    {
                        RunPart(0);
                        Between();
                    }
                }
                else RunParallel(workers);
            }
            else foreach (var w in workers) w.GiveBack();
        }
        finally
        {
            ClearGuards();
            Exchange();
            SetCrossings(false);
            _done = null;
        }
        if (_error != null) ExceptionDispatchInfo.Throw(_error);
        return done == null || done();
    }

    private void RunParallel(Worker[] workers)
    {
        int n = _parts.Length;
        var barrier = new WindowBarrier(n, Between, spin: n <= Environment.ProcessorCount);
        using var finished = new CountdownEvent(n - 1);
        for (int p = 1; p < n; p++)
        {
            int part = p;
            workers[p - 1].Run(() =>
            {
                try { PartLoop(part, barrier); }
                finally { finished.Signal(); }
            });
        }
        PartLoop(0, barrier);
        finished.Wait();
    }

    private void PartLoop(int part, WindowBarrier barrier)
    {
        while (!_stop)
        {
            RunPart(part);
            barrier.SignalAndWait();
        }
    }

    /// <summary>One partition's share of the window: its domains merged in rule 1's order.</summary>
    private void RunPart(int part)
    {
        var doms = _parts[part];
        long end = _windowEnd;
        var probe = Probe;
        probe?.WindowBegin(part);
        try
        {
            // Each partition brings its own domains' clocks to the window's start (rule 5), so the
            // barrier's thread never writes to another thread's schedulers.
            for (int i = 0; i < doms.Length; i++) doms[i].SetNow(_windowStart);
            while (true)
            {
                Scheduler? best = null;
                long when = long.MaxValue;
                for (int i = 0; i < doms.Length; i++)
                {
                    long w = doms[i].LocalNextTime();
                    if (w < when)
                    {
                        when = w;
                        best = doms[i];
                    }
                }
                if (best == null || when > end)
                {
                    // The partition's earliest pending event, for the barrier's plan.
                    _partNext[part * Pad] = when;
                    return;
                }
                Scheduler.RunningCell = best.Guard;
                best.RunLocal(end);
            }
        }
        catch (Exception e)
        {
            _partErrors[part] ??= e;
        }
        finally
        {
            Scheduler.RunningCell = 0;
            probe?.WindowEnd(part);
        }
    }

    /// <summary>The barrier (rules 3 to 5): one thread, every partition stopped.</summary>
    private void Between()
    {
        var probe = Probe;
        probe?.BarrierBegin();
        // The barrier's thread may touch any domain's timers (rule 6): every partition is stopped.
        Scheduler.RunningCell = Scheduler.AnyCell;
        try
        {
            if (_windowRan)
            {
                if (_windowEnd > Now) Now = _windowEnd;
                _windowRan = false;
            }
            long exchanged = Exchange();
            for (int p = 0; p < _partErrors.Length; p++)
            {
                if (_partErrors[p] is { } e)
                {
                    _error ??= e;
                    _stop = true;
                    return;
                }
            }
            while (true)
            {
                if (_done != null && _done())
                {
                    _stop = true;
                    return;
                }
                long hosts = long.MaxValue;
                if (_rescan)
                {
                    for (int i = 1; i < _domains.Count; i++) hosts = Math.Min(hosts, _domains[i].LocalNextTime());
                    _rescan = false;
                }
                else
                {
                    // Each partition's own minimum and what the links just armed: O(partitions).
                    hosts = exchanged;
                    for (int p = 0; p < _parts.Length; p++) hosts = Math.Min(hosts, _partNext[p * Pad]);
                }
                long root = Root.LocalNextTime();
                long first = Math.Min(hosts, root);
                if (first == long.MaxValue || first > _limit)
                {
                    _stop = true;
                    return;
                }
                long start = Math.Max(first, Now);
                Now = start;
                Root.SetNow(start);
                if (root <= start)
                {
                    // Rule 4: the world's own events of this instant, before the hosts'.
                    Root.RunLocal(start);
                    _rescan = true;
                    continue;
                }
                long end = _lookahead >= long.MaxValue - start ? long.MaxValue : start + _lookahead - 1;
                end = Math.Min(Math.Min(end, root - 1), _limit);
                _windowStart = start;
                _windowEnd = end;
                _windowRan = true;
                Windows++;
                return;
            }
        }
        catch (Exception e)
        {
            _error ??= e;
            _stop = true;
        }
        finally
        {
            Scheduler.RunningCell = 0;
            probe?.BarrierEnd(!_stop);
        }
    }

    /// <summary>Rule 6's guards, set once for a run in windows (the barrier's thread passes them all).</summary>
    private void SetGuards()
    {
        Root.Guard = -1;
        foreach (var part in _parts)
            foreach (var d in part) d.Guard = _cellOf[d.Domain] + 1;
    }

    private void ClearGuards()
    {
        foreach (var d in _domains) d.Guard = 0;
    }

    /// <summary>
    /// The meeting of the partitions' threads after each window: the last to arrive runs the barrier
    /// work alone and releases the others. A sense-reversing counter (the generation flips once per
    /// barrier, so a fast thread cannot run into the next barrier's count). A waiter first spins on
    /// the generation without leaving its core, then spins yielding it, then blocks on a monitor.
    /// The counter, the generation, the sleepers and the spin budget sit on cache lines of their own.
    ///
    /// The first phase's length adapts: with no more threads than cores on an idle machine the
    /// release comes within the imbalance of a window (~10 us) and is seen at once, where a yield
    /// or a futex wake costs microseconds each; on a busy machine the thread waited for is often
    /// off its core, and a waiter that kept spinning kept a core from it (a fixed budget of 20,000
    /// pause loops made a two-thread run 15 times slower under a load of 37, and 4,000 still 2-4
    /// times slower than yields alone). So the budget is small, each wait that outlasts it halves
    /// it, and each that ends inside it (or in the first yields) grows it back by a sixteenth of the
    /// most it may be.
    /// </summary>
    private sealed class WindowBarrier(int participants, Action between, bool spin)
    {
        // Of Thread.SpinWait(8): some microseconds. A yield on an idle core returns at once, so a
        // longer pure spin gains little there, and under load (23-42) runs with a budget of 4,000
        // were 2-4 times slower on two threads than with SpinWait's yields alone.
        private const int MaxPureSpins = 256;
        private const int YieldSpins = 2000;
        private const int QuickYields = 16;
        private readonly object _gate = new();
        private readonly int _participants = participants;
        private readonly bool _spin = spin;
        private PaddedInt _remaining = new() { Value = participants };
        private PaddedInt _generation;
        private PaddedInt _sleepers;
        private PaddedInt _budget = new() { Value = spin ? MaxPureSpins / 4 : 0 };

        public void SignalAndWait()
        {
            int generation = Volatile.Read(ref _generation.Value);
            if (Interlocked.Decrement(ref _remaining.Value) == 0)
            {
                between(); // catches its own exceptions (Between)
                _remaining.Value = _participants;
                Interlocked.Exchange(ref _generation.Value, generation + 1); // a full fence before reading the sleepers
                if (Volatile.Read(ref _sleepers.Value) != 0)
                {
                    lock (_gate) Monitor.PulseAll(_gate);
                }
                return;
            }
            int budget = Volatile.Read(ref _budget.Value);
            for (int i = 0; i < budget; i++)
            {
                if (Volatile.Read(ref _generation.Value) != generation)
                {
                    Grow(budget);
                    return;
                }
                Thread.SpinWait(8);
            }
            var wait = new SpinWait();
            for (int i = 0; i < YieldSpins; i++)
            {
                if (Volatile.Read(ref _generation.Value) != generation)
                {
                    if (i < QuickYields) Grow(budget);
                    else Volatile.Write(ref _budget.Value, budget / 2);
                    return;
                }
                wait.SpinOnce(sleep1Threshold: -1);
            }
            Volatile.Write(ref _budget.Value, budget / 2);
            lock (_gate)
            {
                Interlocked.Increment(ref _sleepers.Value); // a full fence before reading the generation
                while (Volatile.Read(ref _generation.Value) == generation) Monitor.Wait(_gate);
                Interlocked.Decrement(ref _sleepers.Value);
            }
        }

        private void Grow(int budget)
        {
            if (_spin && budget < MaxPureSpins) Volatile.Write(ref _budget.Value, Math.Min(MaxPureSpins, budget + MaxPureSpins / 16));
        }

        [System.Runtime.InteropServices.StructLayout(System.Runtime.InteropServices.LayoutKind.Explicit, Size = 128)]
        private struct PaddedInt
        {
            [System.Runtime.InteropServices.FieldOffset(64)] public int Value;
        }
    }

    /// <summary>A parked thread that runs one partition's windows for a run, then parks again.</summary>
    private sealed class Worker
    {
        // Process-wide and thread-safe: timelines of different worlds may rent at the same time.
        private static readonly ConcurrentStack<Worker> s_idle = new();
        private readonly Thread _thread;
        private readonly SemaphoreSlim _go = new(0);
        private Action? _job;

        private Worker()
        {
            // The caller's thread (a process's main thread) has an 8 MiB stack; a worker gets as much,
            // so that a deep synchronous path (a frame through a switch into a stack and a program)
            // never meets .NET's stack guard on one thread and not on another: where that guard
            // trips, a continuation meant to run inline goes to the thread pool instead.
            _thread = new Thread(Loop, 8 << 20) { IsBackground = true, Name = "smartos-window" };
            _thread.Start();
        }

        public static Worker Rent() => s_idle.TryPop(out var w) ? w : new Worker();

        public void GiveBack() => s_idle.Push(this);

        public void Run(Action job)
        {
            _job = job;
            _go.Release();
        }

        private void Loop()
        {
            while (true)
            {
                _go.Wait();
                var job = _job!;
                _job = null;
                job();
                s_idle.Push(this);
            }
        }
    }
}
