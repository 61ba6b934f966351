using System.Diagnostics;
using SmartOS.Kernel;
using SmartOS.Kernel.Wire;

namespace SmartOS.Netstack.Tcp;

/// <summary>
/// One transmission control block (RFC 9293 section 3.3.1); see TcpProtocol.cs for the theory.
/// Split by concern: this file holds state, opening, closing and timers; TcpConnection.Input.cs
/// the segment-arrival rules of RFC 9293 section 3.10.7; TcpConnection.Output.cs segmentation,
/// congestion control and retransmission.
/// </summary>
internal sealed partial class TcpConnection
{
    private enum TimerMode : byte { None, Retransmit, Persist, TimeWait, FinWait2 }

    // Bytes charged to the memory account for a connection object itself (rule 3).
    internal const int ObjectCharge = 1024;

    private readonly TcpProtocol _tcp;
    private readonly TcpConfig _cfg;
    private readonly TcpStats _stats;
    private readonly Scheduler _sched;
    private readonly KTimer _rtxTimer;
    private readonly KTimer _delAckTimer;
    private readonly KTimer _keepTimer;
    private TimerMode _timerMode;

    public readonly TcpKey Key;
    /// <summary>The path its segments last took to an IPv4 peer (TcpProtocol.cs, data path: send).</summary>
    internal readonly PathCacheV4 Path = new();
    public TcpListener? Listener;
    public LinkedListNode<TcpConnection>? ListenerNode;
    public TcpSocket? Socket;
    public TcpError Error;
    public bool NoDelay;
    private bool _keepAlive;
    private bool _orphaned;

    private readonly int _sendBufferSize;
    private readonly int _recvBufferSize;
    private SendRing? _send;
    private ReceiveRing? _recv;
    private long _charged;

    // Send sequence space (RFC 9293 3.3.1). SND.MAX is the highest sequence sent so far.
    private uint _iss, _sndUna, _sndNxt, _sndMax, _sndWl1, _sndWl2;
    private long _sndWnd;
    private long _maxSndWnd;
    private uint _sndBufSeq;            // sequence number of the first byte in the send ring
    private bool _finQueued;
    private int _sndMss;                // payload bytes per full segment (after timestamp option)
    private int _sndChunk;              // payload bytes one send may carry: _sndMss, or a large send's (TcpProtocol rule 8)
    private int _peerMss;
    private byte _sndScale, _rcvScale;
    private bool _wsOk, _tsOk, _sackOk;
    private uint _tsRecent, _tsOffset, _lastAckSent, _tsRtoFloor;

    // Receive sequence space.
    private uint _irs, _rcvNxt, _rcvAdv;
    private bool _finReceived;
    private bool _oooFin;
    private uint _oooFinSeq;
    private bool _ackNow;

    // Deferred ACKs, as illumos's tcp_rack_cnt, tcp_rack_cur_max and tcp_rack_abs_max: in-order
    // segments received since the last ACK, how many may wait for one now, and the most that ever
    // may (TcpProtocol rule 9). _localNet: the peer is on-link (illumos tcp_localnet).
    private int _rackCnt, _rackCurMax, _rackAbsMax;
    private bool _localNet;

    // Congestion control (RFC 5681, NewReno RFC 6582, SACK recovery after RFC 6675; CUBIC in TcpConnection.Congestion.cs).
    private long _cwnd, _ssthresh, _caBytes;
    // In the slow start a retransmission timeout began: each ACK opens the window by at most one
    // segment (RFC 3465 2.3; illumos's CCF_RTO), until the window reaches ssthresh.
    private bool _rtoSlowStart;
    private int _dupAcks;
    private bool _inRecovery;
    private uint _recover, _highRxt;
    private readonly SackScoreboard _sacks = new();
    private bool _undoArmed;
    private uint _undoTsVal;
    private long _undoCwnd, _undoSsthresh;
    private double _undoWMax;

