using System.Buffers.Binary;
using SmartOS.Kernel;
using SmartOS.Kernel.Wire;
using static SmartOS.Vnic.Tests.TestNet;

namespace SmartOS.Vnic.Tests;

/// <summary>Aggregations: the LACPDU's bytes, LACP's machines against 802.1AX's timers in virtual
/// time, transmit hashing, failover when a wire is pulled, and the refusals and persistence of the
/// MAC-layer operations.</summary>
public class AggrTests
{
    private static readonly MacAddress s_peer = new(0x0208_2099_0001UL);

    /// <summary>Two hosts joined by two wires, each with an aggregation of both NICs and a VNIC on it.</summary>
    private sealed class Pair
    {
        public readonly Scheduler S = new();
        public readonly MacLayer H1, H2;
        public readonly Wire W0, W1;
        public readonly AggrLink A1, A2;
        public readonly Recorder V1, V2;

        public Pair(LacpMode m1 = LacpMode.Active, LacpMode m2 = LacpMode.Active, LacpTimer t1 = LacpTimer.Short, LacpTimer t2 = LacpTimer.Short,
            long speed = 1_000_000_000, AggrPolicy policy = AggrPolicy.L4, long delay = 10 * Time.Microsecond)
        {
            H1 = Host(S, "h1", seed: 1, nics: 2);
            H2 = Host(S, "h2", seed: 2, nics: 2);
            W0 = new Wire(S, new HostRandom(3), H1.Phys("e1000g0"), H2.Phys("e1000g0"), speed, delay);
            W1 = new Wire(S, new HostRandom(4), H1.Phys("e1000g1"), H2.Phys("e1000g1"), speed, delay);
            A1 = Create(H1, m1, t1, policy);
            A2 = Create(H2, m2, t2, policy);
            V1 = Open(H1.Vnic("vnic0", "aggr0"));
            V2 = Open(H2.Vnic("vnic0", "aggr0", fixedMac: s_peer));
        }

        private static AggrLink Create(MacLayer mac, LacpMode mode, LacpTimer timer, AggrPolicy policy)
        {
            var s = mac.CreateAggr("aggr0", ["e1000g0", "e1000g1"], policy, mode, timer, null, temporary: true, out var a);
            Assert.That(s.Code, Is.EqualTo(DladmStatus.Ok));
            return a!;
        }

        public void RunTo(long t) => S.RunFor(t - S.Now);
    }

    private static byte[] Udp(MacAddress dst, MacAddress src, ushort sport, ushort dport, int length = 200)
    {
        var f = Frame(dst, src, length);
        BinaryPrimitives.WriteUInt16BigEndian(f.AsSpan(12), EtherType.Ipv4);
        var ip = f.AsSpan(14);
        ip[..28].Clear();
        ip[0] = 0x45;
        BinaryPrimitives.WriteUInt16BigEndian(ip[2..], (ushort)(length - 14));
        ip[8] = 64;
        ip[9] = 17;
        BinaryPrimitives.WriteUInt32BigEndian(ip[12..], 0xC6120001); // 198.18.0.1
        BinaryPrimitives.WriteUInt32BigEndian(ip[16..], 0xC6120002);
        BinaryPrimitives.WriteUInt16BigEndian(ip[20..], sport);
        BinaryPrimitives.WriteUInt16BigEndian(ip[22..], dport);
        BinaryPrimitives.WriteUInt16BigEndian(ip[24..], (ushort)(length - 34));
        return f;
    }

    // ---- the LACPDU --------------------------------------------------------------------------------

