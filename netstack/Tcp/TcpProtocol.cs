/*
 * TCP (RFC 9293) for one IP stack.
 *
 * Terms
 *   TcpProtocol   one per IP stack; it is the ITransport the stack hands protocol-6 segments to. It
 *                 owns the connection table, the listeners, the ephemeral ports, the counters and
 *                 the memory account.
 *   connection    a TcpConnection: the transmission control block of RFC 9293 section 3.3.1, from
 *                 SYN_SENT or SYN_RECEIVED to CLOSED, keyed by its 4-tuple.
 *   listener      a TcpListener: a bound (address, port) in LISTEN with a half-open list and an
 *                 accept queue.
 *   socket        a TcpSocket: what a program in a zone holds; async, continuations on the loop.
 *
 * Data path
 *   receive  IP layer -> Receive(packet) -> TcpView/TcpRepr parse, checksum over the pseudo-header
 *            (not for a segment whose checksum is still pending: it came from a stack of this host,
 *            MacLayer.cs rule 7; nor for one whose checksum this process filled in and no byte has
 *            changed since, as a wire between two hosts carries it: Packet.ChecksumKnownGood, the
 *            receive checksum offload of MacLayer.cs rule 7) -> hash lookup of the 4-tuple (skipped when the segment is for the
 *            same connection as the last one: a one-entry cache, as BSD's last-PCB hint, cleared
 *            when that connection leaves the table) -> connection.Input (or the listener, or a RST)
 *            -> payload copied into the connection's receive ring, or, in order and while a
 *            receive waits with room for it, straight into that receive's buffer (ReceiveRing.TryPlace,
 *            Linux's ucopy; counted as buffered until the read, so windows and ACKs are the same)
 *            -> packet freed here.
 *   send     socket.SendAsync copies into the send ring -> connection.Output cuts segments, each
 *            built straight into a packet rented from IIpLayer.Pool behind IIpLayer.HeaderRoom
 *            bytes -> checksum (or only the pseudo-header sum, pending, when the IP layer offloads
 *            it) -> IIpLayer.Send, with the connection's PathCacheV4 (PathCache.cs: its route,
 *            interface and next hop's link address, as illumos's conn_t keeps its IRE and NCE in
 *            conn_ixa; the same bytes and counters, without a route and an ARP lookup per
 *            segment). Retransmissions copy out of the ring again; nothing else keeps a segment.
 *
 * Rules
 *   1. Everything runs on the host's loop. Timers are KTimers owned by each connection (reused,
 *      armed and cancelled without allocation); time is Scheduler.Now; ISNs and ephemeral ports
 *      come from IIpLayer.Random.
 *   2. A segment that does not parse, fails its checksum or carries malformed options is counted
 *      (tcpInErrs, tcpInChecksumErrs) and dropped; nothing a peer sends can throw.
 *   3. Memory is bounded: every connection's buffers are charged to one ITcpMemoryAccount before
 *      they exist (ENOBUFS otherwise); the reassembly queue lives inside the receive buffer, its
 *      ranges bounded by TcpConfig.MaxOutOfOrderRanges; each listener holds at most MaxHalfOpen
 *      SYN_RECEIVED connections and its backlog of established ones.
 *   4. SYN floods: a passive connection gets its buffers only when the handshake completes, so a
 *      half-open costs one small object; when a listener's half-open list is full the OLDEST is
 *      dropped silently (RFC 4987 section 3.4, "drop oldest"). We chose this over SYN cookies
 *      because cookies lose the window-scale, SACK and timestamp options (or need the timestamp
 *      trick) and a bounded list already caps memory; an old entry is the one least likely to be a
 *      real client still waiting.
 *   5. A segment for no connection and no listener is answered with a RST as RFC 9293 section
 *      3.10.7.1 says, and a RST is never answered.
 *   6. Continuations of socket calls run as zero-delay scheduler events with the loop's
 *      synchronization context current, never inline inside segment processing, so a program
 *      cannot re-enter a connection while it is processing a segment.
 *
 *   7. Congestion control is Reno growth (illumos's default) or CUBIC (TcpConfig.CongestionControl).
 *      Slow start counts the bytes each ACK covers (RFC 3465, as illumos's newreno), at most two
 *      segments an ACK, one in a slow start a timeout began; the handshake's ACK of our SYN adds
 *      nothing to the initial window. Loss recovery is shared: NewReno partial ACKs, or with SACK
 *      the RFC 6675 pipe and holes.
 *      RTT comes from timestamp echoes when both ends use them, else from one timed segment per
 *      RTT with Karn's rule; RTO per RFC 6298 with TcpConfig.MinRto (illumos: 400 ms).
 *   8. Large send (illumos's LSO, issue 17): when the route's link offers it (IIpLayer.LsoMax: a
 *      VNIC over a NIC whose device segments, a TAP with offloads), one send carries up to ~64 KiB,
 *      a whole number of MSS segments (TcpConnection._sndChunk), in one packet marked with the MSS
 *      (Packet.LsoMss); the MAC layer or the device cuts it (MacLayer.cs rule 9). Everything else is
 *      as for MSS-sized sends: the windows are counted in bytes, Nagle and SWS avoidance see the
 *      remainder as they would, and retransmissions are MSS-sized. The large buffers are few
 *      (PacketPool.LsoLimit); when none is free the send is one MSS, so a shortage never stalls.
 *      The other way, a TAP's GSO frame may arrive whole (a large receive); it is one segment to
 *      the receive path, ACKed at once as more than one full segment's worth.
 *   9. Delayed ACKs follow illumos (tcp_input_data, tcp_ack_timer, tcp_rwnd_reopen), not a fixed
 *      "every second segment": an ACK may cover up to TcpConfig.LocalDeferredAcksMax (8) in-order
 *      segments toward an on-link peer (IIpLayer.OnLink), DeferredAcksMax (2, RFC 1122) through a
 *      router, and never more than half the receive buffer's segments. The number that may wait
 *      starts at 0 when the connection is established and grows by one with each ACK it causes,
 *      so a new connection's first segments are ACKed at once while its sender is in slow start.
 *      Out-of-order data, a hole filled, a large segment and a short segment after a short one
 *      are ACKed at once. The timer (LocalDelayedAck 50 ms on-link, DelayedAck 100 ms) sends what
 *      waited; when it had to send for more than a segment, the sender is not filling the window,
 *      and the number falls back to 2 and its ceiling by one for good. Data sent again that had
 *      arrived means an ACK came late: ACK each segment until the number has grown again, and
 *      lower the ceiling if its ACK was being deferred. After a read, a window update goes out
 *      only when the window the peer knows is below what one ACK may cover and the read opens
 *      it by a segment: a wide window is updated by the next ACK the data causes. Counted as
 *      tcpOutAckDelayed and tcpOutWinUpdate. A bulk transfer over a wire sends an ACK for every
 *      8 data segments instead of 2 in 3, which is most of what issue 17's tcpwire gained.
 *
 * Wiring
 *   The IP layer constructs one TcpProtocol with itself (IIpLayer) and hands it every protocol-6
 *   segment through ITransport.Receive and every ICMP error about TCP through ReceiveError. TCP
 *   needs nothing else: source selection, path MTU, local-address checks, the packet pool, the
 *   scheduler and the random source all come through IIpLayer. Stats is an IKstatSource for the
 *   host's kstat chain (module "tcp"); Connections is the `netstat -an` snapshot; Memory is where
 *   a zone's cap applies.
 *
 *      A fast retransmit whose first ACK echoes the original segment's timestamp was spurious
 *      (reordering, RFC 3522) and is undone; timeouts are never undone.
 *
 * Not done yet: D-SACK, and spurious-retransmission detection without timestamps; ECN; urgent data (URG is ignored and its bytes delivered in line); MTU probing beyond
 * reacting to ICMP "fragmentation needed"; cancellation tokens on socket calls; explicit bind()
 * of an active socket to a local address (ConnectAsync takes only a local port).
 */