    // Round-trip time and retransmission timer (RFC 6298).
    private long _srtt, _rttvar, _rto;
    private bool _hasRtt;
    private bool _rttTiming;
    private uint _rttSeq;
    private long _rttStart;
    private int _backoff;
    private int _retries;
    private long _lastReceive;
    private int _keepProbes;

    public TcpConnection(TcpProtocol tcp, TcpKey key, int sendBufferSize, int recvBufferSize)
    {
        _tcp = tcp;
        _cfg = tcp.Config;
        _stats = tcp.Stats;
        _sched = tcp.Scheduler;
        Key = key;
        _sendBufferSize = sendBufferSize;
        _recvBufferSize = recvBufferSize;
        _rtxTimer = new KTimer(_sched, static s => ((TcpConnection)s!).OnRtxTimer(), this);
        _delAckTimer = new KTimer(_sched, static s => ((TcpConnection)s!).OnDelAckTimer(), this);
        _keepTimer = new KTimer(_sched, static s => ((TcpConnection)s!).OnKeepTimer(), this);
        _rto = _cfg.InitialRto;
        _iss = tcp.NewIss(key);
        _tsOffset = tcp.Ip.Random.NextUInt32();
        _tsRtoFloor = TsNow - (1u << 30);    // no timeout yet: every echo is young enough
        _ssthresh = long.MaxValue / 4;
        _lastReceive = _sched.Now;
        while (_rcvScale < 14 && (recvBufferSize >> _rcvScale) > ushort.MaxValue) _rcvScale++;
    }

    /// <summary>Segments this connection retransmitted (iperf's Retr column).</summary>
    public long Retransmits;

    public TcpConnectionInfo Info => new(Key.Local, Key.LocalPort, Key.Remote, Key.RemotePort, State,
        _send?.Count ?? 0, _recv?.Count ?? 0);

    public bool KeepAlive
    {
        get => _keepAlive;
        set
        {
            _keepAlive = value;
            if (value && IsSynchronized) _keepTimer.ArmAfter(_cfg.KeepaliveIdle);
            else if (!value) _keepTimer.Cancel();
        }
    }

    private bool IsSynchronized => State >= TcpState.Established;
    public int Readable => _recv?.Count ?? 0;
    /// <summary>The peer's last advertised window in bytes (netstat's Swind).</summary>
    public int SendWindow => (int)Math.Min(int.MaxValue, _sndWnd);
    /// <summary>Free space in the receive buffer (netstat's Rwind; before the handshake, the buffer size).</summary>
    public int ReceiveWindow => _recv?.Free ?? _recvBufferSize;
    public bool ReceiveClosed => _finReceived || State == TcpState.Closed;
    public int SendFree => _finQueued || _send == null ? 0 : _send.Free;
    public int SendQueued => _send?.Count ?? 0;
    public int EffectiveMss => _sndMss;
    public long CongestionWindow => _cwnd;
    public long SlowStartThreshold => _ssthresh;
    public long Rto => _rto;
    public long SmoothedRtt => _srtt;
    public byte SendScale => _sndScale;
    public byte ReceiveScale => _rcvScale;
    public bool TimestampsOn => _tsOk;
    public bool SackOn => _sackOk;
    public bool CanSend => State == TcpState.Established || State == TcpState.CloseWait;

    private uint TsNow => (uint)(_sched.Now / Time.Millisecond) + _tsOffset;

    // ---- memory -------------------------------------------------------------------------------

    /// <summary>Allocates the buffers, charging them first (rule 3). False when the account refuses.</summary>
    private bool AllocateBuffers()
    {
        if (_send != null) return true;
        long need = _sendBufferSize + _recvBufferSize;
        if (!_tcp.Memory.TryCharge(need)) { _stats.MemoryRefused++; return false; }
        _charged += need;
        _send = new SendRing(_sendBufferSize);
        _recv = new ReceiveRing(_recvBufferSize, _cfg.MaxOutOfOrderRanges);
        return true;
    }

