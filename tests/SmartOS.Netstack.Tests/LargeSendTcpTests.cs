using SmartOS.Kernel;
using SmartOS.Kernel.Wire;
using SmartOS.Netstack.Tcp;
using SmartOS.Vnic;

namespace SmartOS.Netstack.Tests;

/// <summary>
/// TCP's large send and large receive (TcpProtocol.cs rule 8, MacLayer.cs rule 9), between two
/// hosts whose NICs' devices segment, as two TAP NICs with offloads would be joined by Linux.
/// </summary>
public class LargeSendTcpTests
{
    /// <summary>The far side of two NICs whose devices take large sends (IPhysBackend.OffloadsSegmentation)
    /// and hand what they get to the other NIC after a delay: whole, with its MSS, as a TAP gives a
    /// GSO frame from Linux (<see cref="Whole"/>), or cut into MSS frames as a NIC would put them on
    /// a wire.</summary>
    private sealed class GsoCable
    {
        public bool Whole = true;
        /// <summary>Large frames arrive as Linux hands a TAP its GSO frames: the TCP checksum field
        /// holding only the pseudo-header sum (CHECKSUM_PARTIAL, virtio_net_hdr NEEDS_CSUM).</summary>
        public bool Partial;
        /// <summary>With <see cref="Partial"/>, whether the device says so (TapDevice.cs rule 6: the
        /// frame is handed over with its checksum pending); without, the stack must verify it.</summary>
        public bool SaysPartial = true;
        public long LargeFrames, Frames;
        private readonly Scheduler _scheduler;

        public GsoCable(Scheduler scheduler, PhysLink a, PhysLink b)
        {
            _scheduler = scheduler;
            var ea = new End(this);
            var eb = new End(this);
            ea.Peer = eb; eb.Peer = ea;
            ea.Phys = a; eb.Phys = b;
            a.Attach(ea);
            b.Attach(eb);
        }

        private sealed class End(GsoCable cable) : IPhysBackend
        {
            public End? Peer;
            public PhysLink? Phys;
            public long SpeedBps => 10_000_000_000;
            public bool OffloadsChecksum => true;
            public bool OffloadsSegmentation => true;
            public void Detach(PhysLink phys) { }

            public void Transmit(PhysLink from, Packet frame)
            {
                frame.FinishChecksum();
                var bytes = frame.Data.ToArray();
                ushort mss = frame.LsoMss;
                frame.Free();
                var to = Peer!;
                cable.Frames++;
                if (mss != 0) cable.LargeFrames++;
                if (mss != 0 && !cable.Whole)
                {
                    Assert.That(TcpSegmentation.TryCreate(bytes, mss, out var seg), Is.True);
                    var parts = new List<byte[]>();
                    for (int i = 0; i < seg.Count; i++)
                    {
                        var part = new byte[seg.SegmentLength(i)];
                        seg.Write(i, part);
                        parts.Add(part);
                    }
                    cable._scheduler.After(10 * Time.Microsecond, () => { foreach (var part in parts) to.Phys!.ReceiveFromBackend(to, part); });
                    return;
                }
                if (mss != 0 && cable.Partial)
                {
                    // The field gets the pseudo-header sum, as Linux leaves it (and as TryCreateGso writes it).
                    Assert.That(VirtioNetHeader.TryCreateGso(bytes, mss, out var gso), Is.True);
                    int pending = cable.SaysPartial ? gso.ChecksumStart : 0;
                    cable._scheduler.After(10 * Time.Microsecond, () => to.Phys!.ReceiveFromBackend(to, bytes, mss, pending));
                    return;
                }
                cable._scheduler.After(10 * Time.Microsecond, () => to.Phys!.ReceiveFromBackend(to, bytes, mss));
            }
        }
    }

    private static (World W, IpStack A, IpStack B, GsoCable Cable, PhysLink Nic2) Hosts()
    {
        var w = new World();
        var mac2 = new MacLayer("h2", w.Scheduler, w.Pool, w.Kstats, new HostRandom(9));
        var p1 = w.Mac.AddPhys("e1000g0");
        var p2 = mac2.AddPhys("e1000g0");
        var cable = new GsoCable(w.Scheduler, p1, p2);
        var a = w.Stack("e1000g0", "10.0.0.1/24");
        var b = w.Stack("e1000g0", "10.0.0.2/24", mac2);
        return (w, a, b, cable, p2);
    }

