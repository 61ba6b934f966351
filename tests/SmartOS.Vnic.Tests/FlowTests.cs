using SmartOS.Kernel;
using SmartOS.Kernel.Wire;
using SmartOS.Testing;

namespace SmartOS.Vnic.Tests;

/// <summary>Flows (Flows.cs, MacLayer.Flows.cs): the six attribute combinations, classification on
/// transmit and receive, one type per link, flow maxbw, persistence and replay.</summary>
public class FlowTests
{
    private static readonly MacAddress s_a = Rig.MacOf(1), s_b = Rig.MacOf(2);
    private Rig _rig = null!;
    private VnicLink _a = null!, _b = null!;
    private Sink _atA = null!, _atB = null!;

    [SetUp]
    public void Build()
    {
        _rig = new Rig();
        Assert.That(_rig.Mac.CreateEtherstub("stub0", false).Code, Is.EqualTo(DladmStatus.Ok));
        _a = _rig.Vnic("vnic0", "stub0", 1);
        _b = _rig.Vnic("vnic1", "stub0", 2);
        _atA = _rig.Listen(_a);
        _atB = _rig.Listen(_b);
    }

    private void Add(string name, string attrs, params (string, string)[] props)
        => Assert.That(_rig.Mac.AddFlow(name, "vnic0", attrs, props, temporary: false).Code, Is.EqualTo(DladmStatus.Ok), attrs);

    /// <summary>a sends <paramref name="fromA"/>, b sends <paramref name="toA"/>; returns the flow's counters.</summary>
    private FlowStats Exchange(string flow, byte[] fromA, byte[] toA)
    {
        _rig.Send(_a, fromA);
        _rig.Send(_b, toA);
        _rig.Scheduler.RunUntilIdle();
        return _rig.Mac.FindFlow(flow)!.Stats;
    }

    // Each case: attributes, a frame from a (vnic0, 10.0.0.1) that matches on transmit and one to a that
    // matches on receive, and frames that must stay on the default flow.
    public static IEnumerable<TestCaseData> Types()
    {
        byte[] Out(string src, string dst, byte proto = IpProtocol.Udp, ushort sp = 1000, ushort dp = 2000, byte tos = 0)
            => Frames.Ipv4(s_a, s_b, src, dst, proto, sp, dp, tos: tos);
        byte[] In(string src, string dst, byte proto = IpProtocol.Udp, ushort sp = 1000, ushort dp = 2000, byte tos = 0)
            => Frames.Ipv4(s_b, s_a, src, dst, proto, sp, dp, tos: tos);
        yield return new TestCaseData("local_ip=10.0.0.1", Out("10.0.0.1", "10.0.0.2"), In("10.0.0.2", "10.0.0.1"), Out("10.0.0.9", "10.0.0.1"), In("10.0.0.1", "10.0.0.2")).SetName("Local_ip_flow_matches_the_source_on_transmit_and_the_destination_on_receive");
        yield return new TestCaseData("remote_ip=10.0.0.0/24", Out("192.168.0.1", "10.0.0.7"), In("10.0.0.8", "192.168.0.1"), Out("10.0.0.1", "10.0.1.7"), In("10.0.1.8", "10.0.0.1")).SetName("Remote_ip_prefix_flow_matches_the_far_end");
        yield return new TestCaseData("transport=tcp", Out("10.0.0.1", "10.0.0.2", IpProtocol.Tcp), In("10.0.0.2", "10.0.0.1", IpProtocol.Tcp), Out("10.0.0.1", "10.0.0.2"), In("10.0.0.2", "10.0.0.1", IpProtocol.Icmp)).SetName("Transport_flow_matches_the_protocol");
        yield return new TestCaseData("transport=udp,local_port=53", Out("10.0.0.1", "10.0.0.2", sp: 53), In("10.0.0.2", "10.0.0.1", dp: 53), Out("10.0.0.1", "10.0.0.2", dp: 53), In("10.0.0.2", "10.0.0.1", sp: 53)).SetName("Local_port_flow_matches_our_port_in_both_directions");
        yield return new TestCaseData("transport=tcp,remote_port=443", Out("10.0.0.1", "10.0.0.2", IpProtocol.Tcp, dp: 443), In("10.0.0.2", "10.0.0.1", IpProtocol.Tcp, sp: 443), Out("10.0.0.1", "10.0.0.2", IpProtocol.Udp, dp: 443), In("10.0.0.2", "10.0.0.1", IpProtocol.Tcp, dp: 443)).SetName("Remote_port_flow_matches_the_peer_port_and_protocol");
        yield return new TestCaseData("dsfield=0xb8:0xfc", Out("10.0.0.1", "10.0.0.2", tos: 0xB8), In("10.0.0.2", "10.0.0.1", tos: 0xBB), Out("10.0.0.1", "10.0.0.2", tos: 0x28), In("10.0.0.2", "10.0.0.1")).SetName("Dsfield_flow_matches_under_its_mask");
    }

