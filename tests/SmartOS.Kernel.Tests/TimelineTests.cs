using SmartOS.Kernel;

namespace SmartOS.Kernel.Tests;

/// <summary>kernel/Timeline.cs: the serial order of a world's domains, and windows that give the
/// same result on any number of threads.</summary>
public class TimelineTests
{
    /// <summary>A one-way link carrying numbers from one domain to another after a delay, kept
    /// until the barrier while it crosses cells (as a wire does with frames).</summary>
    private sealed class Link(Scheduler from, Scheduler to, long delay, Action<long> receive) : ITimelineLink
    {
        private readonly List<(long Due, long Value)> _kept = [];
        private readonly List<(long Due, long Value)> _handed = [];
        private bool _crossing;

        /// <summary>Leaves the hand-over to the receiving end's thread (Receive), as a wire does.</summary>
        public bool Deferred;

        public Scheduler EndA => from;
        public Scheduler EndB => to;
        public long DelayNs => delay;
        public bool Crossing { set => _crossing = value; }
        public int Exchanged;

        /// <summary>What the timeline last said of the ends' threads (ITimelineLink.Apart), and what it
        /// said at each barrier of a run in windows.</summary>
        public bool Apart { get; set; }
        public readonly HashSet<bool> ApartAtBarriers = [];

        public void Send(long value)
        {
            long due = from.Now + delay;
            if (_crossing) _kept.Add((due, value));
            else Fly(due, value);
        }

        private void Fly(long due, long value)
        {
            var t = new KTimer(to, _ => receive(value));
            t.ArmAt(due);
        }

        public void Exchange()
        {
            if (_crossing) ApartAtBarriers.Add(Apart);
            Settle();
            if (Deferred) _handed.AddRange(_kept);
            else foreach (var (due, value) in _kept) Fly(due, value);
            Exchanged += _kept.Count;
            _kept.Clear();
        }

        public long NextArrival => _handed.Count == 0 ? long.MaxValue : _handed.Min(h => h.Due);

        public void Receive(Scheduler end)
        {
            if (ReferenceEquals(end, to)) Settle();
        }

        public void Drain()
        {
            Exchange();
            Settle();
        }

        private void Settle()
        {
            foreach (var (due, value) in _handed) Fly(due, value);
            _handed.Clear();
        }
    }

    /// <summary>A host stand-in: on each number it logs, does some local work with its own random
    /// source, and passes a number on along each of its links.</summary>
    private sealed class Actor(Scheduler s, ulong seed, int id)
    {
        private readonly HostRandom _r = new(seed);
        public readonly List<string> Log = [];
        public readonly List<Link> Out = [];
        public readonly HashSet<int> Threads = [];

        public void Receive(long value)
        {
            Threads.Add(Environment.CurrentManagedThreadId);
            Log.Add($"{s.Now}:{value}");
            if (value <= 0) return;
            // Local work at the same instant and later: ties inside the domain keep arming order.
            s.After(0, () => Log.Add($"{s.Now}:local{value}"));
            s.After(_r.Next(30_000), () =>
            {
                Log.Add($"{s.Now}:later{value}");
                foreach (var l in Out) l.Send(value - 1 - _r.Next(2));
            });
            _ = id;
        }
    }

    private static (Timeline T, Actor[] Actors, List<Link> Links) Ring(int hosts, long[] delays, int threads)
    {
        var t = new Timeline(new Scheduler()) { Threads = threads };
        var doms = Enumerable.Range(0, hosts).Select(_ => t.AddDomain()).ToArray();
        var actors = doms.Select((d, i) => new Actor(d, (ulong)(i + 1), i)).ToArray();
        var links = new List<Link>();
        for (int i = 0; i < hosts; i++)
        {
            int j = (i + 1) % hosts;
            foreach (var (a, b) in new[] { (i, j), (j, i) })
            {
                var l = new Link(doms[a], doms[b], delays[i], actors[b].Receive);
                actors[a].Out.Add(l);
                t.AddLink(l);
                links.Add(l);
            }
        }
        return (t, actors, links);
    }

    private static List<string>[] RunRing(int threads, out Timeline timeline, out Actor[] actors, bool deferred = false, Func<TimeSpan>? costClock = null)
    {
        var (t, a, links) = Ring(4, [20_000, 50_000, 0, 100_000], threads);
        t.CostClock = costClock;
        foreach (var l in links) l.Deferred = deferred;
        foreach (var actor in a)
        {
            var d = t.Domains[Array.IndexOf(a, actor) + 1];
            new KTimer(d, _ => actor.Receive(12)).ArmAt(1000);
        }
        t.RunUntil(2 * Time.Millisecond);
        timeline = t;
        actors = a;
        return [.. a.Select(x => x.Log)];
    }

