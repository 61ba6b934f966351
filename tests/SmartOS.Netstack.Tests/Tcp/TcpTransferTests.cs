using System.Net;
using PacketDotNet;
using SmartOS.Kernel;
using SmartOS.Kernel.Wire;
using SmartOS.Netstack.Tcp;

namespace SmartOS.Netstack.Tests.Tcp;

/// <summary>Two stacks over a scheduler-driven wire, through the socket API.</summary>
public class TcpTransferTests
{
    private static (TcpSocket Client, TcpSocket Server) Connect(TcpWorld w, ushort port = 80)
    {
        var listener = new TcpListener(w.TcpA);
        listener.Listen(w.A.Address, port);
        var accept = w.Start(async () => await listener.AcceptAsync());
        var connect = w.Start(async () =>
        {
            var s = new TcpSocket(w.TcpB);
            await s.ConnectAsync(w.A.Address, port);
            return s;
        });
        w.RunUntil(Task.WhenAll(accept, connect), 10 * Time.Second);
        Assert.That(accept.IsCompletedSuccessfully && connect.IsCompletedSuccessfully, Is.True, "connection not established");
        return (connect.Result, accept.Result);
    }

    private static byte[] Pattern(int length, ulong seed)
    {
        var data = new byte[length];
        new HostRandom(seed).NextBytes(data);
        return data;
    }

    private static async Task<int> SendAll(TcpSocket s, byte[] data, int chunk)
    {
        for (int off = 0; off < data.Length; off += chunk)
            await s.SendAsync(data.AsMemory(off, Math.Min(chunk, data.Length - off)));
        s.Shutdown();
        return data.Length;
    }

    private static async Task<byte[]> ReceiveAll(TcpSocket s, Action<long>? progress = null)
    {
        var received = new MemoryStream();
        var buffer = new byte[32 * 1024];
        while (true)
        {
            int n = await s.ReceiveAsync(buffer);
            if (n == 0) return received.ToArray();
            received.Write(buffer, 0, n);
            progress?.Invoke(received.Length);
        }
    }

    /// <summary>In-order bytes for a reader that waits go straight into its buffer (ReceiveRing.TryPlace)
    /// while they fit after what it already holds, and into the ring otherwise; a read takes both, in
    /// order. Buffers smaller than, equal to and between segments, with loss and reordering so that
    /// out-of-order data is held in the ring meanwhile.</summary>
    [TestCase(0.0, 0.0)]
    [TestCase(0.02, 0.05)]
    public void A_waiting_readers_bytes_arrive_in_order_whatever_its_buffer_sizes(double loss, double reorder)
    {
        var w = new TcpWorld();
        w.Wire.Loss = loss;
        w.Wire.Reorder = reorder;
        var (client, server) = Connect(w);
        var data = Pattern(300_000, 7);
        var send = w.Start(() => SendAll(client, data, 10_000));
        int[] sizes = [2000, 1, 4096, 1448, 3000, 700, 65536];
        var receive = w.Start(async () =>
        {
            var received = new MemoryStream();
            for (int i = 0; ; i++)
            {
                var buffer = new byte[sizes[i % sizes.Length]];
                int n = await server.ReceiveAsync(buffer);
                if (n == 0) return received.ToArray();
                received.Write(buffer, 0, n);
            }
        });
        w.RunUntil(Task.WhenAll(send, receive), 600 * Time.Second);
        Assert.That(receive.IsCompletedSuccessfully, Is.True, "the transfer did not finish");
        Assert.That(receive.Result, Is.EqualTo(data));
    }

