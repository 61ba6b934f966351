namespace SmartOS.Kernel.Tests;

public class LoopSynchronizationContextTests
{
    [Test]
    public void Delay_completes_in_virtual_time()
    {
        var s = new Scheduler();
        var ctx = new LoopSynchronizationContext(s);
        var times = new List<long>();

        var task = ctx.Start(async () =>
        {
            times.Add(s.Now);
            await ctx.Delay(5 * Time.Millisecond);
            times.Add(s.Now);
            await ctx.Delay(Time.Second);
            times.Add(s.Now);
            return 7;
        });
        s.RunUntilIdle();

        using (Assert.EnterMultipleScope())
        {
            Assert.That(task.IsCompletedSuccessfully, Is.True);
            Assert.That(task.Result, Is.EqualTo(7));
            Assert.That(times, Is.EqualTo(new[] { 0, 5 * Time.Millisecond, Time.Second + 5 * Time.Millisecond }));
        }
    }

    [Test]
    public void Continuations_run_on_the_loop_with_the_context_current()
    {
        var s = new Scheduler();
        var ctx = new LoopSynchronizationContext(s);
        SynchronizationContext? seen = null;
        int threadBefore = Environment.CurrentManagedThreadId;
        int threadAfter = -1;

        ctx.Start(async () =>
        {
            await ctx.Delay(10);
            seen = SynchronizationContext.Current;
            threadAfter = Environment.CurrentManagedThreadId;
            return 0;
        });
        Assert.That(seen, Is.Null, "nothing runs until the scheduler does");
        s.RunUntilIdle();

        using (Assert.EnterMultipleScope())
        {
            Assert.That(seen, Is.SameAs(ctx));
            Assert.That(threadAfter, Is.EqualTo(threadBefore));
            Assert.That(SynchronizationContext.Current, Is.Not.SameAs(ctx), "Start restores the caller's context");
        }
    }

    [Test]
    public void Two_programs_interleave_deterministically()
    {
        static List<string> Run()
        {
            var s = new Scheduler();
            var ctx = new LoopSynchronizationContext(s);
            var log = new List<string>();
            async Task<int> Program(string name, long step)
            {
                for (int i = 0; i < 3; i++)
                {
                    await ctx.Delay(step);
                    log.Add($"{name}{i}@{s.Now}");
                }
                return 0;
            }
            ctx.Start(() => Program("a", 10));
            ctx.Start(() => Program("b", 15));
            s.RunUntilIdle();
            return log;
        }

        var first = Run();

        using (Assert.EnterMultipleScope())
        {
            Assert.That(first, Is.EqualTo(new[] { "a0@10", "b0@15", "a1@20", "b1@30", "a2@30", "b2@45" }),
                "at 30 b runs first: its timer was armed at 15, a's at 20");
            Assert.That(Run(), Is.EqualTo(first));
        }
    }

    [Test]
    public void Cancelled_delay_is_cancelled_and_its_timer_removed()
    {
        var s = new Scheduler();
        using var cts = new CancellationTokenSource();
        var task = LoopSynchronizationContext.Delay(s, Time.Second, cts.Token);

        cts.Cancel();
        s.RunUntilIdle();

        using (Assert.EnterMultipleScope())
        {
            Assert.That(task.IsCanceled, Is.True);
            Assert.That(s.PendingCount, Is.Zero);
            Assert.That(s.Now, Is.Zero);
        }
    }

    [Test]
    public void Send_is_not_supported()
    {
        var ctx = new LoopSynchronizationContext(new Scheduler());

        Assert.That(() => ctx.Send(_ => { }, null), Throws.TypeOf<NotSupportedException>());
    }
}

public class RealTimeDriverTests
{
    private static readonly TimeSpan s_patience = TimeSpan.FromSeconds(10);

    [Test]
    public void Invoke_runs_work_on_the_loop_thread()
    {
        var s = new Scheduler();
        using var driver = new RealTimeDriver(s);
        driver.Start();
        using var done = new ManualResetEventSlim();
        bool onLoop = false;

        driver.Invoke(() =>
        {
            onLoop = driver.IsLoopThread;
            done.Set();
        });

        using (Assert.EnterMultipleScope())
        {
            Assert.That(done.Wait(s_patience), Is.True);
            Assert.That(onLoop, Is.True);
            Assert.That(driver.IsLoopThread, Is.False, "the test thread is not the loop");
        }
    }

