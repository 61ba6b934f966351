using System.Collections.Concurrent;
using System.Runtime.ExceptionServices;
using System.Runtime.Intrinsics.X86;

namespace SmartOS.Kernel;

/*
 * Timeline: one world's virtual time, run on one thread or on several (ARCHITECTURE.md, "Many hosts,
 * many cores"), with the same bytes out either way.
 *
 * Terms
 *   domain     one Scheduler of the timeline: the world's own (domain 0, the root: what the world
 *              itself arms, a test's callbacks) and one per host (domains 1, 2, ... in the order the
 *              hosts were made). Each has its own heap, clock and arming sequence.
 *   link       something that carries work from one domain to another after a delay (a wire between
 *              two hosts' NICs: ITimelineLink). Nothing else may: hosts share no mutable state.
 *   cell       the domains joined by links of zero delay (a link of zero delay has no lookahead, so
 *              its two ends can never run apart: they are one cell, whatever the thread count).
 *   lookahead  L, the smallest delay of a link between two cells. Work sent across it at time t
 *              arrives no earlier than t + L.
 *   window     an interval [S, S + L - 1] of virtual time in which every cell runs its own events
 *              without hearing from any other: nothing sent in it can arrive before its end.
 *   barrier    the moment between two windows, when one thread runs alone: it hands over what links
 *              carried across cells (link.Exchange, in the order the links were made), runs the
 *              root's events, tests the caller's condition and plans the next window. A link may
 *              leave the costly part of the hand-over (a wire's copy of each frame into the
 *              receiver's pool) to the start of the next window, on each end's own thread
 *              (link.Receive, in link order), and say how early what it holds arrives
 *              (link.NextArrival), which the plan counts as a pending event.
 *   partition  the cells one thread runs, P = min(threads, cells) of them: cell c in partition
 *              c mod P until the cells have run, then spread by their work (rule 8).
 *
 * Rules
 *   1. The serial order of events is (time, domain, the domain's arming sequence): at an instant the
 *      lower domain's events run first, and a domain's own events in the order they were armed. A
 *      host's sequence counts only its own timers, so its order does not depend on other hosts.
 *   2. A timeline with no link between cells (one host, or hosts joined only by zero-delay wires)
 *      runs as one merge of its domains in that order, one event at a time, as the single world
 *      scheduler ran before (RunOne, and what the real-time driver uses, is always this merge).
 *   3. With a link between cells the timeline runs in windows, whatever the thread count: on one
 *      thread the cells of a window run one after another, on P threads side by side. Inside a cell
 *      events run in rule 1's order; cells do not touch each other inside a window (rule 6), and
 *      what a link carried between cells is handed over at the barrier in link order, so the state
 *      after every window, and therefore every byte of output, is the same for any P. Where a
 *      link finishes its hand-over at the start of the next window (link.Receive), each receiving
 *      domain still arms its arrivals first in that window, in link order, as at the barrier; before
 *      the root's events run at a barrier every link is drained there (link.Drain), so a root event
 *      sees, and arms after, exactly what it would have.
 *   4. A window starts at the earliest pending event (idle time is skipped) and ends at the least of
 *      S + L - 1, the instant before the root's next event, and the caller's limit. The root's
 *      events run only at barriers, before the hosts' events of the same instant (rule 1).
 *   5. RunUntil(condition) tests the condition at barriers only (after each window and after each
 *      root event), so a scenario notices a command's end at the barrier after it: the same barrier
 *      on one thread as on many. The clock then reads the window's end. RunUntil(time) leaves the
 *      clock at time, RunUntilIdle at the last event run; every domain's clock is brought to the
 *      timeline's at the end of each run, so commands typed between runs see one time.
 *   6. During a window a domain's timers are armed and cancelled only by the events of its own
 *      cell (Scheduler.Guard); the root's by none. At a barrier only the barrier's thread touches
 *      them (Scheduler.AnyCell): the guards stay up from the start of a run in windows to its end,
 *      so a thread that is none of the run's (a continuation that reached the thread pool) throws
 *      instead of racing with the barrier's hand-over on a host's heap. Breaking this throws, on one
 *      thread as on several, so a path between hosts that bypasses the links is found by any test,
 *      not by a rare race. Rule 3's premise is checked on one thread too (SerialCellOrder: the
 *      cells of each window run one after another, first to last or last to first, must give the
 *      bytes of the merge), which finds state two hosts share outside the links whatever the timing.
 *   7. Randomness is per host and per link direction (HostRandom), never shared between cells.
 *   8. With more cells than partitions, the cells are spread again by the events each ran since
 *      the last spread (Respread: the longest-processing-time rule), at the start of each run in
 *      windows and at every 256th barrier, when that lightens the busiest partition by a tenth or
 *      more. Event counts and windows are the same on any thread count, so the spread is
 *      deterministic too, and by rule 3 no byte depends on it.
 *   9. The barrier touches no host's state it need not. It plans the next window from the time of
 *      the next event each partition's thread found at the end of its window, not by looking into
 *      every host's timer heap (which made those lines the barrier thread's, and each partition's
 *      thread then waited for them back at its next event); it looks into the heaps only when it
 *      armed or cancelled a timer itself (a hand-over it finished, a root event: Scheduler.CheckCell
 *      tells it) and at a run's start, so the plan is the one the heaps give. Each partition's
 *      thread sets its own domains' clocks to the window's start.
 *
 * Threads: P - 1 workers come from a process-wide pool of parked threads (the only static state
 * here, a concurrent stack) and meet the caller's thread at a WindowBarrier whose last arrival runs
 * the barrier of rule 3. Waiters poll, then spin yielding, before they block: a window is short
 * (tens to a few hundred microseconds of work), and with System.Threading.Barrier, which blocks
 * sooner, the benchmark measured ~600 us per window of wake-up latency on a busy machine. Real
 * time (smartos boot) never runs in windows.
 *
 * Not done yet: a partition merges its domains by scanning them (fine for tens of hosts per
 * thread, not thousands); the spread by load looks back, so a host whose work starts is placed
 * within 256 windows after.
 *
 * What this machine allows, and how it scales (the parallel benchmark, 2 vCPUs, issue 17). The
 * benchmark accounts for a 2-thread run's wall time: the slowest partition per window summed
 * (CriticalPath), the barriers (BarrierTime, 1-8 ms of 8,348 windows), each window's start after
 * the barrier's end (PartitionStartLag), and, inside the partitions' time, the links' hand-over
 * (PartitionHandOver). The barrier is not the limit. Two things outside this code are:
 *
 * - The JIT. A background thread recompiles at tier 1 what ran often, and a scenario's commands
 *   (each run builds a new world) reach the call count only after several runs: 300-1,050 methods
 *   in each of the first ten runs of the heavy row. On 2 threads that thread takes a core a
 *   partition needs, and the windows start 70-170 ms late in all; a 1-thread run has a core to
 *   spare for it. The benchmark now warms up until a pair of runs compiles at most 10 methods
 *   (7-25 ms of start lag after), and prints how many pairs that took. That still left 70-330
 *   methods to compile inside the measured rounds: the JIT counts calls only after 100 ms without
 *   new tier-0 code, a delay each new method restarts, so code a run calls once took tens of runs.
 *   The benchmark's process sets that delay to 0 and warms up with 100 pairs of short runs first
 *   (35-43 methods compiled while measuring, in four processes).
 * - The machine's placement of its two vCPUs, which the hypervisor changes every few minutes,
 *   within one process as well as between processes. The benchmark measures it before each 2-thread
 *   run (its CrossCoreProbe: one cache line passed from CPU 0 to CPU 1 and back): 100-180 ns at
 *   some times, 400-560 ns at others. Each frame's ~24 cache lines cross from one vCPU to the
 *   other (389,546 frames a run since TCP defers its ACKs as illumos does, netstack's
 *   TcpProtocol.cs rule 9). Until issue 17's last round the receiving thread copied them out of
 *   the sender's own buffer, which the sender wrote into again a window later while the other
 *   vCPU still held its lines: at the slow round trip the hand-over cost 325-346 ns a frame (61-66
 *   on one thread), two threads did an event for 1.6-1.75x the 1-thread cost, and the heavy row
 *   ran 1.0-1.1x, against 1.79-1.80x at the fast one. Now a frame that crosses cells is staged
 *   (Wire.cs, Batch): the sender copies it into the lane's staging area, between threads with
 *   non-temporal stores, and frees its buffer at once, so its lines cross once, toward the
 *   receiver, and never come back. With rule 9 (the barrier no longer reads the hosts' heaps) and
 *   waiters that poll before they yield (WindowBarrier), at the slow round trip: hand-over 73-83
 *   ns a frame (49-57 on one thread), 1.04-1.06x per event, the partitions' busy time 180-200 ms
 *   against 173-195 for half a 1-thread run, and the heavy row 1.63-1.75x (1.46-1.64x before
 *   the waiters' change; 1.63x with one vCPU slower on the benchmark's pointer chase). The fast
 *   placement did not come back long enough to measure it with all three; with staging alone the
 *   partitions were as busy there as in the slow one.
 * - A third state, for minutes at a time: one vCPU a third slower than the other (busy 190-200 ms
 *   on one partition, 240-275 on the other, and a 1-thread run that meets it 500+ ms). The
 *   benchmark times a pointer chase through 4 MiB on each CPU before each pair of runs and prints
 *   it (arithmetic runs alike on both meanwhile: the slowness is in the caches and memory the
 *   host's other tenants share), and gives no verdict on the goal when two threads did an event
 *   for less than one thread did (twice 1.82-1.85x so, at 0.87x per event: the 1-thread runs had
 *   met the slow vCPU).
 *
 * What is left at the slow round trip (the heavy row, ~22 us of work a window per partition):
 * the staging's cost (the receiver's reads come from memory, ~25 ns a frame more than on one
 * thread, and the sender's non-temporal copy), ~0.6-1.2 us a window of waiting for the slower
 * partition (slowest per window summed against the mean), and ~1.1 us of barrier and release.
 * Instrumented with a timestamp at each step (the vCPUs far apart), a window's barrier is ~360 ns
 * from the last partition's end to the barrier's start (the counter's line, and the reports',
 * come from the other core), ~430 ns of barrier, and ~340 / 440 ns from its end to each
 * partition's next start, since the release carries the window on the line the waiters poll and
 * takes no lock (WindowBarrier; 510 / 550 ns before). Each of those is a trip of a line between
 * the cores, so the window's length, not the code, sets them. What would hide them, and the
 * waiting for the slower partition, is slack, which this design does not have: a partition can
 * start a window only when every other has ended the last one, because the lookahead is one
 * window. With windows of half the lookahead, a partition could start window k + 1 once the
 * others had ended window k - 1 (what they send in window k arrives in window k + 2 at the
 * earliest). That needs window starts fixed in advance (no skipping of idle time but at full
 * barriers), a lane's batches chosen by the window's number, and full barriers still for the
 * world's own events and for a run's condition. Not built.
 * Tried and not kept: writing one byte of each line of the originals as the sender reclaimed
 * them, to take the lines back all at once (slower in the fast placement: 205 ms busy against
 * 185); choosing each lane's batch by the window's number, so that the barrier writes no line a
 * lane's halves use (no change measured); a barrier that partition 0's thread always runs, each
 * other partition arriving by writing the barrier's number into its report's line instead of
 * decrementing a shared counter (wall time beyond the slowest partitions' 9-13 ms a run either
 * way); the staging's non-temporal copy writing whole lines, the last padded with zeros, since a
 * partly written line leaves its write-combining buffer as partial writes (both partitions'
 * busy time 346-378 ms a run against 348-377); and, before the staging, waiters that spin without yielding (the floor row unchanged).
 *
 * One sharing was found and removed: timers of two hosts side by side in memory. The benchmark's
 * floor row (two bare hosts, an event every microsecond each doing the same arithmetic, a link that
 * carries nothing) ran 1.37-1.67x with the hosts' timers packed, in runs where the two threads never
 * left their vCPUs (sched_getcpu per event), while two such hosts in two processes side by side
 * slowed each other not at all; with KTimer's written fields a cache line from anything outside it
 * (Scheduler.cs) the floor runs 1.81-2.02x, ~1-4 us a window beyond half the 1-thread time. A wire
 * makes its receiving end's arrival timer and its sending end's transmit timer one after the other,
 * so every crossing frame had written one line from both threads; a lane's sending and receiving
 * scalars are likewise kept apart now (Wire.cs, SendHalf and ReceiveHalf). Ruled out by
 * measurement in earlier rounds: spacers between the objects that consecutive scenario commands
 * make (the commands run on the barrier's thread, one host's after another's) and between
 * consecutive hosts' objects when the hosts are made, prefetching the next frame of the batch,
 * delaying the reuse of a crossed buffer (4,096 frames: everything slower, the bytes no
 * longer in any cache), and waiters that spin without yielding (the start lag unchanged, 26-35 ms
 * either way, while the hand-over's cost hid it; kept since, bounded: WindowBarrier); the last
 * round ruled out padding the schedulers, spacers around them, server GC and the gen0 budget.
 * With the flows across the wire at 100 Mbit/s (the hosts mostly working on their own, 29,184
 * frames crossing instead of 578,520), 2 threads ran 1.42-1.87x. So the design scales
 * where hosts do more work than they exchange; since the staging, also where they exchange a
 * frame for every few events and the cores share no cache (each crossing line moves once, through
 * memory). More cores help as long as each partition has hosts to run and the lookahead leaves
 * windows of tens of microseconds of work (unequal hosts are spread by their events, rule 8); the
 * barrier is one counter all partitions decrement, which on many cores would want a tree.
 *
 * Found (the parallel benchmark's rare difference): a frame a host sends between two runs (a
 * scenario's command runs at a barrier and sends at once: iperf's first ARP request, a SYN) goes
 * on a wire whose lanes do not cross then, so it flew in the sender's buffer; in the next run's
 * windows the receiving host's thread freed it, or cloned it when flooding a broadcast, into the
 * sender's pool while the sender's thread rented from it. The race corrupted that pool, rarely
 * (`SmartOS.Benchmarks parallel-repro`, before the fix): the two flows across the wire stalled
 * after their connections were accepted (no iperf reports for a0 to b0 and b1 to a1, the local
 * flows whole; 234,487 events instead of 2,117,687; run 43 of 1 s flows), or VSwitch.Flood threw
 * a NullReferenceException (runs 18 and 52 of 200 ms flows). Wire.Lane now moves such frames to the
 * receiver's buffers when the run in windows starts (WireTests, "A_frame_in_flight_when_a_run_in_
 * windows_starts"). The seed-37 difference below (e1000g2's counters on 3 threads) fits the same
 * cause but was not reproduced to confirm it. PacketPool has no guard like rule 6's: a pool
 * touched by a foreign thread is found only by that test and the stress runs.
 *
 * Open (before that fix): one run of the parallel benchmark in about a dozen gave a different transcript on two
 * threads (fewer events), and one run of the whole suite (with the faster barrier of branch par17,
 * since reverted) gave ParallelScenarioTests' seed 37 other bytes on 3 threads than on 1 (e1000g2's
 * counters, a pcap). Not reproduced since, and the cause is not known. What has been ruled out, and
 * how: state shared between hosts outside the links (the cells of every window of the examples and
 * of seeds 11, 23 and 37 run in both serial orders give the same bytes: ParallelScenarioTests,
 * "whatever order"); the depth of the stack at which .NET stops inlining continuations (seed 37 on
 * one thread gives the same bytes on a thread of 256 KiB of stack as on one of 16 MiB:
 * ParallelStressTests); a host's timer armed or cancelled from a pool thread (none in seed 37 on 1
 * and 3 threads, instrumented). Closed on the way: the guards were down during every barrier, where
 * a pool thread could have armed a host's timer while the barrier's thread pushed frames into the
 * same heap (rule 6 now covers the barrier), and iperf's UDP receiver cancelled through a
 * continuation that ran on a pool thread whenever the stack was deep. The stress harness
 * (ParallelStressTests, explicit: every seed and example rerun on 1, 2 and 3 threads, meant to run
 * beside busy processes) is the tool for the next attempt.
 */