using System.Diagnostics;
using SmartOS.Kernel;
using SmartOS.Kernel.Wire;

namespace SmartOS.Netstack.Tcp;

/// <summary>The 4-tuple that names a connection (local first).</summary>
internal readonly struct TcpKey : IEquatable<TcpKey>
{
    public readonly IpAddress Local;
    public readonly IpAddress Remote;
    public readonly ushort LocalPort;
    public readonly ushort RemotePort;

    public TcpKey(IpAddress local, ushort localPort, IpAddress remote, ushort remotePort)
    {
        Local = local; LocalPort = localPort; Remote = remote; RemotePort = remotePort;
    }

    public bool Equals(TcpKey o) => LocalPort == o.LocalPort && RemotePort == o.RemotePort && Local == o.Local && Remote == o.Remote;
    public override bool Equals(object? obj) => obj is TcpKey o && Equals(o);
    public override int GetHashCode() => HashCode.Combine(Local.Low, Remote.Low, LocalPort, RemotePort, Local.High ^ Remote.High);
}

/// <summary>TCP for one IP stack (see the theory statement at the top of this file).</summary>
public sealed partial class TcpProtocol : ITransport, ISocketLister
{
    private readonly Dictionary<TcpKey, TcpConnection> _connections = [];
    // The connection the last segment was for (BSD's one-entry PCB cache): a bulk transfer's
    // segments skip the table's hashing. Always an entry of _connections, or null.
    private TcpConnection? _lastConnection;
    private readonly Dictionary<(IpAddress Address, ushort Port), TcpListener> _listeners = [];