    [Test]
    public void At_one_instant_lower_domains_run_first_and_each_domain_in_arming_order()
    {
        var t = new Timeline(new Scheduler());
        var h1 = t.AddDomain();
        var h2 = t.AddDomain();
        var log = new List<string>();
        h2.After(5, () => log.Add("h2a"));
        h1.After(5, () => log.Add("h1a"));
        t.Root.After(5, () => log.Add("root"));
        h2.After(5, () => log.Add("h2b"));
        h1.After(5, () => log.Add("h1b"));

        h2.RunUntilIdle(); // any domain's Run methods run the timeline

        Assert.That(log, Is.EqualTo(new[] { "root", "h1a", "h1b", "h2a", "h2b" }));
        Assert.That((t.Now, h1.Now, h2.Now, t.Root.Now), Is.EqualTo((5L, 5L, 5L, 5L)));
    }

    [Test]
    public void A_host_arming_order_does_not_depend_on_another_host()
    {
        static List<string> Run(int otherTimers)
        {
            var t = new Timeline(new Scheduler());
            var h1 = t.AddDomain();
            var h2 = t.AddDomain();
            var log = new List<string>();
            for (int i = 0; i < otherTimers; i++) h1.After(7, () => { });
            h2.After(10, () => log.Add("x"));
            h2.After(10, () => log.Add("y"));
            t.RunUntilIdle();
            return log;
        }

        Assert.That(Run(5), Is.EqualTo(Run(0)));
    }

    [Test]
    public void Without_a_link_between_cells_the_timeline_runs_as_one_merge()
    {
        var (t, _, _) = Ring(3, [0, 0, 0], threads: 4);
        var (t2, _, _) = Ring(3, [10, 20, 30], threads: 4);
        using (Assert.EnterMultipleScope())
        {
            Assert.That((t.Lookahead, t.Partitions), Is.EqualTo((long.MaxValue, 1)), "zero-delay links make one cell");
            Assert.That((t2.Lookahead, t2.Partitions), Is.EqualTo((10L, 3)), "the smallest delay between cells, one thread per cell");
        }
    }

    [Test]
    public void A_zero_delay_link_joins_its_hosts_into_one_cell_and_the_lookahead_ignores_it()
    {
        var (t, _, _) = Ring(4, [20_000, 0, 50_000, 100_000], threads: 8);

        Assert.That((t.Lookahead, t.Partitions), Is.EqualTo((20_000L, 3)));
    }

    [Test]
    public void A_link_that_finishes_its_hand_over_on_the_receiving_thread_gives_the_same_result()
    {
        var atBarrier = RunRing(1, out var t0, out _);
        var one = RunRing(1, out var t1, out _, deferred: true);
        var two = RunRing(2, out var t2, out var actors2, deferred: true);
        var three = RunRing(3, out _, out _, deferred: true);

        using (Assert.EnterMultipleScope())
        {
            Assert.That(atBarrier.Sum(l => l.Count), Is.GreaterThan(100), "the ring carried traffic");
            Assert.That(one, Is.EqualTo(atBarrier));
            Assert.That(two, Is.EqualTo(atBarrier));
            Assert.That(three, Is.EqualTo(atBarrier));
            Assert.That((t1.Windows, t2.Windows), Is.EqualTo((t0.Windows, t0.Windows)), "the plan counts what the links hold");
            Assert.That(actors2.SelectMany(a => a.Threads).Distinct().Count(), Is.EqualTo(2), "two threads received");
        }
    }

