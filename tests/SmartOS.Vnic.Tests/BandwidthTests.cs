using SmartOS.Kernel;
using SmartOS.Kernel.Trace;
using SmartOS.Kernel.Wire;
using SmartOS.Testing;

namespace SmartOS.Vnic.Tests;

/// <summary>maxbw (Shaper.cs): limits hold in virtual time on transmit and receive, 0 blocks, overflow
/// is a counted drop, and the property's text follows libdladm.</summary>
public class BandwidthTests
{
    private static (Rig rig, VnicLink a, VnicLink b, Sink atB) Pair()
    {
        var rig = new Rig();
        Assert.That(rig.Mac.CreateEtherstub("stub0", false).Code, Is.EqualTo(DladmStatus.Ok));
        var a = rig.Vnic("vnic0", "stub0", 1);
        var b = rig.Vnic("vnic1", "stub0", 2);
        return (rig, a, b, rig.Listen(b));
    }

    private static byte[] Frame(int size = 1250) => Frames.Ipv4(Rig.MacOf(1), Rig.MacOf(2), "10.0.0.1", "10.0.0.2", size: size);

    [TestCase("10M", 10_000_000L)]
    [TestCase("100M", 100_000_000L)]
    [TestCase("1G", 1_000_000_000L)]
    public void Transmit_limit_holds_within_half_a_percent_over_a_second_of_virtual_time(string value, long bps)
    {
        var (rig, a, _, atB) = Pair();
        rig.Set(a, "maxbw", value);
        _ = new Pump(rig, a, Frame(), bps * 2, Time.Second);
        rig.Scheduler.RunUntil(Time.Second);
        double achieved = atB.Bytes * 8.0;
        Assert.That(Math.Abs(achieved - bps) / bps, Is.LessThan(0.005), $"achieved {achieved} bit/s");
    }

    [Test]
    public void Receive_limit_holds_on_the_receiving_link()
    {
        var (rig, a, b, atB) = Pair();
        rig.Set(b, "maxbw", "20M");
        _ = new Pump(rig, a, Frame(), 50_000_000, Time.Second);
        rig.Scheduler.RunUntil(Time.Second);
        double achieved = atB.Bytes * 8.0;
        using (Assert.EnterMultipleScope())
        {
            Assert.That(Math.Abs(achieved - 20e6) / 20e6, Is.LessThan(0.005), $"achieved {achieved} bit/s");
            Assert.That(b.Stats.DropMaxbwRx, Is.GreaterThan(0));
            Assert.That(a.Stats.DropMaxbw, Is.Zero, "the sender is not limited");
        }
    }

    [Test]
    public void Frames_under_the_limit_are_spaced_by_their_serialisation_time_and_never_early()
    {
        var (rig, a, _, atB) = Pair();
        rig.Set(a, "maxbw", "10M");
        atB.Keep = true;
        for (int i = 0; i < 3; i++) rig.Send(a, Frame(1250));
        rig.Scheduler.RunUntilIdle();
        using (Assert.EnterMultipleScope())
        {
            Assert.That(atB.Count, Is.EqualTo(3));
            Assert.That(atB.LastTime, Is.EqualTo(2 * Time.Millisecond), "1250 bytes at 10 Mbit/s take exactly 1 ms");
        }
    }

    [Test]
    public void Maxbw_zero_blocks_everything_and_counts_it()
    {
        var (rig, a, _, atB) = Pair();
        rig.Set(a, "maxbw", "0");
        for (int i = 0; i < 5; i++) rig.Send(a, Frame());
        rig.Scheduler.RunUntilIdle();
        using (Assert.EnterMultipleScope())
        {
            Assert.That(atB.Count, Is.Zero);
            Assert.That(a.Stats.DropMaxbw, Is.EqualTo(5));
            Assert.That(rig.Mac.FindProperty("maxbw")!.Get(a), Is.EqualTo("    0"));
        }
    }

