namespace SmartOS.Kernel;

/// <summary>
/// Runs async continuations on the scheduler (ARCHITECTURE.md, "Two clocks, one kernel"): programs in
/// zones are ordinary async code, and every await resumes as a zero-delay event, so in virtual time
/// their interleaving is as deterministic as the rest of the world.
/// </summary>
public sealed class LoopSynchronizationContext : SynchronizationContext
{
    private readonly Scheduler _scheduler;
    private readonly RealTimeDriver? _driver;

    public LoopSynchronizationContext(Scheduler scheduler, RealTimeDriver? driver = null)
    {
        _scheduler = scheduler;
        _driver = driver;
    }

    public Scheduler Scheduler => _scheduler;

    public override void Post(SendOrPostCallback d, object? state)
    {
        // A context made before the world went real time (TCP's, a zone's) has no driver of its own:
        // it finds the scheduler's. Without this, an await resumed from another thread armed a timer
        // off the loop, unseen until the loop next woke (up to 50 ms: a stream through the daemon,
        // whose input arrives on pool threads, ran at 2 MB/s).
        var driver = _driver ?? _scheduler.Driver;
        if (driver != null && !driver.IsLoopThread)
            driver.Invoke(() => Run(d, state));
        else
        {
            // Pooled: a socket call's continuation is posted once per completion, and allocating a
            // closure and a timer each time showed up as ~60 bytes per TCP segment in the netstack
            // benchmark. Order is unchanged: each post is a zero-delay event, FIFO among equals.
            var item = _free.Count > 0 ? _free.Pop() : new PostItem(this);
            item.Callback = d;
            item.State = state;
            item.Timer.ArmAfter(0);
        }
    }

    private readonly Stack<PostItem> _free = new();

    private sealed class PostItem
    {
        public readonly KTimer Timer;
        public readonly LoopSynchronizationContext Owner;
        public SendOrPostCallback? Callback;
        public object? State;

        public PostItem(LoopSynchronizationContext owner)
        {
            Owner = owner;
            Timer = new KTimer(owner._scheduler, static s => ((PostItem)s!).Fire(), this) { Continuation = true };
        }

        private void Fire()
        {
            var d = Callback!;
            var state = State;
            Callback = null;
            State = null;
            Owner._free.Push(this);
            Owner.Run(d, state);
        }
    }

    public override void Send(SendOrPostCallback d, object? state) => throw new NotSupportedException("Send is not supported on the kernel loop");

    public override SynchronizationContext CreateCopy() => this;

    private void Run(SendOrPostCallback d, object? state)
    {
        var previous = Current;
        SetSynchronizationContext(this);
        try { d(state); }
        finally { SetSynchronizationContext(previous); }
    }

    /// <summary>Starts an async function with this context current, so all its awaits come back here.</summary>
    public Task<T> Start<T>(Func<Task<T>> body)
    {
        var previous = Current;
        SetSynchronizationContext(this);
        try { return body(); }
        finally { SetSynchronizationContext(previous); }
    }

    /// <summary>A task that completes after <paramref name="delay"/> nanoseconds of scheduler time.</summary>
    public Task Delay(long delay, CancellationToken cancel = default) => Delay(_scheduler, delay, cancel);

    public static Task Delay(Scheduler scheduler, long delay, CancellationToken cancel = default)
    {
        var tcs = new TaskCompletionSource();
        var timer = new KTimer(scheduler, s => ((TaskCompletionSource)s!).TrySetResult(), tcs);
        timer.ArmAfter(delay);
        if (cancel.CanBeCanceled)
        {
            var reg = cancel.Register(() => { timer.Cancel(); tcs.TrySetCanceled(cancel); });
            tcs.Task.ContinueWith(_ => reg.Dispose(), TaskScheduler.Default);
        }
        return tcs.Task;
    }
}