    /// <summary>Four hosts in a chain, the first and third busy (a tick every microsecond), the others
    /// idle but for a tick every ten; every tenth tick passes a number on to the next host.</summary>
    private static (List<string> Log, Timeline T, Scheduler[] Hosts) RunUnequal(int threads)
    {
        var t = new Timeline(new Scheduler()) { Threads = threads };
        var hosts = Enumerable.Range(0, 4).Select(_ => t.AddDomain()).ToArray();
        var logs = hosts.Select(_ => new List<string>()).ToArray();
        var links = new Link?[4];
        for (int i = 0; i + 1 < 4; i++)
        {
            int to = i + 1;
            links[i] = new Link(hosts[i], hosts[to], 5_000, v => logs[to].Add($"{hosts[to].Now}:got{v}"));
            t.AddLink(links[i]!);
        }
        for (int i = 0; i < 4; i++)
        {
            int h = i;
            long period = h % 2 == 0 ? 1_000 : 10_000;
            long ticks = 0;
            KTimer? tick = null;
            tick = new KTimer(hosts[h], _ =>
            {
                ticks++;
                if (ticks % 10 == 0)
                {
                    logs[h].Add($"{hosts[h].Now}:tick{ticks}");
                    links[h]?.Send(ticks);
                }
                tick!.ArmAt(hosts[h].Now + period);
            });
            tick.ArmAt(period);
        }
        t.RunUntil(Time.Millisecond);
        t.RunUntil(2 * Time.Millisecond);
        return ([.. logs.SelectMany((l, i) => l.Select(x => $"h{i} {x}"))], t, hosts);
    }

    [Test]
    public void Cells_are_spread_over_threads_by_the_work_they_did()
    {
        var (one, _, _) = RunUnequal(1);
        var (two, t, hosts) = RunUnequal(2);

        using (Assert.EnterMultipleScope())
        {
            Assert.That(one.Count, Is.GreaterThan(400), "the hosts ticked and passed numbers on");
            Assert.That(two, Is.EqualTo(one), "the same bytes whichever thread runs a host");
            // By count the two busy hosts (cells 0 and 2) share partition 0; after the first run
            // they are spread by their events, one busy host on each thread.
            Assert.That(t.Respreads, Is.EqualTo(1));
            Assert.That(t.PartitionOf(hosts[0]), Is.Not.EqualTo(t.PartitionOf(hosts[2])));
            Assert.That(new[] { hosts[0], hosts[1], hosts[2], hosts[3] }.Select(t.PartitionOf).Distinct().Count(), Is.EqualTo(2));
        }
    }

    [Test]
    public void Each_partition_s_time_in_windows_is_measured_for_benchmarks()
    {
        // A clock that moves one tick each time it is read (what a benchmark's Stopwatch stands for).
        long ticks = 0;
        RunRing(2, out var t, out _, costClock: () => TimeSpan.FromTicks(Interlocked.Increment(ref ticks)));
        var busy = t.PartitionBusy;

        using (Assert.EnterMultipleScope())
        {
            Assert.That(busy, Has.Length.EqualTo(2));
            Assert.That(busy, Has.All.GreaterThan(TimeSpan.Zero));
            Assert.That(t.CriticalPath, Is.GreaterThan(TimeSpan.Zero).And.LessThanOrEqualTo(busy[0] + busy[1]));
            Assert.That(t.BarrierTime, Is.GreaterThan(TimeSpan.Zero));
            var handOver = t.PartitionHandOver;
            Assert.That(handOver, Has.Length.EqualTo(2));
            for (int p = 0; p < 2; p++)
                Assert.That(handOver[p], Is.GreaterThan(TimeSpan.Zero).And.LessThan(busy[p]), $"partition {p}'s hand-over is part of its time in windows");
            Assert.That(t.PartitionStartLag, Has.Length.EqualTo(2).And.All.GreaterThan(TimeSpan.Zero), "each window starts after the barrier that released it");
        }
    }

    /// <summary>WindowBarrier's blocking: the other partitions wait for the barrier's thread, which
    /// runs the world's own events (here sleeping 50 ms each), or for a partition whose host works
    /// long (the second host, alone in partition 1, sleeping so). The waiters block at once
    /// (Timeline.BlockAtOnce: on a loaded machine a yielding spin can outlast any such wait), so
    /// every barrier goes through the blocking and its release.</summary>
    [TestCase(true)]
    [TestCase(false)]
    public void Partitions_that_block_at_a_barrier_are_released_and_the_windows_go_on(bool barrierWorksLong)
    {
        List<string>[] Run(int threads, out Timeline t, out int slowRan)
        {
            var (tl, actors, _) = Ring(4, [20_000, 50_000, 0, 100_000], threads);
            tl.BlockAtOnce = true;
            for (int i = 0; i < actors.Length; i++)
            {
                var actor = actors[i];
                new KTimer(tl.Domains[i + 1], _ => actor.Receive(12)).ArmAt(1000);
            }
            int ran = 0;
            var slow = barrierWorksLong ? tl.Root : tl.Domains[2];
            foreach (long at in new[] { 300_000L, 700_000L, 1_100_000L })
                slow.After(at, () =>
                {
                    Thread.Sleep(50);
                    ran++;
                });
            tl.RunUntil(2 * Time.Millisecond);
            t = tl;
            slowRan = ran;
            return [.. actors.Select(a => a.Log)];
        }

        var one = Run(1, out _, out int ranOne);
        var two = Run(2, out var t2, out int ranTwo);
        var three = Run(3, out var t3, out int ranThree);

        using (Assert.EnterMultipleScope())
        {
            Assert.That(one.Sum(l => l.Count), Is.GreaterThan(100), "the ring carried traffic");
            Assert.That((ranOne, ranTwo, ranThree), Is.EqualTo((3, 3, 3)), "the long events ran");
            Assert.That(two, Is.EqualTo(one));
            Assert.That(three, Is.EqualTo(one));
            // At least the other partitions at each of the three long barriers.
            Assert.That(t2.BlockedWaits, Is.GreaterThanOrEqualTo(3), "the other partition blocked");
            Assert.That(t3.BlockedWaits, Is.GreaterThanOrEqualTo(6), "the other partitions blocked");
        }
    }

