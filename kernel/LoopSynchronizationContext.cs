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
        if (_driver != null && !_driver.IsLoopThread)
            _driver.Invoke(() => Run(d, state));
        else
            _scheduler.Post(() => Run(d, state));
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