/// <summary>Something that carries work between two domains of a timeline after a delay (Timeline.cs).</summary>
public interface ITimelineLink
{
    /// <summary>The domain at one end.</summary>
    Scheduler EndA { get; }

    /// <summary>The domain at the other end.</summary>
    Scheduler EndB { get; }

    /// <summary>The least time between a send at one end and its arrival at the other.</summary>
    long DelayNs { get; }

    /// <summary>Set by the timeline: while true the link's ends run on different cells, so the link
    /// keeps what it carries until <see cref="Exchange"/> instead of handing it over at once.</summary>
    bool Crossing { set; }

    /// <summary>Set by the timeline with <see cref="Crossing"/>, and again whenever the cells are spread
    /// anew (at a barrier): true while the link's ends run on different threads, so what one end
    /// writes for the other crosses between cores (a wire then stages its frames with non-temporal
    /// stores, Wire.cs); false on one thread, where the cells of a window run one after another.</summary>
    bool Apart { set { } }

    /// <summary>At a barrier: hands over to the far end what was sent since the last one, in send order.
    /// A link may leave part of the work to <see cref="Receive"/>, on the threads of its ends.</summary>
    void Exchange();

    /// <summary>The earliest arrival handed over at the last barrier and not yet received (long.MaxValue:
    /// none); the timeline plans the next window from it as from a pending event.</summary>
    long NextArrival => long.MaxValue;

