using System.Threading.Tasks.Sources;
using SmartOS.Kernel;
using SmartOS.Kernel.Wire;

namespace SmartOS.Netstack;

/// <summary>A datagram received by <see cref="UdpSocket.ReceiveFromAsync"/>.</summary>
public readonly record struct UdpReceiveResult(int Length, IpEndpoint From, NetError Error);

/// <summary>A kernel consumer's receive upcall that takes the datagram's packet (UdpSocket.PacketUpcall):
/// its source, the local address it was sent to, and the packet (Data = the payload), now the
/// consumer's to free.</summary>
public delegate void UdpPacketUpcall(IpEndpoint from, IpAddress to, Packet payload);

/// <summary>
/// UDP (RFC 768) for one stack: the port table, checksums over the pseudo-header (optional over
/// IPv4, mandatory over IPv6), port unreachable for closed ports. Sockets keep received packets
/// themselves (no copy until the application reads), bounded per socket.
/// </summary>
internal sealed class UdpLayer : ITransport
{
    public const int EphemeralLow = UdpSocket.EphemeralLow, EphemeralHigh = UdpSocket.EphemeralHigh;

    private readonly IpStack _stack;
    private readonly Dictionary<ushort, List<UdpSocket>> _ports = new();
    internal readonly List<UdpSocket> All = [];

    /// <summary>Sockets with a PacketUpcall: while there are none, IpStack's early demux does not look.</summary>
    internal int PacketUpcalls;

    /// <summary>Whether a socket bound to <paramref name="port"/> takes packets (IpStack rule 1's early demux).</summary>
    internal bool HasPacketUpcall(ushort port)
    {
        if (FindPort(port) is not { } list) return false;
        for (int i = 0; i < list.Count; i++)
            if (list[i].PacketUpcall != null) return true;
        return false;
    }

    public UdpLayer(IpStack stack) { _stack = stack; }

    // The last port looked up and its sockets: the early demux and the receive that follows it, and a
    // stream to one port, find them by one compare. Cleared whenever the port table changes.
    private ushort _lastPort;
    private List<UdpSocket>? _lastList;

    private List<UdpSocket>? FindPort(ushort port)
    {
        if (_lastList != null && _lastPort == port) return _lastList;
        if (!_ports.TryGetValue(port, out var list)) return null;
        _lastPort = port;
        _lastList = list;
        return list;
    }

    /// <summary>Internal listeners by port (the DHCP client); they see a datagram before sockets.</summary>
    internal Func<Packet, IpAddress, IpAddress, ushort, bool>? Port68Hook;

    public NetError Bind(UdpSocket s, IpAddress address, ushort port)
    {
        if (!address.IsUnspecified && !_stack.IsLocalAddress(address) && !address.IsMulticast && !address.IsLoopback)
            return NetError.AddressNotAvailable;
        if (port == 0)
        {
            int span = EphemeralHigh - EphemeralLow + 1;
            int start = _stack.Random.Next(span);
            for (int i = 0; i < span; i++)
            {
                ushort candidate = (ushort)(EphemeralLow + (start + i) % span);
                if (!_ports.ContainsKey(candidate)) { port = candidate; break; }
            }
            if (port == 0) return NetError.AddressInUse;
        }
        else if (_ports.TryGetValue(port, out var list))
        {
            foreach (var o in list)
            {
                // Two sockets may share a port only with distinct specific addresses (no SO_REUSEADDR).
                if (o.Local.Address.IsV4 != address.IsV4 && !o.Local.Address.IsUnspecified && !address.IsUnspecified) continue;
                if (o.Local.Address.IsUnspecified || address.IsUnspecified || o.Local.Address == address) return NetError.AddressInUse;
            }
        }
        _lastList = null;
        if (!_ports.TryGetValue(port, out var l)) _ports[port] = l = [];
        l.Add(s);
        s.Local = new IpEndpoint(address, port);
        return NetError.None;
    }

