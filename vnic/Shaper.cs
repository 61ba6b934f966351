using SmartOS.Kernel;

namespace SmartOS.Vnic;

/// <summary>Where a shaper hands the frames it releases; <paramref name="stage"/> tells the owner which of
/// its shapers released the frame, so one owner serves several without closures.</summary>
internal interface IShaperSink
{
    void Release(Packet p, int stage);
}

/// <summary>
/// A bandwidth limit (maxbw) on one direction of a datalink or flow (ResourceControl.cs, "Bandwidth").
/// Frames leave no faster than <see cref="RateBps"/>, counting every byte of the Ethernet frame: a frame of
/// n bytes holds the shaper for n*8/rate seconds. The clock is kept in picoseconds with the division's
/// remainder carried forward, so over any run the error is below one frame, at any rate. Frames that
/// cannot leave yet wait in a bounded FIFO; a full FIFO, or a rate of 0, is a counted drop for the caller.
/// A frame that waits, leaves after waiting or is dropped fires the owning link's mac_bw probes
/// (LinkProbes.cs), each site one branch on the probe's Enabled field when no one traces.
/// </summary>
public sealed class Shaper
{
    private const long PsPerSecondBits = 1_000_000_000_000L; // 1 bit at 1 bit/s takes 1e12 ps
    private readonly Scheduler _scheduler;
    private readonly IShaperSink _sink;
    private readonly int _stage;
    private readonly KTimer _timer;
    private Packet[] _ring = new Packet[16];
    private int _head, _count;
    private long _nextPs;      // when the shaper may release its next frame
    private long _remainder;   // (bits * 1e12) mod rate, carried so rounding never accumulates

    private readonly Datalink _link;
    private readonly string _flow;

    /// <param name="link">The link whose mac_bw probes fire; <paramref name="flow"/> names the flow ("" for the link's own limit).</param>
    internal Shaper(Scheduler scheduler, IShaperSink sink, int stage, long rateBps, int queueLimit, Datalink link, string flow = "")
    {
        _link = link;
        _flow = flow;
        _scheduler = scheduler;
        _sink = sink;
        _stage = stage;
        RateBps = rateBps;
        QueueLimit = queueLimit;
        _timer = new KTimer(scheduler, static s => ((Shaper)s!).Drain(), this);
    }

    /// <summary>Bits per second; 0 blocks everything.</summary>
    public long RateBps { get; private set; }
    /// <summary>Frames that may wait before the next is dropped.</summary>
    public int QueueLimit { get; }
    public int Queued => _count;
    public long ReleasedFrames { get; private set; }
    public long ReleasedBytes { get; private set; }

    /// <summary>Takes a frame. Returns false when it was dropped (blocked or queue full); the packet is
    /// freed then and the caller counts the drop against its reason.</summary>
    internal bool Enqueue(Packet p)
    {
        if (RateBps == 0 || _count >= QueueLimit)
        {
            var drop = _link.Probes.BwDrop;
            if (drop.Enabled) FireProbe(drop, p.Length);
            p.Free();
            return false;
        }
        long nowPs = _scheduler.Now * 1000;
        if (_count == 0 && _nextPs <= nowPs)
        {
            // Idle: the frame goes at once and the shaper is busy for its duration from now.
            _nextPs = nowPs;
            _remainder = 0;
            Account(p.Length);
            ReleasedFrames++;
            ReleasedBytes += p.Length;
            _sink.Release(p, _stage);
            return true;
        }
        if (_count == _ring.Length) Grow();
        _ring[(_head + _count) & (_ring.Length - 1)] = p;
        _count++;
        var enqueue = _link.Probes.BwEnqueue;
        if (enqueue.Enabled) FireProbe(enqueue, p.Length);
        if (!_timer.IsArmed) _timer.ArmAt(CeilNs(_nextPs));
        return true;
    }

    // Kept out of the hot methods (STYLE.md: small hot paths); the arguments are LinkProbes.cs's.
    private void FireProbe(Kernel.Trace.Probe probe, int length) =>
        probe.Fire(new(_link.Name, length, _flow, _stage == 0 ? 1 : 0, _count));

    /// <summary>Changes the rate. At 0 the queued frames are dropped; the count is returned.</summary>
    internal int SetRate(long rateBps)
    {
        RateBps = rateBps;
        _remainder = 0;
        if (rateBps != 0) return 0;
        int dropped = _count;
        var drop = _link.Probes.BwDrop;
        while (_count > 0)
        {
            var p = Pop();
            if (drop.Enabled) FireProbe(drop, p.Length);
            p.Free();
        }
        _timer.Cancel();
        return dropped;
    }

    /// <summary>Releases every queued frame now, in order (the limit was lifted).</summary>
    internal void ReleaseAll()
    {
        _timer.Cancel();
        var dequeue = _link.Probes.BwDequeue;
        while (_count > 0)
        {
            var p = Pop();
            if (dequeue.Enabled) FireProbe(dequeue, p.Length);
            ReleasedFrames++;
            ReleasedBytes += p.Length;
            _sink.Release(p, _stage);
        }
    }

    private void Account(int bytes)
    {
        // Exact: nextPs advances by bits*1e12/rate, remainder carried to the next frame.
        Int128 num = (Int128)bytes * 8 * PsPerSecondBits + _remainder;
        _nextPs += (long)(num / RateBps);
        _remainder = (long)(num % RateBps);
    }

    private void Drain()
    {
        long nowPs = _scheduler.Now * 1000;
        // A frame that waited starts exactly when the previous one ended (_nextPs), not at the
        // rounded-up nanosecond the timer fired at: that is what keeps the long-run rate exact.
        var dequeue = _link.Probes.BwDequeue;
        while (_count > 0 && _nextPs <= nowPs && RateBps > 0)
        {
            var p = Pop();
            if (dequeue.Enabled) FireProbe(dequeue, p.Length);
            Account(p.Length);
            ReleasedFrames++;
            ReleasedBytes += p.Length;
            _sink.Release(p, _stage);
        }
        if (_count > 0 && RateBps > 0) _timer.ArmAt(CeilNs(_nextPs));
    }

    private static long CeilNs(long ps) => (ps + 999) / 1000;

    private Packet Pop()
    {
        var p = _ring[_head];
        _ring[_head] = null!;
        _head = (_head + 1) & (_ring.Length - 1);
        _count--;
        return p;
    }

    private void Grow()
    {
        var ring = new Packet[_ring.Length * 2];
        for (int i = 0; i < _count; i++) ring[i] = _ring[(_head + i) & (_ring.Length - 1)];
        _ring = ring;
        _head = 0;
    }
}