    /// <summary>At the start of a window, on the thread that runs <paramref name="end"/>: finishes the
    /// hand-over of the last barrier at that end (the far end's frames put in flight there).</summary>
    void Receive(Scheduler end) { }

    /// <summary>At a barrier: hands over everything at once, on the barrier's thread (before the world's
    /// own events, and at the end of a run in windows).</summary>
    void Drain() => Exchange();
}

/// <summary>The domains of one world's virtual time and the loop that runs them (see the theory statement above).</summary>
public sealed class Timeline
{
    private readonly List<Scheduler> _domains = [];
    private readonly List<ITimelineLink> _links = [];
    private bool _planned;
    private int _plannedThreads;
    private long _lookahead = long.MaxValue;
    private int[] _cellOf = [];
    // Rule 8: each cell's partition, and the events each cell had run when they were last spread.
    private int[] _partOfCell = [];
    private long[] _cellEventsBase = [];
    // Respread's scratch, sized by Plan.
    private long[] _spreadNow = [], _spreadKey = [], _spreadSums = [], _spreadCurrent = [];
    private int[] _spreadOrder = [], _spreadTo = [];
    private Scheduler[][] _parts = [];
    // Per partition, the ends of crossing links it runs, in link order (RunPart's Receive).
    private (ITimelineLink Link, Scheduler End)[][] _partEnds = [];
    private int _threads = 1;

