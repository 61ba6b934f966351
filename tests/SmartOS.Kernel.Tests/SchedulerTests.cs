using SmartOS.Kernel;

namespace SmartOS.Kernel.Tests;

public class SchedulerTests
{
    [Test]
    public void Events_run_in_time_order_whatever_the_arming_order()
    {
        var s = new Scheduler();
        var log = new List<string>();
        s.After(30, () => log.Add("c"));
        s.After(10, () => log.Add("a"));
        s.After(20, () => log.Add("b"));

        s.RunUntilIdle();

        Assert.That(log, Is.EqualTo(new[] { "a", "b", "c" }));
    }

    [Test]
    public void Events_due_at_the_same_time_run_in_arming_order()
    {
        var s = new Scheduler();
        var log = new List<int>();
        for (int i = 0; i < 300; i++)
        {
            int n = i;
            s.After(5 * Time.Microsecond, () => log.Add(n));
        }

        s.RunUntilIdle();

        Assert.That(log, Is.EqualTo(Enumerable.Range(0, 300)));
    }

    [Test]
    public void Each_event_sees_the_clock_at_its_due_time()
    {
        var s = new Scheduler();
        var seen = new List<long>();
        s.After(7, () => seen.Add(s.Now));
        s.After(3, () => seen.Add(s.Now));

        s.RunUntilIdle();

        using (Assert.EnterMultipleScope())
        {
            Assert.That(seen, Is.EqualTo(new long[] { 3, 7 }));
            Assert.That(s.Now, Is.EqualTo(7));
            Assert.That(s.EventsRun, Is.EqualTo(2));
        }
    }

    [Test]
    public void Post_runs_after_events_already_due_now()
    {
        var s = new Scheduler();
        var log = new List<string>();
        s.After(0, () =>
        {
            log.Add("first");
            s.Post(() => log.Add("posted"));
        });
        s.After(0, () => log.Add("second"));

        s.RunUntilIdle();

        Assert.That(log, Is.EqualTo(new[] { "first", "second", "posted" }));
    }

    [Test]
    public void Cancelled_timer_never_fires_and_is_not_pending()
    {
        var s = new Scheduler();
        int fired = 0;
        var t = new KTimer(s, _ => fired++);
        t.ArmAfter(100);
        Assert.That(s.PendingCount, Is.EqualTo(1));

        bool cancelled = t.Cancel();
        s.RunUntilIdle();

        using (Assert.EnterMultipleScope())
        {
            Assert.That(cancelled, Is.True);
            Assert.That(t.Cancel(), Is.False, "a second cancel finds nothing armed");
            Assert.That(fired, Is.Zero);
            Assert.That(t.IsArmed, Is.False);
            Assert.That(s.PendingCount, Is.Zero);
            Assert.That(s.NextEventTime, Is.EqualTo(long.MaxValue));
            Assert.That(s.Now, Is.Zero, "a stale entry does not move the clock");
        }
    }

    [Test]
    public void Rearming_a_pending_timer_moves_it()
    {
        var s = new Scheduler();
        var fired = new List<long>();
        var t = new KTimer(s, _ => fired.Add(s.Now));
        t.ArmAt(100);
        t.ArmAt(40);

        using (Assert.EnterMultipleScope())
        {
            Assert.That(s.PendingCount, Is.EqualTo(1));
            Assert.That(t.DueTime, Is.EqualTo(40));
        }
        s.RunUntilIdle();

        Assert.That(fired, Is.EqualTo(new long[] { 40 }));
    }

    [Test]
    public void A_timer_moved_later_keeps_its_place_among_timers_due_at_the_same_time()
    {
        var s = new Scheduler();
        var fired = new List<string>();
        KTimer Named(string name) => new(s, _ => fired.Add($"{name}@{s.Now}"));
        var a = Named("a");
        var b = Named("b");
        var c = Named("c");
        var d = Named("d");
        a.ArmAt(100);
        b.ArmAt(50);
        d.ArmAt(200);
        a.ArmAt(200); // later: armed after d, before c
        c.ArmAt(200);

        s.RunUntilIdle();

        Assert.That(fired, Is.EqualTo(new[] { "b@50", "d@200", "a@200", "c@200" }));
    }