    public void Unbind(UdpSocket s)
    {
        _lastList = null;
        if (_ports.TryGetValue(s.Local.Port, out var l))
        {
            l.Remove(s);
            if (l.Count == 0) _ports.Remove(s.Local.Port);
        }
        All.Remove(s);
    }

    /// <summary>The socket a datagram goes to: the best match among those bound to its port.</summary>
    internal UdpSocket? FindBest(IpAddress source, ushort sport, IpAddress destination, ushort dport)
    {
        UdpSocket? best = null;
        int bestScore = -1;
        if (FindPort(dport) is { } list)
        {
            for (int i = 0; i < list.Count; i++)
            {
                var s = list[i];
                int score = s.Match(source, sport, destination);
                if (score > bestScore) { best = s; bestScore = score; }
            }
        }
        return best;
    }

    public void Receive(Packet packet, IpAddress source, IpAddress destination)
    {
        var c = _stack.UdpStats;
        var e = UdpRepr.Parse(packet.Data, source, destination, ChecksumCaps.All, out var view, out var udp);
        if (e != WireError.None)
        {
            if (e == WireError.BadChecksum) c.udpInCksumErrs++;
            else c.udpInErrors++;
            packet.Free();
            return;
        }
        ushort dport = udp.DestinationPort, sport = udp.SourcePort;
        int length = view.Length;
        if (dport == DhcpView.ClientPort && Port68Hook != null)
        {
            packet.TrySetLength(length);
            if (Port68Hook(packet, source, destination, sport)) { c.udpInDatagrams++; return; }
        }
        var best = FindBest(source, sport, destination, dport);
        if (best == null)
        {
            c.udpNoPorts++;
            _stack.SendPortUnreachable(packet, source, destination);
            packet.Free();
            return;
        }
        packet.TrySetLength(length);
        if (_stack.Probes.UdpReceive.Enabled) _stack.FireUdp(_stack.Probes.UdpReceive, packet.Data, source, destination, best);
        packet.TrimFront(UdpView.HeaderLength);
        if (best.PacketUpcall is { } take)
        {
            c.udpInDatagrams++;
            take(new IpEndpoint(source, sport), destination, packet);
            return;
        }
        if (!best.Enqueue(packet, new IpEndpoint(source, sport)))
        {
            c.udpInOverflows++;
            packet.Free();
            return;
        }
        c.udpInDatagrams++;
    }

    public void ReceiveError(IcmpErrorKind kind, int mtu, IpAddress source, IpAddress destination, ReadOnlySpan<byte> quoted)
    {
        if (!UdpRepr.TryParseQuoted(quoted, out var udp)) return;
        ushort sport = udp.SourcePort, dport = udp.DestinationPort;
        if (!_ports.TryGetValue(sport, out var list)) return;
        foreach (var s in list)
            if (s.IsConnected && s.Remote.Port == dport && s.Remote.Address == destination)
                s.PendingError = kind == IcmpErrorKind.PortUnreachable ? NetError.ConnectionRefused : NetError.HostUnreachable;
    }