    internal bool ChargeObject()
    {
        if (!_tcp.Memory.TryCharge(ObjectCharge)) { _stats.MemoryRefused++; return false; }
        _charged += ObjectCharge;
        return true;
    }

    // ---- opening ------------------------------------------------------------------------------

    /// <summary>Active open (RFC 9293 3.10.1): sends a SYN and enters SYN_SENT.</summary>
    public TcpError OpenActive()
    {
        if (!ChargeObject() || !AllocateBuffers()) { ReleaseMemory(); return TcpError.ENOBUFS; }
        if (!_tcp.TryAddConnection(this)) { ReleaseMemory(); return TcpError.EADDRINUSE; }
        _peerMss = _tcp.LocalMss(Key.Remote);
        _sndUna = _iss;
        _sndNxt = _iss;
        _sndMax = _iss;
        _recover = _iss;
        State = TcpState.SynSent;
        _stats.ActiveOpens++;
        SendSyn();
        return TcpError.None;
    }

    /// <summary>Passive open from a listener: the SYN has been checked by the listener.</summary>
    public void OpenPassive(ref TcpRepr syn)
    {
        _irs = syn.Seq;
        _rcvNxt = syn.Seq + 1;
        _sndUna = _iss;
        _sndNxt = _iss;
        _sndMax = _iss;
        _recover = _iss;
        _sndWnd = syn.Window;
        _sndWl1 = syn.Seq;
        _sndWl2 = _iss;
        NegotiateFromSyn(ref syn);
        // The connection is the listener's child: its state-change probe reports LISTEN before
        // SYN_RECEIVED, as illumos's eager tcp_t does.
        _state = TcpState.Listen;
        _passive = true;
        State = TcpState.SynReceived;
        _stats.PassiveOpens++;
        SendSyn();
    }

    private void NegotiateFromSyn(ref TcpRepr syn)
    {
        ref var o = ref syn.Options;
        _peerMss = o.Mss != 0 ? o.Mss : (Key.Remote.IsV4 ? 536 : 1220);
        bool weOfferWs = _cfg.WindowScaling;
        _wsOk = weOfferWs && o.HasWindowScale;
        _sndScale = _wsOk ? o.WindowScale : (byte)0;
        if (!_wsOk) _rcvScale = 0;
        _tsOk = _cfg.Timestamps && o.HasTimestamp;
        if (_tsOk) _tsRecent = o.TsVal;
        _sackOk = _cfg.Sack && o.SackPermitted;
        int mss = Math.Min(_peerMss, _tcp.LocalMss(Key.Remote));
        _sndMss = Math.Max(mss - (_tsOk ? 12 : 0), 16);
        _sndChunk = _tcp.SendChunk(Key.Remote, _sndMss);
        _cwnd = InitialWindow();
    }

    private long InitialWindow() => (long)_cfg.InitialWindowSegments * _sndMss;

    /// <summary>The handshake completed: allocate a passive connection's buffers, leave the listener's half-open list.</summary>
    private bool BecomeEstablished()
    {
        // The accept queue filled while this handshake was in flight: ignore the ACK.
        if (Listener != null && !Listener.OnEstablished(this)) return false;
        if (!AllocateBuffers())
        {
            SendReset(_sndNxt);
            Drop(TcpError.ENOBUFS);
            return false;
        }
        var was = State;
        State = _finQueued ? TcpState.FinWait1 : TcpState.Established;
        FireEstablished(was);
        _stats.CurrEstab++;
        _retries = 0;
        _backoff = 0;
        if (_keepAlive) _keepTimer.ArmAfter(_cfg.KeepaliveIdle);
        // Deferred ACKs (rule 9), as illumos's tcp_rwnd_set: up to 8 segments an ACK toward an
        // on-link peer, 2 through a router, never more than half the receive buffer's segments;
        // the count starts at 0 and grows by one with each ACK it causes.
        _localNet = _tcp.Ip.OnLink(Key.Remote);
        _rackAbsMax = Math.Min(_localNet ? _cfg.LocalDeferredAcksMax : _cfg.DeferredAcksMax, _recvBufferSize / Math.Max(_sndMss, 1) / 2);
        _rackCurMax = 0;
        Socket?.Wake();
        return true;
    }