    [Test]
    public void A_timer_pushed_later_while_time_passes_fires_once_at_its_last_due_time()
    {
        var s = new Scheduler();
        var fired = new List<long>();
        var rto = new KTimer(s, _ => fired.Add(s.Now));
        int acks = 0;
        KTimer? ack = null;
        ack = new KTimer(s, _ =>
        {
            rto.ArmAfter(100); // every "ACK" pushes the retransmission timer forward
            if (++acks < 10) ack!.ArmAfter(30);
        });
        rto.ArmAt(100);
        ack.ArmAt(30);

        using (Assert.EnterMultipleScope())
        {
            Assert.That(s.NextEventTime, Is.EqualTo(30));
            s.RunUntil(250);
            Assert.That(fired, Is.Empty);
            Assert.That(s.NextEventTime, Is.EqualTo(270));
            Assert.That(s.PendingCount, Is.EqualTo(2));
            s.RunUntilIdle();
            Assert.That(fired, Is.EqualTo(new long[] { 400 }));
            Assert.That(s.PendingCount, Is.Zero);
        }
    }

    [Test]
    public void Timer_can_rearm_itself_from_its_callback()
    {
        var s = new Scheduler();
        var fired = new List<long>();
        KTimer? t = null;
        t = new KTimer(s, _ =>
        {
            fired.Add(s.Now);
            if (fired.Count < 4) t!.ArmAfter(10);
        });
        t.ArmAfter(10);

        s.RunUntilIdle();

        Assert.That(fired, Is.EqualTo(new long[] { 10, 20, 30, 40 }));
    }

    [Test]
    public void Timer_armed_in_the_past_fires_now()
    {
        var s = new Scheduler();
        s.RunFor(1000);
        long at = -1;
        var t = new KTimer(s, _ => at = s.Now);
        t.ArmAt(5);

        s.RunUntilIdle();

        Assert.That(at, Is.EqualTo(1000));
    }

    [Test]
    public void RunUntil_runs_events_up_to_the_limit_and_leaves_the_clock_there()
    {
        var s = new Scheduler();
        var log = new List<long>();
        s.After(10, () => log.Add(10));
        s.After(50, () => log.Add(50));
        s.After(51, () => log.Add(51));

        s.RunUntil(50);

        using (Assert.EnterMultipleScope())
        {
            Assert.That(log, Is.EqualTo(new long[] { 10, 50 }), "an event due exactly at the limit runs");
            Assert.That(s.Now, Is.EqualTo(50));
            Assert.That(s.PendingCount, Is.EqualTo(1));
        }
    }

    [Test]
    public void RunFor_advances_the_clock_even_with_nothing_to_run()
    {
        var s = new Scheduler();
        s.RunFor(3 * Time.Millisecond);
        s.RunFor(2 * Time.Millisecond);

        Assert.That(s.Now, Is.EqualTo(5 * Time.Millisecond));
    }

    [Test]
    public void RunUntil_never_moves_the_clock_backwards()
    {
        var s = new Scheduler();
        s.RunFor(100);
        s.RunUntil(20);

        Assert.That(s.Now, Is.EqualTo(100));
    }

    [Test]
    public void RunUntilIdle_leaves_the_clock_at_the_last_event()
    {
        var s = new Scheduler();
        s.After(Time.Second, () => { });
        s.After(2 * Time.Millisecond, () => { });

        s.RunUntilIdle();

        Assert.That(s.Now, Is.EqualTo(Time.Second));
    }

    [Test]
    public void RunUntilIdle_with_a_deadline_leaves_later_events_pending()
    {
        var s = new Scheduler();
        int ran = 0;
        s.After(10, () => ran++);
        s.After(1000, () => ran++);

        s.RunUntilIdle(deadline: 500);

        using (Assert.EnterMultipleScope())
        {
            Assert.That(ran, Is.EqualTo(1));
            Assert.That(s.Now, Is.EqualTo(10));
            Assert.That(s.NextEventTime, Is.EqualTo(1000));
        }
    }

    [Test]
    public void RunUntil_condition_stops_as_soon_as_it_holds()
    {
        var s = new Scheduler();
        int count = 0;
        for (int i = 1; i <= 10; i++) s.After(i * 100, () => count++);

        bool done = s.RunUntil(() => count == 3);

        using (Assert.EnterMultipleScope())
        {
            Assert.That(done, Is.True);
            Assert.That(s.Now, Is.EqualTo(300));
            Assert.That(s.PendingCount, Is.EqualTo(7));
        }
    }