    public TcpProtocol(IIpLayer ip, TcpConfig? config = null, ITcpMemoryAccount? memory = null)
    {
        Ip = ip;
        Config = config ?? TcpConfig.Default;
        Memory = memory ?? new TcpMemoryAccount();
        Context = new LoopSynchronizationContext(ip.Scheduler);
        _issSecret = ip.Random.NextUInt64();
    }

    private readonly ulong _issSecret;

    public IIpLayer Ip { get; }
    public TcpConfig Config { get; }
    public ITcpMemoryAccount Memory { get; }
    public TcpStats Stats { get; } = new();
    internal Scheduler Scheduler => Ip.Scheduler;

    /// <summary>The context socket continuations run under (rule 6).</summary>
    public LoopSynchronizationContext Context { get; }

    /// <summary>Connections in the table (all states except LISTEN).</summary>
    public int ConnectionCount => _connections.Count;

    /// <summary>A snapshot for `netstat -an`: listeners first, then connections, sorted by local then remote endpoint.</summary>
    public IReadOnlyList<TcpConnectionInfo> Connections
    {
        get
        {
            var list = new List<TcpConnectionInfo>(_listeners.Count + _connections.Count);
            foreach (var l in _listeners.Values)
                list.Add(new TcpConnectionInfo(l.LocalAddress, l.LocalPort, l.LocalAddress.IsV4 ? IpAddress.AnyV4 : IpAddress.AnyV6, 0, TcpState.Listen, 0, l.QueuedCount));
            foreach (var c in _connections.Values) list.Add(c.Info);
            list.Sort(static (a, b) =>
            {
                int r = a.LocalAddress.CompareTo(b.LocalAddress);
                if (r == 0) r = a.LocalPort.CompareTo(b.LocalPort);
                if (r == 0) r = a.RemoteAddress.CompareTo(b.RemoteAddress);
                if (r == 0) r = a.RemotePort.CompareTo(b.RemotePort);
                return r;
            });
            return list;
        }
    }

    /// <summary>ISocketLister: the `netstat -an` lines, states named as illumos prints them.</summary>
    public void ListSockets(List<TransportSocketInfo> into)
    {
        foreach (var l in _listeners.Values)
        {
            var any = l.LocalAddress.IsV4 ? IpAddress.AnyV4 : IpAddress.AnyV6;
            into.Add(new TransportSocketInfo(IpProtocol.Tcp, new IpEndpoint(l.LocalAddress, l.LocalPort), new IpEndpoint(any, 0),
                "LISTEN", 0, 0, l.ReceiveBufferSize, l.QueuedCount));
        }
        var conns = new List<TcpConnection>(_connections.Values);
        conns.Sort(static (a, b) =>
        {
            int r = a.Key.Local.CompareTo(b.Key.Local);
            if (r == 0) r = a.Key.LocalPort.CompareTo(b.Key.LocalPort);
            if (r == 0) r = a.Key.Remote.CompareTo(b.Key.Remote);
            if (r == 0) r = a.Key.RemotePort.CompareTo(b.Key.RemotePort);
            return r;
        });
        foreach (var c in conns)
            into.Add(new TransportSocketInfo(IpProtocol.Tcp, new IpEndpoint(c.Key.Local, c.Key.LocalPort), new IpEndpoint(c.Key.Remote, c.Key.RemotePort),
                StateName(c.State), c.SendWindow, c.SendQueued, c.ReceiveWindow, c.Readable));
    }

