using SmartOS.Kernel;
using SmartOS.Kernel.Wire;
using static SmartOS.Vnic.Tests.TestNet;

namespace SmartOS.Vnic.Tests;

/// <summary>Bridges (vnic/Bridge.cs): BPDU bytes, learning and forwarding, and 802.1D spanning tree
/// in virtual time on a triangle of three hosts' bridges.</summary>
public class BridgeTests
{
    private static readonly long Fd = BridgeConfig.DefaultForwardDelay * Time.Second;

    /// <summary>A Configuration BPDU as 802.1D 9.3.1 lays it out, in its 802.3/LLC frame.</summary>
    private static readonly byte[] s_configFrame =
    [
        0x01, 0x80, 0xc2, 0x00, 0x00, 0x00, 0x00, 0x08, 0x20, 0x00, 0x00, 0x01, 0x00, 0x26, // 802.3, length 38
        0x42, 0x42, 0x03,                                                                   // LLC
        0x00, 0x00, 0x00, 0x00, 0x81,                                                       // STP, config, TC+TCA
        0x80, 0x00, 0x00, 0x08, 0x20, 0x00, 0x00, 0x01,                                     // root
        0x00, 0x00, 0x00, 0x04,                                                             // root path cost
        0x90, 0x00, 0x00, 0x08, 0x20, 0x00, 0x00, 0x02,                                     // bridge
        0x80, 0x02,                                                                         // port
        0x01, 0x00, 0x14, 0x00, 0x02, 0x00, 0x0f, 0x00,                                     // 1, 20, 2, 15 s
        0, 0, 0, 0, 0, 0, 0, 0,                                                             // padding to 60
    ];

    private static readonly Bpdu s_config = new(BpduType.Config, true, true,
        new BridgeId(0x8000, new MacAddress(0x0008_2000_0001UL)), 4, new BridgeId(0x9000, new MacAddress(0x0008_2000_0002UL)),
        0x8002, 256, 20 * 256, 2 * 256, 15 * 256);

    [Test]
    public void A_config_bpdu_is_emitted_as_802_1D_lays_it_out()
    {
        var frame = new byte[Bpdu.FrameLength];
        s_config.Emit(frame, new MacAddress(0x0008_2000_0001UL));
        Assert.That(frame, Is.EqualTo(s_configFrame));
    }

    [Test]
    public void A_config_bpdu_parses_back_to_its_fields()
    {
        Assert.That(Bpdu.TryParse(s_configFrame, out var b), Is.True);
        Assert.That(b, Is.EqualTo(s_config));
    }

    [Test]
    public void A_tcn_bpdu_is_four_octets_after_the_llc_header()
    {
        var frame = new byte[Bpdu.FrameLength];
        Bpdu.Tcn().Emit(frame, new MacAddress(0x0008_2000_0001UL));
        using (Assert.EnterMultipleScope())
        {
            Assert.That(frame[12..21], Is.EqualTo(new byte[] { 0x00, 0x07, 0x42, 0x42, 0x03, 0, 0, 0, 0x80 }));
            Assert.That(Bpdu.TryParse(frame, out var b) && b.Type == BpduType.Tcn, Is.True);
        }
    }

    [TestCase(new byte[] { 0x43, 0x42, 0x03 }, TestName = "Not_an_STP_LLC_header_is_no_bpdu")]
    [TestCase(new byte[] { 0x42, 0x42, 0x03, 0x00, 0x01 }, TestName = "Another_protocol_identifier_is_no_bpdu")]
    public void Malformed_bpdus_are_refused(byte[] llc)
    {
        var frame = (byte[])s_configFrame.Clone();
        llc.CopyTo(frame, 14);
        Assert.That(Bpdu.TryParse(frame, out _), Is.False);
    }

    [Test]
    public void A_short_config_bpdu_is_refused()
    {
        var frame = (byte[])s_configFrame.Clone();
        frame[13] = 3 + 30; // the length field says the BPDU stops short of its 35 octets
        Assert.That(Bpdu.TryParse(frame, out _), Is.False);
    }

