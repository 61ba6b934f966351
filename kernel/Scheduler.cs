using System.Diagnostics;

namespace SmartOS.Kernel;

/// <summary>
/// The event loop of one simulated host, or of a world's own events (see Kernel.cs). A binary heap
/// of (time, sequence) keeps equal-time events in arming order. Cancelled timers leave stale heap
/// entries that are skipped when they surface, so cancel is O(1) and the heap never needs a search.
///
/// Moving an armed timer later (TCP pushes its retransmission timer forward on every ACK), or
/// re-arming a cancelled one at or after its old entry (TCP cancels its delayed-ACK timer on every
/// segment it sends and arms it again on the next one it receives), touches only the timer: its
/// heap entry stays where it is, and when that entry surfaces before the timer's due time it is put
/// back at the due time with the sequence number the timer took when it was re-armed (Linux's
/// mod_timer on a pending timer does the same work lazily); a cancelled timer's entry that surfaces
/// is dropped. The order of events is therefore exactly that of a cancel and a fresh insert, at one
/// heap operation per surfacing instead of two per re-arm.
///
/// Events armed for the current time (zero-delay posts: a stack's drain, a socket's wake-up, a
/// program's continuation; half of a TCP transfer's events) wait in a FIFO beside the heap. They
/// arrive in (time, sequence) order, since the clock never goes back and sequence numbers only grow,
/// so each costs an append and a take instead of a sift to the heap's root and back; the next event
/// is the lesser of the FIFO's head and the heap's top, so the order is the heap's alone.
///
/// A scheduler made alone (tests, a rig of one MAC layer) is a whole timeline by itself. A world's
/// schedulers are the domains of one <see cref="Timeline"/> (Timeline.cs: the order of events
/// across domains, and how windows of them run on several threads): each host has its own, with its
/// own sequence numbers, so what a host does never depends on how busy another host is. On such a
/// scheduler the Run methods, NextEventTime, PendingCount and EventsRun are the timeline's: running
/// a host's scheduler runs the world, as it did when every host shared one scheduler.
/// </summary>
public sealed class Scheduler
{
    // Heap entries hold no references, so moving them up and down the heap needs no GC write
    // barrier; the timer and the generation it had when armed sit in a slot of their own, taken at
    // insertion and given back when the entry leaves the heap.
    private struct Entry
    {
        public long When;
        public long Seq;
        public int Slot;
    }

    private Entry[] _heap = new Entry[256];
    // The FIFO of entries armed for the then-current time (theory statement): a ring, a power of two long.
    private Entry[] _soon = new Entry[64];
    private int _soonHead, _soonCount;
    private KTimer?[] _slotTimer = new KTimer?[256];
    private long[] _slotGeneration = new long[256];
    private int[] _freeSlots = new int[256];
    private int _freeCount;
    private int _slotsUsed;
    private int _count;
    private long _seq;
    private long _now;
    private long _eventsRun;
    private int _liveTimers;
    private int _stale;
    private RealTimeDriver? _driver;

    /// <summary>The host's sched probes (Trace/SchedProbes.cs): each event is a turn of a thread.</summary>
    public Trace.SchedProbes? SchedProbes { get; internal set; }

    /// <summary>The timeline this scheduler is a domain of (null: it is a timeline by itself).</summary>
    public Timeline? Timeline { get; internal set; }

    /// <summary>Its place among the timeline's domains: at equal times a lower domain runs first.</summary>
    internal int Domain;

    /// <summary>Whose events may arm and cancel this domain's timers (Timeline.cs rule 6): 0 anyone
    /// (a merge, a barrier, between runs), -1 no one (the world's own domain during a window), else
    /// the events of the cell numbered Guard - 1.</summary>
    internal int Guard;

    // The cell whose event this thread is running inside a window (Guard's numbering; 0: none).
    [ThreadStatic] private static int t_runningCell;

    /// <summary>RunningCell of the barrier's thread (Timeline.cs rule 6): every partition is stopped, so
    /// it may touch any domain's timers; no other thread may while the run lasts.</summary>
    internal const int AnyCell = int.MinValue;

    internal static int RunningCell
    {
        get => t_runningCell;
        set => t_runningCell = value;
    }