    // The state of a run in windows, read by every partition's thread (written only at barriers).
    private Func<bool>? _done;
    private long _limit;
    private long _windowStart, _windowEnd;
    private bool _windowRan;
    private volatile bool _stop;
    private Exception? _error;
    private Exception?[] _partErrors = [];

    // Arrays with a slot per partition, each partition's slot on cache lines of its own (PartStride
    // longs, 128 bytes, apart), written only by its thread and read at barriers.
    private const int PartStride = 16;
    // What the runs in windows cost in real time (PartitionBusy), when CostClock is set: per
    // partition, at index part * PartStride, the ticks its thread spent in windows, at + 1 this
    // window's, at + 2 the part of them spent in the links' hand-over (PartitionHandOver), at + 3 the
    // time from each barrier's end to its next window's start (PartitionStartLag). Measurement only:
    // nothing the hosts do depends on it.
    private long[] _busy = [];
    // Per partition, at index part * PartStride, the time of its domains' next event when its last
    // window ended (long.MaxValue: none), which the barrier plans the next window from instead of
    // looking into each domain's heap (rule 9). Rule 6's guard tells the barrier when it armed or
    // cancelled a timer itself, and then it looks into every heap, as before.
    private long[] _partNext = [];

    /// <summary>Set when the barrier's thread arms or cancels a timer of a domain (Scheduler.CheckCell):
    /// the partitions' reports of their next event (_partNext) may be out of date.</summary>
    internal bool TouchedAtBarrier;
    private long _criticalTicks, _barrierTicks;
    // When the last barrier ended (CostClock's ticks; 0 before a run's first): a partition's thread
    // reads it at its window's start, after the barrier's release.
    private long _releasedAt;

    /// <summary>Makes a timeline whose domain 0 is <paramref name="root"/> (the world's own scheduler).</summary>
    public Timeline(Scheduler root)
    {
        if (root.Timeline != null) throw new ArgumentException("the scheduler already belongs to a timeline", nameof(root));
        root.Timeline = this;
        root.Domain = 0;
        _domains.Add(root);
        Root = root;
    }

    /// <summary>Domain 0: the world's own events.</summary>
    public Scheduler Root { get; }

    /// <summary>The timeline's clock: the last barrier's, or the last event's in a merge.</summary>
    public long Now { get; private set; }

    /// <summary>Threads a run in windows may use (1: every cell on the caller's thread).</summary>
    public int Threads
    {
        get => _threads;
        set
        {
            if (value < 1) throw new ArgumentOutOfRangeException(nameof(value), "a timeline runs on at least one thread");
            _threads = value;
        }
    }

    /// <summary>A check of rule 3 for tests: on one thread (Threads = 1), run the cells of each window
    /// one after another, each to the window's end, in ascending (1) or descending (-1) cell order,
    /// instead of merged by time (0). Cells do not touch each other inside a window, so the bytes
    /// out must not change; a difference finds state shared between hosts outside the links.</summary>
    public int SerialCellOrder
    {
        get => _cellOrder;
        set
        {
            if (value is < -1 or > 1) throw new ArgumentOutOfRangeException(nameof(value), "0 (merged), 1 (ascending) or -1 (descending)");
            _cellOrder = value;
            _planned = false;
        }
    }

    private int _cellOrder;

    /// <summary>Windows run since the timeline began (each ends at a barrier).</summary>
    public long Windows { get; private set; }

    /// <summary>Times a partition's thread blocked at a barrier, its polling and spinning outlasted by
    /// the barrier's work (a command at a barrier, a thread descheduled).</summary>
    public long BlockedWaits { get; private set; }

    /// <summary>For tests: waiters at a barrier block at once, without polling or spinning first, so
    /// that the blocking and its release are exercised at every barrier whatever the machine's load
    /// (a yielding spin may outlast any fixed wait on a busy machine).</summary>
    internal bool BlockAtOnce { get; set; }

    /// <summary>The lookahead of the last plan (long.MaxValue: no link between cells, so no windows).</summary>
    public long Lookahead
    {
        get
        {
            Plan();
            return _lookahead;
        }
    }

    /// <summary>Threads the next run in windows uses (1 when it runs as a merge).</summary>
    public int Partitions
    {
        get
        {
            Plan();
            return _lookahead == long.MaxValue ? 1 : _parts.Length;
        }
    }

    /// <summary>Real time each partition's thread spent running its cells' events in the runs in
    /// windows since the partitions were last planned (a benchmark's split of the work: the sum over
    /// partitions against the time on one thread is what running side by side costs per event).</summary>
    public TimeSpan[] PartitionBusy => PerPartition(0);

    /// <summary>The part of <see cref="PartitionBusy"/> each partition's thread spent finishing the
    /// links' hand-over at the start of its windows (ITimelineLink.Receive: a wire's copy of each
    /// frame that crossed, out of its staging area into the receiving host's pool): the work that
    /// moves bytes from one core to the other when the partitions run side by side.</summary>
    public TimeSpan[] PartitionHandOver => PerPartition(2);

    /// <summary>Real time from the end of each barrier to the start of the partition's next window,
    /// summed: the thread noticing the release, or waiting for a core (another runnable thread, such
    /// as the JIT's, took it). With <see cref="CriticalPath"/> and <see cref="BarrierTime"/> it
    /// accounts for a run's wall time.</summary>
    public TimeSpan[] PartitionStartLag => PerPartition(3);

    /// <summary>Each partition's figure at <paramref name="slot"/> of its stride in _busy.</summary>
    private TimeSpan[] PerPartition(int slot)
    {
        var figures = new TimeSpan[_busy.Length / PartStride];
        for (int p = 0; p < figures.Length; p++) figures[p] = new TimeSpan(_busy[p * PartStride + slot]);
        return figures;
    }