    [Test]
    public void An_lacpdu_has_802_1ax_layout_and_parses_back()
    {
        var actor = new LacpInfo(32768, new MacAddress(0x0008_2000_0001UL), 7, 32768, 2, LacpState.Activity | LacpState.Timeout | LacpState.Aggregation);
        var partner = new LacpInfo(65535, new MacAddress(0x0200_0000_0009UL), 9, 255, 3, LacpState.Synchronization);
        var f = new byte[LacpPdu.FrameLength];
        LacpPdu.Write(f, new MacAddress(0x0008_2000_0101UL), actor, partner);

        using (Assert.EnterMultipleScope())
        {
            Assert.That(f, Has.Length.EqualTo(124));
            Assert.That(Convert.ToHexString(f, 0, 14), Is.EqualTo("0180C20000020008200001018809"));
            Assert.That(Convert.ToHexString(f, 14, 22), Is.EqualTo("01010114800000082000000100078000000207000000"));
            Assert.That(Convert.ToHexString(f, 36, 20), Is.EqualTo("0214FFFF0200000000090009" + "00FF000308000000"));
            Assert.That(Convert.ToHexString(f, 56, 18), Is.EqualTo("0310" + "0000" + "000000000000000000000000" + "0000"));
            Assert.That(f.AsSpan(74).ToArray(), Is.All.Zero);
            Assert.That(LacpPdu.TryParse(f, out var a, out var p), Is.True);
            Assert.That(a, Is.EqualTo(actor));
            Assert.That(p, Is.EqualTo(partner));
        }
    }

    [Test]
    public void A_truncated_or_marker_frame_is_not_an_lacpdu()
    {
        var f = new byte[LacpPdu.FrameLength];
        LacpPdu.Write(f, new MacAddress(0x0008_2000_0101UL), default, default);
        var marker = (byte[])f.Clone();
        marker[14] = 2;
        using (Assert.EnterMultipleScope())
        {
            Assert.That(LacpPdu.TryParse(f.AsSpan(0, 100), out _, out _), Is.False);
            Assert.That(LacpPdu.TryParse(marker, out _, out _), Is.False);
        }
    }

    // ---- LACP in virtual time ----------------------------------------------------------------------