    [Test]
    public void Windows_give_the_same_result_on_one_two_and_three_threads()
    {
        var one = RunRing(1, out var t1, out _);
        var two = RunRing(2, out var t2, out var actors2);
        var twoAgain = RunRing(2, out _, out _);
        var three = RunRing(3, out var t3, out _);

        using (Assert.EnterMultipleScope())
        {
            Assert.That(one.Sum(l => l.Count), Is.GreaterThan(100), "the ring carried traffic");
            Assert.That(t1.Windows, Is.GreaterThan(10));
            Assert.That(two, Is.EqualTo(one));
            Assert.That(twoAgain, Is.EqualTo(one));
            Assert.That(three, Is.EqualTo(one));
            Assert.That((t2.Windows, t3.Windows), Is.EqualTo((t1.Windows, t1.Windows)));
            Assert.That(t2.Partitions, Is.EqualTo(2));
            Assert.That(actors2.SelectMany(a => a.Threads).Distinct().Count(), Is.EqualTo(2), "two threads ran the hosts");
            Assert.That((t1.Now, t2.Now), Is.EqualTo((2 * Time.Millisecond, 2 * Time.Millisecond)));
        }
    }

    /// <summary>ITimelineLink.Apart: a link hears whether its ends run on different threads (a wire
    /// then stages what it carries, vnic/Wire.cs), only while a run in windows lasts, and never on one
    /// thread, with the cells merged or run one after another.</summary>
    [TestCase(1, 0, false, false)]
    [TestCase(1, 1, false, false)]
    [TestCase(2, 0, true, false)]
    [TestCase(3, 0, true, true)]
    public void A_link_hears_whether_its_ends_run_on_different_threads(int threads, int cellOrder, bool apart, bool same)
    {
        // Three cells: a, b and c in partitions 0, 1, 0 on two threads, 0, 1, 2 on three.
        var t = new Timeline(new Scheduler()) { Threads = threads };
        if (threads == 1) t.SerialCellOrder = cellOrder;
        var (a, b, c) = (t.AddDomain(), t.AddDomain(), t.AddDomain());
        // One list per receiving host: b and c may run on two threads at once.
        var (atB, atC) = (new List<long>(), new List<long>());
        var ab = new Link(a, b, 50_000, atB.Add);
        var ac = new Link(a, c, 50_000, atC.Add);
        t.AddLink(ab);
        t.AddLink(ac);
        foreach (var d in new[] { a, b, c }) new KTimer(d, _ => { }).ArmAt(400_000);
        new KTimer(a, _ => { ab.Send(1); ac.Send(2); }).ArmAt(1000);
        t.RunUntil(Time.Millisecond);

        using (Assert.EnterMultipleScope())
        {
            Assert.That((atB, atC), Is.EqualTo((new List<long> { 1 }, new List<long> { 2 })));
            Assert.That(ab.ApartAtBarriers, Is.EqualTo(new[] { apart }), "a and b: partitions 0 and 1");
            Assert.That(ac.ApartAtBarriers, Is.EqualTo(new[] { same }), "a and c: partition 0, and 0 or 2");
            Assert.That((ab.Apart, ac.Apart), Is.EqualTo((false, false)), "after the run");
        }
    }

