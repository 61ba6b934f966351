using SmartOS.Kernel.Wire;

namespace SmartOS.Netstack.Tcp;

/// <summary>
/// A TCP socket for a program in a zone. Every call is async and its continuation runs on the
/// host's loop (TcpProtocol.cs rule 6). SendAsync completes once all its bytes are in the send
/// buffer (backpressure: it waits while the buffer is full); ReceiveAsync returns at least one
/// byte, or 0 at end of stream. Errors are <see cref="TcpException"/>s with errno names.
/// </summary>
public sealed class TcpSocket
{
    private readonly TcpProtocol _tcp;
    private TcpConnection? _conn;
    private readonly LoopOperation<bool> _connectOp;
    private readonly LoopOperation<int> _sendOp;
    private readonly LoopOperation<int> _recvOp;
    private ReadOnlyMemory<byte> _sendData;
    private int _sendDone;
    private Memory<byte> _recvBuffer;
    private bool _closed;
    private bool _noDelay;
    private bool _keepAlive;

    public TcpSocket(TcpProtocol tcp)
    {
        _tcp = tcp;
        _connectOp = new LoopOperation<bool>(tcp, ResolveConnect);
        _sendOp = new LoopOperation<int>(tcp, ResolveSend);
        _recvOp = new LoopOperation<int>(tcp, ResolveReceive);
        SendBufferSize = tcp.Config.SendBufferSize;
        ReceiveBufferSize = tcp.Config.ReceiveBufferSize;
    }

    internal TcpSocket(TcpProtocol tcp, TcpConnection accepted) : this(tcp)
    {
        _conn = accepted;
        accepted.Socket = this;
        _noDelay = accepted.NoDelay;
    }

    /// <summary>Send buffer size in bytes; set before ConnectAsync.</summary>
    public int SendBufferSize { get; set; }

    /// <summary>Receive buffer size in bytes (sets the window scale); set before ConnectAsync.</summary>
    public int ReceiveBufferSize { get; set; }

    /// <summary>TCP_NODELAY: disables Nagle's algorithm.</summary>
    public bool NoDelay
    {
        get => _noDelay;
        set { _noDelay = value; if (_conn != null) _conn.NoDelay = value; }
    }

    /// <summary>SO_KEEPALIVE.</summary>
    public bool KeepAlive
    {
        get => _keepAlive;
        set { _keepAlive = value; if (_conn != null) _conn.KeepAlive = value; }
    }

    public TcpState State => _conn?.State ?? TcpState.Closed;
    public IpAddress LocalAddress => _conn?.Key.Local ?? default;
    public ushort LocalPort => _conn?.Key.LocalPort ?? 0;
    public IpAddress RemoteAddress => _conn?.Key.Remote ?? default;
    public ushort RemotePort => _conn?.Key.RemotePort ?? 0;

    /// <summary>Bytes waiting to be read.</summary>
    public int Available => _conn?.Readable ?? 0;

    /// <summary>Bytes in the send buffer (unsent or unacknowledged).</summary>
    public int SendQueued => _conn?.SendQueued ?? 0;

    /// <summary>The congestion window in bytes (iperf's Cwnd column; TCP_INFO tcpi_snd_cwnd).</summary>
    public long CongestionWindow => _conn?.CongestionWindow ?? 0;

    /// <summary>Segments retransmitted on this connection (TCP_INFO tcpi_total_retrans).</summary>
    public long Retransmits => _conn?.Retransmits ?? 0;

    /// <summary>The MSS in use toward the peer.</summary>
    public int Mss => _conn?.EffectiveMss ?? 0;

    internal TcpConnection? Connection => _conn;

    /// <summary>The buffer of the receive waiting for data (empty when none waits): the connection may
    /// copy in-order bytes straight into it (ReceiveRing.TryPlace); they are its to fill until the
    /// receive completes.</summary>
    internal Span<byte> PendingReceiveBuffer => _recvOp.Pending && !_closed ? _recvBuffer.Span : default;