    [Test]
    public void Request_and_response_then_both_sides_close_cleanly()
    {
        var w = new TcpWorld();
        var (client, server) = Connect(w);
        var serverSide = w.Start(async () =>
        {
            var request = await ReceiveAll(server);
            await server.SendAsync(request.Reverse().ToArray());
            server.Close();
            return request.Length;
        });
        var clientSide = w.Start(async () =>
        {
            await client.SendAsync("hello, zone"u8.ToArray());
            client.Shutdown();
            var reply = await ReceiveAll(client);
            client.Close();
            return System.Text.Encoding.ASCII.GetString(reply);
        });
        w.RunUntil(Task.WhenAll(serverSide, clientSide), 10 * Time.Second);
        Assert.That(clientSide.Result, Is.EqualTo("enoz ,olleh"));
        w.Scheduler.RunFor(2 * w.TcpA.Config.Msl + Time.Second);
        Assert.That(w.TcpA.ConnectionCount + w.TcpB.ConnectionCount, Is.Zero, "TIME_WAIT expired on the active closer");
    }

    [Test]
    public void Send_waits_while_the_peer_does_not_read_and_resumes_when_it_does()
    {
        var w = new TcpWorld();
        var listener = new TcpListener(w.TcpA) { ReceiveBufferSize = 8 * 1024 };
        listener.Listen(w.A.Address, 80);
        var accept = w.Start(async () => await listener.AcceptAsync());
        var client = new TcpSocket(w.TcpB) { SendBufferSize = 8 * 1024 };
        var connect = w.Start(async () => { await client.ConnectAsync(w.A.Address, 80); return true; });
        w.RunUntil(Task.WhenAll(accept, connect), Time.Second);
        var server = accept.Result;

        var data = Pattern(100_000, 4);
        var send = w.Start(async () => await client.SendAsync(data));
        w.Scheduler.RunFor(10 * Time.Second);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(send.IsCompleted, Is.False, "backpressure: both buffers are full");
            Assert.That(server.Available, Is.EqualTo(8 * 1024));
            Assert.That(client.SendQueued, Is.EqualTo(8 * 1024));
            Assert.That(w.TcpB.Stats.PersistProbes, Is.GreaterThan(0), "the sender probes the zero window");
        }
        var receive = w.Start(async () =>
        {
            var got = new byte[data.Length];
            int total = 0;
            while (total < got.Length) total += await server.ReceiveAsync(got.AsMemory(total));
            return got;
        });
        w.RunUntil(Task.WhenAll(send, receive), 60 * Time.Second);
        Assert.That(send.Result, Is.EqualTo(data.Length));
        Assert.That(receive.Result, Is.EqualTo(data));
    }

    [Test]
    public void Socket_continuations_run_on_the_loop_context_as_their_own_events()
    {
        var w = new TcpWorld();
        var (client, server) = Connect(w);
        SynchronizationContext? seen = null;
        bool insideSegmentProcessing = true;
        var read = w.Start(async () =>
        {
            int n = await server.ReceiveAsync(new byte[100]);
            seen = SynchronizationContext.Current;
            insideSegmentProcessing = w.Wire.Receiving;
            return n;
        });
        w.Start(async () => await client.SendAsync(new byte[10]));
        w.RunUntil(read, Time.Second);
        Assert.That(read.Result, Is.EqualTo(10));
        Assert.That(seen, Is.SameAs(w.TcpA.Context));
        Assert.That(insideSegmentProcessing, Is.False, "the continuation ran inside segment processing");
    }

    [Test]
    public void Port_unreachable_fails_a_connect_and_fragmentation_needed_lowers_the_mss()
    {
        var w = new TcpWorld();
        w.Wire.Loss = 1.0;
        var socket = new TcpSocket(w.TcpB);
        var connect = w.Start(async () => { await socket.ConnectAsync(w.A.Address, 80); return true; });
        var quoted = new byte[8];
        quoted[0] = (byte)(socket.LocalPort >> 8); quoted[1] = (byte)socket.LocalPort;
        quoted[3] = 80;
        w.TcpB.ReceiveError(IcmpErrorKind.PortUnreachable, 0, w.B.Address, w.A.Address, quoted);
        w.Scheduler.RunFor(1);
        Assert.That(connect.IsFaulted, Is.True);
        Assert.That(((TcpException)connect.Exception!.InnerException!).Error, Is.EqualTo(TcpError.ECONNREFUSED));

        var w2 = new TcpWorld(new TcpConfig { Timestamps = false });
        var (client, _) = Connect(w2);
        Assert.That(client.Connection!.EffectiveMss, Is.EqualTo(1460));
        quoted[0] = (byte)(client.LocalPort >> 8); quoted[1] = (byte)client.LocalPort;
        w2.TcpB.ReceiveError(IcmpErrorKind.FragmentationNeeded, 1280, w2.B.Address, w2.A.Address, quoted);
        Assert.That(client.Connection!.EffectiveMss, Is.EqualTo(1280 - 40));
    }

    [Test]
    public void Connect_to_a_port_nobody_listens_on_is_refused()
    {
        var w = new TcpWorld();
        var connect = w.Start(async () => await new TcpSocket(w.TcpB).ConnectAsync(w.A.Address, 9));
        w.RunUntil(connect, 5 * Time.Second);
        Assert.That(connect.IsFaulted, Is.True);
        Assert.That(((TcpException)connect.Exception!.InnerException!).Error, Is.EqualTo(TcpError.ECONNREFUSED));
    }

    [Test]
    public void Connect_over_a_dead_wire_times_out()
    {
        var w = new TcpWorld(new TcpConfig { SynRetries = 2 });
        w.Wire.Loss = 1.0;
        var connect = w.Start(async () => await new TcpSocket(w.TcpB).ConnectAsync(w.A.Address, 80));
        w.RunUntil(connect, 60 * Time.Second);
        Assert.That(connect.IsFaulted, Is.True);
        Assert.That(((TcpException)connect.Exception!.InnerException!).Error, Is.EqualTo(TcpError.ETIMEDOUT));
        Assert.That(w.Scheduler.Now, Is.EqualTo(7 * Time.Second), "1 + 2 + 4 seconds of backoff");
    }

    [Test]
    public void Listening_twice_on_a_port_is_eaddrinuse()
    {
        var w = new TcpWorld();
        new TcpListener(w.TcpA).Listen(IpAddress.AnyV4, 80);
        var again = new TcpListener(w.TcpA);
        Assert.That(() => again.Listen(w.A.Address, 80), Throws.TypeOf<TcpException>().With.Property(nameof(TcpException.Error)).EqualTo(TcpError.EADDRINUSE));
    }

    [Test]
    public void Abort_resets_the_peer()
    {
        var w = new TcpWorld();
        var (client, server) = Connect(w);
        var read = w.Start(async () => await server.ReceiveAsync(new byte[10]));
        client.Abort();
        w.RunUntil(read, Time.Second);
        Assert.That(read.IsFaulted, Is.True);
        Assert.That(((TcpException)read.Exception!.InnerException!).Error, Is.EqualTo(TcpError.ECONNRESET));
        Assert.That(w.TcpA.ConnectionCount + w.TcpB.ConnectionCount, Is.Zero);
    }

    [Test]
    public void Abort_all_resets_every_peer_and_fails_pending_calls()
    {
        var account = new TcpMemoryAccount();
        var w = new TcpWorld(memoryA: account);
        var (client, server) = Connect(w);
        var local = w.Start(async () => await server.ReceiveAsync(new byte[10]));
        var remote = w.Start(async () => await client.ReceiveAsync(new byte[10]));
        w.TcpA.AbortAll();
        w.RunUntil(Task.WhenAll(local, remote).ContinueWith(_ => { }, TaskScheduler.Default), Time.Second);
        Assert.That(((TcpException)local.Exception!.InnerException!).Error, Is.EqualTo(TcpError.ECONNABORTED));
        Assert.That(((TcpException)remote.Exception!.InnerException!).Error, Is.EqualTo(TcpError.ECONNRESET));
        Assert.That(w.TcpA.Connections, Is.Empty, "no listener, no connection");
        server.Close();
        Assert.That(account.Charged, Is.Zero);
    }

    [Test]
    public void Simultaneous_open_over_the_wire_connects_both_sides()
    {
        var w = new TcpWorld(new TcpConfig { Msl = Time.Second });
        var a = new TcpSocket(w.TcpA);
        var b = new TcpSocket(w.TcpB);
        var ca = w.Start(async () => { await a.ConnectAsync(w.B.Address, 2222, localPort: 1111); return true; });
        var cb = w.Start(async () => { await b.ConnectAsync(w.A.Address, 1111, localPort: 2222); return true; });
        w.RunUntil(Task.WhenAll(ca, cb), 10 * Time.Second);
        Assert.That(a.State, Is.EqualTo(TcpState.Established));
        Assert.That(b.State, Is.EqualTo(TcpState.Established));

        // Simultaneous close: both FINs cross, both sides pass CLOSING into TIME_WAIT.
        a.Shutdown();
        b.Shutdown();
        w.Scheduler.RunFor(w.Wire.Delay + 1);
        Assert.That(a.State, Is.EqualTo(TcpState.Closing));
        Assert.That(b.State, Is.EqualTo(TcpState.Closing));
        w.Scheduler.RunFor(w.Wire.Delay);
        Assert.That(a.State, Is.EqualTo(TcpState.TimeWait));
        Assert.That(b.State, Is.EqualTo(TcpState.TimeWait));
        w.Scheduler.RunFor(2 * Time.Second);
        Assert.That(w.TcpA.ConnectionCount + w.TcpB.ConnectionCount, Is.Zero);
    }

    [Test]
    public void Netstat_snapshot_lists_listener_and_connection_with_queues()
    {
        var w = new TcpWorld();
        var (client, server) = Connect(w, 8080);
        var send = w.Start(async () => await client.SendAsync(new byte[3000]));
        w.RunUntil(send, Time.Second);
        w.Scheduler.RunFor(Time.Second);
        var rows = w.TcpA.Connections;
        Assert.That(rows, Has.Count.EqualTo(2));
        using (Assert.EnterMultipleScope())
        {
            Assert.That(rows[0].State, Is.EqualTo(TcpState.Listen));
            Assert.That(rows[0].LocalPort, Is.EqualTo(8080));
            Assert.That(rows[1].State, Is.EqualTo(TcpState.Established));
            Assert.That(rows[1].LocalPort, Is.EqualTo(8080));
            Assert.That(rows[1].RemoteAddress, Is.EqualTo(w.B.Address));
            Assert.That(rows[1].ReceiveQueue, Is.EqualTo(3000));
        }
        Assert.That(w.TcpB.Connections[0].SendQueue, Is.Zero, "everything was acknowledged");
        _ = server;
    }

    [Test]
    public void Memory_account_refuses_a_connection_beyond_its_cap_with_enobufs()
    {
        var account = new TcpMemoryAccount(limit: 100_000);
        var w = new TcpWorld(memoryA: account);
        var connect = w.Start(async () => await new TcpSocket(w.TcpA).ConnectAsync(w.B.Address, 80));
        w.RunUntil(connect, Time.Second);
        Assert.That(connect.IsFaulted, Is.True);
        Assert.That(((TcpException)connect.Exception!.InnerException!).Error, Is.EqualTo(TcpError.ENOBUFS));
        Assert.That(account.Charged, Is.Zero, "a refused connection leaves nothing charged");
    }

    [Test]
    public void Memory_charged_for_a_connection_is_released_when_it_ends()
    {
        var account = new TcpMemoryAccount();
        var w = new TcpWorld(new TcpConfig { Msl = Time.Second }, memoryA: account);
        var (client, server) = Connect(w);
        Assert.That(account.Charged, Is.GreaterThan(0));
        server.Close();
        client.Close();
        w.Scheduler.RunFor(5 * Time.Second);
        Assert.That(w.TcpA.ConnectionCount, Is.Zero);
        Assert.That(account.Charged, Is.Zero);
    }

    [TestCase(false, TcpCongestionControl.NewReno, TestName = "Megabytes_cross_a_lossy_reordering_duplicating_wire_intact_and_in_order")]
    [TestCase(true, TcpCongestionControl.NewReno, TestName = "Megabytes_cross_a_bad_wire_intact_over_ipv6")]
    [TestCase(false, TcpCongestionControl.Cubic, TestName = "Megabytes_cross_a_bad_wire_intact_with_cubic")]
    public void Bulk_transfer_over_a_bad_wire(bool v6, TcpCongestionControl algorithm)
    {
        var w = new TcpWorld(new TcpConfig { CongestionControl = algorithm }, seed: 42, v6: v6);
        w.Wire.Delay = 5 * Time.Millisecond;
        w.Wire.Loss = 0.01;
        w.Wire.Reorder = 0.02;
        w.Wire.Duplicate = 0.01;
        var (client, server) = Connect(w);
        var data = Pattern(4 << 20, 7);
        var send = w.Start(async () => await SendAll(client, data, 50_000));
        var receive = w.Start(async () => await ReceiveAll(server));
        w.RunUntil(receive, 300 * Time.Second);
        Assert.That(receive.IsCompletedSuccessfully, Is.True, $"transfer did not finish by {Time.FormatSeconds(w.Scheduler.Now)} s");
        Assert.That(receive.Result.Length, Is.EqualTo(data.Length));
        Assert.That(receive.Result.AsSpan().SequenceEqual(data), Is.True, "bytes differ");
        Assert.That(w.TcpB.Stats.RetransSegs, Is.GreaterThan(0));
        Assert.That(w.TcpA.Stats.OutOfOrderSegs, Is.GreaterThan(0));
        Assert.That(send.IsCompletedSuccessfully, Is.True);
    }

    [TestCase(TcpCongestionControl.NewReno, TestName = "Throughput_recovers_after_a_burst_of_loss")]
    [TestCase(TcpCongestionControl.Cubic, TestName = "Throughput_recovers_after_a_burst_of_loss_with_cubic")]
    public void Throughput_recovery(TcpCongestionControl algorithm)
    {
        var w = new TcpWorld(new TcpConfig { CongestionControl = algorithm }, seed: 3);
        w.Wire.Delay = 5 * Time.Millisecond;
        var (client, server) = Connect(w);
        long t0 = w.Scheduler.Now;
        w.Wire.Blackout = t => t >= t0 + 1 * Time.Second && t < t0 + 1300 * Time.Millisecond;
        var samples = new SortedList<long, long>();
        var chunk = Pattern(1 << 20, 9);
        w.Start(async () =>
        {
            while (true) await client.SendAsync(chunk);
        });
        var receive = w.Start(async () =>
        {
            var buffer = new byte[64 * 1024];
            long total = 0;
            while (true)
            {
                int n = await server.ReceiveAsync(buffer);
                if (n == 0) return total;
                total += n;
                samples[w.Scheduler.Now - t0] = total;
            }
        });
        w.Scheduler.RunFor(3500 * Time.Millisecond);

        long At(long t)
        {
            long v = 0;
            foreach (var kv in samples) { if (kv.Key > t) break; v = kv.Value; }
            return v;
        }
        long before = At(1000 * Time.Millisecond) - At(500 * Time.Millisecond);
        long during = At(1300 * Time.Millisecond) - At(1050 * Time.Millisecond);
        long after = At(3500 * Time.Millisecond) - At(3000 * Time.Millisecond);
        TestContext.Out.WriteLine($"bytes per 500 ms: before {before}, after {after}; timeouts {w.TcpB.Stats.Timeouts}");
        Assert.That(before, Is.GreaterThan(1_000_000));
        Assert.That(during, Is.Zero);
        Assert.That(after, Is.GreaterThanOrEqualTo(before * 9 / 10), "throughput came back after the loss");
        Assert.That(receive.IsFaulted, Is.False);
    }

    [Test]
    public void Steady_state_bulk_transfer_allocates_nothing_per_segment()
    {
        var w = new TcpWorld(seed: 11);
        w.Wire.Delay = 2 * Time.Millisecond;
        var (client, server) = Connect(w);
        var chunk = Pattern(256 * 1024, 3);
        w.Start(async () =>
        {
            while (true) await client.SendAsync(chunk);
        });
        long received = 0;
        w.Start(async () =>
        {
            var buffer = new byte[64 * 1024];
            while (true) received += await server.ReceiveAsync(buffer);
        });
        w.Scheduler.RunFor(500 * Time.Millisecond);    // warm up: pools, heaps and windows reach their size
        long segmentsBefore = w.TcpB.Stats.OutSegs + w.TcpA.Stats.OutSegs;
        long receivedBefore = received;
        long allocatedBefore = GC.GetAllocatedBytesForCurrentThread();
        w.Scheduler.RunFor(500 * Time.Millisecond);
        long allocated = GC.GetAllocatedBytesForCurrentThread() - allocatedBefore;
        long segments = w.TcpB.Stats.OutSegs + w.TcpA.Stats.OutSegs - segmentsBefore;
        TestContext.Out.WriteLine($"{segments} segments, {received - receivedBefore} bytes, {allocated} bytes allocated");
        Assert.That(received - receivedBefore, Is.GreaterThan(1_000_000));
        Assert.That(allocated, Is.LessThan(segments / 10), "allocations per segment");
    }

    [Test]
    public void Syn_flood_cannot_grow_half_open_connections_past_the_limit()
    {
        var config = new TcpConfig { MaxHalfOpen = 64 };
        var account = new TcpMemoryAccount();
        var w = new TcpWorld(config, memoryA: account);
        var listener = new TcpListener(w.TcpA);
        listener.Listen(w.A.Address, 80);
        var random = new HostRandom(5);
        int maxHalfOpen = 0;
        for (int i = 0; i < 5_000; i++)
        {
            var src = IpAddress.V4(0xC6120000 | random.NextUInt32() >> 16);
            var repr = new TcpRepr { SourcePort = (ushort)(1024 + random.Next(60000)), DestinationPort = 80, Seq = random.NextUInt32(), Flags = TcpFlags.Syn, Window = 1024 };
            repr.Options.Mss = 1460;
            var bytes = new byte[repr.HeaderLength];
            repr.TryEmit(bytes, out _);
            TcpView.TryCreate(bytes, out var v);
            v.FillChecksum(src, w.A.Address);
            w.TcpA.Receive(SmartOS.Kernel.Packet.Unpooled(bytes), src, w.A.Address);
            maxHalfOpen = Math.Max(maxHalfOpen, listener.HalfOpenCount);
        }
        Assert.That(maxHalfOpen, Is.EqualTo(64));
        Assert.That(w.TcpA.ConnectionCount, Is.LessThanOrEqualTo(64));
        Assert.That(account.Charged, Is.LessThanOrEqualTo(64L * 1024), "a half-open connection holds no buffers");
        Assert.That(w.TcpA.Stats.HalfOpenDrops, Is.GreaterThanOrEqualTo(5_000 - 64));

        // A real client still gets in while the flood's half-opens linger.
        var accept = w.Start(async () => await listener.AcceptAsync());
        var connect = w.Start(async () => await new TcpSocket(w.TcpB).ConnectAsync(w.A.Address, 80));
        w.RunUntil(Task.WhenAll(accept, connect), 5 * Time.Second);
        Assert.That(accept.IsCompletedSuccessfully, Is.True);
    }

    [Test]
    public void Listen_backlog_bounds_connections_waiting_for_accept()
    {
        var w = new TcpWorld();
        var listener = new TcpListener(w.TcpA);
        listener.Listen(w.A.Address, 80, backlog: 2);
        var connects = new List<Task>();
        for (int i = 0; i < 5; i++)
            connects.Add(w.Start(async () => await new TcpSocket(w.TcpB).ConnectAsync(w.A.Address, 80)));
        w.Scheduler.RunFor(500 * Time.Millisecond);
        // The clients' final ACKs beyond the backlog are ignored: those connections stay half-open.
        Assert.That(listener.QueuedCount, Is.EqualTo(2));
        Assert.That(listener.HalfOpenCount, Is.EqualTo(3));
        Assert.That(w.TcpA.Stats.ListenDrops, Is.GreaterThanOrEqualTo(3));
        var late = w.Start(async () => await new TcpSocket(w.TcpB).ConnectAsync(w.A.Address, 80));
        w.Scheduler.RunFor(100 * Time.Millisecond);
        Assert.That(late.IsCompleted, Is.False, "a SYN is dropped while the accept queue is full");
        connects.Add(late);

        // Accepting makes room; the waiting clients get in on their SYN retransmissions.
        var accepted = w.Start(async () =>
        {
            for (int i = 0; i < 6; i++) (await listener.AcceptAsync()).Close();
            return true;
        });
        w.RunUntil(Task.WhenAll(connects.Append(accepted)), 30 * Time.Second);
        Assert.That(accepted.IsCompletedSuccessfully, Is.True);
        Assert.That(connects.All(t => t.IsCompletedSuccessfully), Is.True);
    }

    [Test]
    public void Emitted_segments_agree_with_packetdotnet()
    {
        var w = new TcpWorld();
        var captured = new List<(byte[] Bytes, IpAddress Src, IpAddress Dst)>();
        var original = w.B.Output!;
        w.B.Output = (p, s, d) => { captured.Add((p.Data.ToArray(), s, d)); original(p, s, d); };
        var (client, server) = Connect(w);
        var send = w.Start(async () => await SendAll(client, Pattern(20_000, 1), 7000));
        var receive = w.Start(async () => await ReceiveAll(server));
        w.RunUntil(receive, 10 * Time.Second);
        Assert.That(captured, Has.Count.GreaterThan(10));
        foreach (var (bytes, src, dst) in captured)
        {
            var ip = new IPv4Packet(src.ToIPAddress(), dst.ToIPAddress()) { Protocol = PacketDotNet.ProtocolType.Tcp };
            var tcp = new TcpPacket(new PacketDotNet.Utils.ByteArraySegment(bytes));
            ip.PayloadPacket = tcp;
            TcpView.TryCreate(bytes, out var view);
            TcpRepr.TryParse(view, out var repr);
            using (Assert.EnterMultipleScope())
            {
                Assert.That(tcp.SourcePort, Is.EqualTo(repr.SourcePort));
                Assert.That(tcp.DestinationPort, Is.EqualTo(repr.DestinationPort));
                Assert.That(tcp.SequenceNumber, Is.EqualTo(repr.Seq));
                Assert.That(tcp.Synchronize, Is.EqualTo((repr.Flags & TcpFlags.Syn) != 0));
                Assert.That(tcp.Finished, Is.EqualTo((repr.Flags & TcpFlags.Fin) != 0));
                Assert.That(tcp.Acknowledgment, Is.EqualTo((repr.Flags & TcpFlags.Ack) != 0));
                if (tcp.Acknowledgment) Assert.That(tcp.AcknowledgmentNumber, Is.EqualTo(repr.Ack));
                Assert.That(tcp.WindowSize, Is.EqualTo(repr.Window));
                Assert.That(tcp.DataOffset * 4, Is.EqualTo(repr.HeaderLength));
                Assert.That(tcp.PayloadData?.Length ?? 0, Is.EqualTo(view.Payload.Length));
                Assert.That(tcp.CalculateTcpChecksum(), Is.EqualTo(tcp.Checksum), "checksum");
                if ((repr.Flags & TcpFlags.Syn) != 0)
                {
                    var mss = tcp.OptionsCollection.OfType<PacketDotNet.Tcp.MaximumSegmentSizeOption>().Single();
                    Assert.That(mss.Value, Is.EqualTo(repr.Options.Mss));
                }
            }
        }
        Assert.That(send.IsCompletedSuccessfully, Is.True);
    }
}