    // ---- closing ------------------------------------------------------------------------------

    /// <summary>Shutdown of the send side (RFC 9293 3.10.4 CLOSE while the receive side stays open).</summary>
    public void Shutdown()
    {
        switch (State)
        {
            case TcpState.SynSent:
                Drop(TcpError.None);
                return;
            case TcpState.SynReceived:
                // The FIN waits for the handshake (RFC 9293 3.10.4); BecomeEstablished moves on.
                _finQueued = true;
                return;
            case TcpState.Established:
                _finQueued = true;
                State = TcpState.FinWait1;
                break;
            case TcpState.CloseWait:
                _finQueued = true;
                State = TcpState.LastAck;
                break;
            default:
                return;
        }
        Output();
    }

    /// <summary>Close by the application: FIN after queued data, or a RST when unread data would be lost
    /// (RFC 9293 3.10.4 and RFC 2525 section 2.17).</summary>
    public void Close()
    {
        Socket = null;
        _orphaned = true;
        bool unread = _recv != null && _recv.Count > 0 && State is TcpState.Established or TcpState.CloseWait or TcpState.FinWait1 or TcpState.FinWait2;
        if (unread || State == TcpState.SynSent)
        {
            Abort();
            return;
        }
        Shutdown();
        if (State == TcpState.FinWait2) ArmFinWait2();
    }

    /// <summary>ABORT (RFC 9293 3.10.5): a RST in synchronized states, then CLOSED.</summary>
    public void Abort()
    {
        if (State is TcpState.SynReceived or TcpState.Established or TcpState.FinWait1 or TcpState.FinWait2 or TcpState.CloseWait)
            SendReset(_sndNxt);
        Drop(TcpError.ECONNABORTED);
    }

    /// <summary>Removes the connection: cancels its timers, releases its memory, tells the socket.</summary>
    public void Drop(TcpError error)
    {
        if (State == TcpState.Closed && _charged == 0) return;
        if (IsSynchronized && State != TcpState.TimeWait) _stats.CurrEstab--;
        if (error == TcpError.ECONNRESET && (State is TcpState.Established or TcpState.CloseWait)) _stats.EstabResets++;
        if (error != TcpError.None && error != TcpError.ECONNABORTED && State is TcpState.SynSent or TcpState.SynReceived) _stats.AttemptFails++;
        State = TcpState.Closed;
        if (Error == TcpError.None) Error = error;
        _tcp.RemoveConnection(this);
        Listener?.OnDropped(this);
        Release();
        Socket?.Wake();
    }

    private void Release()
    {
        State = TcpState.Closed;
        _rtxTimer.Cancel();
        _delAckTimer.Cancel();
        _keepTimer.Cancel();
        _timerMode = TimerMode.None;
        // The receive ring stays readable after a FIN until the socket is closed.
        if (Socket == null || Error != TcpError.None) ReleaseMemory();
    }

    private void ReleaseMemory()
    {
        _send?.Release();
        _recv?.Release();
        _send = null;
        _recv = null;
        if (_charged > 0) _tcp.Memory.Release(_charged);
        _charged = 0;
    }

    /// <summary>Called by the socket when it is done with a closed connection.</summary>
    public void ReleaseClosed()
    {
        if (State != TcpState.Closed) return;
        Socket = null;
        Release();
    }

    private void EnterTimeWait()
    {
        if (State != TcpState.TimeWait) _stats.CurrEstab--;
        State = TcpState.TimeWait;
        _delAckTimer.Cancel();
        _keepTimer.Cancel();
        _timerMode = TimerMode.TimeWait;
        _rtxTimer.ArmAfter(2 * _cfg.Msl);
        // The send ring is empty (our FIN was acknowledged); the receive ring stays readable
        // until the socket is closed.
        Socket?.Wake();
    }

