using SmartOS.Kernel;
using SmartOS.Kernel.Wire;

namespace SmartOS.Vnic.Tests;

/// <summary>
/// The VNIC-to-VNIC path allocates nothing per frame once the pool is warm (MacLayer.cs rule 6,
/// issue 17): measured over many frames with the thread's allocation counter, and the switch's
/// per-port forwarding cache never outlives a change of the switch's ports.
/// </summary>
public class DatapathAllocationTests
{
    private sealed class Sink : IMacReceiver
    {
        public long Frames;
        public void Receive(MacClient client, Packet packet)
        {
            Frames++;
            packet.Free();
        }
    }

    private static MacClient Vnic(MacLayer mac, string name, string over, ulong address)
    {
        var s = mac.CreateVnic(name, over, new MacLayer.MacRequest(MacAddressType.Fixed, new MacAddress(address)), 0, true, out var link);
        Assert.That(s.IsOk, Is.True, s.ToString());
        return link!.OpenClient("test")!;
    }

    private static void Send(PacketPool pool, MacClient from, MacAddress to, int frames)
    {
        for (int i = 0; i < frames; i++)
        {
            var p = pool.Rent(64)!;
            EthernetView.WriteHeader(p.Data, to, from.MacAddress, 0x88B5);
            from.Transmit(p);
        }
    }

    [Test]
    public void Vnic_to_vnic_frames_allocate_nothing_in_steady_state()
    {
        var pool = new PacketPool();
        var mac = new MacLayer("test", new Scheduler(), pool, new KstatRegistry(), new HostRandom(1));
        mac.CreateEtherstub("stub0", temporary: true);
        var a = Vnic(mac, "a0", "stub0", 0x020000000001);
        var b = Vnic(mac, "b0", "stub0", 0x020000000002);
        var sink = new Sink();
        b.Receiver = sink;
        Send(pool, a, b.MacAddress, 10_000); // warm-up: the pool, the switch's arrays, the JIT

        const int frames = 200_000;
        long before = GC.GetAllocatedBytesForCurrentThread();
        Send(pool, a, b.MacAddress, frames);
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;

        using (Assert.EnterMultipleScope())
        {
            Assert.That(allocated, Is.Zero, "bytes allocated over the measured frames");
            Assert.That(sink.Frames, Is.EqualTo(10_000 + frames));
            Assert.That(b.Link.Stats.IPackets, Is.EqualTo(10_000 + frames));
            Assert.That(pool.Outstanding, Is.Zero);
        }
    }

    [Test]
    public void A_port_added_after_a_stream_began_gets_its_frames_at_once()
    {
        var pool = new PacketPool();
        var mac = new MacLayer("test", new Scheduler(), pool, new KstatRegistry(), new HostRandom(1));
        mac.CreateEtherstub("stub0", temporary: true);
        var a = Vnic(mac, "a0", "stub0", 0x020000000001);
        // Frames to an address no port has yet: dropped (and remembered as such by a's cache).
        var later = new MacAddress(0x020000000009);
        Send(pool, a, later, 3);
        Assert.That(((Etherstub)mac.Find("stub0")!).Stats.DropUnknownDst, Is.EqualTo(3));

        var c = Vnic(mac, "c0", "stub0", later.Value);
        var sink = new Sink();
        c.Receiver = sink;
        Send(pool, a, later, 2);
        Assert.That(sink.Frames, Is.EqualTo(2));

        // And once the port is gone, its frames are dropped again rather than sent to a stale port.
        c.Close();
        Assert.That(mac.Delete("c0", LinkClass.Vnic, temporary: true).IsOk, Is.True);
        Send(pool, a, later, 1);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(sink.Frames, Is.EqualTo(2));
            Assert.That(((Etherstub)mac.Find("stub0")!).Stats.DropUnknownDst, Is.EqualTo(4));
        }
    }
}