    /// <summary>The sum over windows of the slowest partition's real time in the window: the least a
    /// run in windows could take with barriers that cost nothing.</summary>
    public TimeSpan CriticalPath => new(_criticalTicks);

    /// <summary>Real time spent in barriers (one thread, every partition stopped).</summary>
    public TimeSpan BarrierTime => new(_barrierTicks);

    /// <summary>A real-time clock the caller supplies (a benchmark's Stopwatch) to measure what the runs
    /// in windows cost: PartitionBusy, PartitionHandOver, PartitionStartLag, CriticalPath, BarrierTime. Null, the default: nothing is
    /// measured. The timeline never reads the wall clock itself, and nothing the hosts do depends on
    /// this (ARCHITECTURE.md, "Two clocks").</summary>
    public Func<TimeSpan>? CostClock { get; set; }

    internal RealTimeDriver? Driver { get; set; }

    public IReadOnlyList<Scheduler> Domains => _domains;

    /// <summary>A new domain (a host's scheduler), its clock at the timeline's.</summary>
    public Scheduler AddDomain()
    {
        var s = new Scheduler { Timeline = this, Domain = _domains.Count };
        s.SetNow(Now);
        _domains.Add(s);
        _planned = false;
        return s;
    }

    public void AddLink(ITimelineLink link)
    {
        if (link.EndA.Timeline != this || link.EndB.Timeline != this) throw new ArgumentException("both ends of a link must be domains of this timeline", nameof(link));
        _links.Add(link);
        _planned = false;
    }

    public void RemoveLink(ITimelineLink link)
    {
        _links.Remove(link);
        link.Crossing = false;
        link.Apart = false;
        _planned = false;
    }

    public long EventsRun
    {
        get
        {
            long n = 0;
            foreach (var d in _domains) n += d.DomainEventsRun;
            return n;
        }
    }

    public int PendingCount
    {
        get
        {
            int n = 0;
            foreach (var d in _domains) n += d.LocalPending;
            return n;
        }
    }

    public long NextEventTime
    {
        get
        {
            long next = long.MaxValue;
            foreach (var d in _domains) next = Math.Min(next, d.LocalNextTime());
            return next;
        }
    }

    /// <summary>Rule 2: runs the next event of the merge, if at or before <paramref name="limit"/>.</summary>
    public bool RunOne(long limit)
    {
        Scheduler? best = null;
        long when = long.MaxValue;
        for (int i = 0; i < _domains.Count; i++)
        {
            long w = _domains[i].LocalNextTime();
            if (w < when)
            {
                when = w;
                best = _domains[i];
            }
        }
        if (best == null || when > limit) return false;
        if (when > Now) Now = when;
        Root.SetNow(when); // code that reads the world's clock inside an event sees the event's time
        return best.RunLocal(limit);
    }

    public void RunUntil(long time)
    {
        if (Windowed()) RunWindows(time, null);
        else while (RunOne(time)) { }
        if (time > Now) Now = time;
        SyncClocks();
    }

    public bool RunUntil(Func<bool> done, long deadline = long.MaxValue)
    {
        bool result;
        if (Windowed()) result = RunWindows(deadline, done);
        else
        {
            result = true;
            while (!done())
            {
                if (!RunOne(deadline))
                {
                    result = done();
                    break;
                }
            }
        }
        SyncClocks();
        return result;
    }

    public void RunUntilIdle(long deadline = long.MaxValue)
    {
        if (Windowed())
        {
            RunWindows(deadline, null);
            long last = 0;
            foreach (var d in _domains) last = Math.Max(last, d.Now);
            Now = last;
        }
        else while (RunOne(deadline)) { }
        SyncClocks();
    }

    internal void AdvanceTo(long time)
    {
        if (time > Now) Now = time;
        SyncClocks();
    }

    private void SyncClocks()
    {
        foreach (var d in _domains) d.SetNow(Now);
    }

    private bool Windowed()
    {
        Plan();
        return _lookahead != long.MaxValue && Driver == null;
    }

    /// <summary>Finds the cells, the lookahead and the partitions, when hosts, links or the thread count changed.</summary>
    private void Plan()
    {
        if (_planned && _plannedThreads == _threads) return;
        int n = _domains.Count;
        var parent = new int[n];
        for (int i = 0; i < n; i++) parent[i] = i;
        int Find(int i)
        {
            while (parent[i] != i) i = parent[i] = parent[parent[i]];
            return i;
        }
        bool touchesRoot = false;
        foreach (var l in _links)
        {
            if (l.EndA.Domain == 0 || l.EndB.Domain == 0) touchesRoot = true;
            if (l.DelayNs <= 0)
            {
                int a = Find(l.EndA.Domain), b = Find(l.EndB.Domain);
                if (a != b) parent[Math.Max(a, b)] = Math.Min(a, b);
            }
        }
        long lookahead = long.MaxValue;
        foreach (var l in _links)
            if (Find(l.EndA.Domain) != Find(l.EndB.Domain)) lookahead = Math.Min(lookahead, l.DelayNs);
        // The root's events may touch any host: a link to it would put everything in one cell.
        if (touchesRoot) lookahead = long.MaxValue;
        // Cells numbered by their lowest host domain; the root belongs to none.
        _cellOf = new int[n];
        var cellIds = new Dictionary<int, int>();
        for (int i = 1; i < n; i++)
        {
            int r = Find(i);
            if (!cellIds.TryGetValue(r, out int c)) cellIds[r] = c = cellIds.Count;
            _cellOf[i] = c;
        }
        int cells = cellIds.Count;
        int parts = Math.Max(1, Math.Min(_threads, cells));
        if (_cellOrder != 0 && _threads == 1) parts = Math.Max(1, cells); // one cell each, run in turn on one thread
        // Until the cells have run, they are spread by count (rule 8).
        _partOfCell = new int[cells];
        for (int c = 0; c < cells; c++) _partOfCell[c] = c % parts;
        _cellEventsBase = new long[cells];
        CellEvents(_cellEventsBase);
        _spreadNow = new long[cells];
        _spreadKey = new long[cells];
        _spreadOrder = new int[cells];
        _spreadTo = new int[cells];
        _spreadSums = new long[parts];
        _spreadCurrent = new long[parts];
        Partition(parts);
        _partErrors = new Exception?[parts];
        _busy = new long[parts * PartStride];
        _partNext = new long[parts * PartStride];
        _criticalTicks = _barrierTicks = _releasedAt = 0;
        _lookahead = lookahead;
        _planned = true;
        _plannedThreads = _threads;
    }

