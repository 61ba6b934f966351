using SmartOS.Kernel;
using SmartOS.Kernel.Wire;

namespace SmartOS.Vnic.Tests;

/// <summary>Priority (BandQueue.cs): on a congested wire, high before medium before low, and equal
/// priorities share fairly. Two VNICs over e1000g0 flood a 100 Mbit/s wire to a VNIC over e1000g1.</summary>
public class PriorityTests
{
    private const long WireBps = 100_000_000;
    private Rig _rig = null!;
    private VnicLink _x = null!, _y = null!;
    private readonly Dictionary<int, long> _bySender = [];
    private readonly List<int> _order = [];

    private sealed class BySender(Dictionary<int, long> counts, List<int> order) : IMacReceiver
    {
        public void Receive(MacClient client, Packet packet)
        {
            int who = packet.Data[^1];
            order.Add(who);
            counts[who] = counts.GetValueOrDefault(who) + packet.Length;
            packet.Free();
        }
    }

    [SetUp]
    public void Build()
    {
        _rig = new Rig();
        _ = new Wire(_rig.Scheduler, new HostRandom(3), (PhysLink)_rig.Mac.Find("e1000g0")!, (PhysLink)_rig.Mac.Find("e1000g1")!, speedBps: WireBps);
        _x = _rig.Vnic("vnic0", "e1000g0", 1);
        _y = _rig.Vnic("vnic1", "e1000g0", 2);
        var z = _rig.Vnic("vnic2", "e1000g1", 3);
        _bySender.Clear();
        _order.Clear();
        z.OpenClient("test")!.Receiver = new BySender(_bySender, _order);
    }

    private static byte[] From(int who, ushort dport = 9, int size = 1000)
    {
        var f = Frames.Ipv4(Rig.MacOf(who), Rig.MacOf(3), $"10.0.0.{who}", "10.0.1.3", dport: dport, size: size);
        f[^1] = (byte)who;
        return f;
    }

    private (double x, double y) Flood(int sizeX = 1000, int sizeY = 1000, ushort dportX = 9)
    {
        // Each offers 80% of the wire: together 160%.
        _ = new Pump(_rig, _x, From(1, dportX, sizeX), WireBps * 8 / 10, Time.Second / 2);
        _ = new Pump(_rig, _y, From(2, 9, sizeY), WireBps * 8 / 10, Time.Second / 2);
        _rig.Scheduler.RunUntil(Time.Second / 2);
        double total = _bySender.GetValueOrDefault(1) + _bySender.GetValueOrDefault(2);
        return (_bySender.GetValueOrDefault(1) / total, _bySender.GetValueOrDefault(2) / total);
    }

    [Test]
    public void A_high_priority_link_is_served_before_a_low_one_on_a_congested_wire()
    {
        _rig.Set(_y, "priority", "low");
        var (x, y) = Flood();
        using (Assert.EnterMultipleScope())
        {
            Assert.That(x, Is.EqualTo(0.8).Within(0.01), "high gets all it asks for");
            Assert.That(y, Is.EqualTo(0.2).Within(0.01), "low gets what is left");
            Assert.That(_rig.Mac.Find("e1000g0")!.Stats.DropTxQueue, Is.GreaterThan(0), "low's queue overflowed, counted");
        }
    }

    [Test]
    public void Medium_is_served_before_low()
    {
        _rig.Set(_x, "priority", "low");
        _rig.Set(_y, "priority", "medium");
        var (x, y) = Flood();
        Assert.That((Math.Round(x, 2), Math.Round(y, 2)), Is.EqualTo((0.2, 0.8)));
    }

    [TestCase(1000, 1000)]
    [TestCase(1500, 200)]
    public void Equal_priorities_share_the_wire_fairly_in_bytes(int sizeX, int sizeY)
    {
        var (x, y) = Flood(sizeX, sizeY);
        Assert.That(x, Is.EqualTo(0.5).Within(0.02), $"x {x:F3} y {y:F3}");
    }

    [Test]
    public void A_flow_priority_overrides_its_link_priority()
    {
        _rig.Set(_x, "priority", "low");
        Assert.That(_rig.Mac.AddFlow("urgent", "vnic0", "transport=udp,remote_port=5060", [("priority", "high")], false).Code, Is.EqualTo(DladmStatus.Ok));
        _rig.Set(_y, "priority", "medium");
        var (x, _) = Flood(dportX: 5060);
        Assert.That(x, Is.EqualTo(0.8).Within(0.01));
    }

    /// <summary>A lone sender's frames wait in a FIFO whose order is known, so the wire commits them
    /// ahead (Wire.cs); when a second sender of the same priority comes, the first one's waiting
    /// frames must go back into the queue with the deficit their dequeues so far left (518 bytes
    /// after one 1000-byte frame on a 1518-byte quantum), not a fresh quantum, or x3 would go before y1.</summary>
    [Test]
    public void A_second_sender_joining_a_congested_wire_is_served_by_deficit_round_robin_from_where_it_stood()
    {
        for (int i = 0; i < 5; i++) _rig.Send(_x, From(1));
        _rig.Scheduler.RunUntil(100 * Time.Microsecond); // x1 went at 0, x2 at 80 us
        for (int i = 0; i < 3; i++) _rig.Send(_y, From(2));
        _rig.Scheduler.RunUntilIdle();
        Assert.That(_order, Is.EqualTo(new[] { 1, 1, 2, 1, 1, 2, 2, 1 }));
    }

    [Test]
    public void A_high_priority_frame_overtakes_the_frames_a_low_one_has_waiting()
    {
        _rig.Set(_x, "priority", "low");
        for (int i = 0; i < 5; i++) _rig.Send(_x, From(1));
        _rig.Scheduler.RunUntil(100 * Time.Microsecond);
        _rig.Send(_y, From(2));
        _rig.Scheduler.RunUntilIdle();
        Assert.That(_order, Is.EqualTo(new[] { 1, 1, 2, 1, 1, 1 }));
    }

    [Test]
    public void An_idle_wire_keeps_frames_in_order_and_on_time()
    {
        _rig.Set(_y, "priority", "low");
        _rig.Send(_x, From(1));
        _rig.Send(_y, From(2));
        _rig.Scheduler.RunUntilIdle();
        Assert.That(_bySender.Keys.Order(), Is.EqualTo(new[] { 1, 2 }));
        Assert.That(_rig.Scheduler.Now, Is.EqualTo(2 * 1000 * 8 * Time.Second / WireBps), "two 1000-byte frames at 100 Mbit/s");
    }
}