    [Test]
    public void RunUntil_condition_reports_false_when_the_world_goes_idle()
    {
        var s = new Scheduler();
        s.After(100, () => { });

        bool done = s.RunUntil(() => false);

        using (Assert.EnterMultipleScope())
        {
            Assert.That(done, Is.False);
            Assert.That(s.Now, Is.EqualTo(100));
        }
    }

    [Test]
    public void Many_interleaved_timers_fire_in_time_then_arming_order()
    {
        var s = new Scheduler();
        var random = new HostRandom(42);
        var expected = new List<(long When, int Seq)>();
        var actual = new List<(long When, int Seq)>();
        var timers = new List<KTimer>();
        for (int i = 0; i < 2000; i++)
        {
            long when = random.Next(50);
            int seq = i;
            var t = new KTimer(s, _ => actual.Add((s.Now, seq)));
            t.ArmAt(when);
            timers.Add(t);
            expected.Add((when, seq));
        }
        for (int i = 0; i < 2000; i += 3)
        {
            timers[i].Cancel();
            expected.RemoveAll(e => e.Seq == i);
        }

        s.RunUntilIdle();

        Assert.That(actual, Is.EqualTo(expected.OrderBy(e => e.When).ThenBy(e => e.Seq)));
    }

    [TestCase(1UL)]
    [TestCase(2UL)]
    [TestCase(3UL)]
    public void Zero_delay_and_later_events_armed_from_events_run_in_time_then_arming_order(ulong seed)
    {
        // Events armed for the current time wait in a FIFO beside the heap (Scheduler's theory
        // statement): mixed with later ones, cancelled, re-armed now or later, compacted, the
        // order must stay (time, last arming) and each arming that stands must fire exactly once.
        var s = new Scheduler();
        var random = new HostRandom(seed);
        long armings = 0;
        var fired = new List<(long When, long Arming)>();
        var timers = new KTimer[64];
        var lastArming = new long[timers.Length];
        int expected = 0, budget = 20_000;
        void Arm(int i, long delay)
        {
            if (!timers[i].IsArmed) expected++;
            lastArming[i] = ++armings;
            timers[i].ArmAfter(delay);
        }
        for (int i = 0; i < timers.Length; i++)
        {
            int n = i;
            timers[i] = new KTimer(s, _ =>
            {
                fired.Add((s.Now, lastArming[n]));
                for (int k = random.Next(3); k > 0 && budget > 0; k--, budget--)
                {
                    int j = random.Next(timers.Length);
                    switch (random.Next(4))
                    {
                        case 0:
                            if (timers[j].Cancel()) expected--;
                            break;
                        case 1:
                            Arm(j, random.Next(5));
                            break;
                        default:
                            Arm(j, 0);
                            break;
                    }
                }
            });
        }
        for (int i = 0; i < timers.Length; i++) Arm(i, random.Next(3));

        s.RunUntilIdle();

        using (Assert.EnterMultipleScope())
        {
            Assert.That(fired, Is.EqualTo(fired.OrderBy(f => f.When).ThenBy(f => f.Arming).ToList()), "time, then arming order");
            Assert.That(fired.Select(f => f.Arming).Distinct().Count(), Is.EqualTo(fired.Count), "no arming fires twice");
            Assert.That(fired, Has.Count.EqualTo(expected), "every arming that stands fires");
            Assert.That(s.PendingCount, Is.Zero);
        }
    }

    [Test]
    public void Cancelled_zero_delay_events_are_compacted_and_the_rest_run_in_order()
    {
        var s = new Scheduler();
        var log = new List<int>();
        var timers = new List<KTimer>();
        for (int i = 0; i < 5_000; i++)
        {
            int n = i;
            var t = new KTimer(s, _ => log.Add(n));
            t.ArmAfter(0);
            timers.Add(t);
        }
        for (int i = 0; i < 5_000; i++)
            if (i % 100 != 7) timers[i].Cancel();

        s.RunUntilIdle();

        Assert.That(log, Is.EqualTo(Enumerable.Range(0, 5_000).Where(i => i % 100 == 7)));
    }
}