    /// <summary>Builds the UDP header (checksum over the pseudo-header) in front of the payload already in place and sends.</summary>
    /// <param name="socket">The sending socket, for udp:::send's udpsinfo_t (null: the stack's own, DHCP).</param>
    /// <param name="path">A kernel consumer's cached path (PathCacheV4), or null for the full lookup.</param>
    public NetError Send(Packet p, IpEndpoint from, IpEndpoint to, byte ttl, IpInterface? via, bool dontFragment, UdpSocket? socket = null, PathCacheV4? path = null)
    {
        if (!p.TryPrepend(UdpRepr.HeaderLength)) { p.Free(); return NetError.NoBufferSpace; }
        var repr = new UdpRepr { SourcePort = from.Port, DestinationPort = to.Port };
        bool emitted = socket is { NoChecksum: true } && to.Address.IsV4 ? repr.TryEmitWithoutChecksum(p.Data) : repr.TryEmit(p.Data, from.Address, to.Address);
        if (!emitted)
        {
            p.Free();
            _stack.UdpStats.udpOutErrors++;
            return NetError.MessageTooLong;
        }
        _stack.UdpStats.udpOutDatagrams++;
        // illumos's udp_output_connected for a connected socket, udp_output_newdst otherwise.
        var sendProbe = socket is { IsConnected: true } ? _stack.Probes.UdpSendConnected : _stack.Probes.UdpSend;
        if (sendProbe.Enabled) _stack.FireUdp(sendProbe, p.Data, from.Address, to.Address, socket);
        bool ok = to.Address.IsV4
            ? _stack.SendV4(p, from.Address, to.Address, IpProtocol.Udp, ttl, dontFragment, via, path: path)
            : _stack.SendV6(p, from.Address, to.Address, IpProtocol.Udp, ttl, via);
        if (!ok) { _stack.UdpStats.udpOutErrors++; return dontFragment ? NetError.MessageTooLong : NetError.NoBufferSpace; }
        return NetError.None;
    }
}

/// <summary>
/// A UDP socket for programs in a zone: Bind (rules: an address must be ours or unspecified, a
/// port is taken unless both sides name distinct addresses; 0 picks an ephemeral port), SendTo,
/// ReceiveFromAsync. Receive completes on the loop (LoopSynchronizationContext) and allocates
/// nothing per datagram: the socket keeps the pooled packet until the program reads it.
/// </summary>
public sealed class UdpSocket : IDisposable, IValueTaskSource<UdpReceiveResult>
{
    /// <summary>Datagrams queued per socket (illumos udp_recv_hiwat is in bytes; this bounds buffers).</summary>
    public const int QueueLimit = 256;
    /// <summary>illumos's udp_smallest_anon_port and udp_largest_anon_port.</summary>
    public const int EphemeralLow = 32768, EphemeralHigh = 65535;
    /// <summary>The largest payload a datagram can carry here (the pool's large buffer less UDP).</summary>
    public const int MaxPayload = PacketPool.LargeSize - UdpView.HeaderLength;

    private readonly IpStack _stack;
    private readonly Queue<(Packet Packet, IpEndpoint From)> _queue = new();
    private ManualResetValueTaskSourceCore<UdpReceiveResult> _core = new() { RunContinuationsAsynchronously = true };
    private Memory<byte> _pendingBuffer;
    private bool _waiting;
    private CancellationTokenRegistration _cancelReg;

    internal UdpSocket(IpStack stack) { _stack = stack; }

    public IpEndpoint Local { get; internal set; }
    public IpEndpoint Remote { get; private set; }
    public bool IsBound { get; private set; }
    public bool IsConnected { get; private set; }
    public bool IsClosed { get; private set; }
    /// <summary>TTL / hop limit for datagrams sent (0: the stack default). traceroute sets it.</summary>
    public byte Ttl { get; set; }
    /// <summary>Set DF on IPv4 datagrams (IP_DONTFRAG).</summary>
    public bool DontFragment { get; set; }
    /// <summary>Send through this interface, on-link (IP_BOUND_IF): DHCP servers, limited broadcast.</summary>
    public IpInterface? BoundInterface { get; set; }
    public int QueuedDatagrams => _queue.Count;
    /// <summary>An asynchronous error from ICMP about a connected peer (port unreachable:
    /// ConnectionRefused); the next Send returns it once, as a socket reports so_error.</summary>
    public NetError PendingError { get; internal set; }

    /// <summary>Binds to an address (unspecified: any) and port (0: ephemeral).</summary>
    public NetError Bind(IpAddress address, ushort port)
    {
        if (IsClosed) return NetError.Closed;
        if (IsBound) return NetError.InvalidArgument;
        var e = _stack.Udp.Bind(this, address, port);
        if (e == NetError.None) IsBound = true;
        return e;
    }

