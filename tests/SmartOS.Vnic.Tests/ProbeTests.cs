using SmartOS.Kernel;
using SmartOS.Kernel.Trace;
using SmartOS.Kernel.Wire;

namespace SmartOS.Vnic.Tests;

/// <summary>The mac provider's probes (LinkProbes.cs) and what they cost (kernel/Trace/Probe.cs rule 1).</summary>
public class ProbeTests
{
    private sealed class Sink : IMacReceiver
    {
        public long Received;

        public void Receive(MacClient client, Packet packet)
        {
            Received++;
            packet.Free();
        }
    }

    private sealed class Counter : IProbeConsumer
    {
        public readonly List<string> Seen = [];
        public long Count;
        public bool Record;

        public void Fired(Probe probe, in ProbeArgs args)
        {
            Count++;
            if (Record) Seen.Add($"{probe.FullName} {args.A0.Str} {args.A1.Int}");
        }
    }

    private static (Rig Rig, MacClient A, MacClient B) TwoVnics()
    {
        var rig = new Rig();
        rig.Mac.CreateEtherstub("stub0", temporary: true);
        var a = rig.Vnic("a0", "stub0", 1, temporary: true).OpenClient("test")!;
        var b = rig.Vnic("b0", "stub0", 2, temporary: true).OpenClient("test")!;
        a.Receiver = new Sink();
        b.Receiver = new Sink();
        return (rig, a, b);
    }

    private static void Send(Rig rig, MacClient from, MacClient to, int n)
    {
        for (int i = 0; i < n; i++)
        {
            var p = rig.Pool.Rent(64)!;
            EthernetView.WriteHeader(p.Data, to.MacAddress, from.MacAddress, 0x88B5);
            from.Transmit(p);
        }
        rig.Scheduler.RunUntilIdle();
    }

    [Test]
    public void Every_datalink_has_transmit_receive_the_four_protection_and_the_three_shaper_probes_named_by_its_link()
    {
        var (rig, _, _) = TwoVnics();
        var names = rig.Mac.Probes.All.Where(p => p.Module == "a0").Select(p => $"{p.Provider}:{p.Module}:{p.Function}:{p.Name}");
        Assert.That(names, Is.EqualTo(new[]
        {
            "mac:a0:mac_tx:transmit", "mac:a0:mac_rx:receive", "mac:a0:mac_protect_check_one:mac-nospoof-fail",
            "mac:a0:mac_protect_check_one:ip-nospoof-fail", "mac:a0:mac_protect_check_one:dhcp-nospoof-fail", "mac:a0:mac_protect_check_one:restricted-fail",
            "mac:a0:mac_bw:enqueue", "mac:a0:mac_bw:dequeue", "mac:a0:mac_bw:drop",
        }));
        Assert.That(rig.Mac.Probes.All.Take(3).Select(p => p.FullName), Is.EqualTo(new[] { "dtrace:::BEGIN", "dtrace:::END", "dtrace:::ERROR" }));
    }

    [Test]
    public void Deleting_a_link_removes_its_probes()
    {
        var (rig, _, _) = TwoVnics();
        var link = rig.Mac.Find("b0")!;
        ((PortLink)link).Client!.Close();
        Assert.That(rig.Mac.Delete("b0", LinkClass.Vnic, temporary: true).Code, Is.EqualTo(DladmStatus.Ok));
        Assert.That(rig.Mac.Probes.All.Any(p => p.Module == "b0"), Is.False);
    }

    [Test]
    public void An_enabled_probe_fires_once_per_frame_with_the_link_and_the_frame_length()
    {
        var (rig, a, b) = TwoVnics();
        var counter = new Counter { Record = true };
        var tx = rig.Mac.Probes.All.Single(p => p.FullName == "mac:a0:mac_tx:transmit");
        var rx = rig.Mac.Probes.All.Single(p => p.FullName == "mac:b0:mac_rx:receive");
        tx.Attach(counter);
        rx.Attach(counter);
        Send(rig, a, b, 2);
        Assert.That(counter.Seen, Is.EqualTo(new[]
        {
            "mac:a0:mac_tx:transmit a0 64", "mac:b0:mac_rx:receive b0 64", "mac:a0:mac_tx:transmit a0 64", "mac:b0:mac_rx:receive b0 64",
        }));
        tx.Detach(counter);
        Assert.That(tx.Enabled, Is.False);
        Assert.That(rx.Enabled, Is.True);
    }

    [Test]
    public void A_protection_drop_fires_the_probe_of_its_reason()
    {
        var (rig, a, b) = TwoVnics();
        rig.Set(rig.Mac.Find("a0")!, "protection", "mac-nospoof", temporary: true);
        var counter = new Counter { Record = true };
        foreach (var p in rig.Mac.Probes.All.Where(p => p.Module == "a0" && p.Function == "mac_protect_check_one")) p.Attach(counter);
        var frame = rig.Pool.Rent(64)!;
        EthernetView.WriteHeader(frame.Data, b.MacAddress, Rig.MacOf(9), 0x88B5);
        a.Transmit(frame);
        rig.Scheduler.RunUntilIdle();
        Assert.That(counter.Seen, Is.EqualTo(new[] { "mac:a0:mac_protect_check_one:mac-nospoof-fail a0 64" }));
    }

    [Test]
    public void The_datapath_allocates_nothing_with_its_probes_disabled()
    {
        var (rig, a, b) = TwoVnics();
        Send(rig, a, b, 1000); // warm the pool and the JIT
        long before = GC.GetAllocatedBytesForCurrentThread();
        Send(rig, a, b, 10_000);
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        using (Assert.EnterMultipleScope())
        {
            Assert.That(allocated, Is.Zero);
            // Nothing allocated proves nothing unless the frames went through.
            Assert.That(((Sink)b.Receiver!).Received, Is.EqualTo(11_000));
        }
    }

    [Test]
    public void Firing_an_enabled_probe_allocates_nothing_either()
    {
        var (rig, a, b) = TwoVnics();
        var counter = new Counter();
        foreach (var p in rig.Mac.Probes.All.Where(p => p.Provider == "mac")) p.Attach(counter);
        Send(rig, a, b, 1000);
        long before = GC.GetAllocatedBytesForCurrentThread();
        Send(rig, a, b, 10_000);
        Assert.That(GC.GetAllocatedBytesForCurrentThread() - before, Is.Zero);
        Assert.That(counter.Count, Is.EqualTo(2 * 11_000));
    }
}