    /// <summary>The driver that runs this scheduler in real time, if any: work from other threads must
    /// reach the loop through it (LoopSynchronizationContext.Post). A domain's is its timeline's.</summary>
    internal RealTimeDriver? Driver
    {
        get => Timeline != null ? Timeline.Driver : _driver;
        set
        {
            if (Timeline != null) Timeline.Driver = value;
            else _driver = value;
        }
    }

    /// <summary>The current time in nanoseconds since the world began (this domain's clock: during a
    /// window of a parallel run, the time of the event it is running).</summary>
    public long Now => _now;

    /// <summary>Events run since the world began (for benchmarks and diagnostics): the timeline's.</summary>
    public long EventsRun => Timeline?.EventsRun ?? _eventsRun;

    /// <summary>Events this domain alone has run (a host's share of the timeline's work).</summary>
    public long DomainEventsRun => _eventsRun;

    /// <summary>Number of armed timers (stale heap entries of cancelled timers are not counted): the timeline's.</summary>
    public int PendingCount => Timeline?.PendingCount ?? _liveTimers;

    /// <summary>Armed timers of this domain alone.</summary>
    internal int LocalPending => _liveTimers;

    /// <summary>Called when no event is due: the real-time driver uses this to sleep.</summary>
    public long NextEventTime => Timeline?.NextEventTime ?? LocalNextTime();

    /// <summary>The time of this domain's next event (long.MaxValue: none).</summary>
    internal long LocalNextTime()
    {
        DropStale();
        if (TopIsSoon) return _soon[_soonHead].When;
        return _count == 0 ? long.MaxValue : _heap[0].When;
    }

    /// <summary>Runs one callback as soon as possible (after events already due now).</summary>
    public KTimer Post(Action action) => After(0, action);

    /// <summary>Schedules a one-shot callback; allocates a timer, so keep it off hot paths.</summary>
    public KTimer After(long delay, Action action)
    {
        var timer = new KTimer(this, static state => ((Action)state!)(), action);
        timer.ArmAfter(delay);
        return timer;
    }

    /// <summary>The next arming sequence number (taken by a timer when it is armed).</summary>
    internal long NextSeq()
    {
        CheckCell();
        return _seq++;
    }

    /// <summary>Timeline.cs rule 6: during a window only the events of a domain's own cell touch its
    /// timers; anything else is a path between hosts that bypasses the wires, and would race on
    /// several threads (it is refused on one thread too, so any test finds it).</summary>
    internal void CheckCell()
    {
        if (Guard != 0 && Guard != t_runningCell)
        {
            if (t_runningCell != AnyCell) ThrowCrossing();
            // The barrier's thread: the partitions' reports of their next event may be out of date.
            Timeline!.TouchedAtBarrier = true;
        }
    }

    private static void ThrowCrossing() => throw new InvalidOperationException(t_runningCell == 0
        ? "a timer of a host was armed or cancelled off the timeline's threads while it runs in windows (a continuation on the thread pool?): only the host's own events and the barrier may"
        : "a timer of one host was armed or cancelled by another cell's event during a window: only wires may carry work between hosts");

    internal void Insert(KTimer timer, long when, long seq)
    {
        Debug.Assert(when >= _now, "a timer cannot fire in the past");
        int slot = TakeSlot();
        _slotTimer[slot] = timer;
        _slotGeneration[slot] = timer.Generation;
        var e = new Entry { When = when, Seq = seq, Slot = slot };
        if (when == _now) PushSoon(e); // after every entry already there: an earlier or equal time, a smaller sequence
        else Push(e);
        _liveTimers++;
    }

    private int TakeSlot()
    {
        if (_freeCount > 0) return _freeSlots[--_freeCount];
        if (_slotsUsed == _slotTimer.Length)
        {
            Array.Resize(ref _slotTimer, _slotTimer.Length * 2);
            Array.Resize(ref _slotGeneration, _slotGeneration.Length * 2);
            Array.Resize(ref _freeSlots, _freeSlots.Length * 2);
        }
        return _slotsUsed++;
    }

    private void GiveBackSlot(int slot)
    {
        _slotTimer[slot] = null;
        _freeSlots[_freeCount++] = slot;
    }