    [Test]
    public void A_burst_beyond_the_queue_is_dropped_and_counted_and_no_buffer_leaks()
    {
        var (rig, a, _, atB) = Pair();
        rig.Set(a, "maxbw", "10M");
        for (int i = 0; i < 1500; i++) rig.Send(a, Frame());
        rig.Scheduler.RunUntilIdle();
        using (Assert.EnterMultipleScope())
        {
            Assert.That(atB.Count, Is.EqualTo(1 + LinkControl.ShaperQueueFrames));
            Assert.That(a.Stats.DropMaxbw, Is.EqualTo(1500 - 1 - LinkControl.ShaperQueueFrames));
            Assert.That(rig.Pool.Outstanding, Is.Zero);
        }
    }

    private sealed class ShaperProbeCounter : IProbeConsumer
    {
        public readonly Dictionary<string, long> Counts = [];
        public readonly HashSet<string> Args = [];

        public void Fired(Probe probe, in ProbeArgs args)
        {
            Counts[probe.Name] = Counts.GetValueOrDefault(probe.Name) + 1;
            Args.Add($"{probe.Name} {args.A0.Str} {args.A1.Int} flow='{args.A2.Str}' tx={args.A3.Int}");
        }
    }

    private static ShaperProbeCounter AttachShaperProbes(Rig rig, string link)
    {
        var c = new ShaperProbeCounter();
        foreach (var p in rig.Mac.Probes.All.Where(p => p.Module == link && p.Function == "mac_bw")) p.Attach(c);
        return c;
    }

    [Test]
    public void The_link_shaper_fires_enqueue_dequeue_and_drop_with_the_link_and_the_frame()
    {
        var (rig, a, _, atB) = Pair();
        rig.Set(a, "maxbw", "10M");
        var c = AttachShaperProbes(rig, "vnic0");
        for (int i = 0; i < 1500; i++) rig.Send(a, Frame());
        rig.Scheduler.RunUntilIdle();
        int len = Frame().Length;
        using (Assert.EnterMultipleScope())
        {
            // The first frame finds the shaper idle and leaves at once; 1000 wait; the rest are dropped.
            Assert.That(c.Counts, Is.EquivalentTo(new Dictionary<string, long> { ["enqueue"] = 1000, ["dequeue"] = 1000, ["drop"] = 499 }));
            Assert.That(c.Args, Is.EquivalentTo(new[] { $"enqueue vnic0 {len} flow='' tx=1", $"dequeue vnic0 {len} flow='' tx=1", $"drop vnic0 {len} flow='' tx=1" }));
            Assert.That(a.Stats.DropMaxbw, Is.EqualTo(499));
        }
    }

    [Test]
    public void A_flow_shaper_fires_the_link_s_probes_naming_the_flow()
    {
        var (rig, a, _, _) = Pair();
        Assert.That(rig.Mac.AddFlow("toB", "vnic0", "remote_ip=10.0.0.2", [("maxbw", "10M")], temporary: false).Code, Is.EqualTo(DladmStatus.Ok));
        var c = AttachShaperProbes(rig, "vnic0");
        for (int i = 0; i < 3; i++) rig.Send(a, Frame());
        rig.Scheduler.RunUntilIdle();
        int len = Frame().Length;
        Assert.That(c.Counts, Is.EquivalentTo(new Dictionary<string, long> { ["enqueue"] = 2, ["dequeue"] = 2 }));
        Assert.That(c.Args, Is.EquivalentTo(new[] { $"enqueue vnic0 {len} flow='toB' tx=1", $"dequeue vnic0 {len} flow='toB' tx=1" }));
    }

    [Test]
    public void Deleting_a_shaped_link_drops_and_counts_what_waited()
    {
        var (rig, a, _, atB) = Pair();
        rig.Set(a, "maxbw", "10M");
        for (int i = 0; i < 10; i++) rig.Send(a, Frame());
        Assert.That(rig.Mac.Delete("vnic0", LinkClass.Vnic, false).Code, Is.EqualTo(DladmStatus.Ok));
        rig.Scheduler.RunUntilIdle();
        using (Assert.EnterMultipleScope())
        {
            Assert.That(atB.Count, Is.EqualTo(1));
            Assert.That(a.Stats.DropMaxbw, Is.EqualTo(9));
            Assert.That(rig.Pool.Outstanding, Is.Zero);
        }
    }

