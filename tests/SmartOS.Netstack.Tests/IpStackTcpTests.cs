using SmartOS.Kernel;
using SmartOS.Kernel.Wire;
using SmartOS.Netstack.Tcp;
using SmartOS.Vnic;

namespace SmartOS.Netstack.Tests;

/// <summary>TCP through whole IP stacks: Ethernet, ARP, IPv4 and the MAC layer underneath.</summary>
public class IpStackTcpTests
{
    private static byte[] Pattern(int length, ulong seed)
    {
        var data = new byte[length];
        new HostRandom(seed).NextBytes(data);
        return data;
    }

    /// <summary>Connects b to a listener on a, sends <paramref name="data"/> from b and returns what a read.</summary>
    private static byte[] Transfer(World w, IpStack a, IpStack b, byte[] data, long limit = 600 * Time.Second)
    {
        var listener = new TcpListener(a.Tcp);
        listener.Listen(IpAddress.AnyV4, 5001);
        var server = w.Loop.Start(async () =>
        {
            var s = await listener.AcceptAsync();
            var received = new MemoryStream();
            var buffer = new byte[16 * 1024];
            int n;
            while ((n = await s.ReceiveAsync(buffer)) > 0) received.Write(buffer, 0, n);
            s.Close();
            listener.Close();
            return received.ToArray();
        });
        var client = w.Loop.Start(async () =>
        {
            var s = new TcpSocket(b.Tcp);
            await s.ConnectAsync(a.FindAddressObject("net0/v4")!.Address, 5001);
            for (int off = 0; off < data.Length; off += 10_000)
                await s.SendAsync(data.AsMemory(off, Math.Min(10_000, data.Length - off)));
            s.Close();
            return true;
        });
        w.Scheduler.RunUntil(() => server.IsCompleted && client.IsCompleted, w.Scheduler.Now + limit);
        Assert.That(server.IsCompletedSuccessfully && client.IsCompletedSuccessfully, Is.True, "the transfer did not finish");
        return server.Result;
    }

    [Test]
    public void Every_stack_registers_its_tcp_and_counts_it_in_kstats()
    {
        var w = new World();
        w.Stub("stub0");
        var a = w.Stack("stub0", "10.0.0.1/24");
        using (Assert.EnterMultipleScope())
        {
            Assert.That(a.GetTransport(IpProtocol.Tcp), Is.SameAs(a.Tcp));
            Assert.That(w.Kstats.All.Any(k => k.Module == "tcp" && k.Name == "tcp"), Is.True);
        }
    }

    [Test]
    public void Tcp_between_two_stacks_on_an_etherstub_delivers_every_byte_in_order()
    {
        var w = new World();
        w.Stub("stub0");
        var a = w.Stack("stub0", "10.0.0.1/24");
        var b = w.Stack("stub0", "10.0.0.2/24");
        var data = Pattern(2_000_000, 1);
        Assert.That(Transfer(w, a, b, data), Is.EqualTo(data));
        Assert.That(a.Tcp.Stats.PassiveOpens + b.Tcp.Stats.ActiveOpens, Is.EqualTo(2));
    }

