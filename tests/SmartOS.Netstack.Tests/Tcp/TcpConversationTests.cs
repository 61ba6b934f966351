using SmartOS.Kernel;
using SmartOS.Kernel.Wire;
using SmartOS.Netstack.Tcp;

namespace SmartOS.Netstack.Tests.Tcp;

/// <summary>Segment-level tests: the test plays the peer, one segment at a time.</summary>
public class TcpConversationTests
{
    private const uint PeerIss = 1000;
    private static readonly TcpConfig s_noTimestamps = new() { Timestamps = false };

    /// <summary>Listens on port 80, runs a passive handshake and returns the accepted socket and our ISS.</summary>
    private static (TcpSocket Socket, uint Iss) EstablishPassive(Conversation c, TcpOptions synOptions, ushort window = 65535, ushort finalWindow = 65535, int? receiveBuffer = null)
    {
        var listener = new TcpListener(c.Tcp);
        if (receiveBuffer is int size) listener.ReceiveBufferSize = size;
        listener.Listen(IpAddress.AnyV4, 80, 4);
        var accept = c.Start(async () => await listener.AcceptAsync());
        c.Send(80, PeerIss, 0, TcpFlags.Syn, window, options: synOptions);
        var synAck = c.Expect("SYN-ACK");
        c.Send(80, PeerIss + 1, synAck.Seq + 1, TcpFlags.Ack, finalWindow);
        Assert.That(accept.IsCompletedSuccessfully, Is.True, "accept did not complete after the handshake");
        return (accept.Result, synAck.Seq);
    }

    [Test]
    public void Active_open_sends_syn_with_options_and_acks_the_syn_ack()
    {
        var c = new Conversation();
        var connect = c.Start(async () =>
        {
            var s = new TcpSocket(c.Tcp);
            await s.ConnectAsync(Conversation.Peer, 80);
            return s;
        });
        var syn = c.Expect("SYN");
        using (Assert.EnterMultipleScope())
        {
            Assert.That(syn.Flags, Is.EqualTo(TcpFlags.Syn));
            Assert.That(syn.Repr.DestinationPort, Is.EqualTo(80));
            Assert.That(syn.Repr.SourcePort, Is.InRange(32768, 65535));
            Assert.That(syn.Repr.Options.Mss, Is.EqualTo(1460));
            Assert.That(syn.Repr.Options.HasWindowScale, Is.True);
            Assert.That(syn.Repr.Options.WindowScale, Is.EqualTo(2), "128 KiB receive buffer needs shift 2");
            Assert.That(syn.Repr.Options.SackPermitted, Is.True);
            Assert.That(syn.Repr.Options.HasTimestamp, Is.True);
            Assert.That(syn.Repr.Options.TsEcr, Is.Zero);
        }

        var options = Conversation.SynOptions(mss: 1400, scale: 7, tsVal: 55);
        options.TsEcr = syn.Repr.Options.TsVal;
        c.Send(syn.Repr.SourcePort, 5000, syn.Seq + 1, TcpFlags.Syn | TcpFlags.Ack, 1000, options: options, peerPort: 80);
        var ack = c.Expect("ACK of the SYN-ACK");
        using (Assert.EnterMultipleScope())
        {
            Assert.That(ack.Flags, Is.EqualTo(TcpFlags.Ack));
            Assert.That(ack.Seq, Is.EqualTo(syn.Seq + 1));
            Assert.That(ack.Ack, Is.EqualTo(5001u));
            Assert.That(ack.Repr.Options.TsEcr, Is.EqualTo(55u));
            Assert.That(ack.Repr.Window, Is.EqualTo(128 * 1024 >> 2));
            Assert.That(connect.IsCompletedSuccessfully, Is.True);
            var conn = connect.Result.Connection!;
            Assert.That(connect.Result.State, Is.EqualTo(TcpState.Established));
            Assert.That(conn.EffectiveMss, Is.EqualTo(1400 - 12), "peer MSS less the timestamp option");
            Assert.That(conn.SendScale, Is.EqualTo(7));
            Assert.That(conn.SackOn && conn.TimestampsOn, Is.True);
        }
    }