    [Test]
    public void A_condition_is_noticed_at_the_barrier_after_it_holds_on_any_number_of_threads()
    {
        static (long Now, bool Held) Run(int threads)
        {
            var t = new Timeline(new Scheduler()) { Threads = threads };
            var a = t.AddDomain();
            var b = t.AddDomain();
            t.AddLink(new Link(a, b, 100, _ => { }));
            bool done = false;
            a.After(30, () => { });
            b.After(250, () => done = true);
            b.After(400, () => { });
            bool held = t.RunUntil(() => done);
            return (t.Now, held);
        }

        // Windows of 100 ns from the first pending event: [30, 129], then (idle time skipped) [250, 349].
        Assert.That(Run(1), Is.EqualTo((349L, true)));
        Assert.That(Run(2), Is.EqualTo((349L, true)));
    }

    [Test]
    public void The_roots_events_run_at_a_barrier_before_the_hosts_events_of_that_instant()
    {
        var t = new Timeline(new Scheduler()) { Threads = 2 };
        var a = t.AddDomain();
        var b = t.AddDomain();
        t.AddLink(new Link(a, b, 1000, _ => { }));
        var log = new List<string>();
        a.After(500, () => { lock (log) log.Add($"a@{a.Now}"); });
        t.Root.After(500, () => log.Add($"root@{t.Root.Now}"));
        b.After(700, () => { lock (log) log.Add($"b@{b.Now}"); });

        t.RunUntilIdle();

        // a@500 and b@700 share the window that opens at the barrier, each on its own thread, so
        // this log (written outside the simulation) sees them in either order; only the root's
        // place before both is the timeline's promise.
        Assert.That(log, Has.Count.EqualTo(3));
        Assert.That(log[0], Is.EqualTo("root@500"));
        Assert.That(log.Skip(1), Is.EquivalentTo(new[] { "a@500", "b@700" }));
        Assert.That(t.Now, Is.EqualTo(700));
    }

    [TestCase(1)]
    [TestCase(2)]
    public void Arming_another_hosts_timer_inside_a_window_is_refused_on_any_number_of_threads(int threads)
    {
        var t = new Timeline(new Scheduler()) { Threads = threads };
        var a = t.AddDomain();
        var b = t.AddDomain();
        t.AddLink(new Link(a, b, 1000, _ => { }));
        a.After(10, () => b.After(5, () => { }));

        Assert.That(() => t.RunUntilIdle(), Throws.InvalidOperationException.With.Message.Contains("only wires may carry work between hosts"));
        Assert.That(() => b.After(5, () => { }), Throws.Nothing, "between runs any thread may arm");
    }

    /// <summary>Rule 6 at the barrier: the barrier's thread may arm any host's timer (the condition
    /// is tested there), another thread may not while the run lasts (a continuation that reached
    /// the thread pool would race with the barrier's hand-over on the host's heap).</summary>
    [TestCase(1)]
    [TestCase(2)]
    public void Arming_a_hosts_timer_from_another_thread_during_a_barrier_is_refused(int threads)
    {
        var t = new Timeline(new Scheduler()) { Threads = threads };
        var a = t.AddDomain();
        var b = t.AddDomain();
        t.AddLink(new Link(a, b, 1000, _ => { }));
        a.After(10, () => { });
        a.After(5000, () => { });
        Exception? offThread = null;
        bool armedOnBarrier = false;
        int barriers = 0;
        bool Done()
        {
            if (++barriers != 2) return false;
            var other = new Thread(() =>
            {
                try { a.After(1, () => { }); }
                catch (Exception e) { offThread = e; }
            });
            other.Start();
            other.Join();
            b.After(1, () => armedOnBarrier = true); // the barrier's own thread: allowed
            return false;
        }

        t.RunUntil(Done);

        Assert.That(offThread, Is.InstanceOf<InvalidOperationException>().With.Message.Contains("off the timeline's threads"));
        Assert.That(armedOnBarrier, Is.True, "the barrier's thread armed a host's timer, which ran");
        Assert.That(() => a.After(5, () => { }), Throws.Nothing, "between runs any thread may arm");
    }

    [Test]
    public void Arming_the_worlds_own_timers_inside_a_window_is_refused()
    {
        var t = new Timeline(new Scheduler());
        var a = t.AddDomain();
        var b = t.AddDomain();
        t.AddLink(new Link(a, b, 1000, _ => { }));
        a.After(10, () => t.Root.After(5, () => { }));

        Assert.That(() => t.RunUntilIdle(), Throws.InvalidOperationException);
    }

    [Test]
    public void A_thread_count_below_one_is_refused()
    {
        var t = new Timeline(new Scheduler());

        Assert.That(() => t.Threads = 0, Throws.TypeOf<ArgumentOutOfRangeException>());
    }
}
