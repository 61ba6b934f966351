using SmartOS.Kernel;
using SmartOS.Kernel.Wire;
using static SmartOS.Vnic.Tests.TestNet;

namespace SmartOS.Vnic.Tests;

/// <summary>Wire timing and impairments: serialisation at the line rate, delay, queue limit, loss, MTU,
/// duplication and reordering.</summary>
public class WireTests
{
    private static readonly MacAddress s_dst = new(0x0208_2099_0001UL);

    private sealed record World(Scheduler S, MacLayer H1, MacLayer H2, Wire Wire, Recorder Sender, Recorder Receiver);

    private static World Make(long speed = 1_000_000_000, long delay = 0, double loss = 0, int mtu = 9000, int queueFrames = 1000, ulong wireSeed = 3)
    {
        var s = new Scheduler();
        var h1 = Host(s, "h1", seed: 1);
        var h2 = Host(s, "h2", seed: 2);
        var wire = new Wire(s, new HostRandom(wireSeed), h1.Phys(), h2.Phys(), speed, delay, loss, mtu) { QueueFrames = queueFrames };
        var sender = Open(h1.Vnic("vnic0", "e1000g0"));
        var receiver = Open(h2.Vnic("vnic0", "e1000g0", fixedMac: s_dst));
        return new World(s, h1, h2, wire, sender, receiver);
    }

    [TestCase(0L)]
    [TestCase(50 * Time.Microsecond)]
    public void A_1500_byte_frame_at_1_gbit_arrives_12_us_plus_the_delay_later(long delay)
    {
        var w = Make(delay: delay);
        w.S.RunFor(Time.Millisecond);

        w.Sender.Send(Frame(s_dst, w.Sender.Client.MacAddress, 1500));
        w.S.RunUntilIdle();

        Assert.That(w.Receiver.Frames.Select(f => f.Time), Is.EqualTo(new[] { Time.Millisecond + 12 * Time.Microsecond + delay }));
    }

    /// <summary>Kernel/Timeline.cs rule 6: a frame sent between two runs (a scenario's command typed
    /// at a barrier: iperf's first ARP request) is still in flight when the next run starts in
    /// windows; it must reach the receiving host in a buffer of that host's pool, as every frame
    /// carried across cells does. Before, it arrived in the sender's buffer, and the receiving host's
    /// thread freed it, or cloned it when it flooded it, into the sender's pool while the sender's
    /// thread rented from it: a race on two threads that corrupted the pool (a frame lost, or a
    /// NullReferenceException in VSwitch.Flood), seen as the parallel benchmark's rare difference.</summary>
    [TestCase(1, 0.0)]
    [TestCase(2, 0.0)]
    [TestCase(1, 0.5)]
    public void A_frame_in_flight_when_a_run_in_windows_starts_arrives_in_a_buffer_of_the_receiving_host(int threads, double reorder)
    {
        var t = new Timeline(new Scheduler()) { Threads = threads };
        var d1 = t.AddDomain();
        var d2 = t.AddDomain();
        var h1 = Host(d1, "h1", seed: 1);
        var h2 = Host(d2, "h2", seed: 2);
        _ = new Wire(d1, new HostRandom(3), h1.Phys(), h2.Phys(), 10_000_000_000, 100 * Time.Microsecond) { Reorder = reorder };
        var sender = Open(h1.Vnic("vnic0", "e1000g0"));
        var client = h2.Vnic("vnic0", "e1000g0", fixedMac: s_dst).OpenClient("test")!;
        var receiver = new PoolCheck();
        client.Receiver = receiver;
        Assert.That(t.Lookahead, Is.EqualTo(100 * Time.Microsecond), "the hosts run in windows");

        // Between runs, as a scenario's line: the first frames go on the wire (and in flight) at once.
        for (int i = 0; i < 4; i++) sender.Send(Frame(i % 2 == 0 ? s_dst : MacAddress.Broadcast, sender.Client.MacAddress, 1500));
        t.RunUntil(t.Now + 50 * Time.Microsecond);
        for (int i = 0; i < 4; i++) sender.Send(Frame(i % 2 == 0 ? s_dst : MacAddress.Broadcast, sender.Client.MacAddress, 1500));
        t.RunUntilIdle();

        using (Assert.EnterMultipleScope())
        {
            Assert.That(receiver.Frames, Is.EqualTo(8));
            Assert.That(receiver.Foreign, Is.Zero, "frames that arrived in a buffer of the sender's pool");
            Assert.That(h1.Pool.Outstanding, Is.Zero);
            Assert.That(h2.Pool.Outstanding, Is.Zero);
        }
    }