    /// <summary>Whether a SYN may end this TIME_WAIT (RFC 6191): its timestamp is newer, or without
    /// timestamps its sequence number is beyond what this incarnation received.</summary>
    public bool AcceptsReincarnation(ref TcpRepr seg)
    {
        if ((seg.Flags & (TcpFlags.Syn | TcpFlags.Ack | TcpFlags.Rst)) != TcpFlags.Syn) return false;
        if (_tsOk && seg.Options.HasTimestamp) return Seq.Gt(seg.Options.TsVal, _tsRecent);
        return Seq.Gt(seg.Seq, _rcvNxt);
    }

    private void ArmFinWait2()
    {
        // An orphaned FIN_WAIT_2 must not live forever (Linux tcp_fin_timeout, illumos
        // tcp_fin_wait_2_flush_interval): we give it 2*MSL.
        _timerMode = TimerMode.FinWait2;
        _rtxTimer.ArmAfter(2 * _cfg.Msl);
    }

    // ---- timers -------------------------------------------------------------------------------

    private long CurrentRto() => Math.Min(_rto << Math.Min(_backoff, 20), _cfg.MaxRto);

    private void ArmRetransmit()
    {
        _timerMode = TimerMode.Retransmit;
        _rtxTimer.ArmAfter(CurrentRto());
    }

    private void OnRtxTimer()
    {
        switch (_timerMode)
        {
            case TimerMode.TimeWait:
                _stats.TimeWaitExpired++;
                _timerMode = TimerMode.None;
                State = TcpState.Closed;
                Drop(TcpError.None);
                return;
            case TimerMode.FinWait2:
                Drop(TcpError.None);
                return;
            case TimerMode.Persist:
                PersistProbe();
                return;
            case TimerMode.Retransmit:
                RetransmitTimeout();
                return;
        }
    }

    private void OnDelAckTimer()
    {
        if (_rcvNxt == _lastAckSent || !IsSynchronized || State == TcpState.TimeWait) return;
        if (_rcvNxt - _lastAckSent > (uint)_sndMss)
        {
            // More than a segment waited for the timer: the sender is not sending what the window
            // allows (slow start, an application's pauses). Fall back towards every second segment
            // for good, as illumos's tcp_ack_timer does (RFC 1122 4.2.3.2).
            if (_rackAbsMax > 2) _rackAbsMax--;
            _rackCurMax = 2;
        }
        _stats.OutAckDelayed++;
        SendAck();
    }

    private void OnKeepTimer()
    {
        if (!_keepAlive || !(State is TcpState.Established or TcpState.CloseWait)) return;
        long idle = _sched.Now - _lastReceive;
        if (idle < _cfg.KeepaliveIdle && _keepProbes == 0)
        {
            _keepTimer.ArmAfter(_cfg.KeepaliveIdle - idle);
            return;
        }
        if (_keepProbes >= _cfg.KeepaliveProbes)
        {
            _stats.KeepaliveDrops++;
            Drop(TcpError.ETIMEDOUT);
            return;
        }
        _keepProbes++;
        _stats.KeepaliveProbes++;
        // RFC 9293 3.8.4: a segment with SEG.SEQ = SND.NXT-1 and no data, which elicits an ACK.
        SendSegment(_sndUna - 1, 0, TcpFlags.Ack, isRetransmit: false);
        _keepTimer.ArmAfter(_cfg.KeepaliveInterval);
    }

    private void NoteReceiveForKeepalive()
    {
        _lastReceive = _sched.Now;
        if (_keepProbes > 0)
        {
            _keepProbes = 0;
            if (_keepAlive) _keepTimer.ArmAfter(_cfg.KeepaliveIdle);
        }
    }