    /// <summary>Fixes the peer: only its datagrams are received; SendTo may omit it.</summary>
    public NetError Connect(IpEndpoint remote)
    {
        if (IsClosed) return NetError.Closed;
        if (!IsBound)
        {
            var e = Bind(remote.Address.IsV4 ? IpAddress.AnyV4 : IpAddress.AnyV6, 0);
            if (e != NetError.None) return e;
        }
        Remote = remote;
        IsConnected = true;
        return NetError.None;
    }

    internal int Match(IpAddress source, ushort sport, IpAddress destination)
    {
        var la = Local.Address;
        if (!la.IsUnspecified && la != destination) return -1;
        if (la.IsUnspecified && la.IsV4 != destination.IsV4 && la.IsV4) return -1;
        if (IsConnected && (Remote.Address != source || Remote.Port != sport)) return -1;
        return (la.IsUnspecified ? 0 : 2) + (IsConnected ? 4 : 0);
    }

    /// <summary>Sends one datagram. Errors come back at once (no route, too long, no buffers).</summary>
    public NetError SendTo(ReadOnlySpan<byte> data, IpEndpoint to)
    {
        if (IsClosed) return NetError.Closed;
        if (data.Length > MaxPayload - (to.Address.IsV4 ? 0 : 0)) return NetError.MessageTooLong;
        if (to.Port == 0) return NetError.InvalidArgument;
        if (!IsBound)
        {
            var e = Bind(to.Address.IsV4 ? IpAddress.AnyV4 : IpAddress.AnyV6, 0);
            if (e != NetError.None) return e;
        }
        var src = Local.Address;
        if (src.IsUnspecified || src.IsV4 != to.Address.IsV4)
        {
            if (BoundInterface != null)
            {
                var a = _stack.InterfaceAddress(BoundInterface, to.Address.IsV4, toward: to.Address);
                src = a?.Address ?? (to.Address.IsV4 ? IpAddress.AnyV4 : IpAddress.AnyV6);
            }
            else if (to.Address == IpAddress.BroadcastV4 || to.Address.IsMulticast)
            {
                src = IpAddress.AnyV4;
            }
            else if (!_stack.TrySelectSource(to.Address, out src))
                return to.Address.IsV4 ? NetError.NetworkUnreachable : NetError.HostUnreachable;
        }
        var p = _stack.Pool.Rent(data.Length);
        if (p == null) return NetError.NoBufferSpace;
        data.CopyTo(p.Data);
        return _stack.Udp.Send(p, new IpEndpoint(src, Local.Port), to, Ttl == 0 ? _stack.DefaultTtl : Ttl, BoundInterface, DontFragment, this);
    }

    /// <summary>Sends IPv4 datagrams with no checksum (zero, RFC 768), as VXLAN's outer UDP should
    /// (RFC 7348 section 5). IPv6 datagrams always carry one.</summary>
    public bool NoChecksum { get; set; }

    /// <summary>A kernel consumer's receive upcall (illumos ksocket's callback; the overlay's VXLAN
    /// underlay): when set, each datagram for the socket is handed to it on the loop, instead of
    /// being queued, with its source, the local address it was sent to and its packet (Data = the
    /// payload), which the consumer then owns: the overlay decapsulates in place (vnic/Overlay.cs
    /// rule 6). The stack demuxes such a socket's port early (IpStack.cs rule 1).</summary>
    public UdpPacketUpcall? PacketUpcall
    {
        get => _packetUpcall;
        set
        {
            if ((value != null) != (_packetUpcall != null) && !IsClosed) _stack.Udp.PacketUpcalls += value != null ? 1 : -1;
            _packetUpcall = value;
        }
    }
    private UdpPacketUpcall? _packetUpcall;