    /// <summary>A state as illumos's netstat names it (ESTABLISHED, TIME_WAIT, ...).</summary>
    public static string StateName(TcpState state) => state switch
    {
        TcpState.Closed => "CLOSED",
        TcpState.Listen => "LISTEN",
        TcpState.SynSent => "SYN_SENT",
        TcpState.SynReceived => "SYN_RCVD",
        TcpState.Established => "ESTABLISHED",
        TcpState.FinWait1 => "FIN_WAIT_1",
        TcpState.FinWait2 => "FIN_WAIT_2",
        TcpState.CloseWait => "CLOSE_WAIT",
        TcpState.Closing => "CLOSING",
        TcpState.LastAck => "LAST_ACK",
        _ => "TIME_WAIT",
    };

    /// <summary>Resets every connection and closes every listener (a zone halting, an interface
    /// going away). Pending socket calls fail with ECONNABORTED.</summary>
    public void AbortAll()
    {
        foreach (var l in new List<TcpListener>(_listeners.Values)) l.Close();
        foreach (var c in new List<TcpConnection>(_connections.Values)) c.Abort();
    }

    // ---- ITransport ---------------------------------------------------------------------------

    public void Receive(Packet packet, IpAddress source, IpAddress destination)
    {
        try { ReceiveSegment(packet.Data, source, destination, packet.ChecksumPending || packet.ChecksumKnownGood); }
        finally { packet.Free(); }
    }

    /// <param name="checksumKnown">The segment was sent by a stack of this host with its checksum
    /// left to the MAC layer and never left the host, or its checksum was filled in by this process
    /// and no byte has changed since (Packet.ChecksumKnownGood), so there is nothing to verify.</param>
    private void ReceiveSegment(Span<byte> segment, IpAddress source, IpAddress destination, bool checksumKnown)
    {
        Stats.InSegs++;
        if (!TcpView.TryCreate(segment, out var view)) { Stats.InErrs++; return; }
        if (!checksumKnown && !view.ChecksumValid(source, destination)) { Stats.ChecksumErrors++; Stats.InErrs++; return; }
        if (!TcpRepr.TryParse(view, out var seg)) { Stats.InErrs++; return; }
        // RFC 9293 3.9.1: TCP is unicast only; a segment from or to a multicast/broadcast address is dropped.
        if (source.IsMulticast || destination.IsMulticast || destination == IpAddress.BroadcastV4 || source.IsUnspecified || seg.SourcePort == 0 || seg.DestinationPort == 0)
        {
            Stats.InErrs++;
            return;
        }
        var payload = view.Payload;
        var key = new TcpKey(destination, seg.DestinationPort, source, seg.SourcePort);
        TcpConnection? conn;
        if (_lastConnection != null && _lastConnection.Key.Equals(key))
        {
            conn = _lastConnection;
        }
        else
        {
            _connections.TryGetValue(key, out conn);
            _lastConnection = conn;
        }
        if (ReceiveProbed)
        {
            // illumos's tcp_input_data for a connection's segment, tcp_input_listener for one to a
            // listener, tcp_xmit_listeners_reset for one nobody takes.
            var receive = conn != null ? Probes.TcpReceive
                : FindListener(destination, seg.DestinationPort) != null ? Probes.TcpReceiveListener : Probes.TcpReceiveNoConnection;
            FireSegmentIfEnabled(receive, segment, source, destination, conn);
        }
        if (conn != null)
        {
            // RFC 9293 3.6.1 / RFC 6191: a new SYN beyond a TIME_WAIT connection's sequence space
            // (or with a newer timestamp) ends TIME_WAIT and opens a new incarnation.
            if (!(conn.State == TcpState.TimeWait && conn.AcceptsReincarnation(ref seg)))
            {
                conn.Input(ref seg, payload);
                return;
            }
            conn.Drop(TcpError.None);
        }
        var listener = FindListener(destination, seg.DestinationPort);
        if (listener != null)
        {
            listener.Input(ref seg, payload.Length, source, destination);
            return;
        }
        Stats.NoPort++;
        ResetForUnknown(ref seg, payload.Length, source, destination);
    }

    public void ReceiveError(IcmpErrorKind kind, int mtu, IpAddress source, IpAddress destination, ReadOnlySpan<byte> quoted)
    {
        // The quoted header is one we sent: source is us, destination the peer.
        if (!TcpView.TryReadQuoted(quoted, out ushort sport, out ushort dport, out uint seq)) return;
        if (_connections.TryGetValue(new TcpKey(source, sport, destination, dport), out var conn))
            conn.IcmpError(kind, mtu, seq);
    }