    /// <summary>RTT sample (RFC 6298 section 2), in nanoseconds.</summary>
    private void RttSample(long r)
    {
        const long G = Time.Millisecond;
        if (!_hasRtt)
        {
            _hasRtt = true;
            _srtt = r;
            _rttvar = r / 2;
        }
        else
        {
            _rttvar = (3 * _rttvar + Math.Abs(_srtt - r)) / 4;
            _srtt = (7 * _srtt + r) / 8;
        }
        _rto = Math.Clamp(_srtt + Math.Max(G, 4 * _rttvar), _cfg.MinRto, _cfg.MaxRto);
    }

    public void IcmpError(IcmpErrorKind kind, int mtu, uint seq)
    {
        if (kind is IcmpErrorKind.FragmentationNeeded or IcmpErrorKind.PacketTooBig)
        {
            int mss = mtu - (Key.Remote.IsV4 ? 20 : 40) - TcpView.MinHeaderLength - (_tsOk ? 12 : 0);
            if (mss >= 64 && mss < _sndMss)
            {
                _sndMss = mss;
                _sndChunk = _tcp.SendChunk(Key.Remote, _sndMss);
                if (Seq.Le(_sndUna, seq) && Seq.Lt(seq, _sndMax))
                {
                    _sndNxt = _sndUna;
                    Output();
                }
            }
            return;
        }
        // RFC 1122 4.2.3.9: unreachables are soft errors, except that a connection attempt fails on them.
        if (State == TcpState.SynSent && kind is IcmpErrorKind.PortUnreachable or IcmpErrorKind.ProtocolUnreachable)
            Drop(TcpError.ECONNREFUSED);
        else if (State == TcpState.SynSent && kind is IcmpErrorKind.HostUnreachable or IcmpErrorKind.AdminProhibited)
            Drop(TcpError.EHOSTUNREACH);
        else if (State == TcpState.SynSent && kind == IcmpErrorKind.NetUnreachable)
            Drop(TcpError.ENETUNREACH);
    }

    /// <summary>The control block in one line, for diagnostics and failing tests.</summary>
    public override string ToString() =>
        $"{Key.Local}:{Key.LocalPort}-{Key.Remote}:{Key.RemotePort} {State} una={_sndUna - _iss} nxt={_sndNxt - _iss} max={_sndMax - _iss} " +
        $"wnd={_sndWnd} cwnd={_cwnd}{(_rtoSlowStart ? " (after rto)" : "")} ssthresh={_ssthresh} rec={_inRecovery} hrx={_highRxt - _iss} sacks={_sacks.Count} " +
        $"sendq={_send?.Count} fin={_finQueued} rcvnxt={_rcvNxt - _irs} rcvadv={_rcvAdv - _rcvNxt} recvq={_recv?.Count} ooo={_recv?.RangeCount} " +
        $"timer={_timerMode}/{_rtxTimer.IsArmed}@{_rtxTimer.DueTime} now={_sched.Now} rto={_rto} srtt={_srtt} backoff={_backoff} retries={_retries} delack={_delAckTimer.IsArmed} rack={_rackCnt}/{_rackCurMax}/{_rackAbsMax}{(_localNet ? " local" : "")}";

    [Conditional("DEBUG")]
    private void AssertInvariants()
    {
        Debug.Assert(Seq.Le(_sndUna, _sndMax), "SND.UNA beyond SND.MAX");
        Debug.Assert(Seq.Le(_sndNxt, _sndMax), "SND.NXT beyond SND.MAX");
    }

    // ---- application side ---------------------------------------------------------------------

    public int Write(ReadOnlySpan<byte> data)
    {
        if (_send == null || _finQueued) return 0;
        int n = _send.Write(data);
        if (n > 0) Output();
        return n;
    }

    public int Read(Span<byte> dest)
    {
        if (_recv == null) return 0;
        int n = _recv.Read(dest);
        if (n > 0 && IsSynchronized && State != TcpState.TimeWait && State != TcpState.Closed) MaybeWindowUpdate();
        return n;
    }
}