    /// <summary>Connects; fails with ECONNREFUSED, ETIMEDOUT, ENETUNREACH, EADDRINUSE or ENOBUFS.
    /// <paramref name="localPort"/> 0 picks an ephemeral port; a fixed one allows simultaneous open.</summary>
    public ValueTask ConnectAsync(IpAddress remote, ushort port, ushort localPort = 0)
    {
        if (_closed) throw new TcpException(TcpError.EINVAL);
        if (_conn != null) throw new TcpException(TcpError.EISCONN);
        if (port == 0 || remote.IsUnspecified || remote.IsMulticast || !ValidBufferSize(SendBufferSize) || !ValidBufferSize(ReceiveBufferSize))
            throw new TcpException(TcpError.EINVAL);
        if (!_tcp.Ip.TrySelectSource(remote, out var local)) throw new TcpException(TcpError.ENETUNREACH);
        if (localPort == 0 && !_tcp.TryEphemeral(local, remote, port, out localPort)) throw new TcpException(TcpError.EADDRINUSE);
        var conn = new TcpConnection(_tcp, new TcpKey(local, localPort, remote, port), SendBufferSize, ReceiveBufferSize)
        {
            NoDelay = _noDelay,
            Socket = this,
        };
        var error = conn.OpenActive();
        if (error != TcpError.None) throw new TcpException(error);
        _conn = conn;
        conn.KeepAlive = _keepAlive;
        return _connectOp.StartVoid();
    }

    /// <summary>Copies all of <paramref name="data"/> into the send buffer, waiting while it is full.</summary>
    public ValueTask<int> SendAsync(ReadOnlyMemory<byte> data)
    {
        _sendData = data;
        _sendDone = 0;
        return _sendOp.Start();
    }

    /// <summary>Receives at least one byte into <paramref name="buffer"/>; 0 means the peer closed its side.</summary>
    public ValueTask<int> ReceiveAsync(Memory<byte> buffer)
    {
        _recvBuffer = buffer;
        return _recvOp.Start();
    }

    /// <summary>SHUT_WR: sends FIN after the queued data; receiving goes on.</summary>
    public void Shutdown()
    {
        if (_conn == null) throw new TcpException(TcpError.ENOTCONN);
        _conn.Shutdown();
    }

    /// <summary>Closes gracefully (FIN after queued data; RST if received data was never read).</summary>
    public void Close()
    {
        if (_closed) return;
        _closed = true;
        var c = _conn;
        if (c != null)
        {
            if (c.State == TcpState.Closed) c.ReleaseClosed();
            else c.Close();
        }
        Wake();
    }

    /// <summary>Resets the connection at once (SO_LINGER with a zero timeout).</summary>
    public void Abort()
    {
        if (_closed) return;
        _closed = true;
        var c = _conn;
        if (c != null)
        {
            c.Socket = null;
            c.Abort();
            c.ReleaseClosed();
        }
        Wake();
    }

    /// <summary>Buffer sizes from 1 KiB to 64 MiB (window scale 14 would allow 1 GiB; zones cap memory anyway).</summary>
    internal static bool ValidBufferSize(int size) => size is >= 1024 and <= 64 << 20;

    internal void Wake()
    {
        _connectOp.Wake();
        _sendOp.Wake();
        _recvOp.Wake();
    }

    private bool ResolveConnect(out bool result)
    {
        result = true;
        var c = _conn!;
        if (_closed) throw new TcpException(TcpError.ECONNABORTED);
        if (c.State == TcpState.Closed) throw new TcpException(c.Error == TcpError.None ? TcpError.ECONNREFUSED : c.Error);
        return c.State >= TcpState.Established;
    }

    private bool ResolveSend(out int result)
    {
        result = 0;
        var c = _conn;
        if (_closed) throw new TcpException(TcpError.EPIPE);
        if (c == null) throw new TcpException(TcpError.ENOTCONN);
        if (c.State is TcpState.SynSent or TcpState.SynReceived) return false;
        if (!c.CanSend) throw new TcpException(c.Error != TcpError.None ? c.Error : TcpError.EPIPE);
        _sendDone += c.Write(_sendData.Span[_sendDone..]);
        if (_sendDone < _sendData.Length) return false;
        result = _sendDone;
        _sendData = default;
        return true;
    }

    private bool ResolveReceive(out int result)
    {
        result = 0;
        var c = _conn;
        if (_closed) throw new TcpException(TcpError.ECONNABORTED);
        if (c == null) throw new TcpException(TcpError.ENOTCONN);
        if (_recvBuffer.Length == 0) return true;
        if (c.Readable > 0)
        {
            result = c.Read(_recvBuffer.Span);
            _recvBuffer = default;
            return true;
        }
        if (c.State == TcpState.Closed && c.Error != TcpError.None) throw new TcpException(c.Error);
        if (c.ReceiveClosed)
        {
            _recvBuffer = default;
            return true;
        }
        return false;
    }
}