    [Test]
    public void Bridge_ids_print_as_dladm_prints_them()
        => Assert.That(new BridgeId(32768, new MacAddress(0x0008_2000_0a01UL)).ToString(), Is.EqualTo("32768/0:8:20:0:a:1"));

    // ---- a triangle of three hosts -----------------------------------------------------------

    private sealed class Triangle
    {
        public readonly Scheduler S = new();
        public readonly MacLayer[] Hosts = new MacLayer[3];
        public readonly Bridge[] Bridges = new Bridge[3];
        public readonly Wire[] Wires = new Wire[3];
        public readonly Recorder[] Vnics = new Recorder[3];
        public readonly List<(int Host, string Link, StpPortState State, long Time)> Changes = [];
        public readonly TapRecorder[] WireTaps = new TapRecorder[3];

        public Triangle(BridgeConfig? config = null)
        {
            for (int i = 0; i < 3; i++)
            {
                Hosts[i] = Host(S, $"h{i + 1}", seed: (ulong)(11 + i), nics: 2);
                Assert.That(Hosts[i].CreateBridge("br", config ?? BridgeConfig.Default, ["e1000g0", "e1000g1"]).IsOk, Is.True);
                Bridges[i] = Hosts[i].FindBridge("br")!;
                int h = i;
                Bridges[i].PortStateChanged += (p, st) => Changes.Add((h, p.Link.Name, st, S.Now));
                Vnics[i] = Open(Hosts[i].Vnic("vnic0", "e1000g0", fixedMac: new MacAddress(0x0208_2000_0100UL + (ulong)i)));
            }
            // h1.e0-h2.e1, h2.e0-h3.e1, h3.e0-h1.e1
            for (int i = 0; i < 3; i++)
            {
                Wires[i] = new Wire(S, new HostRandom((ulong)(100 + i)), Hosts[i].Phys("e1000g0"), Hosts[(i + 1) % 3].Phys("e1000g1"), delayNs: 10 * Time.Microsecond);
                WireTaps[i] = new TapRecorder();
                Hosts[i].Phys("e1000g0").AddTap(WireTaps[i]);
            }
        }

        public IEnumerable<BridgePort> Ports => Bridges.SelectMany(b => b.Ports);

        public long DataFramesOnWires() => WireTaps.Sum(t => t.Frames.Count(f => !Bpdu.IsReserved(MacAddress.Read(f.Frame))));
    }

    [Test]
    public void A_triangle_of_bridges_elects_the_lowest_bridge_id_as_root()
    {
        var t = new Triangle();
        t.S.RunFor(3 * Fd);
        var lowest = t.Bridges.Min(b => b.BridgeId);
        using (Assert.EnterMultipleScope())
        {
            foreach (var b in t.Bridges) Assert.That(b.DesignatedRoot, Is.EqualTo(lowest), b.Mac.HostName);
            Assert.That(t.Bridges.Count(b => b.IsRootBridge), Is.EqualTo(1));
            Assert.That(t.Bridges.Single(b => b.IsRootBridge).RootPort, Is.Null);
        }
    }