    // ---- tables --------------------------------------------------------------------------------

    private TcpListener? FindListener(IpAddress local, ushort port)
    {
        if (_listeners.TryGetValue((local, port), out var l)) return l;
        return _listeners.TryGetValue((local.IsV4 ? IpAddress.AnyV4 : IpAddress.AnyV6, port), out l) ? l : null;
    }

    internal TcpError AddListener(TcpListener listener, IpAddress address, ref ushort port)
    {
        if (!address.IsUnspecified && !Ip.IsLocalAddress(address)) return TcpError.EADDRNOTAVAIL;
        if (port == 0)
        {
            if (!TryEphemeral(address, default, 0, out port)) return TcpError.EADDRINUSE;
        }
        else if (PortBoundByListener(address, port))
        {
            return TcpError.EADDRINUSE;
        }
        _listeners.Add((address, port), listener);
        return TcpError.None;
    }

    private bool PortBoundByListener(IpAddress address, ushort port)
    {
        foreach (var key in _listeners.Keys)
        {
            if (key.Port != port || key.Address.IsV4 != address.IsV4) continue;
            if (key.Address == address || key.Address.IsUnspecified || address.IsUnspecified) return true;
        }
        return false;
    }

    internal void RemoveListener(TcpListener listener) => _listeners.Remove((listener.LocalAddress, listener.LocalPort));

    /// <summary>Picks an ephemeral port from a random start in the range (RFC 6056 algorithm 1-like).</summary>
    internal bool TryEphemeral(IpAddress local, IpAddress remote, ushort remotePort, out ushort port)
    {
        int low = Config.EphemeralLow, span = Config.EphemeralHigh - Config.EphemeralLow + 1;
        int start = Ip.Random.Next(span);
        for (int i = 0; i < span; i++)
        {
            port = (ushort)(low + (start + i) % span);
            if (PortBoundByListener(local, port)) continue;
            if (remotePort != 0 && _connections.ContainsKey(new TcpKey(local, port, remote, remotePort))) continue;
            return true;
        }
        port = 0;
        return false;
    }

    internal IEnumerable<TcpConnection> ConnectionObjects => _connections.Values;

    internal bool TryAddConnection(TcpConnection c) => _connections.TryAdd(c.Key, c);

    internal void RemoveConnection(TcpConnection c)
    {
        if (ReferenceEquals(_lastConnection, c)) _lastConnection = null;
        if (_connections.TryGetValue(c.Key, out var existing) && ReferenceEquals(existing, c)) _connections.Remove(c.Key);
    }

    internal bool ContainsConnection(TcpKey key) => _connections.ContainsKey(key);

    /// <summary>RFC 6528: ISN = M + F(4-tuple, secret), M a 4-microsecond clock. A new incarnation of
    /// a 4-tuple thus starts above the old one's sequence space, which lets a SYN end TIME_WAIT safely.</summary>
    internal uint NewIss(in TcpKey key)
    {
        ulong h = _issSecret;
        h = Mix(h ^ key.Local.High) ^ key.Local.Low;
        h = Mix(h) ^ key.Remote.High;
        h = Mix(h) ^ key.Remote.Low;
        h = Mix(h) ^ ((ulong)key.LocalPort << 16 | key.RemotePort);
        h = Mix(h);
        return (uint)(Scheduler.Now / (4 * Time.Microsecond)) + (uint)(h >> 32);
    }