public class SchedulerCompactionTests
{
    [Test]
    public void Cancelled_timers_do_not_pile_up_in_the_heap()
    {
        var s = new SmartOS.Kernel.Scheduler();
        var keep = new SmartOS.Kernel.KTimer(s, _ => { });
        keep.ArmAfter(1_000_000_000);
        int fired = 0;
        var t = new SmartOS.Kernel.KTimer(s, _ => fired++);
        for (int i = 0; i < 100_000; i++)
        {
            t.ArmAfter(500_000_000); // re-arming cancels the previous entry
        }
        long before = GC.GetTotalMemory(true);
        for (int i = 0; i < 100_000; i++) t.ArmAfter(500_000_000);
        long after = GC.GetTotalMemory(true);
        s.RunUntilIdle();
        using (Assert.EnterMultipleScope())
        {
            Assert.That(fired, Is.EqualTo(1));
            Assert.That(s.PendingCount, Is.Zero);
            Assert.That(after - before, Is.LessThan(1_000_000), "the heap stays small while timers are re-armed");
        }
    }

    [Test]
    public void Cancelled_timers_of_their_own_are_compacted_out_of_the_heap()
    {
        var s = new SmartOS.Kernel.Scheduler();
        int fired = 0;
        var timers = new SmartOS.Kernel.KTimer[50_000];
        for (int i = 0; i < timers.Length; i++) timers[i] = new SmartOS.Kernel.KTimer(s, _ => fired++);
        long before = GC.GetTotalMemory(true);
        for (int round = 0; round < 4; round++)
        {
            foreach (var t in timers)
            {
                t.ArmAfter(1000 + round);
                t.Cancel();
            }
        }
        long after = GC.GetTotalMemory(true);
        timers[7].ArmAfter(10);
        s.RunUntilIdle();
        using (Assert.EnterMultipleScope())
        {
            Assert.That(fired, Is.EqualTo(1));
            Assert.That(s.Now, Is.EqualTo(10));
            Assert.That(s.PendingCount, Is.Zero);
            Assert.That(after - before, Is.LessThan(4_000_000), "stale entries are compacted away");
        }
    }

    [Test]
    public void Timers_pulled_earlier_over_and_over_do_not_pile_up_in_the_heap()
    {
        var s = new SmartOS.Kernel.Scheduler();
        int fired = 0;
        var t = new SmartOS.Kernel.KTimer(s, _ => fired++);
        for (int i = 0; i < 10_000; i++) t.ArmAt(1_000_000_000 - i);
        long before = GC.GetTotalMemory(true);
        for (int i = 10_000; i < 200_000; i++) t.ArmAt(1_000_000_000 - i);
        long after = GC.GetTotalMemory(true);
        s.RunUntilIdle();
        using (Assert.EnterMultipleScope())
        {
            Assert.That(fired, Is.EqualTo(1));
            Assert.That(s.Now, Is.EqualTo(1_000_000_000 - 199_999));
            Assert.That(after - before, Is.LessThan(1_000_000), "abandoned entries are compacted away");
        }
    }

    [Test]
    public void A_cancelled_timer_armed_again_later_fires_once_at_the_new_time()
    {
        var s = new SmartOS.Kernel.Scheduler();
        var fired = new List<long>();
        var t = new SmartOS.Kernel.KTimer(s, _ => fired.Add(s.Now));
        var other = new SmartOS.Kernel.KTimer(s, _ => fired.Add(-s.Now));
        t.ArmAt(100);
        t.Cancel();
        other.ArmAt(150);
        t.ArmAt(200);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(s.PendingCount, Is.EqualTo(2));
            Assert.That(s.NextEventTime, Is.EqualTo(150));
        }
        s.RunUntilIdle();
        Assert.That(fired, Is.EqualTo(new long[] { -150, 200 }));
    }

    [Test]
    public void Cancelled_and_rearmed_timers_are_compacted_out_of_the_heap()
    {
        var s = new SmartOS.Kernel.Scheduler();
        int fired = 0;
        var t = new SmartOS.Kernel.KTimer(s, _ => fired++);
        for (int i = 0; i < 10_000; i++)
        {
            t.ArmAfter(500);
            t.Cancel();
        }
        long before = GC.GetTotalMemory(true);
        for (int i = 0; i < 100_000; i++)
        {
            t.ArmAfter(500);
            t.Cancel();
        }
        long after = GC.GetTotalMemory(true);
        t.ArmAfter(500);
        s.RunUntilIdle();
        using (Assert.EnterMultipleScope())
        {
            Assert.That(fired, Is.EqualTo(1));
            Assert.That(s.Now, Is.EqualTo(500));
            Assert.That(after - before, Is.LessThan(1_000_000), "stale entries are compacted away");
        }
    }
}