    [Test]
    public void Passive_open_offers_only_the_options_the_syn_carried()
    {
        var c = new Conversation();
        c.Ip.Mtu = 1400;
        var listener = new TcpListener(c.Tcp);
        listener.Listen(IpAddress.AnyV4, 80, 4);
        c.Send(80, PeerIss, 0, TcpFlags.Syn, 8192, options: new TcpOptions { Mss = 1200 });
        var synAck = c.Expect("SYN-ACK");
        using (Assert.EnterMultipleScope())
        {
            Assert.That(synAck.Flags, Is.EqualTo(TcpFlags.Syn | TcpFlags.Ack));
            Assert.That(synAck.Ack, Is.EqualTo(PeerIss + 1));
            Assert.That(synAck.Repr.Options.Mss, Is.EqualTo(1400 - 40), "MSS comes from the path MTU");
            Assert.That(synAck.Repr.Options.HasWindowScale, Is.False);
            Assert.That(synAck.Repr.Options.SackPermitted, Is.False);
            Assert.That(synAck.Repr.Options.HasTimestamp, Is.False);
            Assert.That(listener.HalfOpenCount, Is.EqualTo(1));
        }
        c.Send(80, PeerIss + 1, synAck.Seq + 1, TcpFlags.Ack, 8192);
        var accept = c.Start(async () => await listener.AcceptAsync());
        Assert.That(accept.IsCompletedSuccessfully, Is.True);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(accept.Result.RemotePort, Is.EqualTo(Conversation.PeerPort));
            Assert.That(accept.Result.Connection!.EffectiveMss, Is.EqualTo(1200));
            Assert.That(accept.Result.Connection!.SendScale, Is.Zero);
            Assert.That(listener.HalfOpenCount, Is.Zero);
        }
    }

    [Test]
    public void Closed_port_answers_syn_with_rst_ack_and_ack_with_rst_but_never_answers_rst()
    {
        var c = new Conversation();
        c.Send(81, 7000, 0, TcpFlags.Syn, payload: [1, 2, 3]);
        var r1 = c.Expect("RST for a SYN");
        using (Assert.EnterMultipleScope())
        {
            Assert.That(r1.Flags, Is.EqualTo(TcpFlags.Rst | TcpFlags.Ack));
            Assert.That(r1.Seq, Is.Zero);
            Assert.That(r1.Ack, Is.EqualTo(7000u + 3 + 1));
        }
        c.Send(81, 7000, 12345, TcpFlags.Ack);
        var r2 = c.Expect("RST for an ACK");
        using (Assert.EnterMultipleScope())
        {
            Assert.That(r2.Flags, Is.EqualTo(TcpFlags.Rst));
            Assert.That(r2.Seq, Is.EqualTo(12345u));
        }
        c.Send(81, 7000, 0, TcpFlags.Rst);
        c.ExpectNothing("a RST is never answered");
        Assert.That(c.Tcp.Stats.NoPort, Is.EqualTo(3));
    }

    [Test]
    public void Listener_answers_a_stray_ack_with_rst()
    {
        var c = new Conversation();
        new TcpListener(c.Tcp).Listen(IpAddress.AnyV4, 80);
        c.Send(80, 1, 999, TcpFlags.Ack);
        var rst = c.Expect("RST");
        Assert.That(rst.Flags, Is.EqualTo(TcpFlags.Rst));
        Assert.That(rst.Seq, Is.EqualTo(999u));
    }

    [Test]
    public void Simultaneous_open_goes_through_syn_received_to_established()
    {
        var c = new Conversation(s_noTimestamps);
        var connect = c.Start(async () =>
        {
            var s = new TcpSocket(c.Tcp);
            await s.ConnectAsync(Conversation.Peer, Conversation.PeerPort, localPort: 5555);
            return s;
        });
        var syn = c.Expect("our SYN");
        c.Send(5555, 9000, 0, TcpFlags.Syn, options: Conversation.SynOptions());
        var synAck = c.Expect("SYN-ACK answering the crossing SYN");
        using (Assert.EnterMultipleScope())
        {
            Assert.That(synAck.Flags, Is.EqualTo(TcpFlags.Syn | TcpFlags.Ack));
            Assert.That(synAck.Seq, Is.EqualTo(syn.Seq), "the same ISS");
            Assert.That(synAck.Ack, Is.EqualTo(9001u));
            Assert.That(connect.IsCompleted, Is.False);
            Assert.That(c.Tcp.Connections[0].State, Is.EqualTo(TcpState.SynReceived));
        }
        c.Send(5555, 9000, syn.Seq + 1, TcpFlags.Syn | TcpFlags.Ack, options: Conversation.SynOptions());
        Assert.That(connect.IsCompletedSuccessfully, Is.True);
        Assert.That(connect.Result.State, Is.EqualTo(TcpState.Established));

        c.Send(5555, 9001, syn.Seq + 1, TcpFlags.Ack | TcpFlags.Psh, payload: [1, 2, 3, 4]);
        var buffer = new byte[16];
        var read = c.Start(async () => await connect.Result.ReceiveAsync(buffer));
        Assert.That(read.Result, Is.EqualTo(4));
    }

    [Test]
    public void Active_close_passes_fin_wait_and_holds_time_wait_for_two_msl()
    {
        var c = new Conversation(new TcpConfig { Timestamps = false, Msl = 1 * Time.Second });
        var (socket, iss) = EstablishPassive(c, Conversation.SynOptions());
        socket.Close();
        var fin = c.Expect("FIN");
        Assert.That(fin.Flags, Is.EqualTo(TcpFlags.Fin | TcpFlags.Ack));
        Assert.That(fin.Seq, Is.EqualTo(iss + 1));
        Assert.That(c.Tcp.Connections[^1].State, Is.EqualTo(TcpState.FinWait1));

        c.Send(80, PeerIss + 1, iss + 2, TcpFlags.Ack);
        Assert.That(c.Tcp.Connections[^1].State, Is.EqualTo(TcpState.FinWait2));
        c.ExpectNothing("an ACK of our FIN needs no answer");

        c.Send(80, PeerIss + 1, iss + 2, TcpFlags.Fin | TcpFlags.Ack);
        var ack = c.Expect("ACK of the peer's FIN");
        Assert.That(ack.Ack, Is.EqualTo(PeerIss + 2));
        Assert.That(c.Tcp.Connections[^1].State, Is.EqualTo(TcpState.TimeWait));

        c.Run(1500 * Time.Millisecond);
        c.Send(80, PeerIss + 1, iss + 2, TcpFlags.Fin | TcpFlags.Ack);
        var again = c.Expect("ACK of the retransmitted FIN");
        Assert.That(again.Ack, Is.EqualTo(PeerIss + 2));

        c.Run(2 * Time.Second - Time.Millisecond);
        Assert.That(c.Tcp.Connections[^1].State, Is.EqualTo(TcpState.TimeWait), "the retransmitted FIN restarted 2*MSL");
        c.Run(2 * Time.Millisecond);
        Assert.That(c.Tcp.ConnectionCount, Is.Zero);
        Assert.That(c.Tcp.Stats.TimeWaitExpired, Is.EqualTo(1));
    }

    [Test]
    public void New_syn_beyond_the_old_sequence_space_ends_time_wait_and_an_old_one_does_not()
    {
        var c = new Conversation(new TcpConfig { Timestamps = false, Msl = 30 * Time.Second });
        var (socket, iss) = EstablishPassive(c, Conversation.SynOptions());
        socket.Close();
        c.Expect("FIN");
        c.Send(80, PeerIss + 1, iss + 2, TcpFlags.Fin | TcpFlags.Ack);
        c.Expect("ACK of the peer's FIN");
        Assert.That(c.Tcp.Connections[^1].State, Is.EqualTo(TcpState.TimeWait));

        c.Send(80, unchecked(PeerIss - 5000), 0, TcpFlags.Syn, options: Conversation.SynOptions());
        var challenge = c.Expect("an old SYN gets an ACK of the old connection");
        Assert.That(challenge.Flags, Is.EqualTo(TcpFlags.Ack));
        Assert.That(challenge.Ack, Is.EqualTo(PeerIss + 2));

        c.Send(80, PeerIss + 100_000, 0, TcpFlags.Syn, options: Conversation.SynOptions());
        var synAck = c.Expect("SYN-ACK of the new incarnation");
        using (Assert.EnterMultipleScope())
        {
            Assert.That(synAck.Flags, Is.EqualTo(TcpFlags.Syn | TcpFlags.Ack));
            Assert.That(synAck.Ack, Is.EqualTo(PeerIss + 100_001));
            Assert.That(c.Tcp.Connections[^1].State, Is.EqualTo(TcpState.SynReceived));
        }
    }

    [Test]
    public void Timestamps_give_rtt_samples_that_set_the_rto()
    {
        var c = new Conversation(new TcpConfig { MinRto = 60 * Time.Millisecond });
        var ts = Conversation.SynOptions(tsVal: 1);
        var (socket, iss) = EstablishPassive(c, ts);
        c.Start(async () => await socket.SendAsync(new byte[100]));
        var data = c.Expect("data");
        c.Run(50 * Time.Millisecond);
        // Echo a timestamp 20 ms older than the data's: the sample must come from the echo (70 ms),
        // not from timing the segment (50 ms).
        var echo = new TcpOptions { HasTimestamp = true, TsVal = 2, TsEcr = data.Repr.Options.TsVal - 20 };
        c.Send(80, PeerIss + 1, iss + 101, TcpFlags.Ack, options: echo);
        var conn = socket.Connection!;
        // The handshake gave a first sample of 0 (the test answers at once); this one is 70 ms:
        // SRTT = 7/8 * 0 + 1/8 * 70 ms, RTTVAR = 3/4 * 0 + 1/4 * 70 ms (RFC 6298 2.3).
        Assert.That(conn.SmoothedRtt, Is.EqualTo(8_750 * Time.Microsecond));
        Assert.That(conn.Rto, Is.EqualTo(8_750 * Time.Microsecond + 4 * 17_500 * Time.Microsecond));
    }

    [Test]
    public void Passive_close_goes_close_wait_then_last_ack_then_closed()
    {
        var c = new Conversation(s_noTimestamps);
        var (socket, iss) = EstablishPassive(c, Conversation.SynOptions());
        c.Send(80, PeerIss + 1, iss + 1, TcpFlags.Fin | TcpFlags.Ack);
        c.Expect("ACK of FIN");
        Assert.That(socket.State, Is.EqualTo(TcpState.CloseWait));
        var eof = c.Start(async () => await socket.ReceiveAsync(new byte[8]));
        Assert.That(eof.Result, Is.Zero, "end of stream");
        socket.Close();
        var fin = c.Expect("our FIN");
        Assert.That(fin.Flags, Is.EqualTo(TcpFlags.Fin | TcpFlags.Ack));
        c.Send(80, PeerIss + 2, iss + 2, TcpFlags.Ack);
        Assert.That(c.Tcp.ConnectionCount, Is.Zero);
    }

    [Test]
    public void Zero_window_is_probed_with_one_byte_and_backoff_until_it_opens()
    {
        var c = new Conversation(s_noTimestamps);
        var (socket, iss) = EstablishPassive(c, Conversation.SynOptions(scale: 0), finalWindow: 0);
        var send = c.Start(async () => await socket.SendAsync(new byte[100]));
        c.ExpectNothing("the window is closed");
        long start = c.Scheduler.Now;

        c.Run(400 * Time.Millisecond);
        var probe1 = c.Expect("first window probe after the RTO");
        Assert.That(probe1.Payload, Has.Length.EqualTo(1));
        Assert.That(probe1.Seq, Is.EqualTo(iss + 1));
        Assert.That(probe1.Time - start, Is.EqualTo(400 * Time.Millisecond));
        c.Send(80, PeerIss + 1, iss + 1, TcpFlags.Ack, 0);

        c.Run(800 * Time.Millisecond);
        var probe2 = c.Expect("second probe, backed off");
        Assert.That(probe2.Time - probe1.Time, Is.EqualTo(800 * Time.Millisecond));
        c.Send(80, PeerIss + 1, iss + 1, TcpFlags.Ack, 1000);
        var data = c.Expect("the data once the window opens");
        Assert.That(data.Seq, Is.EqualTo(iss + 1));
        Assert.That(data.Payload, Has.Length.EqualTo(100));
        Assert.That(send.Result, Is.EqualTo(100));
        Assert.That(c.Tcp.Stats.PersistProbes, Is.EqualTo(2));
    }

    [Test]
    public void Keepalive_probes_an_idle_peer_and_drops_it_after_the_last_unanswered_probe()
    {
        var c = new Conversation(new TcpConfig { Timestamps = false, KeepaliveIdle = 10 * Time.Second, KeepaliveInterval = 1 * Time.Second, KeepaliveProbes = 3 });
        var (socket, iss) = EstablishPassive(c, Conversation.SynOptions());
        socket.KeepAlive = true;
        var read = c.Start(async () => await socket.ReceiveAsync(new byte[8]));

        c.Run(10 * Time.Second);
        var probe = c.Expect("keepalive probe");
        Assert.That(probe.Seq, Is.EqualTo(iss), "SND.NXT - 1 with no data");
        Assert.That(probe.Payload, Is.Empty);
        c.Send(80, PeerIss + 1, iss + 1, TcpFlags.Ack);

        c.Run(10 * Time.Second);
        c.Expect("probe after the next idle period");
        c.Run(1 * Time.Second);
        c.Expect("second probe");
        c.Run(1 * Time.Second);
        c.Expect("third probe");
        Assert.That(read.IsCompleted, Is.False);
        c.Run(1 * Time.Second);
        Assert.That(read.IsFaulted, Is.True);
        Assert.That(((TcpException)read.Exception!.InnerException!).Error, Is.EqualTo(TcpError.ETIMEDOUT));
        Assert.That(c.Tcp.Stats.KeepaliveDrops, Is.EqualTo(1));
    }

    [Test]
    public void Syn_is_retransmitted_with_exponential_backoff_then_connect_times_out()
    {
        var c = new Conversation(new TcpConfig { SynRetries = 3 });
        var connect = c.Start(async () =>
        {
            var s = new TcpSocket(c.Tcp);
            await s.ConnectAsync(Conversation.Peer, 80);
            return s;
        });
        var times = new List<long>();
        for (int i = 0; i < 4; i++)
        {
            times.Add(c.Expect($"SYN {i}").Time);
            c.Run(times[^1] + (1L << i) * Time.Second - c.Scheduler.Now);
        }
        Assert.That(times, Is.EqualTo(new long[] { 0, 1 * Time.Second, 3 * Time.Second, 7 * Time.Second }));
        c.Run(8 * Time.Second);
        Assert.That(connect.IsFaulted, Is.True);
        Assert.That(((TcpException)connect.Exception!.InnerException!).Error, Is.EqualTo(TcpError.ETIMEDOUT));
        Assert.That(c.Tcp.ConnectionCount, Is.Zero);
    }

    [Test]
    public void Data_is_retransmitted_with_backoff_from_the_minimum_rto_and_the_connection_gives_up()
    {
        var c = new Conversation(new TcpConfig { Timestamps = false, MaxRetries = 3 });
        var (socket, iss) = EstablishPassive(c, Conversation.SynOptions());
        var read = c.Start(async () => await socket.ReceiveAsync(new byte[8]));
        c.Start(async () => await socket.SendAsync(new byte[100]));
        var first = c.Expect("data");
        var gaps = new List<long>();
        long last = first.Time;
        for (int i = 0; i < 3; i++)
        {
            c.Run((400L << i) * Time.Millisecond);
            var r = c.Expect($"retransmission {i + 1}");
            Assert.That(r.Seq, Is.EqualTo(iss + 1));
            gaps.Add(r.Time - last);
            last = r.Time;
        }
        Assert.That(gaps, Is.EqualTo(new long[] { 400 * Time.Millisecond, 800 * Time.Millisecond, 1600 * Time.Millisecond }));
        c.Run(3200 * Time.Millisecond);
        Assert.That(read.IsFaulted, Is.True);
        Assert.That(((TcpException)read.Exception!.InnerException!).Error, Is.EqualTo(TcpError.ETIMEDOUT));
    }

    [Test]
    public void Three_duplicate_acks_trigger_a_fast_retransmit_before_the_timer()
    {
        var c = new Conversation(new TcpConfig { Timestamps = false, Sack = false });
        var (socket, iss) = EstablishPassive(c, new TcpOptions { Mss = 1000 });
        c.Start(async () => await socket.SendAsync(new byte[10_000]));
        for (int i = 0; i < 10; i++) Assert.That(c.Expect($"segment {i}").Seq, Is.EqualTo(iss + 1 + (uint)(1000 * i)));
        c.ExpectNothing("the initial window is ten segments");
        for (int i = 0; i < 2; i++) c.Send(80, PeerIss + 1, iss + 1, TcpFlags.Ack);
        c.ExpectNothing("two duplicates are not enough");
        c.Send(80, PeerIss + 1, iss + 1, TcpFlags.Ack);
        var rtx = c.Expect("fast retransmission");
        Assert.That(rtx.Seq, Is.EqualTo(iss + 1));
        Assert.That(rtx.Payload, Has.Length.EqualTo(1000));
        Assert.That(c.Tcp.Stats.FastRetransmits, Is.EqualTo(1));

        // A partial ACK (NewReno): the next hole goes out at once.
        c.Send(80, PeerIss + 1, iss + 1 + 3000, TcpFlags.Ack);
        var next = c.Expect("retransmission after a partial ACK");
        Assert.That(next.Seq, Is.EqualTo(iss + 1 + 3000));
    }

    [TestCase(TcpCongestionControl.NewReno, 5000, TestName = "NewReno_halves_the_window_on_fast_retransmit")]
    [TestCase(TcpCongestionControl.Cubic, 7000, TestName = "Cubic_keeps_seventy_percent_of_the_window_on_fast_retransmit")]
    public void Window_reduction_on_fast_retransmit(TcpCongestionControl algorithm, long ssthresh)
    {
        var c = new Conversation(new TcpConfig { Timestamps = false, CongestionControl = algorithm });
        var (socket, iss) = EstablishPassive(c, new TcpOptions { Mss = 1000, SackPermitted = true });
        c.Start(async () => await socket.SendAsync(new byte[10_000]));
        for (int i = 0; i < 10; i++) c.Expect($"segment {i}");
        var sack = new TcpOptions();
        for (int i = 1; i <= 3; i++)
        {
            sack.SackCount = 0;
            sack.AddSack(iss + 1 + 1000, iss + 1 + 1000 + (uint)(1000 * i));
            c.Send(80, PeerIss + 1, iss + 1, TcpFlags.Ack, options: sack);
        }
        Assert.That(c.Expect("fast retransmission").Seq, Is.EqualTo(iss + 1));
        Assert.That(socket.Connection!.SlowStartThreshold, Is.EqualTo(ssthresh));
    }

    /// <summary>RFC 3465 as illumos's newreno runs it: slow start opens the window by the bytes an
    /// ACK covers, at most two segments an ACK, but at most one in the slow start a timeout began
    /// (one cumulative ACK may then cover everything sent before the loss), until ssthresh.</summary>
    [Test]
    public void Slow_start_opens_two_segments_an_ack_and_one_after_a_timeout()
    {
        var c = new Conversation(s_noTimestamps);
        var (socket, iss) = EstablishPassive(c, new TcpOptions { Mss = 1000 });
        c.Start(async () => await socket.SendAsync(new byte[40_000]));
        var conn = socket.Connection!;
        for (int i = 0; i < 10; i++) c.Expect($"segment {i} of the initial window");
        Assert.That(conn.CongestionWindow, Is.EqualTo(10_000));

        c.Send(80, PeerIss + 1, iss + 1 + 3000, TcpFlags.Ack);
        Assert.That(conn.CongestionWindow, Is.EqualTo(12_000), "three segments acked, two added");
        for (int i = 10; i < 15; i++) c.Expect($"segment {i}");
        c.ExpectNothing("the window is full");

        c.Run(450 * Time.Millisecond);
        var rtx = c.Expect("retransmission at the timeout");
        Assert.That(rtx.Seq, Is.EqualTo(iss + 1 + 3000));
        Assert.That((conn.CongestionWindow, conn.SlowStartThreshold), Is.EqualTo((1000L, 6000L)));

        c.Send(80, PeerIss + 1, iss + 1 + 15_000, TcpFlags.Ack);
        Assert.That(conn.CongestionWindow, Is.EqualTo(2000), "twelve segments acked at once, one added");
        c.Expect("segment 15");
        c.Expect("segment 16");
        c.Send(80, PeerIss + 1, iss + 1 + 17_000, TcpFlags.Ack);
        Assert.That(conn.CongestionWindow, Is.EqualTo(3000));
    }

    [Test]
    public void Fast_retransmit_of_a_reordered_segment_is_undone_when_the_ack_echoes_the_original()
    {
        var c = new Conversation();
        var (socket, iss) = EstablishPassive(c, new TcpOptions { Mss = 1012, SackPermitted = true, HasTimestamp = true, TsVal = 1 });
        c.Start(async () => await socket.SendAsync(new byte[10_000]));
        var first = c.Expect("segment 0");
        for (int i = 1; i < 10; i++) c.Expect($"segment {i}");
        var conn = socket.Connection!;
        long cwndBefore = conn.CongestionWindow, ssthreshBefore = conn.SlowStartThreshold;
        c.Run(5 * Time.Millisecond);
        var sack = new TcpOptions { HasTimestamp = true, TsVal = 2, TsEcr = first.Repr.Options.TsVal };
        for (int i = 1; i <= 3; i++)
        {
            sack.SackCount = 0;
            sack.AddSack(iss + 1 + 1000, iss + 1 + 1000 + (uint)(1000 * i));
            c.Send(80, PeerIss + 1, iss + 1, TcpFlags.Ack, options: sack);
        }
        var rtx = c.Expect("fast retransmission");
        Assert.That(rtx.Repr.Options.TsVal, Is.GreaterThan(first.Repr.Options.TsVal));
        Assert.That(conn.SlowStartThreshold, Is.LessThan(ssthreshBefore));

        // The original segment 0 was only late: the cumulative ACK echoes its timestamp.
        var late = new TcpOptions { HasTimestamp = true, TsVal = 3, TsEcr = first.Repr.Options.TsVal };
        c.Send(80, PeerIss + 1, iss + 1 + 4000, TcpFlags.Ack, options: late);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(c.Tcp.Stats.SpuriousRetransmits, Is.EqualTo(1));
            Assert.That(conn.SlowStartThreshold, Is.EqualTo(ssthreshBefore));
            Assert.That(conn.CongestionWindow, Is.GreaterThanOrEqualTo(cwndBefore));
        }
    }

    [Test]
    public void Sack_blocks_steer_retransmission_to_the_holes()
    {
        var c = new Conversation(s_noTimestamps);
        var (socket, iss) = EstablishPassive(c, new TcpOptions { Mss = 1000, SackPermitted = true });
        c.Start(async () => await socket.SendAsync(new byte[10_000]));
        for (int i = 0; i < 10; i++) c.Expect($"segment {i}");
        uint b = iss + 1;
        // Segments 0 and 4 are lost; the peer holds 1-3 and 5-9.
        var sack = new TcpOptions();
        sack.AddSack(b + 1000, b + 4000);
        c.Send(80, PeerIss + 1, b, TcpFlags.Ack, options: sack);
        sack.AddSack(b + 5000, b + 10000);
        c.Send(80, PeerIss + 1, b, TcpFlags.Ack, options: sack);
        var first = c.Expect("retransmission of the first hole");
        Assert.That(first.Seq, Is.EqualTo(b));
        var second = c.Expect("retransmission of the second hole");
        Assert.That(second.Seq, Is.EqualTo(b + 4000));
        c.ExpectNothing("nothing else is missing");
    }

    [Test]
    public void Out_of_order_data_is_acked_at_once_with_a_sack_block_and_delivered_when_the_hole_fills()
    {
        var c = new Conversation(s_noTimestamps);
        var (socket, iss) = EstablishPassive(c, Conversation.SynOptions());
        c.Send(80, PeerIss + 1 + 100, iss + 1, TcpFlags.Ack, payload: Enumerable.Range(100, 100).Select(i => (byte)i).ToArray());
        var dup = c.Expect("immediate duplicate ACK");
        using (Assert.EnterMultipleScope())
        {
            Assert.That(dup.Ack, Is.EqualTo(PeerIss + 1));
            Assert.That(dup.Repr.Options.SackCount, Is.EqualTo(1));
            Assert.That(dup.Repr.Options.Sack[0], Is.EqualTo(new TcpSackBlock(PeerIss + 101, PeerIss + 201)));
        }
        c.Send(80, PeerIss + 1, iss + 1, TcpFlags.Ack, payload: Enumerable.Range(0, 100).Select(i => (byte)i).ToArray());
        var ack = c.Expect("ACK once the hole is filled");
        Assert.That(ack.Ack, Is.EqualTo(PeerIss + 201));
        Assert.That(ack.Repr.Options.SackCount, Is.Zero);
        var buffer = new byte[300];
        var read = c.Start(async () => await socket.ReceiveAsync(buffer));
        Assert.That(read.Result, Is.EqualTo(200));
        Assert.That(buffer[..200], Is.EqualTo(Enumerable.Range(0, 200).Select(i => (byte)i).ToArray()));
    }

    [Test]
    public void Sack_blocks_ride_only_in_the_room_a_data_segment_leaves_below_the_mss()
    {
        var c = new Conversation(s_noTimestamps);
        var (socket, iss) = EstablishPassive(c, new TcpOptions { Mss = 1000, SackPermitted = true });
        socket.NoDelay = true;
        c.Send(80, PeerIss + 1 + 100, iss + 1, TcpFlags.Ack, payload: new byte[100]);
        Assert.That(c.Expect("duplicate ACK with a SACK block").Repr.Options.SackCount, Is.EqualTo(1));
        c.Start(async () => await socket.SendAsync(new byte[1500]));
        var full = c.Expect("a full segment");
        var rest = c.Expect("the rest");
        using (Assert.EnterMultipleScope())
        {
            Assert.That(full.Payload, Has.Length.EqualTo(1000));
            Assert.That(full.Repr.Options.SackCount, Is.Zero, "a full segment has no room for SACK blocks");
            Assert.That(full.Repr.HeaderLength + full.Payload.Length, Is.EqualTo(20 + 1000), "no segment grows past the MSS");
            Assert.That(rest.Payload, Has.Length.EqualTo(500));
            Assert.That(rest.Repr.Options.SackCount, Is.EqualTo(1), "a short segment still carries the block");
            Assert.That(rest.Repr.Options.Sack[0], Is.EqualTo(new TcpSackBlock(PeerIss + 101, PeerIss + 201)));
        }
    }

    // ---- deferred ACKs (TcpProtocol rule 9); the peer's MSS is 1460 and no timestamps ride along ----

    private const int FullSegment = 1460;

    /// <summary>The peer sends <paramref name="count"/> segments of <paramref name="size"/> bytes from
    /// <paramref name="next"/>; each but the last must be taken without an ACK, the last must be
    /// ACKed at once (when <paramref name="acked"/>) or not.</summary>
    private static void Group(Conversation c, uint iss, ref uint next, int count, bool acked = true, int size = FullSegment)
    {
        for (int i = 0; i < count; i++)
        {
            c.Send(80, next, iss + 1, TcpFlags.Ack, payload: new byte[size]);
            next += (uint)size;
            if (i < count - 1 || !acked)
            {
                c.ExpectNothing($"segment {i + 1} of {count} waits for the ACK");
                continue;
            }
            Assert.That(c.Expect($"the ACK of a group of {count}").Ack, Is.EqualTo(next));
            c.ExpectNothing("one ACK a group");
        }
    }

    /// <summary>Each group in turn (<see cref="Group"/>), every one ACKed at its last segment.</summary>
    private static void Groups(Conversation c, uint iss, ref uint next, params int[] counts)
    {
        foreach (int n in counts) Group(c, iss, ref next, n);
    }

    /// <summary>A connection accepted from an on-link peer, and the groups of full segments it sent first.</summary>
    private static (Conversation C, TcpSocket Socket, uint Iss, uint Next) FromOnLinkPeer(int[] groups, int? receiveBuffer = null, byte? scale = 7)
    {
        var c = new Conversation(s_noTimestamps);
        c.Ip.PeersOnLink = true;
        var (socket, iss) = EstablishPassive(c, Conversation.SynOptions(scale: scale), receiveBuffer: receiveBuffer);
        uint next = PeerIss + 1;
        Groups(c, iss, ref next, groups);
        return (c, socket, iss, next);
    }

    [Test]
    public void Deferred_acks_grow_from_each_segment_to_every_second_toward_a_peer_behind_a_router()
    {
        var c = new Conversation(s_noTimestamps);
        var (_, iss) = EstablishPassive(c, Conversation.SynOptions());
        uint next = PeerIss + 1;
        Groups(c, iss, ref next, 1, 1, 2, 2, 2);
        Group(c, iss, ref next, 1, acked: false);
        c.Run(100 * Time.Millisecond - 1);
        c.ExpectNothing("the delayed-ACK timer toward a peer behind a router is 100 ms");
        c.Run(1);
        Assert.That(c.Expect("the delayed ACK").Ack, Is.EqualTo(next));
        Assert.That(c.Tcp.Stats.OutAckDelayed, Is.EqualTo(1));
    }

    [Test]
    public void Deferred_acks_grow_to_eight_segments_toward_an_on_link_peer()
    {
        var (c, _, iss, next) = FromOnLinkPeer([1, 1, 2, 3, 4, 5, 6, 7, 8, 8, 8]);
        Group(c, iss, ref next, 3, acked: false);
        c.Run(50 * Time.Millisecond - 1);
        c.ExpectNothing("the delayed-ACK timer toward an on-link peer is 50 ms");
        c.Run(1);
        Assert.That(c.Expect("the delayed ACK").Ack, Is.EqualTo(next));
    }

    [Test]
    public void Deferred_acks_are_at_most_half_the_receive_buffer_in_segments()
    {
        var (c, socket, iss, next) = FromOnLinkPeer([1, 1, 2, 3], receiveBuffer: 8 * FullSegment);
        var read = c.Start(async () => await socket.ReceiveAsync(new byte[7 * FullSegment]));
        Assert.That(read.Result, Is.EqualTo(7 * FullSegment));
        c.Out.Clear();      // the window update after the read (below)
        Groups(c, iss, ref next, 4, 4);
    }

    [Test]
    public void A_delayed_ack_for_more_than_a_segment_falls_back_to_every_second_and_lowers_the_ceiling()
    {
        var (c, _, iss, next) = FromOnLinkPeer([1, 1, 2]);
        Group(c, iss, ref next, 2, acked: false);
        c.Run(50 * Time.Millisecond);
        Assert.That(c.Expect("the delayed ACK of two segments").Ack, Is.EqualTo(next));
        Groups(c, iss, ref next, 2, 3, 4, 5, 6, 7, 7, 7);
    }

    [Test]
    public void Short_segments_after_a_short_one_are_acked_at_once()
    {
        var (c, _, iss, next) = FromOnLinkPeer([1, 1, 2, 3]);
        Group(c, iss, ref next, 2, size: 100);
    }

    [Test]
    public void Data_sent_again_is_acked_at_once_and_defers_less_after()
    {
        var (c, _, iss, next) = FromOnLinkPeer([1, 1, 2]);
        Group(c, iss, ref next, 1, acked: false);
        c.Send(80, next - FullSegment, iss + 1, TcpFlags.Ack, payload: new byte[FullSegment]);
        Assert.That(c.Expect("the ACK of a segment sent again").Ack, Is.EqualTo(next));
        Groups(c, iss, ref next, 1, 2, 3, 4, 5, 6, 7, 7);
    }

    [Test]
    public void A_read_updates_the_window_only_when_the_peer_knows_it_nearly_closed()
    {
        var (c, socket, iss, next) = FromOnLinkPeer([1, 1], receiveBuffer: 8 * FullSegment, scale: 0);
        var read = c.Start(async () => await socket.ReceiveAsync(new byte[FullSegment]));
        Assert.That(read.Result, Is.EqualTo(FullSegment));
        c.ExpectNothing("the peer knows a window of six segments: no update");
        Groups(c, iss, ref next, 2, 3);
        read = c.Start(async () => await socket.ReceiveAsync(new byte[FullSegment]));
        Assert.That(read.Result, Is.EqualTo(FullSegment));
        var update = c.Expect("a window update: the peer knows two segments, fewer than the four an ACK may cover");
        using (Assert.EnterMultipleScope())
        {
            Assert.That(update.Ack, Is.EqualTo(next));
            Assert.That(update.Repr.Window, Is.EqualTo(3 * FullSegment));
            Assert.That(c.Tcp.Stats.OutWinUpdate, Is.EqualTo(1));
        }
    }

    [TestCase(false, TestName = "Nagle_holds_a_second_small_segment_until_the_first_is_acked")]
    [TestCase(true, TestName = "No_delay_sends_small_segments_at_once")]
    public void Nagle(bool noDelay)
    {
        var c = new Conversation(s_noTimestamps);
        var (socket, iss) = EstablishPassive(c, Conversation.SynOptions());
        socket.NoDelay = noDelay;
        c.Start(async () => await socket.SendAsync(new byte[10]));
        c.Expect("first small segment");
        c.Start(async () => await socket.SendAsync(new byte[10]));
        if (noDelay)
        {
            Assert.That(c.Expect("second small segment").Seq, Is.EqualTo(iss + 11));
            return;
        }
        c.ExpectNothing("Nagle keeps one small segment in flight");
        c.Send(80, PeerIss + 1, iss + 11, TcpFlags.Ack);
        Assert.That(c.Expect("second small segment after the ACK").Seq, Is.EqualTo(iss + 11));
    }

    [Test]
    public void Rst_with_exact_sequence_resets_and_in_window_rst_gets_a_challenge_ack()
    {
        var c = new Conversation(s_noTimestamps);
        var (socket, iss) = EstablishPassive(c, Conversation.SynOptions());
        var read = c.Start(async () => await socket.ReceiveAsync(new byte[8]));
        c.Send(80, PeerIss + 50, 0, TcpFlags.Rst);
        var challenge = c.Expect("challenge ACK (RFC 5961)");
        Assert.That(challenge.Ack, Is.EqualTo(PeerIss + 1));
        Assert.That(socket.State, Is.EqualTo(TcpState.Established));
        c.Send(80, PeerIss + 1, 0, TcpFlags.Rst);
        Assert.That(read.IsFaulted, Is.True);
        Assert.That(((TcpException)read.Exception!.InnerException!).Error, Is.EqualTo(TcpError.ECONNRESET));
        _ = iss;
    }

    [Test]
    public void Malformed_and_random_segments_are_counted_and_never_throw()
    {
        var c = new Conversation();
        var (_, iss) = EstablishPassive(c, Conversation.SynOptions());
        var random = new HostRandom(99);
        long before = c.Tcp.Stats.InErrs;
        for (int i = 0; i < 20_000; i++)
        {
            var bytes = new byte[random.Next(80)];
            random.NextBytes(bytes);
            if (bytes.Length >= 20 && (i & 1) == 0)
            {
                // Half of them aimed at the live connection with a valid checksum, to reach the state machine.
                bytes[0] = (byte)(Conversation.PeerPort >> 8); bytes[1] = Conversation.PeerPort & 0xFF;
                bytes[2] = 0; bytes[3] = 80;
                bytes[12] = (byte)((5 + random.Next(3)) << 4);
                if (TcpView.TryCreate(bytes, out var v)) v.FillChecksum(Conversation.Peer, Conversation.Local);
            }
            c.Tcp.Receive(Packet.Unpooled(bytes), Conversation.Peer, Conversation.Local);
            c.Out.Clear();
        }
        c.Scheduler.RunFor(10 * Time.Second);
        Assert.That(c.Tcp.Stats.InErrs - before, Is.GreaterThan(5000));
        Assert.That(c.Tcp.ConnectionCount, Is.LessThanOrEqualTo(c.Tcp.Config.MaxHalfOpen + 1));
        _ = iss;
    }
}