    private static ulong Mix(ulong z)
    {
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    // ---- control segments -------------------------------------------------------------------

    /// <summary>RFC 9293 3.10.7.1: a segment for a CLOSED port.</summary>
    internal void ResetForUnknown(ref TcpRepr seg, int payloadLength, IpAddress source, IpAddress destination)
    {
        if ((seg.Flags & TcpFlags.Rst) != 0) return;
        if ((seg.Flags & TcpFlags.Ack) != 0)
        {
            SendControl(destination, seg.DestinationPort, source, seg.SourcePort, seg.Ack, 0, TcpFlags.Rst);
        }
        else
        {
            uint len = (uint)payloadLength + ((seg.Flags & TcpFlags.Syn) != 0 ? 1u : 0) + ((seg.Flags & TcpFlags.Fin) != 0 ? 1u : 0);
            SendControl(destination, seg.DestinationPort, source, seg.SourcePort, 0, seg.Seq + len, TcpFlags.Rst | TcpFlags.Ack,
                refusesSyn: (seg.Flags & TcpFlags.Syn) != 0);
        }
    }

    /// <summary>Sends a bare control segment (RST) that belongs to no connection.</summary>
    /// <param name="refusesSyn">The RST answers a SYN to a closed port: fires tcp:::accept-refused.</param>
    internal void SendControl(IpAddress local, ushort localPort, IpAddress remote, ushort remotePort, uint seq, uint ack, TcpFlags flags, bool refusesSyn = false)
    {
        var repr = new TcpRepr { SourcePort = localPort, DestinationPort = remotePort, Seq = seq, Ack = ack, Flags = flags };
        var p = RentSegment(repr.HeaderLength);
        if (p == null) return;
        repr.TryEmit(p.Data, out _);
        if ((flags & TcpFlags.Rst) != 0) Stats.OutRsts++;
        if (refusesSyn && Probes.TcpAcceptRefused.Enabled) FireSegment(Probes.TcpAcceptRefused, p.Data, local, remote, null);
        Transmit(p, local, remote);
    }

    /// <summary>Rents a packet for a segment of <paramref name="length"/> bytes with the IP layer's headroom in front.</summary>
    internal Packet? RentSegment(int length)
    {
        int extra = Math.Max(0, Ip.HeaderRoom - Packet.Headroom);
        var p = Ip.Pool.Rent(extra + length);
        if (p == null) { Stats.PacketPoolExhausted++; return null; }
        if (extra > 0) p.TrimFront(extra);
        Debug.Assert(p.Offset >= Ip.HeaderRoom);
        return p;
    }

    /// <summary>Rents a packet for a large-send segment (TcpConnection.Output; the pool has a buffer:
    /// PacketPool.LsoAvailable was asked first).</summary>
    internal Packet? RentLsoSegment(int length)
    {
        int extra = Math.Max(0, Ip.HeaderRoom - Packet.Headroom);
        var p = Ip.Pool.RentLso(extra + length);
        if (p == null) { Stats.PacketPoolExhausted++; return null; }
        if (extra > 0) p.TrimFront(extra);
        return p;
    }

    /// <summary>The most payload one send may carry toward <paramref name="remote"/> with segments of
    /// <paramref name="mss"/> bytes: a whole number of segments in the largest large-send IP packet
    /// the route allows (room left for the IP header and TCP options), or one segment without.</summary>
    internal int SendChunk(IpAddress remote, int mss)
    {
        int ipMax = Ip.LsoMax(remote);
        int room = ipMax - (remote.IsV4 ? 20 : 40) - 60;
        int n = Math.Min(room / mss, ushort.MaxValue / mss);
        return ipMax > 0 && n > 1 && mss <= ushort.MaxValue ? n * mss : mss;
    }

    /// <summary>Fills the checksum (or leaves it pending for the MAC layer) and hands the segment to
    /// the IP layer.</summary>
    internal void Transmit(Packet p, IpAddress local, IpAddress remote, TcpConnection? conn = null)
    {
        TcpView.TryCreate(p.Data, out var view);
        // illumos's tcp_send_data for a connection's segment, tcp_xmit_early_reset for a reset of none.
        var send = conn != null ? Probes.TcpSend : Probes.TcpSendNoConnection;
        if (send.Enabled) FireSegment(send, p.Data, local, remote, conn);
        // An active open's SYN (not SYN-ACK) is also a connection request.
        if (Probes.TcpConnectRequest.Enabled && conn != null && view.Flags == TcpFlags.Syn)
            FireSegment(Probes.TcpConnectRequest, p.Data, local, remote, conn);
        if (Ip.ChecksumOffload)
        {
            view.FillPseudoHeaderSum(local, remote);
            p.SetChecksumPending(0, p.Length, TcpView.ChecksumOffset);
        }
        else
        {
            view.FillChecksum(local, remote);
        }
        Stats.OutSegs++;
        if (conn != null) Ip.Send(p, local, remote, IpProtocol.Tcp, conn.Path);
        else Ip.Send(p, local, remote, IpProtocol.Tcp);
    }

    /// <summary>The MSS to announce toward <paramref name="remote"/>: path MTU minus IP and TCP headers.</summary>
    internal int LocalMss(IpAddress remote)
    {
        int mtu = Ip.PathMtu(remote);
        int mss = mtu - (remote.IsV4 ? 20 : 40) - TcpView.MinHeaderLength;
        return Math.Clamp(mss, 64, PacketPool.LargeSize - 128);
    }
}