    /// <summary>Sends <paramref name="data"/> from <paramref name="from"/> to a listener on
    /// <paramref name="to"/> and returns what it read.</summary>
    private static byte[] Transfer(World w, IpStack to, IpStack from, byte[] data)
    {
        var received = TryTransfer(w, to, from, data, 600 * Time.Second);
        Assert.That(received, Is.Not.Null, "the transfer did not finish");
        return received!;
    }

    /// <summary>As <see cref="Transfer"/>; null when it has not finished within <paramref name="limit"/>
    /// of virtual time.</summary>
    private static byte[]? TryTransfer(World w, IpStack to, IpStack from, byte[] data, long limit)
    {
        var listener = new TcpListener(to.Tcp) { ReceiveBufferSize = 1 << 20 };
        listener.Listen(IpAddress.AnyV4, 5001);
        var server = w.Loop.Start(async () =>
        {
            var s = await listener.AcceptAsync();
            var received = new MemoryStream();
            var buffer = new byte[64 * 1024];
            int n;
            while ((n = await s.ReceiveAsync(buffer)) > 0) received.Write(buffer, 0, n);
            s.Close();
            listener.Close();
            return received.ToArray();
        });
        var client = w.Loop.Start(async () =>
        {
            var s = new TcpSocket(from.Tcp) { SendBufferSize = 1 << 20 };
            await s.ConnectAsync(to.FindAddressObject("net0/v4")!.Address, 5001);
            await s.SendAsync(data);
            s.Close();
            return true;
        });
        w.Scheduler.RunUntil(() => server.IsCompleted && client.IsCompleted, w.Scheduler.Now + limit);
        return server.IsCompletedSuccessfully && client.IsCompletedSuccessfully ? server.Result : null;
    }

    private static byte[] Pattern(int length)
    {
        var data = new byte[length];
        new HostRandom(4).NextBytes(data);
        return data;
    }

    [Test]
    public void Tcp_sends_large_segments_out_of_a_nic_that_segments_and_they_arrive_whole_and_intact()
    {
        var (w, a, b, cable, nic2) = Hosts();
        var data = Pattern(4_000_000);
        long outSegs = b.Tcp.Stats.OutSegs;

        Assert.That(Transfer(w, a, b, data), Is.EqualTo(data));

        long sent = b.Tcp.Stats.OutSegs - outSegs;
        using (Assert.EnterMultipleScope())
        {
            Assert.That(cable.LargeFrames, Is.GreaterThan(30), "large sends went to the device");
            Assert.That(nic2.Stats.LsoOut, Is.EqualTo(cable.LargeFrames));
            Assert.That(sent, Is.LessThan(data.Length / 1448 / 4), "far fewer sends than MSS segments");
            Assert.That(nic2.Stats.LsoSoft, Is.Zero);
            Assert.That(w.Pool.Outstanding, Is.LessThan(64), "no packets leaked");
        }
    }

    [Test]
    public void Tcp_large_sends_cut_by_the_device_arrive_intact()
    {
        var (w, a, b, cable, _) = Hosts();
        cable.Whole = false;
        var data = Pattern(2_000_000);
        Assert.That(Transfer(w, a, b, data), Is.EqualTo(data));
        Assert.That(cable.LargeFrames, Is.Positive);
    }

    [Test]
    public void A_large_receive_whose_checksum_the_device_left_pending_is_taken_unverified_and_intact()
    {
        var (w, a, b, cable, _) = Hosts();
        cable.Partial = true;
        var data = Pattern(2_000_000);
        long bad = a.Tcp.Stats.ChecksumErrors;

        using (Assert.EnterMultipleScope())
        {
            Assert.That(Transfer(w, a, b, data), Is.EqualTo(data));
            Assert.That(cable.LargeFrames, Is.GreaterThan(10));
            Assert.That(a.Tcp.Stats.ChecksumErrors - bad, Is.Zero, "the pending checksums were not verified");
        }
    }