    private void PushSoon(Entry e)
    {
        if (_soonCount == _soon.Length)
        {
            var ring = new Entry[_soon.Length * 2];
            for (int i = 0; i < _soonCount; i++) ring[i] = _soon[(_soonHead + i) & (_soon.Length - 1)];
            _soon = ring;
            _soonHead = 0;
        }
        _soon[(_soonHead + _soonCount) & (_soon.Length - 1)] = e;
        _soonCount++;
    }

    private void PopSoon()
    {
        _soonHead = (_soonHead + 1) & (_soon.Length - 1);
        _soonCount--;
    }

    /// <summary>Whether the next entry is the FIFO's head rather than the heap's top.</summary>
    private bool TopIsSoon => _soonCount > 0 && (_count == 0 || Less(ref _soon[_soonHead], ref _heap[0]));

    private void Push(Entry e)
    {
        if (_count == _heap.Length) Array.Resize(ref _heap, _heap.Length * 2);
        int i = _count++;
        while (i > 0)
        {
            int parent = (i - 1) >> 1;
            if (!Less(ref e, ref _heap[parent])) break;
            _heap[i] = _heap[parent];
            i = parent;
        }
        _heap[i] = e;
    }

    /// <summary>An armed timer was cancelled; its entry stays in the heap until it surfaces (or is
    /// reused by a later re-arm).</summary>
    internal void NoteCancelled()
    {
        CheckCell();
        _liveTimers--;
        // When stale entries outnumber live ones the heap is compacted, so memory follows the armed
        // timers, not the cancellation rate (a SYN flood cancels a retransmission timer per dropped
        // half-open connection).
        if (++_stale > 1024 && _stale > _liveTimers) Compact();
    }

    /// <summary>A cancelled timer was re-armed at or after its entry's time: the entry serves again.</summary>
    internal void NoteRearmed()
    {
        _liveTimers++;
        if (_stale > 0) _stale--;
    }

    /// <summary>An armed timer moved earlier than its entry: that entry is abandoned (a new one follows).</summary>
    internal void NoteAbandoned()
    {
        _liveTimers--;
        if (++_stale > 1024 && _stale > _liveTimers) Compact();
    }

    private void Compact()
    {
        int n = 0;
        for (int i = 0; i < _count; i++)
            if (KeepWhenCompacting(_heap[i])) _heap[n++] = _heap[i];
        _count = n;
        n = 0;
        int mask = _soon.Length - 1;
        for (int i = 0; i < _soonCount; i++)
        {
            var e = _soon[(_soonHead + i) & mask];
            if (KeepWhenCompacting(e)) _soon[(_soonHead + n++) & mask] = e;
        }
        _soonCount = n;
        _stale = 0;
        for (int i = (_count >> 1) - 1; i >= 0; i--) SiftDown(i);
    }

    /// <summary>Whether an entry serves an armed timer; if not, its slot is given back.</summary>
    private bool KeepWhenCompacting(Entry e)
    {
        var timer = _slotTimer[e.Slot]!;
        bool current = timer.Generation == _slotGeneration[e.Slot];
        if (current && timer.IsArmed) return true;
        if (current) timer.InHeap = false;
        GiveBackSlot(e.Slot);
        return false;
    }

    private void SiftDown(int i)
    {
        Entry e = _heap[i];
        while (true)
        {
            int l = 2 * i + 1;
            if (l >= _count) break;
            int r = l + 1;
            int m = r < _count && Less(ref _heap[r], ref _heap[l]) ? r : l;
            if (!Less(ref _heap[m], ref e)) break;
            _heap[i] = _heap[m];
            i = m;
        }
        _heap[i] = e;
    }

    private static bool Less(ref Entry a, ref Entry b) => a.When < b.When || (a.When == b.When && a.Seq < b.Seq);

    /// <summary>Removes the top entry; its slot stays taken (the caller gives it back or reuses it).</summary>
    private void PopTop()
    {
        Entry last = _heap[--_count];
        if (_count == 0) return;
        int i = 0;
        while (true)
        {
            int l = 2 * i + 1;
            if (l >= _count) break;
            int r = l + 1;
            int m = r < _count && Less(ref _heap[r], ref _heap[l]) ? r : l;
            if (!Less(ref _heap[m], ref last)) break;
            _heap[i] = _heap[m];
            i = m;
        }
        _heap[i] = last;
    }