    /// <summary>What <see cref="SendFrom(Packet, IpAddress, ushort, IpEndpoint)"/> needs in front of
    /// the payload to send it in place over IPv4: UDP, IPv4, Ethernet and an 802.1Q tag pushed where
    /// the frame leaves. A payload with less headroom (or over IPv6) is copied.</summary>
    public const int SendHeadroomV4 = UdpView.HeaderLength + Ipv4Repr.HeaderLength + EthernetView.HeaderLength + 4;

    /// <summary>The same as <see cref="SendFrom(ReadOnlySpan{byte}, IpAddress, ushort, IpEndpoint)"/>
    /// for a payload already in a packet (Data = the payload), sent in place: the headers are
    /// prepended into its headroom (no copy when it has <see cref="SendHeadroomV4"/>). Consumes it.</summary>
    public NetError SendFrom(Packet payload, IpAddress source, ushort sourcePort, IpEndpoint to)
    {
        var e = CheckSendFrom(payload.Length, source, sourcePort, to);
        if (e != NetError.None)
        {
            payload.Free();
            return e;
        }
        var p = payload;
        if (p.Offset < SendHeadroomV4 || !to.Address.IsV4)
        {
            p = _stack.Pool.Rent(payload.Data);
            payload.Free();
            if (p == null) return NetError.NoBufferSpace;
        }
        byte ttl = Ttl == 0 ? _stack.DefaultTtl : Ttl;
        // The common VXLAN datagram: its headers written in one go over the cached path (IpStack.TrySendUdpCached).
        if (NoChecksum && BoundInterface == null && to.Address.IsV4 && _stack.TrySendUdpCached(p, source, sourcePort, to, ttl, DontFragment, _path))
            return NetError.None;
        return _stack.Udp.Send(p, new IpEndpoint(source, sourcePort), to, ttl, BoundInterface, DontFragment, this, _path);
    }

    // The last destination's resolved path (PathCacheV4), for the in-place sends of a kernel consumer.
    private readonly PathCacheV4 _path = new();

    /// <summary>In-place sends that used the cached path and those that looked it up (PathCacheV4).</summary>
    public (long Hits, long Misses) PathCacheStats => (_path.Hits, _path.Misses);

    private NetError CheckSendFrom(int length, IpAddress source, ushort sourcePort, IpEndpoint to)
    {
        if (IsClosed) return NetError.Closed;
        if (length > MaxPayload) return NetError.MessageTooLong;
        if (to.Port == 0 || sourcePort == 0 || source.IsV4 != to.Address.IsV4) return NetError.InvalidArgument;
        if (!_stack.IsLocalAddress(source)) return NetError.AddressNotAvailable;
        return NetError.None;
    }

    /// <summary>Sends from an explicit local address and source port, for a kernel consumer whose
    /// source port varies per flow (VXLAN, RFC 7348 section 5). The address must be one of the
    /// stack's (AddressNotAvailable otherwise).</summary>
    public NetError SendFrom(ReadOnlySpan<byte> data, IpAddress source, ushort sourcePort, IpEndpoint to)
    {
        var e = CheckSendFrom(data.Length, source, sourcePort, to);
        if (e != NetError.None) return e;
        var p = _stack.Pool.Rent(data.Length);
        if (p == null) return NetError.NoBufferSpace;
        data.CopyTo(p.Data);
        return _stack.Udp.Send(p, new IpEndpoint(source, sourcePort), to, Ttl == 0 ? _stack.DefaultTtl : Ttl, BoundInterface, DontFragment, this);
    }

    public NetError Send(ReadOnlySpan<byte> data)
    {
        if (!IsConnected) return NetError.InvalidArgument;
        var pending = PendingError;
        if (pending != NetError.None)
        {
            PendingError = NetError.None;
            return pending;
        }
        return SendTo(data, Remote);
    }