    [TestCaseSource(nameof(Types))]
    public void Flow_type_classifies(string attrs, byte[] txMatch, byte[] rxMatch, byte[] txOther, byte[] rxOther)
    {
        Add("f1", attrs);
        var s = Exchange("f1", txMatch, rxMatch);
        Exchange("f1", txOther, rxOther);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(s.OPackets, Is.EqualTo(1), "transmit");
            Assert.That(s.IPackets, Is.EqualTo(1), "receive");
            Assert.That(s.OBytes, Is.EqualTo(txMatch.Length));
            Assert.That(_atB.Count, Is.EqualTo(2), "flows classify, they do not drop");
            Assert.That(_atA.Count, Is.EqualTo(2));
        }
    }

    [Test]
    public void Ipv6_traffic_is_classified_too()
    {
        Add("v6", "remote_ip=2001:db8::/32");
        var s = Exchange("v6", Frames.Ipv6(s_a, s_b, Frames.Ip6("2001:db9::1"), Frames.Ip6("2001:db8:5::1")), Frames.Ipv6(s_b, s_a, Frames.Ip6("2001:db8::2"), Frames.Ip6("2001:db9::1")));
        Assert.That((s.OPackets, s.IPackets), Is.EqualTo((1L, 1L)));
    }

    [Test]
    public void The_longest_matching_prefix_wins()
    {
        Add("wide", "remote_ip=10.0.0.0/8");
        Add("narrow", "remote_ip=10.1.2.0/24");
        _rig.Send(_a, Frames.Ipv4(s_a, s_b, "192.168.0.1", "10.1.2.3"));
        _rig.Send(_a, Frames.Ipv4(s_a, s_b, "192.168.0.1", "10.9.2.3"));
        _rig.Scheduler.RunUntilIdle();
        Assert.That((_rig.Mac.FindFlow("narrow")!.Stats.OPackets, _rig.Mac.FindFlow("wide")!.Stats.OPackets), Is.EqualTo((1L, 1L)));
    }

    [Test]
    public void Fragments_stay_on_the_default_flow_of_a_port_flow_link()
    {
        Add("dns", "transport=udp,local_port=53");
        _rig.Send(_a, Frames.Ipv4(s_a, s_b, "10.0.0.1", "10.0.0.2", sport: 53, fragment: true));
        _rig.Scheduler.RunUntilIdle();
        using (Assert.EnterMultipleScope())
        {
            Assert.That(_rig.Mac.FindFlow("dns")!.Stats.OPackets, Is.Zero);
            Assert.That(_atB.Count, Is.EqualTo(1));
        }
    }

    private static IEnumerable<TestCaseData> AttributeErrors() => DataFile.Cases("flow-attribute-errors.txt", 2);

    [TestCaseSource(nameof(AttributeErrors))]
    public void Attribute_combinations_outside_the_six_and_bad_values_are_refused_with_libdladm_status(DataCase c)
        => Assert.That(DlStatusText.Of(FlowSpec.TryParse(c[0], out _)), Is.EqualTo(c[1]), c.Where);

    [Test]
    public void A_link_holds_flows_of_one_type_and_no_two_identical_flows()
    {
        Add("web", "transport=tcp,local_port=80");
        using (Assert.EnterMultipleScope())
        {
            Assert.That(_rig.Mac.AddFlow("ssh", "vnic0", "transport=tcp,local_port=22", [], false).IsOk, Is.True);
            Assert.That(_rig.Mac.AddFlow("web2", "vnic0", "transport=tcp,local_port=80", [], false).Code, Is.EqualTo(DladmStatus.FlowIdentical));
            Assert.That(_rig.Mac.AddFlow("peer", "vnic0", "remote_ip=10.0.0.2", [], false).Code, Is.EqualTo(DladmStatus.FlowIncompatible));
            Assert.That(_rig.Mac.AddFlow("rport", "vnic0", "transport=tcp,remote_port=80", [], false).Code, Is.EqualTo(DladmStatus.FlowIncompatible));
            Assert.That(_rig.Mac.AddFlow("peer", "vnic1", "remote_ip=10.0.0.2", [], false).IsOk, Is.True, "another link may hold another type");
            Assert.That(_rig.Mac.AddFlow("web", "vnic1", "transport=udp", [], false).Code, Is.EqualTo(DladmStatus.Exist), "flow names are per host");
            Assert.That(_rig.Mac.Flows.Select(f => f.Name), Is.EqualTo(new[] { "web", "ssh", "peer" }));
        }
    }

    [Test]
    public void After_the_last_flow_goes_a_link_may_take_another_type()
    {
        Add("web", "transport=tcp,local_port=80");
        Assert.That(_rig.Mac.RemoveFlow("web", false).Code, Is.EqualTo(DladmStatus.Ok));
        Assert.That(_rig.Mac.AddFlow("peer", "vnic0", "remote_ip=10.0.0.2", [], false).Code, Is.EqualTo(DladmStatus.Ok));
    }

    [Test]
    public void A_flow_maxbw_limits_its_traffic_and_leaves_the_rest_of_the_link_alone()
    {
        Add("bulk", "transport=udp,remote_port=9", ("maxbw", "10M"));
        var bulk = Frames.Ipv4(s_a, s_b, "10.0.0.1", "10.0.0.2", dport: 9, size: 1250);
        var other = Frames.Ipv4(s_a, s_b, "10.0.0.1", "10.0.0.2", dport: 10, size: 1250);
        var sinkBulk = new Pump(_rig, _a, bulk, 40_000_000, Time.Second);
        var sinkOther = new Pump(_rig, _a, other, 40_000_000, Time.Second);
        _rig.Scheduler.RunUntil(Time.Second);
        var f = _rig.Mac.FindFlow("bulk")!;
        double flowRate = f.Stats.OBytes * 8.0;
        using (Assert.EnterMultipleScope())
        {
            Assert.That(Math.Abs(flowRate - 10e6) / 10e6, Is.LessThan(0.005), $"flow at {flowRate}");
            Assert.That(f.Stats.ODrops, Is.GreaterThan(0));
            Assert.That(_atB.Bytes * 8.0 - flowRate, Is.EqualTo(sinkOther.Sent * 1250 * 8.0), "the default flow is unlimited");
            Assert.That(sinkBulk.Sent, Is.EqualTo(4000));
        }
    }

    [Test]
    public void Flow_properties_set_and_reset()
    {
        Add("f", "transport=udp");
        var f = _rig.Mac.FindFlow("f")!;
        Assert.That(_rig.Mac.SetFlowProps(f, [("maxbw", "2G"), ("priority", "low")], false).Code, Is.EqualTo(DladmStatus.Ok));
        Assert.That((MacLayer.GetFlowProp(f, "maxbw"), MacLayer.GetFlowProp(f, "priority")), Is.EqualTo((" 2000", "low")));
        Assert.That(_rig.Mac.SetFlowProps(f, [("priority", "high"), ("maxbw", "1K")], false).Code, Is.EqualTo(DladmStatus.MinMaxBw));
        Assert.That(MacLayer.GetFlowProp(f, "priority"), Is.EqualTo("low"), "a bad value leaves every property unchanged");
        Assert.That(_rig.Mac.ResetFlowProps(f, [], false).Code, Is.EqualTo(DladmStatus.Ok));
        Assert.That((MacLayer.GetFlowProp(f, "maxbw"), MacLayer.GetFlowProp(f, "priority")), Is.EqualTo(("", "medium")));
    }

    [Test]
    public void Flows_persist_and_replay_at_boot_unless_temporary()
    {
        Add("web", "transport=tcp,local_port=80", ("maxbw", "100M"));
        Assert.That(_rig.Mac.AddFlow("tmp", "vnic0", "transport=tcp,local_port=81", [], temporary: true).Code, Is.EqualTo(DladmStatus.Ok));
        var web = _rig.Mac.FindFlow("web")!;
        Assert.That(_rig.Mac.SetFlowProps(web, [("priority", "low")], false).Code, Is.EqualTo(DladmStatus.Ok));

        var again = new Rig(store: _rig.Store);
        var replayed = again.Mac.FindFlow("web");
        using (Assert.EnterMultipleScope())
        {
            Assert.That(replayed, Is.Not.Null);
            Assert.That(replayed!.Link.Name, Is.EqualTo("vnic0"));
            Assert.That(replayed.Spec.ToString(), Is.EqualTo("transport=tcp,local_port=80"));
            Assert.That(replayed.MaxBw, Is.EqualTo(100_000_000));
            Assert.That(replayed.Priority, Is.EqualTo(MacPriority.Low));
            Assert.That(again.Mac.FindFlow("tmp"), Is.Null);
            Assert.That(_rig.Store.Read(MacLayer.FlowConfigName), Does.Contain("\"web\"").And.Not.Contain("\"tmp\""));
        }
    }

    [Test]
    public void A_flow_that_cannot_be_replayed_is_reported_and_kept_and_a_corrupt_file_does_not_stop_boot()
    {
        var store = new MemoryConfigStore();
        store.Write(MacLayer.FlowConfigName, """[{"Name":"lost","Link":"vnic7","Attrs":"transport=udp"},{"Name":"bad","Link":"e1000g0","Attrs":"transport=gre"}]""");
        var mac = new MacLayer("h1", new Scheduler(), new PacketPool(), new KstatRegistry(), new HostRandom(1));
        mac.AddPhys("e1000g0");
        var problems = mac.Boot(store);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(problems, Is.EqualTo(new[] { "flowadm.conf: record 1 (line 1): lost: object not found", "flowadm.conf: record 2 (line 1): bad: invalid IP protocol" }));
            Assert.That(mac.PersistentFlows.Select(r => r.Name), Is.EqualTo(new[] { "lost", "bad" }));
            Assert.That(mac.Flows, Is.Empty);
        }
        store.Write(MacLayer.FlowConfigName, "{not json");
        var mac2 = new MacLayer("h1", new Scheduler(), new PacketPool(), new KstatRegistry(), new HostRandom(1));
        Assert.That(mac2.Boot(store), Has.Count.EqualTo(1).And.Some.StartsWith("flowadm.conf: "));
    }

    [Test]
    public void Removing_a_flow_with_t_keeps_it_for_the_next_boot()
    {
        Add("web", "transport=tcp,local_port=80");
        Assert.That(_rig.Mac.RemoveFlow("web", temporary: true).Code, Is.EqualTo(DladmStatus.Ok));
        Assert.That(_rig.Mac.FindFlow("web"), Is.Null);
        Assert.That(new Rig(store: _rig.Store).Mac.FindFlow("web"), Is.Not.Null);
        Assert.That(_rig.Mac.RemoveFlow("web", temporary: false).Code, Is.EqualTo(DladmStatus.Ok));
        Assert.That(new Rig(store: _rig.Store).Mac.FindFlow("web"), Is.Null);
    }

    [Test]
    public void A_link_with_flows_cannot_be_deleted()
    {
        Add("web", "transport=tcp,local_port=80");
        _atA = null!;
        _a.Client!.Close();
        Assert.That(_rig.Mac.Delete("vnic0", LinkClass.Vnic, false).Code, Is.EqualTo(DladmStatus.FlowExists));
        Assert.That(_rig.Mac.RemoveFlowsOnLink("vnic0", false).Code, Is.EqualTo(DladmStatus.Ok));
        Assert.That(_rig.Mac.Delete("vnic0", LinkClass.Vnic, false).Code, Is.EqualTo(DladmStatus.Ok));
    }

    [Test]
    public void Renaming_a_link_carries_its_persistent_flows()
    {
        _a.Client!.Close();
        Add("web", "transport=tcp,local_port=80");
        Assert.That(_rig.Mac.RenameLink("vnic0", "web0").Code, Is.EqualTo(DladmStatus.Ok));
        var again = new Rig(store: _rig.Store);
        Assert.That(again.Mac.FindFlow("web")?.Link.Name, Is.EqualTo("web0"));
    }

    [TestCase(1)]
    [TestCase(100)]
    [TestCase(10_000)]
    public void Classification_allocates_nothing_whatever_the_number_of_flows(int flows)
    {
        for (int i = 0; i < flows; i++)
            Assert.That(_rig.Mac.AddFlow($"f{i}", "vnic0", $"transport=udp,local_port={i + 1}", [], temporary: true).IsOk, Is.True);
        var frame = Frames.Ipv4(s_a, s_b, "10.0.0.1", "10.0.0.2", sport: (ushort)flows);
        for (int i = 0; i < 1000; i++) _rig.Send(_a, frame);
        // The least of three windows: a steady allocation shows in each, a one-off of the runtime's not.
        long allocated = long.MaxValue;
        for (int window = 0; window < 3; window++)
        {
            long before = GC.GetAllocatedBytesForCurrentThread();
            for (int i = 0; i < 4000; i++) _rig.Send(_a, frame);
            allocated = Math.Min(allocated, GC.GetAllocatedBytesForCurrentThread() - before);
        }
        Assert.That(allocated, Is.Zero);
        Assert.That(_rig.Mac.FindFlow($"f{flows - 1}")!.Stats.OPackets, Is.EqualTo(13_000));
    }
}