    [Test]
    public void Lifting_the_limit_releases_queued_frames_in_order()
    {
        var (rig, a, _, atB) = Pair();
        atB.Keep = true;
        rig.Set(a, "maxbw", "10M");
        for (int i = 0; i < 10; i++)
        {
            var f = Frame();
            f[^1] = (byte)i;
            rig.Send(a, f);
        }
        Assert.That(atB.Count, Is.EqualTo(1));
        Assert.That(rig.Mac.ResetLinkProp(a, "maxbw", false).Code, Is.EqualTo(DladmStatus.Ok));
        Assert.That(atB.Count, Is.EqualTo(10), "released at once");
        Assert.That(atB.Frames.Select(f => (int)f[^1]), Is.EqualTo(Enumerable.Range(0, 10)));
        Assert.That(rig.Mac.FindProperty("maxbw")!.Get(a), Is.Empty);
    }

    private static IEnumerable<TestCaseData> Values() => DataFile.Cases("maxbw.txt", 3);

    [TestCaseSource(nameof(Values))]
    public void Maxbw_values_parse_and_print_as_libdladm_does(DataCase c)
    {
        using (Assert.EnterMultipleScope())
        {
            Assert.That(LinkControl.TryParseMaxBw(c[0], out long v), Is.EqualTo(DladmStatus.Ok), c.Where);
            Assert.That(v, Is.EqualTo((long)c.UInt64(1)), c.Where);
            Assert.That(LinkControl.FormatMaxBw((long)c.UInt64(1)), Is.EqualTo(c[2]), c.Where);
        }
    }

    private static IEnumerable<TestCaseData> BadValues() => DataFile.Cases("maxbw-errors.txt", 2);

    [TestCaseSource(nameof(BadValues))]
    public void Bad_maxbw_values_are_refused_with_libdladm_status(DataCase c)
        => Assert.That(DlStatusText.Of(LinkControl.TryParseMaxBw(c[0], out _)), Is.EqualTo(c[1]), c.Where);

    [Test]
    public void Shaper_state_steady_path_allocates_nothing()
    {
        var (rig, a, _, atB) = Pair();
        rig.Set(a, "maxbw", "1G");
        var frame = Frame();
        for (int i = 0; i < 2000; i++) { rig.Send(a, frame); rig.Scheduler.RunFor(20 * Time.Microsecond); }
        // The least of three windows: a steady allocation shows in each, a one-off of the runtime's not.
        long allocated = long.MaxValue;
        for (int window = 0; window < 3; window++)
        {
            long before = GC.GetAllocatedBytesForCurrentThread();
            for (int i = 0; i < 4000; i++) { rig.Send(a, frame); rig.Scheduler.RunFor(20 * Time.Microsecond); }
            allocated = Math.Min(allocated, GC.GetAllocatedBytesForCurrentThread() - before);
        }
        Assert.That(allocated, Is.Zero);
        Assert.That(atB.Count, Is.EqualTo(14000));
    }

    [Test]
    public void Wire_rate_stays_exact_at_five_gigabits()
    {
        var rig = new Rig();
        var p0 = (PhysLink)rig.Mac.Find("e1000g0")!;
        var p1 = (PhysLink)rig.Mac.Find("e1000g1")!;
        _ = new Wire(rig.Scheduler, new HostRandom(2), p0, p1, speedBps: 5_000_000_000);
        var a = rig.Vnic("vnic0", "e1000g0", 1);
        var b = rig.Vnic("vnic1", "e1000g1", 2);
        var atB = rig.Listen(b);
        _ = new Pump(rig, a, Frames.Ipv4(Rig.MacOf(1), Rig.MacOf(2), "10.0.0.1", "10.0.0.2", size: 1514), 6_000_000_000, Time.Second / 10);
        rig.Scheduler.RunUntil(Time.Second / 10);
        double achieved = atB.Bytes * 8.0 * 10;
        Assert.That(Math.Abs(achieved - 5e9) / 5e9, Is.LessThan(0.005), $"achieved {achieved}");
    }
}