    internal bool Enqueue(Packet p, IpEndpoint from)
    {
        if (IsClosed) return false;
        if (_waiting)
        {
            _waiting = false;
            _cancelReg.Dispose();
            int n = Math.Min(p.Length, _pendingBuffer.Length);
            p.Data[..n].CopyTo(_pendingBuffer.Span);
            p.Free();
            _pendingBuffer = default;
            _core.SetResult(new UdpReceiveResult(n, from, NetError.None));
            return true;
        }
        if (_queue.Count >= QueueLimit) return false;
        if (!_stack.TryCharge(p)) return false; // the zone's memory cap (counted as an overflow)
        _queue.Enqueue((p, from));
        return true;
    }

    /// <summary>Non-blocking receive: false when nothing is queued.</summary>
    public bool TryReceiveFrom(Span<byte> buffer, out int length, out IpEndpoint from)
    {
        if (_queue.Count == 0) { length = 0; from = default; return false; }
        var (p, f) = _queue.Dequeue();
        _stack.Uncharge(p);
        length = Math.Min(p.Length, buffer.Length);
        p.Data[..length].CopyTo(buffer);
        p.Free();
        from = f;
        return true;
    }

    /// <summary>Receives one datagram (truncated to the buffer, as recvfrom does). Completes with
    /// NetError.Closed when the socket closes and NetError.Cancelled on cancellation.</summary>
    public ValueTask<UdpReceiveResult> ReceiveFromAsync(Memory<byte> buffer, CancellationToken cancel = default)
    {
        if (IsClosed) return new ValueTask<UdpReceiveResult>(new UdpReceiveResult(0, default, NetError.Closed));
        if (_waiting) return new ValueTask<UdpReceiveResult>(new UdpReceiveResult(0, default, NetError.InvalidArgument));
        if (TryReceiveFrom(buffer.Span, out int n, out var from))
            return new ValueTask<UdpReceiveResult>(new UdpReceiveResult(n, from, NetError.None));
        if (!IsBound) return new ValueTask<UdpReceiveResult>(new UdpReceiveResult(0, default, NetError.InvalidArgument));
        _core.Reset();
        _waiting = true;
        _pendingBuffer = buffer;
        if (cancel.CanBeCanceled)
        {
            // The cancellation callback may come from any thread; hand it to the loop.
            var ctx = SynchronizationContext.Current;
            _cancelReg = cancel.Register(static s =>
            {
                var (sock, c) = ((UdpSocket, SynchronizationContext?))s!;
                if (c != null) c.Post(static o => ((UdpSocket)o!).CompleteWaiter(NetError.Cancelled), sock);
                else sock.CompleteWaiter(NetError.Cancelled);
            }, (this, ctx));
        }
        return new ValueTask<UdpReceiveResult>(this, _core.Version);
    }

    private void CompleteWaiter(NetError error)
    {
        if (!_waiting) return;
        _waiting = false;
        _pendingBuffer = default;
        _core.SetResult(new UdpReceiveResult(0, default, error));
    }

    public void Dispose()
    {
        if (IsClosed) return;
        PacketUpcall = null;
        IsClosed = true;
        _stack.Udp.Unbind(this);
        while (_queue.Count > 0)
        {
            var q = _queue.Dequeue().Packet;
            _stack.Uncharge(q);
            q.Free();
        }
        _cancelReg.Dispose();
        CompleteWaiter(NetError.Closed);
    }

    UdpReceiveResult IValueTaskSource<UdpReceiveResult>.GetResult(short token) => _core.GetResult(token);
    ValueTaskSourceStatus IValueTaskSource<UdpReceiveResult>.GetStatus(short token) => _core.GetStatus(token);
    void IValueTaskSource<UdpReceiveResult>.OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags)
        => _core.OnCompleted(continuation, state, token, flags);
}

public sealed partial class IpStack
{
    /// <summary>A new, unbound UDP socket.</summary>
    public UdpSocket OpenUdpSocket()
    {
        var s = new UdpSocket(this);
        Udp.All.Add(s);
        return s;
    }

    /// <summary>UDP sockets for netstat -an.</summary>
    public IReadOnlyList<UdpSocket> UdpSockets => Udp.All;
}