    [Test]
    public void Tcp_acks_up_to_eight_segments_toward_an_on_link_peer_and_every_second_through_a_router()
    {
        var (w, h1, router, h2) = RoutingTests.TwoNetworks();
        using (Assert.EnterMultipleScope())
        {
            Assert.That(h1.OnLink(World.Ip("10.0.1.1")), Is.True, "on the link of a connected route");
            Assert.That(h1.OnLink(World.Ip("10.0.1.2")), Is.True, "its own address");
            Assert.That(h1.OnLink(World.Ip("10.0.2.2")), Is.False, "through the router");
        }
        var data = Pattern(1_000_000, 2);
        double AcksPerSegment(IpStack receiver)
        {
            long acks = receiver.Tcp.Stats.OutSegs, segments = h1.Tcp.Stats.OutSegs;
            Assert.That(Transfer(w, receiver, h1, data), Is.EqualTo(data));
            return (double)(receiver.Tcp.Stats.OutSegs - acks) / (h1.Tcp.Stats.OutSegs - segments);
        }
        double onLink = AcksPerSegment(router), routed = AcksPerSegment(h2);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(onLink, Is.InRange(0.1, 0.2), "about one ACK for eight segments on the link");
            Assert.That(routed, Is.InRange(0.45, 0.6), "about one ACK for two segments through a router");
        }
    }

    /// <summary>Captures TCP frames on a link and checks each one's checksum as a receiver off the
    /// host would.</summary>
    private sealed class ChecksumChecker : ICaptureTap
    {
        public int Tcp, Bad;

        public void Capture(Datalink link, ReadOnlySpan<byte> frame, long time, TapDirection direction)
        {
            if (!EthernetView.TryCreate(frame.ToArray(), out var eth) || eth.EtherType != EtherType.Ipv4) return;
            var packet = frame[EthernetView.HeaderLength..].ToArray();
            if (!Ipv4View.TryCreate(packet, out var ip) || ip.Protocol != IpProtocol.Tcp) return;
            Tcp++;
            var segment = packet.AsSpan(ip.HeaderLength, ip.TotalLength - ip.HeaderLength);
            if (TcpChecksum.Compute(IpAddress.V4(ip.SourceRaw), IpAddress.V4(ip.DestinationRaw), segment) != 0) Bad++;
        }
    }

    /// <summary>Stacks of one host leave TCP checksums to the MAC layer (offload): the receiver has
    /// nothing to verify, yet a capture on the link sees every checksum filled in.</summary>
    [Test]
    public void Tcp_checksums_are_offloaded_between_stacks_of_one_host_and_filled_in_for_captures()
    {
        var w = new World();
        w.Stub("stub0");
        var a = w.Stack("stub0", "10.0.0.1/24");
        var b = w.Stack("stub0", "10.0.0.2/24");
        var checker = new ChecksumChecker();
        ((Datalink)w.Mac.Find("vnic0")!).AddTap(checker);
        var data = Pattern(300_000, 4);

        Assert.That(Transfer(w, a, b, data), Is.EqualTo(data));
        using (Assert.EnterMultipleScope())
        {
            Assert.That(a.ChecksumOffload, Is.True);
            Assert.That(checker.Tcp, Is.GreaterThan(200));
            Assert.That(checker.Bad, Is.Zero);
            Assert.That(a.Tcp.Stats.ChecksumErrors + b.Tcp.Stats.ChecksumErrors, Is.Zero);
        }
    }

    [Test]
    public void Tcp_over_ipv6_between_two_stacks_delivers_every_byte()
    {
        var w = new World();
        w.Stub("stub0");
        var a = w.Stack("stub0", null);
        var b = w.Stack("stub0", null);
        w.AddAddress(a, "net0/v6", "fd00::1/64");
        w.AddAddress(b, "net0/v6", "fd00::2/64");
        var listener = new TcpListener(a.Tcp);
        listener.Listen(IpAddress.AnyV6, 80);
        var data = Pattern(300_000, 6);
        var server = w.Loop.Start(async () =>
        {
            var s = await listener.AcceptAsync();
            var received = new MemoryStream();
            var buffer = new byte[8192];
            int n;
            while ((n = await s.ReceiveAsync(buffer)) > 0) received.Write(buffer, 0, n);
            s.Close();
            return (received.ToArray(), s.RemoteAddress);
        });
        w.Loop.Start(async () =>
        {
            var s = new TcpSocket(b.Tcp);
            await s.ConnectAsync(World.Ip("fd00::1"), 80);
            await s.SendAsync(data);
            s.Close();
            return true;
        });
        w.Scheduler.RunUntil(() => server.IsCompleted, w.Scheduler.Now + 10 * Time.Second);
        Assert.That(server.IsCompletedSuccessfully, Is.True);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(server.Result.Item1, Is.EqualTo(data));
            Assert.That(server.Result.RemoteAddress, Is.EqualTo(World.Ip("fd00::2")));
        }
    }

    [Test]
    public void Netstat_an_lists_the_listener_and_the_established_connection()
    {
        var w = new World();
        w.Stub("stub0");
        var a = w.Stack("stub0", "10.0.0.1/24");
        var b = w.Stack("stub0", "10.0.0.2/24");
        var listener = new TcpListener(a.Tcp);
        listener.Listen(IpAddress.AnyV4, 22);
        var accept = w.Loop.Start(async () => await listener.AcceptAsync());
        var connect = w.Loop.Start(async () =>
        {
            var s = new TcpSocket(b.Tcp);
            await s.ConnectAsync(World.Ip("10.0.0.1"), 22, 40000);
            return s;
        });
        w.Scheduler.RunUntil(() => accept.IsCompleted && connect.IsCompleted, w.Scheduler.Now + Time.Second);
        var lines = new List<TransportSocketInfo>();
        a.ListSockets(lines);
        Assert.That(lines, Has.Count.EqualTo(2));
        using (Assert.EnterMultipleScope())
        {
            Assert.That(lines[0].State, Is.EqualTo("LISTEN"));
            Assert.That(lines[0].Local, Is.EqualTo(new IpEndpoint(IpAddress.AnyV4, 22)));
            Assert.That(lines[1].State, Is.EqualTo("ESTABLISHED"));
            Assert.That(lines[1].Remote, Is.EqualTo(new IpEndpoint(World.Ip("10.0.0.2"), 40000)));
            Assert.That(lines[1].ReceiveWindow, Is.EqualTo(a.Tcp.Config.ReceiveBufferSize));
        }
    }

    [TestCase(0.0, 0.0, 0.0, TestName = "Transfer_over_a_clean_wire_between_two_mac_layers_arrives_intact")]
    [TestCase(0.02, 0.0, 0.0, TestName = "Transfer_over_a_wire_losing_two_percent_arrives_intact_and_in_order")]
    [TestCase(0.0, 0.05, 0.0, TestName = "Transfer_over_a_wire_reordering_five_percent_arrives_intact_and_in_order")]
    [TestCase(0.0, 0.0, 0.05, TestName = "Transfer_over_a_wire_duplicating_five_percent_arrives_intact_and_in_order")]
    [TestCase(0.01, 0.02, 0.02, TestName = "Transfer_over_a_wire_with_loss_reordering_and_duplication_arrives_intact_and_in_order")]
    public void Transfer_over_an_impaired_wire(double loss, double reorder, double duplicate)
    {
        var w = new World();
        var mac2 = new MacLayer("h2", w.Scheduler, w.Pool, w.Kstats, new HostRandom(9));
        var p1 = w.Mac.AddPhys("e1000g0");
        var p2 = mac2.AddPhys("e1000g0");
        var wire = new Vnic.Wire(w.Scheduler, new HostRandom(5), p1, p2, 100_000_000, 2 * Time.Millisecond, loss)
        {
            Reorder = reorder, Duplicate = duplicate, ReorderDelayNs = 3 * Time.Millisecond,
        };
        var a = w.Stack("e1000g0", "10.0.0.1/24");
        var b = w.Stack("e1000g0", "10.0.0.2/24", mac2);
        var data = Pattern(1_000_000, 2);
        Assert.That(Transfer(w, a, b, data), Is.EqualTo(data));
        Assert.That(wire.FramesCarried, Is.GreaterThan(700));
    }

    [Test]
    public void Throughput_recovers_after_a_burst_of_loss()
    {
        var w = new World();
        var mac2 = new MacLayer("h2", w.Scheduler, w.Pool, w.Kstats, new HostRandom(9));
        var p1 = w.Mac.AddPhys("e1000g0");
        var p2 = mac2.AddPhys("e1000g0");
        _ = new Vnic.Wire(w.Scheduler, new HostRandom(5), p1, p2, 100_000_000, 1 * Time.Millisecond, 0.0);
        var a = w.Stack("e1000g0", "10.0.0.1/24");
        var b = w.Stack("e1000g0", "10.0.0.2/24", mac2);
        // Lose 20% of what a hears for 200 ms, then nothing; measure goodput after.
        var random = new HostRandom(11);
        long start = w.Scheduler.Now;
        var lossy = new LossyReceiver(a, random, () => w.Scheduler.Now - start < 200 * Time.Millisecond ? 0.2 : 0);
        a.FindInterface("net0")!.Client!.Receiver = lossy;
        var data = Pattern(3_000_000, 3);
        Assert.That(Transfer(w, a, b, data), Is.EqualTo(data));
        double seconds = (w.Scheduler.Now - start) / (double)Time.Second;
        // 24 Mbit at 100 Mbit/s is 0.24 s on a clean wire; recovery must keep it well under a second more.
        Assert.That(seconds, Is.LessThan(1.5));
    }

    private sealed class LossyReceiver(IpStack stack, HostRandom random, Func<double> loss) : IMacReceiver
    {
        public void Receive(MacClient client, Packet packet)
        {
            if (random.NextDouble() < loss()) { packet.Free(); return; }
            stack.Receive(client, packet);
        }
    }

    [Test]
    public void Shutdown_resets_the_peer_and_fails_pending_calls()
    {
        var w = new World();
        w.Stub("stub0");
        var a = w.Stack("stub0", "10.0.0.1/24");
        var b = w.Stack("stub0", "10.0.0.2/24");
        var listener = new TcpListener(a.Tcp);
        listener.Listen(IpAddress.AnyV4, 80);
        var accept = w.Loop.Start(async () => await listener.AcceptAsync());
        var client = new TcpSocket(b.Tcp);
        var connect = w.Loop.Start(async () => { await client.ConnectAsync(World.Ip("10.0.0.1"), 80); return true; });
        w.Scheduler.RunUntil(() => accept.IsCompleted && connect.IsCompleted, w.Scheduler.Now + Time.Second);
        var serverRead = w.Loop.Start(async () =>
        {
            try { await accept.Result.ReceiveAsync(new byte[10]); return TcpError.None; }
            catch (TcpException e) { return e.Error; }
        });
        var clientRead = w.Loop.Start(async () =>
        {
            try { await client.ReceiveAsync(new byte[10]); return TcpError.None; }
            catch (TcpException e) { return e.Error; }
        });
        w.Run(10 * Time.Millisecond);
        a.Shutdown();
        w.Scheduler.RunUntil(() => serverRead.IsCompleted && clientRead.IsCompleted, w.Scheduler.Now + Time.Second);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(serverRead.Result, Is.EqualTo(TcpError.ECONNABORTED));
            Assert.That(clientRead.Result, Is.EqualTo(TcpError.ECONNRESET));
            Assert.That(a.Tcp.ConnectionCount, Is.Zero);
        }
    }

    [Test]
    public void Syn_flood_from_many_spoofed_sources_keeps_the_stack_within_its_half_open_bound()
    {
        var w = new World();
        w.Stub("stub0");
        var a = w.Stack("stub0", "10.0.0.1/24");
        var b = w.Stack("stub0", "10.0.0.2/24");
        var listener = new TcpListener(a.Tcp);
        listener.Listen(IpAddress.AnyV4, 80);
        var attacker = w.Vnic("stub0");
        var target = a.FindInterface("net0")!.MacAddress;
        var random = new HostRandom(77);
        long rentedBefore = w.Pool.Outstanding;
        for (int i = 0; i < 20_000; i++)
        {
            var syn = new TcpRepr { SourcePort = (ushort)(1024 + random.Next(60000)), DestinationPort = 80, Seq = random.NextUInt32(), Flags = TcpFlags.Syn, Window = 65535 };
            var segment = new byte[syn.HeaderLength];
            syn.TryEmit(segment, out _);
            var src = IpAddress.V4(0x0B000000u | (uint)random.Next(1 << 24));
            TcpView.TryCreate(segment, out var view);
            view.FillChecksum(src, World.Ip("10.0.0.1"));
            var frame = Frames.Ipv4(target, attacker.MacAddress, src.ToString(), "10.0.0.1", IpProtocol.Tcp, segment);
            var p = w.Pool.Rent(frame.Length)!;
            frame.CopyTo(p.Data);
            attacker.Transmit(p);
            if (i % 100 == 0) w.Run(Time.Millisecond);
        }
        w.Run(Time.Second);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(listener.HalfOpenCount, Is.LessThanOrEqualTo(a.Tcp.Config.MaxHalfOpen));
            Assert.That(a.Tcp.ConnectionCount, Is.LessThanOrEqualTo(a.Tcp.Config.MaxHalfOpen));
            Assert.That(a.Tcp.Stats.HalfOpenDrops, Is.GreaterThan(19_000));
            Assert.That(w.Pool.Outstanding - rentedBefore, Is.LessThan(1000), "packets held by the stack");
        }
        // A real client still gets through after the flood.
        var data = Pattern(10_000, 4);
        listener.Close();
        Assert.That(Transfer(w, a, b, data), Is.EqualTo(data));
    }
}