    [Test]
    public void Active_partners_distribute_after_the_2_second_aggregate_wait()
    {
        var p = new Pair();
        p.RunTo(1_900 * Time.Millisecond);
        Assert.That(p.A1.Distributing, Is.Empty);
        p.RunTo(2_100 * Time.Millisecond);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(p.A1.Distributing.Select(x => x.Phys.Name), Is.EqualTo(new[] { "e1000g0", "e1000g1" }));
            Assert.That(p.A2.Distributing, Has.Count.EqualTo(2));
            var port = p.A1.Ports[0].Lacp;
            Assert.That(port.Mux, Is.EqualTo(AggrLacp.MuxState.CollectingDistributing));
            Assert.That(port.Rx, Is.EqualTo(AggrLacp.RxState.Current));
            Assert.That(port.Partner.System, Is.EqualTo(p.A2.MacAddress));
            Assert.That(port.Partner.State & LacpState.Synchronization, Is.EqualTo(LacpState.Synchronization));
            Assert.That(p.A1.State, Is.EqualTo("up"));
            Assert.That(p.A1.SpeedMbps, Is.EqualTo(2000));
        }
    }

    [Test]
    public void Fast_periodic_sends_one_lacpdu_a_second_and_slow_one_every_30_seconds()
    {
        var fast = new Pair();
        var slow = new Pair(t1: LacpTimer.Long, t2: LacpTimer.Long);
        fast.RunTo(10 * Time.Second);
        slow.RunTo(10 * Time.Second);
        long f0 = fast.A1.Ports[0].Lacp.PdusSent, s0 = slow.A1.Ports[0].Lacp.PdusSent;
        fast.RunTo(70 * Time.Second);
        slow.RunTo(70 * Time.Second);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(fast.A1.Ports[0].Lacp.PdusSent - f0, Is.EqualTo(60));
            Assert.That(slow.A1.Ports[0].Lacp.PdusSent - s0, Is.EqualTo(2));
            Assert.That(slow.A1.Distributing, Has.Count.EqualTo(2));
        }
    }

    [TestCase(LacpTimer.Short, 3L)]
    [TestCase(LacpTimer.Long, 90L)]
    public void A_silent_partner_expires_after_3_periods_and_is_defaulted_after_3_seconds_more(LacpTimer timer, long timeoutSeconds)
    {
        var p = new Pair(t1: timer);
        p.RunTo(5 * Time.Second);
        Assert.That(p.A1.Distributing, Has.Count.EqualTo(2));
        // The partner turns LACP off: it sends no more LACPDUs; the timeout runs from the last one.
        Assert.That(p.H2.ModifyAggr("aggr0", null, null, false, LacpMode.Off, null, temporary: true).IsOk, Is.True);
        p.S.RunFor(Time.Millisecond); // one may still be in flight
        long quiet = p.A1.Ports[0].Lacp.LastReceivedAt;
        p.RunTo(quiet + (timeoutSeconds - 1) * Time.Second - Time.Millisecond);
        Assert.That(p.A1.Ports[0].Lacp.Rx, Is.EqualTo(AggrLacp.RxState.Current), "before current_while can have run out");
        p.RunTo(quiet + timeoutSeconds * Time.Second + Time.Millisecond);
        var port = p.A1.Ports[0].Lacp;
        using (Assert.EnterMultipleScope())
        {
            Assert.That(port.Rx, Is.EqualTo(AggrLacp.RxState.Expired));
            Assert.That(port.ActorState & LacpState.Expired, Is.EqualTo(LacpState.Expired));
            Assert.That(p.A1.Distributing, Is.Empty, "out of sync once expired");
        }
        p.RunTo(quiet + (timeoutSeconds + 3) * Time.Second + Time.Millisecond);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(port.Rx, Is.EqualTo(AggrLacp.RxState.Defaulted));
            Assert.That(port.ActorState & (LacpState.Defaulted | LacpState.Expired), Is.EqualTo(LacpState.Defaulted));
            Assert.That(port.Mux, Is.EqualTo(AggrLacp.MuxState.Detached));
        }
    }

    [Test]
    public void Passive_answers_active_but_two_passive_ends_never_speak()
    {
        var mixed = new Pair(m2: LacpMode.Passive);
        var quiet = new Pair(m1: LacpMode.Passive, m2: LacpMode.Passive);
        mixed.RunTo(5 * Time.Second);
        quiet.RunTo(5 * Time.Second);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(mixed.A2.Distributing, Has.Count.EqualTo(2));
            Assert.That(mixed.A2.Ports[0].Lacp.PdusSent, Is.Positive);
            Assert.That(quiet.A1.Ports[0].Lacp.PdusSent + quiet.A2.Ports[0].Lacp.PdusSent, Is.Zero);
            Assert.That(quiet.A1.Distributing, Is.Empty);
        }
    }

    [Test]
    public void Lacp_against_a_static_partner_never_distributes_but_static_on_both_ends_carries_at_once()
    {
        var mixed = new Pair(m2: LacpMode.Off);
        var both = new Pair(m1: LacpMode.Off, m2: LacpMode.Off);
        mixed.RunTo(10 * Time.Second);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(mixed.A1.Distributing, Is.Empty);
            Assert.That(mixed.A1.Ports[0].Lacp.ActorState & LacpState.Defaulted, Is.EqualTo(LacpState.Defaulted));
            Assert.That(both.A1.Distributing, Has.Count.EqualTo(2));
        }
        both.V1.Send(Udp(s_peer, both.V1.Client.MacAddress, 1, 2));
        both.S.RunFor(Time.Millisecond);
        Assert.That(both.V2.Frames, Has.Count.EqualTo(1));
    }

    // ---- hashing and failover ----------------------------------------------------------------------

    [Test]
    public void L4_hashing_spreads_flows_over_both_ports_and_keeps_each_flow_on_one()
    {
        var p = new Pair();
        p.RunTo(5 * Time.Second);
        long before0 = p.A1.Ports[0].OutPackets, before1 = p.A1.Ports[1].OutPackets;
        var portOf = new Dictionary<int, AggrPort>();
        for (int flow = 0; flow < 200; flow++)
        {
            var frame = Udp(s_peer, p.V1.Client.MacAddress, (ushort)(10000 + flow), 80);
            uint h = AggrLink.Hash(frame, AggrPolicy.L4);
            portOf[flow] = p.A1.Distributing[(int)(h % 2)];
            for (int i = 0; i < 3; i++) p.V1.Send(frame);
            p.S.RunFor(100 * Time.Microsecond);
        }
        p.S.RunFor(Time.Millisecond);
        long n0 = p.A1.Ports[0].OutPackets - before0, n1 = p.A1.Ports[1].OutPackets - before1;
        using (Assert.EnterMultipleScope())
        {
            Assert.That(n0 + n1, Is.EqualTo(600));
            Assert.That(n0, Is.InRange(200, 400), "a fair share of 200 flows on each port");
            Assert.That(n0, Is.EqualTo(3 * portOf.Values.Count(x => x == p.A1.Ports[0])), "each flow's three frames on its port");
            Assert.That(p.V2.Frames, Has.Count.EqualTo(600));
        }
    }

    [Test]
    public void L2_hashing_puts_every_flow_between_two_macs_on_one_port()
    {
        var p = new Pair(policy: AggrPolicy.L2);
        p.RunTo(5 * Time.Second);
        long b0 = p.A1.Ports[0].OutPackets, b1 = p.A1.Ports[1].OutPackets;
        for (int flow = 0; flow < 50; flow++) p.V1.Send(Udp(s_peer, p.V1.Client.MacAddress, (ushort)(10000 + flow), 80));
        p.S.RunFor(Time.Millisecond);
        long n0 = p.A1.Ports[0].OutPackets - b0, n1 = p.A1.Ports[1].OutPackets - b1;
        Assert.That(Math.Max(n0, n1), Is.EqualTo(50));
    }

    [Test]
    public void A_pulled_wire_takes_its_port_out_at_once_and_traffic_moves_to_the_other()
    {
        var p = new Pair();
        p.RunTo(5 * Time.Second);
        p.W0.SetUp(false);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(p.H1.Phys("e1000g0").State, Is.EqualTo("down"));
            Assert.That(p.H2.Phys("e1000g0").State, Is.EqualTo("down"));
            Assert.That(p.A1.Distributing.Select(x => x.Phys.Name), Is.EqualTo(new[] { "e1000g1" }));
            Assert.That(p.A1.Ports[0].Lacp.Rx, Is.EqualTo(AggrLacp.RxState.PortDisabled));
        }
        for (int flow = 0; flow < 100; flow++) p.V1.Send(Udp(s_peer, p.V1.Client.MacAddress, (ushort)(20000 + flow), 80));
        p.S.RunFor(10 * Time.Millisecond);
        Assert.That(p.V2.Frames, Has.Count.EqualTo(100), "every flow now hashes to the port left");

        p.W0.SetUp(true);
        p.S.RunFor(Time.Second);
        Assert.That(p.A1.Distributing, Has.Count.EqualTo(1), "back only after the aggregate wait");
        p.S.RunFor(2 * Time.Second);
        Assert.That(p.A1.Distributing, Has.Count.EqualTo(2));
    }

    [Test]
    public void Frames_in_flight_on_a_pulled_wire_are_the_only_loss()
    {
        var p = new Pair(delay: Time.Millisecond);
        p.RunTo(5_500 * Time.Millisecond); // between two periodic LACPDUs
        // 100 flows over 1 ms of flight: some are on the wire that is pulled.
        for (int flow = 0; flow < 100; flow++) p.V1.Send(Udp(s_peer, p.V1.Client.MacAddress, (ushort)(30000 + flow), 80));
        long onW0 = p.A1.Ports[0].OutPackets;
        p.S.RunFor(100 * Time.Microsecond);
        p.W0.SetUp(false);
        p.S.RunFor(10 * Time.Millisecond);
        long lost = p.H2.Phys("e1000g0").Stats.DropLinkDown;
        using (Assert.EnterMultipleScope())
        {
            Assert.That(lost, Is.Positive);
            Assert.That(p.V2.Frames.Count + lost, Is.EqualTo(100));
        }
        for (int flow = 0; flow < 100; flow++) p.V1.Send(Udp(s_peer, p.V1.Client.MacAddress, (ushort)(30000 + flow), 80));
        p.S.RunFor(10 * Time.Millisecond);
        Assert.That(p.V2.Frames.Count + lost, Is.EqualTo(200), "after the failover nothing more is lost");
        Assert.That(onW0, Is.Positive);
    }

    [Test]
    public void Lacpdus_leave_the_port_with_its_own_address_and_are_never_delivered_to_clients()
    {
        var p = new Pair();
        var tap = new TapRecorder();
        p.H1.Phys("e1000g1").AddTap(tap);
        p.RunTo(3 * Time.Second);
        var sent = tap.Frames.Where(f => f.Direction == TapDirection.Transmitted && LacpPdu.IsSlowProtocol(f.Frame)).ToList();
        using (Assert.EnterMultipleScope())
        {
            Assert.That(sent, Is.Not.Empty);
            Assert.That(MacAddress.Read(sent[0].Frame.AsSpan(6)), Is.EqualTo(p.H1.Phys("e1000g1").MacAddress));
            Assert.That(MacAddress.Read(sent[0].Frame), Is.EqualTo(LacpPdu.Group));
            Assert.That(p.V2.Frames, Is.Empty);
        }
    }

    // ---- configuration -----------------------------------------------------------------------------

    [Test]
    public void A_port_in_use_is_refused_and_nothing_changes()
    {
        var s = new Scheduler();
        var h = Host(s, nics: 3);
        h.Vnic("vnic0", "e1000g2");
        Assert.That(h.CreateAggr("aggr0", ["e1000g0"], AggrPolicy.L4, LacpMode.Off, LacpTimer.Short, null, true, out _).IsOk, Is.True);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(Code(h.CreateAggr("aggr1", ["e1000g0"], AggrPolicy.L4, LacpMode.Off, LacpTimer.Short, null, true, out _)), Is.EqualTo(DladmStatus.LinkBusy));
            Assert.That(Code(h.CreateAggr("aggr1", ["e1000g1", "e1000g2"], AggrPolicy.L4, LacpMode.Off, LacpTimer.Short, null, true, out _)), Is.EqualTo(DladmStatus.LinkBusy));
            Assert.That(Code(h.CreateAggr("aggr1", ["e1000g9"], AggrPolicy.L4, LacpMode.Off, LacpTimer.Short, null, true, out _)), Is.EqualTo(DladmStatus.NotFound));
            Assert.That(Code(h.CreateAggr("aggr1", ["vnic0"], AggrPolicy.L4, LacpMode.Off, LacpTimer.Short, null, true, out _)), Is.EqualTo(DladmStatus.LinkInval));
            Assert.That(Code(h.CreateAggr("aggr0", ["e1000g1"], AggrPolicy.L4, LacpMode.Off, LacpTimer.Short, null, true, out _)), Is.EqualTo(DladmStatus.Exist));
            Assert.That(Code(h.CreateVnic("vnic1", "e1000g0", new MacLayer.MacRequest(MacAddressType.Random), 0, true, out _)), Is.EqualTo(DladmStatus.LinkBusy));
            Assert.That(h.Find("aggr1"), Is.Null);
            Assert.That(h.Phys("e1000g1").AggrPort, Is.Null);
        }
    }

    private static DladmStatus Code(DlStatus s) => s.Code;

    [Test]
    public void An_aggregation_with_a_vnic_over_it_is_busy_and_its_last_port_stays()
    {
        var s = new Scheduler();
        var h = Host(s, nics: 2);
        h.CreateAggr("aggr0", ["e1000g0", "e1000g1"], AggrPolicy.L4, LacpMode.Off, LacpTimer.Short, null, true, out var a);
        h.Vnic("vnic0", "aggr0");
        using (Assert.EnterMultipleScope())
        {
            Assert.That(Code(h.DeleteAggr("aggr0", true)), Is.EqualTo(DladmStatus.LinkBusy));
            Assert.That(Code(h.RemoveAggrPorts("aggr0", ["e1000g0", "e1000g1"], true)), Is.EqualTo(DladmStatus.BadArg));
            Assert.That(a!.Ports, Has.Count.EqualTo(2));
        }
        Assert.That(h.RemoveAggrPorts("aggr0", ["e1000g0"], true).IsOk, Is.True);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(a.MacAddress, Is.EqualTo(h.Phys("e1000g1").MacAddress), "auto: the first port left");
            Assert.That(h.Phys("e1000g0").AggrPort, Is.Null);
        }
    }

    [Test]
    public void A_persistent_aggregation_and_its_vnic_come_back_at_boot_and_a_temporary_one_does_not()
    {
        var store = new MemoryConfigStore();
        var s = new Scheduler();
        var h = new MacLayer("h1", s, new PacketPool(), new KstatRegistry(), new HostRandom(1));
        for (int i = 0; i < 3; i++) h.AddPhys($"e1000g{i}");
        h.Boot(store);
        Assert.That(h.CreateAggr("aggr1", ["e1000g0", "e1000g1"], AggrPolicy.L2 | AggrPolicy.L3, LacpMode.Active, LacpTimer.Long,
            new MacAddress(0x0208_2000_0042UL), false, out _).IsOk, Is.True);
        Assert.That(h.CreateVnic("vnic0", "aggr1", new MacLayer.MacRequest(MacAddressType.Fixed, new MacAddress(0x0208_2000_0043UL)), 0, false, out _).IsOk, Is.True);
        Assert.That(h.CreateAggr("aggr2", ["e1000g2"], AggrPolicy.L4, LacpMode.Off, LacpTimer.Short, null, true, out _).IsOk, Is.True);

        var again = new MacLayer("h1", new Scheduler(), new PacketPool(), new KstatRegistry(), new HostRandom(1));
        for (int i = 0; i < 3; i++) again.AddPhys($"e1000g{i}");
        Assert.That(again.Boot(store), Is.Empty);
        var a = again.Find("aggr1") as AggrLink;
        using (Assert.EnterMultipleScope())
        {
            Assert.That(a, Is.Not.Null);
            Assert.That(a!.Ports.Select(p => p.Phys.Name), Is.EqualTo(new[] { "e1000g0", "e1000g1" }));
            Assert.That(a.Policy, Is.EqualTo(AggrPolicy.L2 | AggrPolicy.L3));
            Assert.That((a.Mode, a.Timer), Is.EqualTo((LacpMode.Active, LacpTimer.Long)));
            Assert.That(a.MacAddress, Is.EqualTo(new MacAddress(0x0208_2000_0042UL)));
            Assert.That(again.Find("vnic0")?.Over, Is.SameAs(a));
            Assert.That(again.Find("aggr2"), Is.Null);
        }
    }

    [Test]
    public void Modify_changes_policy_and_address_and_persists_them()
    {
        var store = new MemoryConfigStore();
        var h = new MacLayer("h1", new Scheduler(), new PacketPool(), new KstatRegistry(), new HostRandom(1));
        h.AddPhys("e1000g0");
        h.Boot(store);
        h.CreateAggr("aggr0", ["e1000g0"], AggrPolicy.L4, LacpMode.Off, LacpTimer.Short, null, false, out var a);
        var fixedMac = new MacAddress(0x0208_2000_0077UL);
        Assert.That(h.ModifyAggr("aggr0", AggrPolicy.L3, fixedMac, false, LacpMode.Passive, LacpTimer.Long, false).IsOk, Is.True);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(a!.Policy, Is.EqualTo(AggrPolicy.L3));
            Assert.That(a.MacAddress, Is.EqualTo(fixedMac));
            Assert.That(h.HasPortAddress(fixedMac), Is.True);
            Assert.That(a.Mode, Is.EqualTo(LacpMode.Passive));
            Assert.That(h.FindPersistent("aggr0")!.Aggr!.Address, Is.EqualTo(fixedMac.ToString()));
            Assert.That(h.FindPersistent("aggr0")!.Aggr!.Policy, Is.EqualTo("L3"));
        }
    }
}