    /// <summary>The partitions' domains and link ends from _partOfCell (domains and links in their order).</summary>
    private void Partition(int parts)
    {
        var lists = new List<Scheduler>[parts];
        for (int p = 0; p < parts; p++) lists[p] = [];
        for (int i = 1; i < _domains.Count; i++) lists[_partOfCell[_cellOf[i]]].Add(_domains[i]);
        _parts = [.. lists.Select(l => l.ToArray())];
        var ends = new List<(ITimelineLink, Scheduler)>[parts];
        for (int p = 0; p < parts; p++) ends[p] = [];
        foreach (var l in _links)
        {
            int a = l.EndA.Domain, b = l.EndB.Domain;
            if (a == 0 || b == 0 || _cellOf[a] == _cellOf[b]) continue;
            ends[_partOfCell[_cellOf[a]]].Add((l, l.EndA));
            ends[_partOfCell[_cellOf[b]]].Add((l, l.EndB));
        }
        _partEnds = [.. ends.Select(e => e.ToArray())];
    }

    /// <summary>Events each cell's domains have run since the world began, into <paramref name="events"/>.</summary>
    private void CellEvents(long[] events)
    {
        Array.Clear(events);
        for (int i = 1; i < _domains.Count; i++) events[_cellOf[i]] += _domains[i].DomainEventsRun;
    }

    /// <summary>
    /// Rule 8: with more cells than partitions, the cells are spread again by the events each ran
    /// since they were last spread (at the start of each run in windows, and at every 256th barrier),
    /// when that lightens the busiest partition by a tenth or more: the longest-processing-time rule
    /// (the heaviest cell first, each to the partition with the least so far; ties to the lower cell
    /// and partition), which is within 4/3 of the best spread. The counts are the hosts' own (the
    /// same on any thread count, as are the windows), so the spread is too; and which partition runs
    /// a cell changes no byte (rule 3). Only the barrier's thread calls it, every partition stopped;
    /// nothing is allocated unless the spread changes.
    /// </summary>
    private void Respread()
    {
        int parts = _parts.Length, cells = _partOfCell.Length;
        if (parts < 2 || cells <= parts || (_cellOrder != 0 && _threads == 1)) return;
        var now = _spreadNow;
        CellEvents(now);
        long total = 0;
        for (int c = 0; c < cells; c++)
        {
            long load = now[c] - _cellEventsBase[c];
            total += load;
            // Heaviest first, ties by cell: one sort on a key that orders both.
            _spreadKey[c] = -load * cells + c;
            _spreadOrder[c] = c;
        }
        if (total == 0) return;
        Array.Sort(_spreadKey, _spreadOrder);
        Array.Clear(_spreadSums);
        Array.Clear(_spreadCurrent);
        foreach (int c in _spreadOrder)
        {
            long load = now[c] - _cellEventsBase[c];
            int least = 0;
            for (int p = 1; p < parts; p++) if (_spreadSums[p] < _spreadSums[least]) least = p;
            _spreadTo[c] = least;
            _spreadSums[least] += load;
            _spreadCurrent[_partOfCell[c]] += load;
        }
        long spreadMax = 0, currentMax = 0;
        for (int p = 0; p < parts; p++)
        {
            spreadMax = Math.Max(spreadMax, _spreadSums[p]);
            currentMax = Math.Max(currentMax, _spreadCurrent[p]);
        }
        if (spreadMax * 10 > currentMax * 9) return;
        (_partOfCell, _spreadTo) = (_spreadTo, _partOfCell);
        (_cellEventsBase, _spreadNow) = (_spreadNow, _cellEventsBase);
        Partition(parts);
        SetApart(true);
        Respreads++;
    }

    /// <summary>How many times the cells were spread again by load (rule 8).</summary>
    public int Respreads { get; private set; }

    /// <summary>The partition (thread) that runs a host's domain in runs in windows; 0 for the root.</summary>
    public int PartitionOf(Scheduler domain)
    {
        Plan();
        return domain.Domain == 0 ? 0 : _partOfCell[_cellOf[domain.Domain]];
    }

    private void SetCrossings(bool on)
    {
        foreach (var l in _links) l.Crossing = on && _cellOf[l.EndA.Domain] != _cellOf[l.EndB.Domain];
        SetApart(on);
    }

    /// <summary>Tells each link whether its ends run on different threads (ITimelineLink.Apart): at the
    /// start of a run in windows and after every spread (rule 8), at a barrier.</summary>
    private void SetApart(bool on)
    {
        bool threads = on && _parts.Length > 1 && !(_cellOrder != 0 && _threads == 1);
        foreach (var l in _links)
        {
            int a = l.EndA.Domain, b = l.EndB.Domain;
            l.Apart = threads && a != 0 && b != 0 && _partOfCell[_cellOf[a]] != _partOfCell[_cellOf[b]];
        }
    }

    private void Exchange()
    {
        for (int i = 0; i < _links.Count; i++) _links[i].Exchange();
    }

    private void Drain()
    {
        for (int i = 0; i < _links.Count; i++) _links[i].Drain();
    }

