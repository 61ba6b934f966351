using System.Diagnostics;

namespace SmartOS.Kernel;

/// <summary>
/// The event loop of one simulated world (see Kernel.cs). A binary heap of (time, sequence) keeps
/// equal-time events in arming order. Cancelled timers leave stale heap entries that are skipped
/// when they surface, so cancel is O(1) and the heap never needs a search.
///
/// Moving an armed timer later (TCP pushes its retransmission timer forward on every ACK) touches
/// only the timer: its heap entry stays where it is, and when that entry surfaces before the
/// timer's due time it is put back at the due time with the sequence number the timer took when it
/// was re-armed (Linux's mod_timer on a pending timer does the same work lazily). The order of
/// events is therefore exactly that of a cancel and a fresh insert, at one heap operation per
/// surfacing instead of two per re-arm.
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

    /// <summary>The next arming sequence number (taken by a timer when it is armed).</summary>
    internal long NextSeq() => _seq++;

    internal void Insert(KTimer timer, long when, long seq)
    {
        Debug.Assert(when >= _now, "a timer cannot fire in the past");
        var e = new Entry { When = when, Seq = seq, Timer = timer, Generation = timer.Generation };
        Push(e);
        _liveTimers++;
    }

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

    /// <summary>Clears the top of the heap of stale entries (cancelled timers) and of entries whose
    /// timer was moved later since (put back at the timer's due time and arming sequence).</summary>
    private void DropStale()
    {
        while (_count > 0)
        {
            ref Entry top = ref _heap[0];
            if (top.Timer.Generation != top.Generation)
            {
                PopTop();
                if (_stale > 0) _stale--;
            }
            else if (top.Timer.DueTime != top.When || top.Timer.DueSeq != top.Seq)
            {
                Entry moved = top;
                moved.When = moved.Timer.DueTime;
                moved.Seq = moved.Timer.DueSeq;
                PopTop();
                Push(moved);
            }
            else
            {
                return;
            }
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
    /// <summary>The arming sequence number: orders timers due at the same time.</summary>
    internal long DueSeq;

    public void ArmAt(long when)
    {
        if (when < _scheduler.Now) when = _scheduler.Now;
        if (_armed && when >= DueTime)
        {
            // Later (or the same time, re-armed): the heap entry stays and is moved when it
            // surfaces (Scheduler's theory statement).
            DueTime = when;
            DueSeq = _scheduler.NextSeq();
            return;
        }
        if (_armed) Cancel();
        _armed = true;
        DueTime = when;
        DueSeq = _scheduler.NextSeq();
        _scheduler.Insert(this, when, DueSeq);
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