    /// <summary>Clears the top of the heap of stale entries (of timers cancelled, or moved earlier
    /// than their entry) and of entries whose timer was moved later since (put back at the timer's
    /// due time and arming sequence).</summary>
    private void DropStale()
    {
        while (_count > 0 || _soonCount > 0)
        {
            bool soon = TopIsSoon;
            ref Entry top = ref soon ? ref _soon[_soonHead] : ref _heap[0];
            var timer = _slotTimer[top.Slot]!;
            bool current = timer.Generation == _slotGeneration[top.Slot];
            if (!current || !timer.IsArmed)
            {
                if (current) timer.InHeap = false;
                GiveBackSlot(top.Slot);
                if (soon) PopSoon();
                else PopTop();
                if (_stale > 0) _stale--;
            }
            else if (timer.DueTime != top.When || timer.DueSeq != top.Seq)
            {
                var moved = new Entry { When = timer.DueTime, Seq = timer.DueSeq, Slot = top.Slot };
                timer.EntryWhen = moved.When;
                if (soon) PopSoon();
                else PopTop();
                Push(moved);
            }
            else
            {
                return;
            }
        }
    }

    /// <summary>Runs the next due event if its time is at or before <paramref name="limit"/> (of the
    /// whole timeline, in its serial order, when this is a domain of one).</summary>
    public bool RunOne(long limit) => Timeline?.RunOne(limit) ?? RunLocal(limit);

    /// <summary>Runs this domain's next event if its time is at or before <paramref name="limit"/>.</summary>
    internal bool RunLocal(long limit)
    {
        DropStale();
        bool soon = TopIsSoon;
        if (!soon && _count == 0) return false;
        Entry e = soon ? _soon[_soonHead] : _heap[0];
        if (e.When > limit) return false;
        var timer = _slotTimer[e.Slot]!;
        GiveBackSlot(e.Slot);
        if (soon) PopSoon();
        else PopTop();
        timer.InHeap = false;
        _liveTimers--;
        if (e.When > _now) _now = e.When;
        _eventsRun++;
        // The sched provider (Trace/SchedProbes.cs): one field test per event while it is disabled.
        var sched = SchedProbes;
        if (sched != null && sched.Enabled) Trace.SchedProbes.RunEvent(timer, timer.Continuation ? null : sched.Kernel);
        else timer.Fire();
        return true;
    }

    /// <summary>Moves this domain's clock forward (never back).</summary>
    internal void SetNow(long time)
    {
        if (time > _now) _now = time;
    }

    /// <summary>Virtual time: runs every event up to <paramref name="time"/> and leaves the clock there.</summary>
    public void RunUntil(long time)
    {
        if (Timeline != null)
        {
            Timeline.RunUntil(time);
            return;
        }
        while (RunLocal(time)) { }
        if (time > _now) _now = time;
    }

    /// <summary>Virtual time: runs for <paramref name="duration"/> nanoseconds.</summary>
    public void RunFor(long duration) => RunUntil(_now + duration);

    /// <summary>Virtual time: runs until <paramref name="done"/> holds or nothing is left to run.
    /// Returns whether the condition holds. <paramref name="deadline"/> bounds the clock. On a
    /// timeline that runs in windows the condition is tested at each barrier (Timeline.cs rule 5).</summary>
    public bool RunUntil(Func<bool> done, long deadline = long.MaxValue)
    {
        if (Timeline != null) return Timeline.RunUntil(done, deadline);
        while (!done())
        {
            if (!RunLocal(deadline)) return done();
        }
        return true;
    }

    /// <summary>Virtual time: runs until no event remains, or the clock reaches <paramref name="deadline"/>.</summary>
    public void RunUntilIdle(long deadline = long.MaxValue)
    {
        if (Timeline != null)
        {
            Timeline.RunUntilIdle(deadline);
            return;
        }
        while (RunLocal(deadline)) { }
    }