    /// <summary>Rule 3: windows until the limit, the condition, or nothing left to run.</summary>
    private bool RunWindows(long limit, Func<bool>? done)
    {
        _done = done;
        _limit = limit;
        _stop = false;
        _error = null;
        _windowRan = false;
        Array.Clear(_partErrors);
        Respread();
        var workers = new Worker[_cellOrder != 0 && _threads == 1 ? 0 : _parts.Length - 1];
        for (int p = 0; p < workers.Length; p++) workers[p] = Worker.Rent();
        SetCrossings(true);
        SetGuards();
        try
        {
            Between();
            if (!_stop)
            {
                if (_cellOrder != 0 && _threads == 1)
                {
                    while (!_stop)
                    {
                        for (int i = 0; i < _parts.Length; i++) RunPart(_cellOrder > 0 ? i : _parts.Length - 1 - i);
                        Between();
                    }
                }
                else if (_parts.Length == 1)
                {
                    while (!_stop)
                    {
                        RunPart(0);
                        Between();
                    }
                }
                else RunParallel(workers);
            }
            else foreach (var w in workers) w.GiveBack();
        }
        finally
        {
            ClearGuards();
            Drain();
            SetCrossings(false);
            _done = null;
        }
        if (_error != null) ExceptionDispatchInfo.Throw(_error);
        return done == null || done();
    }

    private void RunParallel(Worker[] workers)
    {
        int n = _parts.Length;
        var barrier = new WindowBarrier(this, n);
        using var finished = new CountdownEvent(n - 1);
        for (int p = 1; p < n; p++)
        {
            int part = p;
            workers[p - 1].Run(() =>
            {
                try { PartLoop(part, barrier); }
                finally { finished.Signal(); }
            });
        }
        PartLoop(0, barrier);
        finished.Wait();
    }

    private void PartLoop(int part, WindowBarrier barrier)
    {
        // The first window was planned before the threads started; each next one comes with the
        // barrier's release, on the line the waiters poll (WindowBarrier).
        var w = new WindowBarrier.Window(_windowStart, _windowEnd, _releasedAt, _stop);
        while (!w.Stop)
        {
            RunPart(part, w.Start, w.End, w.ReleasedAt);
            // What a link staged for another thread with non-temporal stores (ITimelineLink.Apart) is
            // ordered before the barrier only by a fence: x86 orders such stores by no other rule.
            if (Sse.IsSupported) Sse.StoreFence();
            w = barrier.SignalAndWait();
        }
    }

    /// <summary>One partition's share of the window: its domains merged in rule 1's order.</summary>
    private void RunPart(int part) => RunPart(part, _windowStart, _windowEnd, _releasedAt);

    private void RunPart(int part, long start, long end, long releasedAt)
    {
        var doms = _parts[part];
        var clock = CostClock;
        // The window's start on each domain's clock, on the domain's own thread (rule 9).
        for (int i = 0; i < doms.Length; i++) doms[i].SetNow(start);
        long started = clock == null ? 0 : clock().Ticks;
        if (clock != null && releasedAt != 0) _busy[part * PartStride + 3] += started - releasedAt;
        try
        {
            // The last barrier's hand-over, finished at this partition's ends on its own thread (rule 3).
            foreach (var (link, at) in _partEnds[part])
            {
                Scheduler.RunningCell = at.Guard;
                link.Receive(at);
            }
            if (clock != null) _busy[part * PartStride + 2] += clock().Ticks - started;
            while (true)
            {
                Scheduler? best = null;
                long when = long.MaxValue;
                for (int i = 0; i < doms.Length; i++)
                {
                    long w = doms[i].LocalNextTime();
                    if (w < when)
                    {
                        when = w;
                        best = doms[i];
                    }
                }
                if (best == null || when > end)
                {
                    _partNext[part * PartStride] = when;
                    return;
                }
                Scheduler.RunningCell = best.Guard;
                best.RunLocal(end);
            }
        }
        catch (Exception e)
        {
            _partErrors[part] ??= e;
            _partNext[part * PartStride] = long.MinValue;
        }
        finally
        {
            Scheduler.RunningCell = 0;
            if (clock != null)
            {
                long spent = clock().Ticks - started;
                _busy[part * PartStride] += spent;
                _busy[part * PartStride + 1] = spent;
            }
        }
    }

    /// <summary>The barrier (rules 3 to 5): one thread, every partition stopped.</summary>
    private void Between()
    {
        var clock = CostClock;
        if (clock == null)
        {
            BetweenWindows();
            return;
        }
        long started = clock().Ticks;
        if (_windowRan)
        {
            long slowest = 0;
            for (int p = 0; p < _busy.Length; p += PartStride) slowest = Math.Max(slowest, _busy[p + 1]);
            _criticalTicks += slowest;
        }
        try
        {
            BetweenWindows();
        }
        finally
        {
            _releasedAt = clock().Ticks;
            _barrierTicks += _releasedAt - started;
        }
    }

    private void BetweenWindows()
    {
        // Rule 6 holds through the barrier too: its thread may touch any domain (every partition is
        // stopped), any other thread none, so a continuation that reached the thread pool cannot
        // race with the barrier's hand-over on a host's heap; it throws, on one thread as on several.
        Scheduler.RunningCell = Scheduler.AnyCell;
        try
        {
            // After a window every partition has said when its next event is (rule 9).
            bool reported = _windowRan;
            if (_windowRan)
            {
                if (_windowEnd > Now) Now = _windowEnd;
                _windowRan = false;
            }
            TouchedAtBarrier = false;
            Exchange();
            foreach (var e in _partErrors)
            {
                if (e != null)
                {
                    _error ??= e;
                    _stop = true;
                    return;
                }
            }
            while (true)
            {
                if (_done != null && _done())
                {
                    _stop = true;
                    return;
                }
                long hosts = long.MaxValue;
                if (reported && !TouchedAtBarrier)
                    for (int p = 0; p < _parts.Length; p++) hosts = Math.Min(hosts, _partNext[p * PartStride]);
                else
                    for (int i = 1; i < _domains.Count; i++) hosts = Math.Min(hosts, _domains[i].LocalNextTime());
                for (int i = 0; i < _links.Count; i++) hosts = Math.Min(hosts, _links[i].NextArrival);
                long root = Root.LocalNextTime();
                long first = Math.Min(hosts, root);
                if (first == long.MaxValue || first > _limit)
                {
                    _stop = true;
                    return;
                }
                long start = Math.Max(first, Now);
                Now = start;
                Root.SetNow(start);
                if (root <= start)
                {
                    // Rule 4: the world's own events of this instant, before the hosts'. What the
                    // links handed over goes into flight first, as it would at the window's start.
                    Drain();
                    Root.RunLocal(start);
                    continue;
                }
                long end = _lookahead >= long.MaxValue - start ? long.MaxValue : start + _lookahead - 1;
                end = Math.Min(Math.Min(end, root - 1), _limit);
                _windowStart = start;
                _windowEnd = end;
                _windowRan = true;
                Windows++;
                if ((Windows & 255) == 0) Respread();
                return;
            }
        }
        catch (Exception e)
        {
            _error ??= e;
            _stop = true;
        }
        finally
        {
            Scheduler.RunningCell = 0;
        }
    }

