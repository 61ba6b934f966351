using System.Diagnostics;
using System.Threading.Channels;

namespace SmartOS.Kernel;

/// <summary>
/// Runs a Scheduler in real time (Kernel.cs rule 2): one thread owns the scheduler, moves its clock
/// with the wall clock, runs due events, and sleeps until the next event or until another thread
/// hands it work through <see cref="Invoke"/>. This is the only class that reads a wall clock.
///
/// Idle polls (issue 17): a device may ask to be called on the loop when a pass that did work is over
/// and the loop is about to sleep (<see cref="AddIdlePoll"/>), as NAPI polls a device once its
/// interrupt fired: a TAP writes what the pass queued for Linux and reads what Linux sent back
/// meanwhile (vnic/TapDevice.cs rules 9 and 10), so a frame that came back while the loop worked
/// does not wait for another thread's wake-up and the loop's own. A poll that hands the loop work
/// (Invoke) keeps it from sleeping; an idle loop (a pass that ran nothing) calls none, so nothing
/// spins.
/// </summary>
public sealed class RealTimeDriver : IDisposable
{
    private readonly Scheduler _scheduler;
    private readonly Channel<Action> _work = Channel.CreateUnbounded<Action>(new UnboundedChannelOptions { SingleReader = true });
    // Wakes the loop when work arrives. Waiting on the channel's WaitToReadAsync().AsTask() instead
    // needed a pool thread to complete that task: an await resumed from another thread took ~50 ms
    // (the sleep's cap) to reach the loop, and a stream through the daemon ran at 2 MB/s.
    // Spins once before it blocks: with the default (35 spins, most of them sched_yield) the loops of
    // two daemons on a 2-core machine gave 5-10% of their samples to yielding, and the real-time
    // overlay (vnic/UdpUnderlay.cs) moved 6.1-6.6 Gbit/s where it moves 7.1-9.1 with one spin
    // (load average 18-27, each daemon's CPU per gigabyte 540-790 ms against 490-700).
    private readonly ManualResetEventSlim _wake = new(false, 1);
    private readonly Stopwatch _wall = new();
    private readonly long _origin;
    private Thread? _thread;
    private volatile bool _stop;

    public RealTimeDriver(Scheduler scheduler)
    {
        _scheduler = scheduler;
        _origin = scheduler.Now;
        scheduler.Driver = this;
    }

    public bool IsLoopThread => Thread.CurrentThread == _thread;

    private Action[] _idlePolls = [];
    private readonly Lock _idlePollsLock = new();

    /// <summary>Has <paramref name="poll"/> called on the loop after each pass that did work, before
    /// the loop sleeps (see above); safe from any thread.</summary>
    public void AddIdlePoll(Action poll)
    {
        lock (_idlePollsLock) _idlePolls = [.. _idlePolls, poll];
    }

    /// <summary>Undoes <see cref="AddIdlePoll"/>; safe from any thread (a pass already under way may
    /// still call it once).</summary>
    public void RemoveIdlePoll(Action poll)
    {
        lock (_idlePollsLock) _idlePolls = Array.FindAll(_idlePolls, p => p != poll);
    }

    /// <summary>Hands work to the loop thread; safe from any thread.</summary>
    public void Invoke(Action action)
    {
        _work.Writer.TryWrite(action);
        _wake.Set();
    }

    /// <summary>Runs <paramref name="func"/> on the loop and returns its result to the caller's thread.</summary>
    public Task<T> InvokeAsync<T>(Func<T> func)
    {
        var tcs = new TaskCompletionSource<T>(TaskCreationOptions.RunContinuationsAsynchronously);
        Invoke(() =>
        {
            try { tcs.SetResult(func()); }
            catch (Exception e) { tcs.SetException(e); }
        });
        return tcs.Task;
    }

    public void Start(string name = "smartos-kernel")
    {
        if (_thread != null) throw new InvalidOperationException("driver already started");
        _wall.Start();
        _thread = new Thread(Loop) { IsBackground = true, Name = name };
        _thread.Start();
    }

    private long WallNow => _origin + (long)(_wall.ElapsedTicks * (1e9 / Stopwatch.Frequency));

    private void Loop()
    {
        var reader = _work.Reader;
        while (!_stop)
        {
            _wake.Reset(); // Before draining: work handed over after this sets it again.
            bool worked = false;
            while (reader.TryRead(out var action))
            {
                worked = true;
                _scheduler.AdvanceTo(WallNow);
                action();
            }
            long now = WallNow;
            _scheduler.AdvanceTo(now);
            while (_scheduler.RunOne(now)) worked = true;
            if (worked)
            {
                foreach (var poll in Volatile.Read(ref _idlePolls)) poll();
            }
            long next = _scheduler.NextEventTime;
            long waitNs = next == long.MaxValue ? 50 * Time.Millisecond : Math.Clamp(next - WallNow, 0, 50 * Time.Millisecond);
            if (waitNs > 0) _wake.Wait(TimeSpan.FromTicks(Math.Max(1, waitNs / 100)));
        }
    }

    public void Dispose()
    {
        _stop = true;
        _work.Writer.TryComplete();
        _wake.Set();
        _thread?.Join(TimeSpan.FromSeconds(5));
    }
}