    /// <summary>Real time only: moves the clock forward to <paramref name="time"/> without running events.</summary>
    internal void AdvanceTo(long time)
    {
        if (Timeline != null) Timeline.AdvanceTo(time);
        else if (time > _now) _now = time;
    }
}

/// <summary>
/// A reusable, cancellable timer. Re-arming a pending timer moves it. Owned by one component; arming
/// and firing allocate nothing once the scheduler's heap has grown to its working size.
///
/// What arming and firing write (<see cref="Hot"/>) sits a cache line away from anything outside the
/// timer (<see cref="Padded{T}"/>). Timers of two hosts are often neighbours in memory (a wire makes
/// its receiving end's timer and its sending end's one after the other; a scenario's commands make
/// timers for one host, then for another, on the same thread), and hosts run on different threads
/// in a parallel run (Timeline.cs): two such timers on one line cost each event a trip of that line
/// between the two cores. Measured with the parallel benchmark's floor (two hosts of equal arithmetic, an event a
/// microsecond each, each with a timer and its closure made one after the other): 1.37-1.67x on 2
/// threads with timers packed, 1.9x padded; the cost is 128 bytes a timer (208 instead of 80).
/// </summary>
public sealed class KTimer
{
    private readonly Scheduler _scheduler;
    private readonly Action<object?> _callback;
    private readonly object? _state;
    private Padded<Hot> _padded;

    /// <summary>The fields arming and firing write.</summary>
    private struct Hot
    {
        public long Generation;
        public long EntryWhen;
        public long DueTime;
        public long DueSeq;
        public bool InHeap;
        public bool Armed;
        public bool Continuation;
    }

    private ref Hot H => ref _padded.Value;

    /// <summary>Which heap entry is this timer's: an entry armed under another generation is stale.</summary>
    internal long Generation { get => H.Generation; set => H.Generation = value; }
    /// <summary>A heap entry of the current generation exists, keyed at <see cref="EntryWhen"/> (at
    /// or before <see cref="DueTime"/> while armed; a cancelled timer's entry waits to be reused or
    /// dropped).</summary>
    internal bool InHeap { get => H.InHeap; set => H.InHeap = value; }
    internal long EntryWhen { get => H.EntryWhen; set => H.EntryWhen = value; }

    /// <summary>A program's continuation posted to the loop (LoopSynchronizationContext): its turn is
    /// the program's, reported when its code starts running (Trace/SchedProbes.cs).</summary>
    internal bool Continuation { get => H.Continuation; init => H.Continuation = value; }

    public KTimer(Scheduler scheduler, Action<object?> callback, object? state = null)
    {
        _scheduler = scheduler;
        _callback = callback;
        _state = state;
    }

    public bool IsArmed => H.Armed;
    public long DueTime => H.DueTime;
    /// <summary>The arming sequence number: orders timers due at the same time.</summary>
    internal long DueSeq => H.DueSeq;

    public void ArmAt(long when)
    {
        if (when < _scheduler.Now) when = _scheduler.Now;
        if (InHeap && when >= EntryWhen)
        {
            // At or after the entry already in the heap (armed, or cancelled and not yet dropped):
            // the entry is moved when it surfaces (Scheduler's theory statement).
            if (!H.Armed)
            {
                H.Armed = true;
                _scheduler.NoteRearmed();
            }
            H.DueTime = when;
            H.DueSeq = _scheduler.NextSeq();
            return;
        }
        if (InHeap)
        {
            Generation++; // the old entry is stale from now on
            if (H.Armed) _scheduler.NoteAbandoned();
        }
        H.Armed = true;
        H.DueTime = when;
        H.DueSeq = _scheduler.NextSeq();
        InHeap = true;
        EntryWhen = when;
        _scheduler.Insert(this, when, DueSeq);
    }

    public void ArmAfter(long delay) => ArmAt(_scheduler.Now + Math.Max(0, delay));

    /// <summary>Cancels the timer; returns false if it was not armed.</summary>
    public bool Cancel()
    {
        if (!H.Armed) return false;
        H.Armed = false;
        _scheduler.NoteCancelled();
        return true;
    }

    internal void Fire()
    {
        H.Armed = false;
        _callback(_state);
    }
}