    [Test]
    public void An_idle_poll_runs_on_the_loop_after_a_pass_that_did_work_and_not_while_idle()
    {
        var s = new Scheduler();
        using var driver = new RealTimeDriver(s);
        driver.Start();
        int polls = 0, offLoop = 0, workDone = 0, pollsAfterWork = -1;
        Action poll = () =>
        {
            if (!driver.IsLoopThread) Interlocked.Increment(ref offLoop);
            Interlocked.Increment(ref polls);
            // The work's pass is over when its poll runs.
            if (Volatile.Read(ref workDone) == 1 && Volatile.Read(ref pollsAfterWork) < 0) Volatile.Write(ref pollsAfterWork, 1);
        };
        driver.AddIdlePoll(poll);
        Thread.Sleep(200); // idle: the loop sleeps (50 ms at a time) and runs nothing
        int idle = Volatile.Read(ref polls);

        driver.Invoke(() => Volatile.Write(ref workDone, 1));
        for (int i = 0; i < 500 && Volatile.Read(ref pollsAfterWork) < 0; i++) Thread.Sleep(10);
        int afterWork = Volatile.Read(ref polls);

        driver.RemoveIdlePoll(poll);
        driver.InvokeAsync(() => 0).Wait(s_patience); // a pass that may still have had the poll
        int removed = Volatile.Read(ref polls);
        driver.InvokeAsync(() => 0).Wait(s_patience);

        using (Assert.EnterMultipleScope())
        {
            Assert.That(idle, Is.Zero, "an idle loop polls nothing");
            Assert.That(pollsAfterWork, Is.EqualTo(1), "the pass that ran the work polled");
            Assert.That(afterWork, Is.GreaterThanOrEqualTo(1));
            Assert.That(offLoop, Is.Zero, "polls run on the loop");
            Assert.That(Volatile.Read(ref polls), Is.EqualTo(removed), "a removed poll is not called again");
        }
    }

    [Test]
    public async Task InvokeAsync_returns_the_result_and_the_exception()
    {
        var s = new Scheduler();
        using var driver = new RealTimeDriver(s);
        driver.Start();

        int value = await driver.InvokeAsync(() => 6 * 7).WaitAsync(s_patience);
        var failing = driver.InvokeAsync<int>(() => throw new InvalidOperationException("boom"));

        Assert.That(value, Is.EqualTo(42));
        Assert.That(async () => await failing.WaitAsync(s_patience), Throws.InvalidOperationException.With.Message.EqualTo("boom"));
    }

    [Test]
    public void A_timer_fires_on_the_loop_no_earlier_than_its_due_time()
    {
        var s = new Scheduler();
        using var driver = new RealTimeDriver(s);
        driver.Start();
        using var fired = new ManualResetEventSlim();
        long armedAt = -1, firedAt = -1;
        bool onLoop = false;

        driver.Invoke(() =>
        {
            armedAt = s.Now;
            s.After(20 * Time.Millisecond, () =>
            {
                firedAt = s.Now;
                onLoop = driver.IsLoopThread;
                fired.Set();
            });
        });

        Assert.That(fired.Wait(s_patience), Is.True, "the timer fired");
        using (Assert.EnterMultipleScope())
        {
            Assert.That(onLoop, Is.True);
            Assert.That(firedAt - armedAt, Is.GreaterThanOrEqualTo(20 * Time.Millisecond));
        }
    }

    [Test]
    public void Start_twice_is_refused()
    {
        using var driver = new RealTimeDriver(new Scheduler());
        driver.Start();

        Assert.That(() => driver.Start(), Throws.InvalidOperationException);
    }

    [Test]
    public void Delay_through_the_context_resumes_on_the_loop_thread()
    {
        var s = new Scheduler();
        using var driver = new RealTimeDriver(s);
        var ctx = new LoopSynchronizationContext(s, driver);
        driver.Start();
        var result = new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously);

        driver.Invoke(() => ctx.Start(async () =>
        {
            await ctx.Delay(Time.Millisecond);
            result.SetResult(driver.IsLoopThread);
            return 0;
        }));

        Assert.That(result.Task.Wait(s_patience), Is.True);
        Assert.That(result.Task.Result, Is.True);
    }
}
