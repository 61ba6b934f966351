using System.Diagnostics;

namespace SmartOS.Kernel;

/// <summary>
/// The event loop of one simulated world (see Kernel.cs). A binary heap of (time, sequence) keeps
/// equal-time events in arming order. Cancelled timers leave stale heap entries that are skipped
/// when they surface, so cancel is O(1) and the heap never needs a search.
/// </summary>
public sealed class Scheduler
{
    private struct Entry
    {
        public long When;
        public long Seq;
        public KTimer Timer;
        public long Generation;
    }

    private Entry[] _heap = new Entry[256];
    private int _count;
    private long _seq;
    private long _now;
    private long _eventsRun;
    private int _liveTimers;
    private int _stale;

    /// <summary>The current time in nanoseconds since the world began.</summary>
    public long Now => _now;

    /// <summary>Events run since the world began (for benchmarks and diagnostics).</summary>
    public long EventsRun => _eventsRun;

    /// <summary>Number of armed timers (stale heap entries of cancelled timers are not counted).</summary>
    public int PendingCount => _liveTimers;

    /// <summary>Called when no event is due: the real-time driver uses this to sleep.</summary>
    public long NextEventTime
    {
        get
        {
            DropStale();
            return _count == 0 ? long.MaxValue : _heap[0].When;
        }
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

    internal void Insert(KTimer timer, long when)
    {
        Debug.Assert(when >= _now, "a timer cannot fire in the past");
        if (_count == _heap.Length) Array.Resize(ref _heap, _heap.Length * 2);
        var e = new Entry { When = when, Seq = _seq++, Timer = timer, Generation = timer.Generation };
        int i = _count++;
        while (i > 0)
        {
            int parent = (i - 1) >> 1;
            if (!Less(ref e, ref _heap[parent])) break;
            _heap[i] = _heap[parent];
            i = parent;
        }
        _heap[i] = e;
        _liveTimers++;
    }

    internal void NoteCancelled()
    {
        _liveTimers--;
        // A cancelled timer leaves a stale entry behind. When stale entries outnumber live ones the
        // heap is compacted, so memory follows the armed timers, not the cancellation rate (a SYN
        // flood cancels a retransmission timer per dropped half-open connection).
        if (++_stale > 1024 && _stale > _liveTimers) Compact();
    }

    private void Compact()
    {
        int n = 0;
        for (int i = 0; i < _count; i++)
            if (_heap[i].Timer.Generation == _heap[i].Generation) _heap[n++] = _heap[i];
        Array.Clear(_heap, n, _count - n);
        _count = n;
        _stale = 0;
        for (int i = (_count >> 1) - 1; i >= 0; i--) SiftDown(i);
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

    private void PopTop()
    {
        Entry last = _heap[--_count];
        _heap[_count] = default;
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

    private void DropStale()
    {
        while (_count > 0 && _heap[0].Timer.Generation != _heap[0].Generation)
        {
            PopTop();
            if (_stale > 0) _stale--;
        }
    }

    /// <summary>Runs the next due event if its time is at or before <paramref name="limit"/>.</summary>
    public bool RunOne(long limit)
    {
        DropStale();
        if (_count == 0 || _heap[0].When > limit) return false;
        Entry e = _heap[0];
        PopTop();
        _liveTimers--;
        if (e.When > _now) _now = e.When;
        _eventsRun++;
        e.Timer.Fire();
        return true;
    }

    /// <summary>Virtual time: runs every event up to <paramref name="time"/> and leaves the clock there.</summary>
    public void RunUntil(long time)
    {
        while (RunOne(time)) { }
        if (time > _now) _now = time;
    }

    /// <summary>Virtual time: runs for <paramref name="duration"/> nanoseconds.</summary>
    public void RunFor(long duration) => RunUntil(_now + duration);

    /// <summary>Virtual time: runs until <paramref name="done"/> holds or nothing is left to run.
    /// Returns whether the condition holds. <paramref name="deadline"/> bounds the clock.</summary>
    public bool RunUntil(Func<bool> done, long deadline = long.MaxValue)
    {
        while (!done())
        {
            if (!RunOne(deadline)) return done();
        }
        return true;
    }

    /// <summary>Virtual time: runs until no event remains, or the clock reaches <paramref name="deadline"/>.</summary>
    public void RunUntilIdle(long deadline = long.MaxValue)
    {
        while (RunOne(deadline)) { }
    }

    /// <summary>Real time only: moves the clock forward to <paramref name="time"/> without running events.</summary>
    internal void AdvanceTo(long time)
    {
        if (time > _now) _now = time;
    }
}

/// <summary>
/// A reusable, cancellable timer. Re-arming a pending timer moves it. Owned by one component; arming
/// and firing allocate nothing once the scheduler's heap has grown to its working size.
/// </summary>
public sealed class KTimer
{
    private readonly Scheduler _scheduler;
    private readonly Action<object?> _callback;
    private readonly object? _state;

    internal long Generation;
    private bool _armed;

    public KTimer(Scheduler scheduler, Action<object?> callback, object? state = null)
    {
        _scheduler = scheduler;
        _callback = callback;
        _state = state;
    }

    public bool IsArmed => _armed;
    public long DueTime { get; private set; }

    public void ArmAt(long when)
    {
        if (_armed) Cancel();
        if (when < _scheduler.Now) when = _scheduler.Now;
        _armed = true;
        DueTime = when;
        _scheduler.Insert(this, when);
    }

    public void ArmAfter(long delay) => ArmAt(_scheduler.Now + Math.Max(0, delay));

    /// <summary>Cancels the timer; returns false if it was not armed.</summary>
    public bool Cancel()
    {
        if (!_armed) return false;
        _armed = false;
        Generation++;
        _scheduler.NoteCancelled();
        return true;
    }

    internal void Fire()
    {
        _armed = false;
        Generation++;
        _callback(_state);
    }
}