    [Test]
    public void A_triangle_converges_to_a_tree_with_exactly_one_blocked_port()
    {
        var t = new Triangle();
        t.S.RunFor(3 * Fd);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(t.Ports.Count(p => p.State == StpPortState.Blocking), Is.EqualTo(1));
            Assert.That(t.Ports.Count(p => p.State == StpPortState.Forwarding), Is.EqualTo(5));
            // The blocked port is on a bridge that is not the root, and it is not its root port.
            var blocked = t.Ports.Single(p => p.State == StpPortState.Blocking);
            Assert.That(blocked.Bridge.IsRootBridge, Is.False);
            Assert.That(blocked.Bridge.RootPort, Is.Not.SameAs(blocked));
        }
    }

    [Test]
    public void Ports_listen_for_one_forward_delay_and_learn_for_another_before_forwarding()
    {
        var t = new Triangle();
        t.S.RunFor(3 * Fd);
        // Every port that ends forwarding went blocking -> listening -> learning -> forwarding at 0, 0, Fd, 2 Fd.
        foreach (var p in t.Ports.Where(p => p.State == StpPortState.Forwarding))
        {
            int h = Array.IndexOf(t.Bridges, p.Bridge);
            var seq = t.Changes.Where(c => c.Host == h && c.Link == p.Link.Name).Select(c => (c.State, c.Time)).ToList();
            Assert.That(seq, Is.EqualTo(new[]
            {
                (StpPortState.Blocking, 0L), (StpPortState.Listening, 0L), (StpPortState.Learning, Fd), (StpPortState.Forwarding, 2 * Fd),
            }), $"h{h + 1} {p.Link.Name}");
        }
    }

    [Test]
    public void No_data_frame_crosses_a_wire_before_the_ports_forward()
    {
        var t = new Triangle();
        t.S.RunFor(Time.Second);
        t.Vnics[0].Send(Frame(MacAddress.Broadcast, t.Vnics[0].Client.MacAddress));
        t.S.RunFor(Time.Second);
        Assert.That(t.DataFramesOnWires(), Is.Zero);
    }

    [Test]
    public void A_broadcast_in_the_converged_triangle_reaches_each_host_once_and_no_storm_follows()
    {
        var t = new Triangle();
        t.S.RunFor(3 * Fd);
        t.Vnics[0].Send(Frame(MacAddress.Broadcast, t.Vnics[0].Client.MacAddress));
        t.S.RunFor(10 * Time.Second);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(t.Vnics[1].Frames, Has.Count.EqualTo(1));
            Assert.That(t.Vnics[2].Frames, Has.Count.EqualTo(1));
            Assert.That(t.Vnics[0].Frames, Is.Empty);
            // Captured at each wire's A end, both ways: each wire carries it once (the designated port of
            // the blocked segment still sends; the blocked port at its far end discards), then nothing.
            Assert.That(t.DataFramesOnWires(), Is.EqualTo(3));
            Assert.That(t.Ports.Single(p => p.State == StpPortState.Blocking).Drops, Is.EqualTo(1));
        }
    }

    [Test]
    public void Unicast_is_learned_and_then_goes_only_towards_its_destination()
    {
        var t = new Triangle();
        t.S.RunFor(3 * Fd);
        var a = t.Vnics[0].Client.MacAddress;
        var b = t.Vnics[1].Client.MacAddress;
        t.Vnics[1].Send(Frame(MacAddress.Broadcast, b)); // h1 and h3 learn where b is
        t.S.RunFor(Time.Second);
        long before = t.DataFramesOnWires();
        t.Vnics[0].Send(Frame(b, a));
        t.S.RunFor(Time.Second);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(t.Vnics[1].Frames.Count(f => f.Destination == b), Is.EqualTo(1));
            Assert.That(t.Vnics[2].Frames.Count(f => f.Destination == b), Is.Zero, "h3 must not see a flood");
            Assert.That(t.Bridges[0].ForwardingTable().Any(r => r.Destination == b && r.AgeMs != null), Is.True);
        }
        Assert.That(t.DataFramesOnWires() - before, Is.LessThanOrEqualTo(2));
    }

    /// <summary>The state changes of one port after <paramref name="since"/>, as (state, time since).</summary>
    private static List<(StpPortState, long)> After(Triangle t, BridgePort p, long since)
    {
        int h = Array.IndexOf(t.Bridges, p.Bridge);
        return t.Changes.Where(c => c.Host == h && c.Link == p.Link.Name && c.Time >= since).Select(c => (c.State, c.Time - since)).ToList();
    }

    private static void BroadcastReachesTheOthersOnce(Triangle t)
    {
        for (int i = 0; i < 3; i++) t.Vnics[i].Frames.Clear();
        t.Vnics[0].Send(Frame(MacAddress.Broadcast, t.Vnics[0].Client.MacAddress));
        t.S.RunFor(Time.Second);
        Assert.That(t.Vnics.Skip(1).Select(v => v.Frames.Count), Is.EqualTo(new[] { 1, 1 }));
    }

    /// <summary>The wire down (the scenario's `wire H/NIC down`, Wire.SetUp) is the root port of the
    /// bridge whose other port blocks. Both ends lose carrier at once (8.8.3 Disable Port); the
    /// blocked port still holds the root's information as relayed by the designated bridge of its
    /// segment, so it is the new root port at once (8.6.8, 8.6.12) and goes listening at the cut,
    /// learning one forward delay later and forwarding after two: 30 s with 802.1D's defaults.</summary>
    [Test]
    public void Wire_down_on_a_root_port_moves_the_blocked_port_to_forwarding_in_two_forward_delays()
    {
        var t = new Triangle();
        t.S.RunFor(3 * Fd);
        var blocked = t.Ports.Single(p => p.State == StpPortState.Blocking);
        var rootPort = blocked.Bridge.RootPort!;
        long cut = t.S.Now;
        Wire.Of((PhysLink)rootPort.Link)!.SetUp(false);
        t.S.RunFor(3 * Fd);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(After(t, rootPort, cut), Is.EqualTo(new[] { (StpPortState.Disabled, 0L) }));
            Assert.That(After(t, blocked, cut), Is.EqualTo(new[]
            {
                (StpPortState.Listening, 0L), (StpPortState.Learning, Fd), (StpPortState.Forwarding, 2 * Fd),
            }));
            Assert.That(blocked.Bridge.RootPort, Is.SameAs(blocked));
            Assert.That(t.Ports.Count(p => p.State == StpPortState.Disabled), Is.EqualTo(2));
            Assert.That(t.Bridges.Select(b => b.DesignatedRoot).Distinct().Count(), Is.EqualTo(1));
        }
        BroadcastReachesTheOthersOnce(t);
    }

    /// <summary>The wire down is the root port of the designated bridge of the blocked segment. That
    /// bridge believes itself root and says so, but the blocked port at the far end keeps the better
    /// information it recorded until its message age timer runs out (max age, 20 s, less the age the
    /// last BPDU had and the time since it came: at most one hello time earlier), then becomes
    /// designated (8.6.11), relays the root's information so the other bridge finds its new root port
    /// through it, and listens and learns for a forward delay each: max age + 2 forward delays, 50 s
    /// with 802.1D's defaults, less at most a hello time.</summary>
    [Test]
    public void Wire_down_on_the_far_bridges_root_port_takes_max_age_and_two_forward_delays()
    {
        var t = new Triangle();
        t.S.RunFor(3 * Fd);
        var blocked = t.Ports.Single(p => p.State == StpPortState.Blocking);
        var far = t.Bridges.Single(b => !b.IsRootBridge && b != blocked.Bridge);
        long cut = t.S.Now;
        Wire.Of((PhysLink)far.RootPort!.Link)!.SetUp(false);
        long maxAge = BridgeConfig.DefaultMaxAge * Time.Second, hello = BridgeConfig.DefaultHelloTime * Time.Second;
        t.S.RunFor(maxAge + 3 * Fd);
        var seq = After(t, blocked, cut);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(seq.Select(c => c.Item1), Is.EqualTo(new[] { StpPortState.Listening, StpPortState.Learning, StpPortState.Forwarding }));
            Assert.That(seq[0].Item2, Is.InRange(maxAge - hello, maxAge), "the recorded information expires after max age");
            Assert.That(seq[1].Item2 - seq[0].Item2, Is.EqualTo(Fd));
            Assert.That(seq[2].Item2 - seq[0].Item2, Is.EqualTo(2 * Fd));
            Assert.That(far.RootPort, Is.Not.Null, "the far bridge found the root again, through the once blocked segment");
            Assert.That(t.Bridges.Select(b => b.DesignatedRoot).Distinct().Count(), Is.EqualTo(1));
        }
        BroadcastReachesTheOthersOnce(t);
    }

    [Test]
    public void Bpdus_carry_the_roots_timers_and_the_port_ids()
    {
        var t = new Triangle(new BridgeConfig(4096, 6, 1, 4, 0));
        t.S.RunFor(10 * Time.Second);
        var bpdus = t.WireTaps.SelectMany(w => w.Frames).Where(f => Bpdu.IsReserved(MacAddress.Read(f.Frame)))
            .Select(f => Bpdu.TryParse(f.Frame, out var b) ? b : default).Where(b => b.Type == BpduType.Config).ToList();
        Assert.That(bpdus, Is.Not.Empty);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(bpdus.Select(b => (b.MaxAge, b.HelloTime, b.ForwardDelay)).Distinct(), Is.EqualTo(new[] { ((ushort)(6 * 256), (ushort)256, (ushort)(4 * 256)) }));
            Assert.That(bpdus.All(b => b.RootId.Priority == 4096 && (b.PortId & 0xFF00) == 0x8000), Is.True);
        }
    }

    [Test]
    public void The_hello_time_paces_the_roots_bpdus()
    {
        var t = new Triangle();
        var root = () => t.Bridges.Single(b => b.IsRootBridge);
        t.S.RunFor(3 * Fd);
        long before = root().Ports.Sum(p => p.TxBpdus);
        t.S.RunFor(20 * Time.Second);
        // Two designated ports, one BPDU each every two seconds.
        Assert.That(root().Ports.Sum(p => p.TxBpdus) - before, Is.EqualTo(20));
    }

    // ---- one host ------------------------------------------------------------------------------

    [Test]
    public void Vnics_over_two_bridged_links_are_one_broadcast_domain()
    {
        var s = new Scheduler();
        var h = Host(s, nics: 2);
        Assert.That(h.CreateEtherstub("stub0", temporary: false).IsOk, Is.True);
        var a = Open(h.Vnic("a0", "e1000g0", fixedMac: new MacAddress(0x0208_2000_0001UL)));
        var b = Open(h.Vnic("b0", "stub0", fixedMac: new MacAddress(0x0208_2000_0002UL)));
        Assert.That(h.CreateBridge("br", BridgeConfig.Default, ["e1000g0", "stub0"]).IsOk, Is.True);
        var tap = new TapRecorder();
        h.FindBridge("br")!.Link.AddTap(tap);
        a.Send(Frame(MacAddress.Broadcast, a.Client.MacAddress));
        a.Send(Frame(b.Client.MacAddress, a.Client.MacAddress));
        b.Send(Frame(a.Client.MacAddress, b.Client.MacAddress));
        s.RunFor(Time.Second);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(b.Frames, Has.Count.EqualTo(2));
            Assert.That(a.Frames, Has.Count.EqualTo(1));
            Assert.That(tap.Frames, Has.Count.EqualTo(3), "br0 sees every frame the bridge forwards");
        }
    }

    /// <summary>Bridge.cs rule 5: once the pool is warm, frames across the bridge allocate nothing.</summary>
    [Test]
    public void Frames_across_a_bridge_allocate_nothing_in_steady_state()
    {
        var s = new Scheduler();
        var h = Host(s, nics: 1);
        Assert.That(h.CreateEtherstub("stub0", temporary: false).IsOk, Is.True);
        Assert.That(h.CreateEtherstub("stub1", temporary: false).IsOk, Is.True);
        var a = Open(h.Vnic("a0", "stub0", fixedMac: new MacAddress(0x0208_2000_0001UL)));
        var c = h.Vnic("c0", "stub1", fixedMac: new MacAddress(0x0208_2000_0003UL));
        var sink = new Sink(s);
        c.OpenClient("test")!.Receiver = sink;
        Assert.That(h.CreateBridge("br", BridgeConfig.Default, ["stub0", "stub1"]).IsOk, Is.True);
        var unicast = Frame(c.MacAddress, a.Client.MacAddress);
        var broadcast = Frame(MacAddress.Broadcast, a.Client.MacAddress);
        void Send(int n)
        {
            for (int i = 0; i < n; i++)
            {
                a.Client.Transmit(a.Client.Pool.Rent(unicast)!);
                a.Client.Transmit(a.Client.Pool.Rent(broadcast)!);
            }
        }
        Send(5_000); // warm-up: the pool, the switches' arrays, the JIT
        long before = GC.GetAllocatedBytesForCurrentThread();
        Send(50_000);
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        using (Assert.EnterMultipleScope())
        {
            Assert.That(allocated, Is.Zero);
            Assert.That(sink.Count, Is.EqualTo(2 * 55_000));
        }
    }

    [Test]
    public void Only_phys_and_etherstub_links_can_be_bridged()
    {
        var s = new Scheduler();
        var h = Host(s, nics: 2);
        h.Vnic("vnic0", "e1000g0");
        using (Assert.EnterMultipleScope())
        {
            Assert.That(h.CreateBridge("br", BridgeConfig.Default, ["vnic0"]).Code, Is.EqualTo(DladmStatus.LinkInval));
            Assert.That(h.CreateBridge("br", BridgeConfig.Default, ["nosuch0"]).Code, Is.EqualTo(DladmStatus.NotFound));
            Assert.That(h.FindBridge("br"), Is.Null);
            Assert.That(h.Find("br0"), Is.Null, "a refused create leaves nothing");
        }
        Assert.That(h.CreateBridge("br", BridgeConfig.Default, ["e1000g0"]).IsOk, Is.True);
        Assert.That(h.CreateBridge("other", BridgeConfig.Default, ["e1000g0"]).Code, Is.EqualTo(DladmStatus.LinkBusy));
    }

    [Test]
    public void A_bridge_survives_a_reboot_of_its_host()
    {
        var store = new MemoryConfigStore();
        var s = new Scheduler();
        var h = Host(s, nics: 2);
        h.Boot(store);
        Assert.That(h.CreateEtherstub("stub0", temporary: false).IsOk, Is.True);
        Assert.That(h.CreateBridge("br", new BridgeConfig(8192, 10, 1, 6, 0), ["e1000g1", "stub0"]).IsOk, Is.True);

        var again = Host(new Scheduler(), nics: 2);
        Assert.That(again.Boot(store), Is.Empty);
        var br = again.FindBridge("br");
        Assert.That(br, Is.Not.Null);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(br!.Config, Is.EqualTo(new BridgeConfig(8192, 10, 1, 6, 0)));
            Assert.That(br.Ports.Select(p => p.Link.Name), Is.EqualTo(new[] { "e1000g1", "stub0" }));
            Assert.That(again.Find("br0")?.Class, Is.EqualTo(LinkClass.Bridge));
        }
    }

    [Test]
    public void A_bridged_etherstub_cannot_be_deleted_and_a_bridge_with_links_cannot_be_deleted()
    {
        var s = new Scheduler();
        var h = Host(s, nics: 1);
        Assert.That(h.CreateEtherstub("stub0", temporary: false).IsOk, Is.True);
        Assert.That(h.CreateBridge("br", BridgeConfig.Default, ["stub0"]).IsOk, Is.True);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(h.Delete("stub0", LinkClass.Etherstub, temporary: false).Code, Is.EqualTo(DladmStatus.LinkBusy));
            Assert.That(h.DeleteBridge("br").Code, Is.EqualTo(DladmStatus.LinkBusy));
        }
        Assert.That(h.RemoveBridgeLinks("br", ["stub0"]).IsOk, Is.True);
        Assert.That(h.DeleteBridge("br").IsOk, Is.True);
        Assert.That(h.Find("br0"), Is.Null);
    }
}