    /// <summary>A frame sent across cells is copied into the lane's staging area and its buffer goes
    /// back to the sender's pool at once (Wire.cs, Batch): with non-temporal stores while the wire's
    /// ends run on two threads, an ordinary copy on one. The receiver gets the same bytes, VLAN,
    /// timestamp, arrival and checksum mark either way, and the sender's pool is used alike. Lengths
    /// around the copy's 32-byte vectors and 64-byte lines, a tagged frame, a jumbo frame and a
    /// frame whose checksum was left pending.</summary>
    [Test]
    public void A_frame_crossing_cells_is_staged_and_arrives_alike_on_one_thread_and_two()
    {
        var (one, apart1, held1) = CrossWithTimeline(threads: 1);
        var (two, apart2, held2) = CrossWithTimeline(threads: 2);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(two, Has.Count.EqualTo(s_crossLengths.Length + 2));
            Assert.That(two, Is.EqualTo(one));
            Assert.That(apart1, Is.Zero, "one thread: an ordinary copy");
            Assert.That(apart2, Is.EqualTo(s_crossLengths.Length + 2), "two threads: non-temporal stores");
            Assert.That((held1, held2), Is.EqualTo((0, 0)), "the sender's buffers are back in its pool at once");
            Assert.That(two.Count(f => f.Vid == 5), Is.EqualTo(1));
            Assert.That(two.Count(f => f.KnownGood), Is.EqualTo(1));
        }
    }

    private static readonly int[] s_crossLengths = [17, 31, 32, 33, 60, 63, 64, 65, 95, 96, 97, 1514, 9014];
    private static readonly MacAddress s_dst5 = new(0x0208_2099_0005UL);

    private sealed record Crossed(string Bytes, ushort Vid, long Timestamp, bool KnownGood, long Time);

    private static (List<Crossed> Frames, long ToAnotherThread, int Held) CrossWithTimeline(int threads)
    {
        var t = new Timeline(new Scheduler()) { Threads = threads };
        var d1 = t.AddDomain();
        var d2 = t.AddDomain();
        var h1 = Host(d1, "h1", seed: 1);
        var h2 = Host(d2, "h2", seed: 2);
        var wire = new Wire(d1, new HostRandom(3), h1.Phys(), h2.Phys(), 10_000_000_000, 100 * Time.Microsecond);
        var vnic0 = h1.Vnic("vnic0", "e1000g0");
        var sender = vnic0.OpenClient("test")!;
        var sender5 = h1.Vnic("vnic1", "e1000g0", vid: 5).OpenClient("test")!;
        var frames = new List<Crossed>();
        var record = new CrossRecorder(frames);
        var receiver0 = h2.Vnic("vnic0", "e1000g0", fixedMac: s_dst);
        receiver0.OpenClient("test")!.Receiver = record;
        h1.Phys().Mtu = h2.Phys().Mtu = vnic0.Mtu = receiver0.Mtu = 9000; // for the jumbo frame
        h2.Vnic("vnic1", "e1000g0", vid: 5, fixedMac: s_dst5).OpenClient("test")!.Receiver = record;
        int held = -1;
        var send = new KTimer(d1, _ =>
        {
            foreach (int length in s_crossLengths) sender.Transmit(sender.Pool.Rent(Frame(s_dst, sender.MacAddress, length))!);
            sender5.Transmit(sender5.Pool.Rent(Frame(s_dst5, sender5.MacAddress, 200))!);
            // A frame whose transport checksum is left to the NIC: the wire fills it in and marks it good.
            var pending = sender.Pool.Rent(Frame(s_dst, sender.MacAddress, 120))!;
            pending.SetChecksumPending(14, 106, 6);
            sender.Transmit(pending);
        });
        var check = new KTimer(d1, _ => held = h1.Pool.Outstanding);
        send.ArmAt(Time.Millisecond);
        check.ArmAt(Time.Millisecond + 30 * Time.Microsecond); // in the same window: no barrier between
        t.RunUntilIdle();
        Assert.That(h1.Pool.Outstanding + h2.Pool.Outstanding, Is.Zero);
        return (frames, wire.FramesToAnotherThread, held);
    }

    private sealed class CrossRecorder(List<Crossed> frames) : IMacReceiver
    {
        public void Receive(MacClient client, Packet packet)
        {
            frames.Add(new Crossed(Convert.ToHexString(packet.Data), packet.Vid, packet.Timestamp, packet.ChecksumKnownGood, client.Scheduler.Now));
            packet.Free();
        }
    }

    private sealed class PoolCheck : IMacReceiver
    {
        public int Frames, Foreign;

        public void Receive(MacClient client, Packet packet)
        {
            Frames++;
            if (!packet.BelongsTo(client.Pool)) Foreign++;
            packet.Free();
        }
    }

    [TestCase(10_000_000_000L, 1500, 1200L)]
    [TestCase(100_000_000L, 1500, 120_000L)]
    [TestCase(1_000_000_000L, 64, 512L)]
    public void Serialisation_takes_bytes_times_8_over_speed(long speed, int length, long expected)
    {
        var w = Make(speed: speed);

        w.Sender.Send(Frame(s_dst, w.Sender.Client.MacAddress, length));
        w.S.RunUntilIdle();

        Assert.That(w.Receiver.Frames.Single().Time, Is.EqualTo(expected));
    }

    [Test]
    public void Back_to_back_frames_serialise_one_after_another()
    {
        var w = Make(delay: 5 * Time.Microsecond);

        for (int i = 0; i < 3; i++) w.Sender.Send(Frame(s_dst, w.Sender.Client.MacAddress, 1500));
        w.S.RunUntilIdle();

        Assert.That(w.Receiver.Frames.Select(f => f.Time), Is.EqualTo(new[] { 17_000L, 29_000L, 41_000L }));
    }

    [Test]
    public void Hundreds_of_queued_frames_arrive_in_order_one_serialisation_time_apart()
    {
        var w = Make();

        for (int i = 0; i < 300; i++)
        {
            var f = Frame(s_dst, w.Sender.Client.MacAddress, 125);
            f[20] = (byte)(i >> 8);
            f[21] = (byte)i;
            w.Sender.Send(f);
        }
        w.S.RunUntilIdle();

        using (Assert.EnterMultipleScope())
        {
            Assert.That(w.Receiver.Frames.Select(f => (f.Frame[20] << 8) | f.Frame[21]), Is.EqualTo(Enumerable.Range(0, 300)));
            Assert.That(w.Receiver.Frames.Select(f => f.Time), Is.EqualTo(Enumerable.Range(1, 300).Select(i => i * 1000L)));
            Assert.That(w.H1.Phys().Stats.DropTxQueue, Is.Zero);
            // One sender's queue is committed to the wire as it fills (Wire.cs): one arrival event
            // per frame, none at the end of each frame's serialisation.
            Assert.That(w.S.EventsRun, Is.LessThanOrEqualTo(300));
        }
    }

    [Test]
    public void Back_to_back_frames_at_a_rate_that_does_not_divide_them_keep_the_exact_rate()
    {
        // 1001 bytes at 3 Gbit/s take 2,669,333.3 ps: the fractions carry from frame to frame, so
        // frame k ends at ceil(k * 8008 / 3) ns, never drifting by a rounding per frame.
        var w = Make(speed: 3_000_000_000);

        for (int i = 0; i < 100; i++) w.Sender.Send(Frame(s_dst, w.Sender.Client.MacAddress, 1001));
        w.S.RunUntilIdle();

        Assert.That(w.Receiver.Frames.Select(f => f.Time), Is.EqualTo(Enumerable.Range(1, 100).Select(k => (k * 8008L + 2) / 3)));
    }

    [Test]
    public void A_frame_sent_after_the_line_is_idle_starts_at_once()
    {
        var w = Make();
        w.Sender.Send(Frame(s_dst, w.Sender.Client.MacAddress, 1500));
        w.S.RunFor(100 * Time.Microsecond);

        w.Sender.Send(Frame(s_dst, w.Sender.Client.MacAddress, 1500));
        w.S.RunUntilIdle();

        Assert.That(w.Receiver.Frames.Select(f => f.Time), Is.EqualTo(new[] { 12_000L, 112_000L }));
    }

    [Test]
    public void A_full_transmit_queue_drops_and_counts_at_the_sender()
    {
        // The queue holds 4 maximum-size frames of serialisation time (48.576 us): frames starting
        // at 0, 12, 24, 36 and 48 us fit, the next five do not.
        var w = Make(queueFrames: 4);

        for (int i = 0; i < 10; i++) w.Sender.Send(Frame(s_dst, w.Sender.Client.MacAddress, 1500));
        w.S.RunUntilIdle();

        using (Assert.EnterMultipleScope())
        {
            Assert.That(w.Receiver.Frames, Has.Count.EqualTo(5));
            Assert.That(w.H1.Phys().Stats.DropTxQueue, Is.EqualTo(5));
            Assert.That(w.Wire.FramesCarried, Is.EqualTo(5));
            Assert.That(w.H1.Pool.Outstanding, Is.Zero);
        }
    }

    [Test]
    public void Loss_is_seeded_and_counted_at_the_receiver()
    {
        static (int Delivered, long Lost, long IErrors) Run(ulong seed)
        {
            var w = Make(loss: 0.3, wireSeed: seed);
            for (int i = 0; i < 1000; i++)
            {
                w.Sender.Send(Frame(s_dst, w.Sender.Client.MacAddress, 100));
                w.S.RunFor(10 * Time.Microsecond);
            }
            w.S.RunUntilIdle();
            var st = w.H2.Phys().Stats;
            return (w.Receiver.Frames.Count, st.DropWireLoss, st.IErrors);
        }

        var first = Run(7);

        using (Assert.EnterMultipleScope())
        {
            Assert.That(first.Delivered + first.Lost, Is.EqualTo(1000));
            Assert.That(first.Lost, Is.InRange(200, 400));
            Assert.That(first.IErrors, Is.EqualTo(first.Lost), "a lost frame is an input error, like a bad FCS");
            Assert.That(Run(7), Is.EqualTo(first), "same seed, same losses");
            Assert.That(Run(8), Is.Not.EqualTo(first));
        }
    }

    [Test]
    public void Duplication_delivers_some_frames_twice_and_reordering_lets_later_frames_overtake()
    {
        var s = new Scheduler();
        var h1 = Host(s, "h1", seed: 1);
        var h2 = Host(s, "h2", seed: 2);
        var wire = new Wire(s, new HostRandom(4), h1.Phys(), h2.Phys(), 1_000_000_000, 10 * Time.Microsecond)
        {
            Duplicate = 0.1, Reorder = 0.1, ReorderDelayNs = 50 * Time.Microsecond,
        };
        var sender = Open(h1.Vnic("vnic0", "e1000g0"));
        var receiver = Open(h2.Vnic("vnic0", "e1000g0", fixedMac: s_dst));
        for (int i = 0; i < 1000; i++)
        {
            var frame = Frame(s_dst, sender.Client.MacAddress, 100);
            System.Buffers.Binary.BinaryPrimitives.WriteInt32BigEndian(frame.AsSpan(20), i);
            sender.Send(frame);
            s.RunFor(10 * Time.Microsecond);
        }
        s.RunUntilIdle();
        var order = receiver.Frames.Select(f => System.Buffers.Binary.BinaryPrimitives.ReadInt32BigEndian(f.Frame.AsSpan(20))).ToList();
        int duplicates = order.Count - order.Distinct().Count();
        int overtaken = order.Zip(order.Skip(1)).Count(p => p.Second < p.First);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(order.Distinct().Count(), Is.EqualTo(1000), "nothing lost");
            Assert.That(duplicates, Is.InRange(50, 150));
            Assert.That(overtaken, Is.InRange(50, 150));
            Assert.That(wire.FramesCarried, Is.EqualTo(order.Count));
        }
    }

    [TestCase(1014, 1)]
    [TestCase(1015, 0)]
    public void Frames_larger_than_the_wire_mtu_are_counted_as_giants(int length, int delivered)
    {
        var w = Make(mtu: 1000);

        w.Sender.Send(Frame(s_dst, w.Sender.Client.MacAddress, length));
        w.S.RunUntilIdle();

        using (Assert.EnterMultipleScope())
        {
            Assert.That(w.Receiver.Frames, Has.Count.EqualTo(delivered));
            Assert.That(w.H2.Phys().Stats.DropWireMtu, Is.EqualTo(1 - delivered));
            Assert.That(w.H2.Phys().Stats.IErrors, Is.EqualTo(1 - delivered));
        }
    }

    [Test]
    public void The_tag_does_not_count_against_the_wire_mtu()
    {
        var s = new Scheduler();
        var h1 = Host(s, "h1", seed: 1);
        var h2 = Host(s, "h2", seed: 2);
        _ = new Wire(s, new HostRandom(3), h1.Phys(), h2.Phys(), mtu: 1500);
        var a = Open(h1.Vnic("vnic0", "e1000g0", vid: 5));
        var b = Open(h2.Vnic("vnic0", "e1000g0", vid: 5, fixedMac: s_dst));

        a.Send(Frame(s_dst, a.Client.MacAddress, 1514));
        s.RunUntilIdle();

        Assert.That(b.Frames, Has.Count.EqualTo(1));
    }

    [Test]
    public void Wire_is_full_duplex()
    {
        var w = Make();
        w.Sender.Send(Frame(s_dst, w.Sender.Client.MacAddress, 1500));
        w.Receiver.Send(Frame(w.Sender.Client.MacAddress, s_dst, 1500));
        w.S.RunUntilIdle();

        using (Assert.EnterMultipleScope())
        {
            Assert.That(w.Receiver.Frames.Single().Time, Is.EqualTo(12_000));
            Assert.That(w.Sender.Frames.Single().Time, Is.EqualTo(12_000));
        }
    }

    [Test]
    public void Speed_shows_on_the_phys_and_disconnect_takes_the_link_down()
    {
        var w = Make(speed: 10_000_000_000);

        using (Assert.EnterMultipleScope())
        {
            Assert.That(w.H1.Phys().SpeedMbps, Is.EqualTo(10_000));
            Assert.That(w.H1.Phys().State, Is.EqualTo("up"));
            Assert.That(w.H1.Find("vnic0")!.SpeedMbps, Is.EqualTo(10_000));
        }
        w.Wire.Disconnect();
        Assert.That(w.H2.Phys().State, Is.EqualTo("down"));
    }

    [TestCase(0L, 0.0)]
    [TestCase(-1L, 0.0)]
    [TestCase(1_000_000_000L, -0.1)]
    [TestCase(1_000_000_000L, 1.5)]
    public void Bad_wire_parameters_are_refused(long speed, double loss)
    {
        var s = new Scheduler();
        var h = Host(s, nics: 2);

        Assert.That(() => new Wire(s, new HostRandom(1), h.Phys("e1000g0"), h.Phys("e1000g1"), speed, 0, loss), Throws.TypeOf<ArgumentOutOfRangeException>());
    }

    [Test]
    public void Two_runs_of_the_same_world_are_identical()
    {
        static List<(byte[] Frame, long Time)> Run()
        {
            var w = Make(delay: 3 * Time.Microsecond, loss: 0.1, wireSeed: 11);
            var tap = new TapRecorder();
            w.H2.Phys().AddTap(tap);
            var times = new List<long>();
            for (int i = 0; i < 200; i++)
            {
                w.Sender.Send(Frame(i % 3 == 0 ? MacAddress.Broadcast : s_dst, w.Sender.Client.MacAddress, 60 + i));
                if (i % 7 == 0) w.S.RunFor(i * 100);
            }
            w.S.RunUntilIdle();
            return w.Receiver.Frames.Select(f => (f.Frame, f.Time)).ToList();
        }

        var a = Run();
        var b = Run();

        Assert.That(b.Select(x => x.Time), Is.EqualTo(a.Select(x => x.Time)));
        Assert.That(b.Select(x => Convert.ToHexString(x.Frame)), Is.EqualTo(a.Select(x => Convert.ToHexString(x.Frame))));
    }
}
