using SmartOS.Kernel.Wire;

namespace SmartOS.Netstack.Tcp;

/// <summary>
/// A listening socket: LISTEN (RFC 9293 3.10.7.2) with a bounded half-open list and a bounded
/// accept queue (TcpProtocol.cs rules 3 and 4).
/// </summary>
public sealed class TcpListener
{
    private readonly TcpProtocol _tcp;
    private readonly LinkedList<TcpConnection> _halfOpen = new();
    private readonly LinkedList<TcpConnection> _ready = new();
    private readonly LoopOperation<TcpSocket> _acceptOp;
    private bool _listening;
    private bool _closed;

    public TcpListener(TcpProtocol tcp)
    {
        _tcp = tcp;
        _acceptOp = new LoopOperation<TcpSocket>(tcp, ResolveAccept);
        SendBufferSize = tcp.Config.SendBufferSize;
        ReceiveBufferSize = tcp.Config.ReceiveBufferSize;
    }

    /// <summary>Send buffer size of accepted connections.</summary>
    public int SendBufferSize { get; set; }

    /// <summary>Receive buffer size of accepted connections (sets the window scale they offer).</summary>
    public int ReceiveBufferSize { get; set; }

    /// <summary>TCP_NODELAY for accepted connections.</summary>
    public bool NoDelay { get; set; }

    public IpAddress LocalAddress { get; private set; }
    public ushort LocalPort { get; private set; }
    public int Backlog { get; private set; }

    /// <summary>SYN_RECEIVED connections waiting for the handshake to finish.</summary>
    public int HalfOpenCount => _halfOpen.Count;

    /// <summary>Established connections waiting for AcceptAsync.</summary>
    public int QueuedCount => _ready.Count;

    /// <summary>Binds and listens. Port 0 picks an ephemeral port. Throws EADDRINUSE or EADDRNOTAVAIL.</summary>
    public void Listen(IpAddress address, ushort port, int backlog = 128)
    {
        if (_listening || _closed || !TcpSocket.ValidBufferSize(SendBufferSize) || !TcpSocket.ValidBufferSize(ReceiveBufferSize))
            throw new TcpException(TcpError.EINVAL);
        var error = _tcp.AddListener(this, address, ref port);
        if (error != TcpError.None) throw new TcpException(error);
        LocalAddress = address;
        LocalPort = port;
        Backlog = Math.Clamp(backlog, 1, _tcp.Config.MaxBacklog);
        _listening = true;
    }

    public ValueTask<TcpSocket> AcceptAsync() => _acceptOp.Start();

    /// <summary>Stops listening; connections not yet accepted are reset.</summary>
    public void Close()
    {
        if (_closed) return;
        _closed = true;
        if (_listening) _tcp.RemoveListener(this);
        while (_halfOpen.First is { } h) h.Value.Abort();
        while (_ready.First is { } r) r.Value.Abort();
        _acceptOp.Wake();
    }

    internal void Input(ref TcpRepr seg, int payloadLength, IpAddress source, IpAddress destination)
    {
        var flags = seg.Flags;
        if ((flags & TcpFlags.Rst) != 0) return;
        if ((flags & TcpFlags.Ack) != 0)
        {
            _tcp.ResetForUnknown(ref seg, payloadLength, source, destination);
            return;
        }
        if ((flags & TcpFlags.Syn) == 0) return;
        var stats = _tcp.Stats;
        if (_ready.Count >= Backlog)
        {
            stats.ListenDrops++;
            return;
        }
        if (_halfOpen.Count >= _tcp.Config.MaxHalfOpen)
        {
            // Rule 4: drop the oldest half-open connection, silently.
            stats.HalfOpenDrops++;
            _halfOpen.First!.Value.Drop(TcpError.None);
        }
        var conn = new TcpConnection(_tcp, new TcpKey(destination, seg.DestinationPort, source, seg.SourcePort),
            SendBufferSize, ReceiveBufferSize) { Listener = this, NoDelay = NoDelay };
        if (!conn.ChargeObject())
        {
            stats.ListenDrops++;
            return;
        }
        _tcp.TryAddConnection(conn);
        conn.ListenerNode = _halfOpen.AddLast(conn);
        conn.OpenPassive(ref seg);
    }

    /// <summary>The handshake completed. False when the accept queue is full: the caller drops the
    /// ACK and stays in SYN_RECEIVED, so its SYN-ACK retransmission gives the client another try
    /// (Linux's default, tcp_abort_on_overflow=0).</summary>
    internal bool OnEstablished(TcpConnection conn)
    {
        if (_ready.Count >= Backlog)
        {
            _tcp.Stats.ListenDrops++;
            return false;
        }
        if (conn.ListenerNode != null) _halfOpen.Remove(conn.ListenerNode);
        conn.ListenerNode = _ready.AddLast(conn);
        _acceptOp.Wake();
        return true;
    }

    internal void OnDropped(TcpConnection conn)
    {
        if (conn.ListenerNode != null) conn.ListenerNode.List!.Remove(conn.ListenerNode);
        conn.ListenerNode = null;
        conn.Listener = null;
    }

    private bool ResolveAccept(out TcpSocket result)
    {
        result = null!;
        if (_ready.First is { } node)
        {
            _ready.RemoveFirst();
            var conn = node.Value;
            conn.ListenerNode = null;
            conn.Listener = null;
            result = new TcpSocket(_tcp, conn);
            return true;
        }
        if (_closed || !_listening) throw new TcpException(TcpError.EINVAL);
        return false;
    }
}