    [Test]
    public void A_large_receive_with_only_the_pseudo_header_sum_is_refused_unless_the_device_says_it_is_pending()
    {
        var (w, a, b, cable, _) = Hosts();
        cable.Partial = true;
        cable.SaysPartial = false;
        long bad = a.Tcp.Stats.ChecksumErrors;

        var received = TryTransfer(w, a, b, Pattern(1_000_000), 5 * Time.Second);

        using (Assert.EnterMultipleScope())
        {
            Assert.That(received, Is.Null, "a frame whose checksum is wrong and not said to be pending never reaches the socket");
            Assert.That(a.Tcp.Stats.ChecksumErrors - bad, Is.Positive, "the stack verified it and counted tcpInChecksumErrs");
        }
    }

    [Test]
    public void A_large_receive_left_pending_is_given_real_checksums_when_cut_for_an_etherstub()
    {
        var (w, received, cable) = RouterTransfer(partial: true, Pattern(1_000_000));
        using (Assert.EnterMultipleScope())
        {
            Assert.That(received, Is.EqualTo(Pattern(1_000_000)));
            Assert.That(cable.LargeFrames, Is.Positive);
            Assert.That(w.Kstats.Read("link", "vnic1", "lso_soft"), Is.Positive, "cut onto the etherstub, each piece checksummed");
        }
    }

    /// <summary>b (h2) -> large sends -> router stack on h1's NIC -> forwarded onto an etherstub -> c;
    /// returns what c read.</summary>
    private static (World W, byte[] Received, GsoCable Cable) RouterTransfer(bool partial, byte[] data)
    {
        var w = new World();
        var mac2 = new MacLayer("h2", w.Scheduler, w.Pool, w.Kstats, new HostRandom(9));
        var p1 = w.Mac.AddPhys("e1000g0");
        var p2 = mac2.AddPhys("e1000g0");
        var cable = new GsoCable(w.Scheduler, p1, p2) { Partial = partial };
        w.Stub("stub0");
        var router = w.Stack("e1000g0", "10.0.0.1/24");
        Assert.That(router.CreateInterface("net1", w.Vnic("stub0")).IsOk, Is.True);
        w.AddAddress(router, "net1/v4", "10.0.1.1/24");
        router.ForwardingV4 = true;
        var b = w.Stack("e1000g0", "10.0.0.2/24", mac2);
        var c = w.Stack("stub0", "10.0.1.2/24");
        Assert.That(b.AddRoute(IpAddress.V4(0x0A000100), 24, IpAddress.V4(0x0A000001)), Is.EqualTo(NetError.None));
        Assert.That(c.AddRoute(IpAddress.V4(0x0A000000), 24, IpAddress.V4(0x0A000101)), Is.EqualTo(NetError.None));
        return (w, Transfer(w, c, b, data), cable);
    }

    [Test]
    public void A_large_receive_for_a_zone_behind_a_router_zone_is_cut_for_the_next_link()
    {
        // b (h2) -> large sends -> router stack on h1's NIC -> forwarded onto an etherstub -> c.
        var w = new World();
        var mac2 = new MacLayer("h2", w.Scheduler, w.Pool, w.Kstats, new HostRandom(9));
        var p1 = w.Mac.AddPhys("e1000g0");
        var p2 = mac2.AddPhys("e1000g0");
        _ = new GsoCable(w.Scheduler, p1, p2);
        w.Stub("stub0");
        var router = w.Stack("e1000g0", "10.0.0.1/24");
        Assert.That(router.CreateInterface("net1", w.Vnic("stub0")).IsOk, Is.True);
        w.AddAddress(router, "net1/v4", "10.0.1.1/24");
        router.ForwardingV4 = true;
        var b = w.Stack("e1000g0", "10.0.0.2/24", mac2);
        var c = w.Stack("stub0", "10.0.1.2/24");
        Assert.That(b.AddRoute(IpAddress.V4(0x0A000100), 24, IpAddress.V4(0x0A000001)), Is.EqualTo(NetError.None));
        Assert.That(c.AddRoute(IpAddress.V4(0x0A000000), 24, IpAddress.V4(0x0A000101)), Is.EqualTo(NetError.None));
        var data = Pattern(1_000_000);

        var received = Transfer(w, c, b, data);

        using (Assert.EnterMultipleScope())
        {
            Assert.That(received, Is.EqualTo(data));
            Assert.That(w.Kstats.Read("link", "vnic1", "lso_soft"), Is.Positive, "the router's large frames were cut onto the etherstub");
            Assert.That(w.Kstats.Read("link", "vnic1", "drop_mtu"), Is.Zero);
        }
    }
}