    /// <summary>Rule 6's guards, set for the whole of a run in windows (the barrier's thread passes them).</summary>
    private void SetGuards()
    {
        Root.Guard = -1;
        foreach (var part in _parts)
            foreach (var d in part) d.Guard = _cellOf[d.Domain] + 1;
    }

    private void ClearGuards()
    {
        foreach (var d in _domains) d.Guard = 0;
    }

    /// <summary>
    /// The meeting of the partitions' threads after each window: the last to arrive runs the barrier
    /// work alone (Between) and releases the others. A sense-reversing counter; waiters first poll
    /// the generation with a pause between reads, then spin yielding the core to anything else
    /// runnable, for a bounded count each, then block on a monitor.
    ///
    /// Polling first: SpinWait's spin grows to about a microsecond between reads and then enters
    /// the kernel to yield, so a waiter noticed the release late by about that (the parallel
    /// benchmark's heavy row, the vCPUs far apart: 204-226 ms against 223-242).
    ///
    /// The release is one cache line, aligned: the next window and, written last, the generation. A
    /// waiter's thread gets the window with the line that releases it, instead of reading the
    /// timeline's fields afterwards, which the barrier's thread had just written (one more trip
    /// between the cores before each window's start). The releasing thread takes no lock unless a
    /// waiter blocks: a blocked waiter also wakes each millisecond to look, since the release reads
    /// the count of blocked waiters without a fence and may miss one that is just blocking. The
    /// vCPUs far apart, per window: release to the next window's start 340 / 440 ns against 510 /
    /// 550 on the two threads (instrumented); in parallel-loop's runs the JIT left alone, the start
    /// lag 6-7 ms a run at best against 8-10, wall time beyond the busier partition 13-16 against 15-22.
    /// </summary>
    private sealed class WindowBarrier
    {
        // Reads of the generation, a pause apart, before the spinning that yields (1,000: tens of us,
        // more than most waits for the other partition in a window of the parallel benchmark), and
        // the yielding spins (2,000) before a waiter blocks; none with Timeline.BlockAtOnce.
        private readonly int _pauseSpins, _spinLimit;
        private const int Generation = 0, Start = 1, End = 2, ReleasedAt = 3, Stop = 4;
        private readonly Timeline _timeline;
        private readonly object _gate = new();
        private readonly int _participants;
        private int _remaining;
        private int _blocked;
        // The release line: _line[_at + Generation] and the window after it (pinned, so that its
        // alignment holds).
        private readonly long[] _line;
        private readonly int _at;

        /// <summary>The window a release starts (Timeline's fields as the barrier left them).</summary>
        public readonly record struct Window(long Start, long End, long ReleasedAt, bool Stop);

        public WindowBarrier(Timeline timeline, int participants)
        {
            _timeline = timeline;
            _participants = _remaining = participants;
            (_pauseSpins, _spinLimit) = timeline.BlockAtOnce ? (0, 0) : (1000, 2000);
            _line = GC.AllocateArray<long>(16, pinned: true);
            _at = CacheLine.FirstAligned(_line);
        }

        public Window SignalAndWait()
        {
            ref long generation = ref _line[_at + Generation];
            long seen = Volatile.Read(ref generation);
            if (Interlocked.Decrement(ref _remaining) == 0)
            {
                var t = _timeline;
                t.Between(); // catches its own exceptions
                _remaining = _participants;
                _line[_at + Start] = t._windowStart;
                _line[_at + End] = t._windowEnd;
                _line[_at + ReleasedAt] = t._releasedAt;
                _line[_at + Stop] = t._stop ? 1 : 0;
                Volatile.Write(ref generation, seen + 1);
                if (Volatile.Read(ref _blocked) != 0)
                    lock (_gate) Monitor.PulseAll(_gate);
                return Released();
            }
            for (int i = 0; i < _pauseSpins; i++)
            {
                if (Volatile.Read(ref generation) != seen) return Released();
                Thread.SpinWait(1);
            }
            var spin = new SpinWait();
            for (int i = 0; i < _spinLimit; i++)
            {
                if (Volatile.Read(ref generation) != seen) return Released();
                spin.SpinOnce(sleep1Threshold: -1);
            }
            lock (_gate)
            {
                _blocked++;
                _timeline.BlockedWaits++;
                while (Volatile.Read(ref generation) == seen) Monitor.Wait(_gate, 1);
                _blocked--;
            }
            return Released();
        }

        private Window Released() => new(_line[_at + Start], _line[_at + End], _line[_at + ReleasedAt], _line[_at + Stop] != 0);
    }

    /// <summary>A parked thread that runs one partition's windows for a run, then parks again.</summary>
    private sealed class Worker
    {
        // Process-wide and thread-safe: timelines of different worlds may rent at the same time.
        private static readonly ConcurrentStack<Worker> s_idle = new();
        private readonly Thread _thread;
        private readonly SemaphoreSlim _go = new(0);
        private Action? _job;

        private Worker()
        {
            // The caller's thread (a process's main thread) has an 8 MiB stack; a worker gets as much,
            // so that a deep synchronous path (a frame through a switch into a stack and a program)
            // never meets .NET's stack guard on one thread and not on another: where that guard
            // trips, a continuation meant to run inline goes to the thread pool instead.
            _thread = new Thread(Loop, 8 << 20) { IsBackground = true, Name = "smartos-window" };
            _thread.Start();
        }

        public static Worker Rent() => s_idle.TryPop(out var w) ? w : new Worker();

        public void GiveBack() => s_idle.Push(this);

        public void Run(Action job)
        {
            _job = job;
            _go.Release();
        }

        private void Loop()
        {
            while (true)
            {
                _go.Wait();
                var job = _job!;
                _job = null;
                job();
                s_idle.Push(this);
            }
        }
    }
}
