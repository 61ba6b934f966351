using SmartOS.Kernel.Wire;

namespace SmartOS.Netstack.Tcp;

/// <summary>Segmentation, Nagle and SWS avoidance, congestion window, retransmission and probes.</summary>
internal sealed partial class TcpConnection
{
    private uint FinSeq => _sndBufSeq + (uint)(_send?.Count ?? 0);

    /// <summary>Sends whatever the windows allow, then an ACK if one is owed and nothing carried it.</summary>
    public void Output()
    {
        if (State is TcpState.Closed or TcpState.Listen or TcpState.SynSent or TcpState.SynReceived || _send == null)
        {
            return;
        }
        if (State == TcpState.TimeWait)
        {
            if (_ackNow) SendAck();
            return;
        }
        bool sent = false;
        bool sackRecovery = _inRecovery && _sackOk;
        long pipe = sackRecovery ? Pipe() : (long)(uint)(_sndNxt - _sndUna);
        while (true)
        {
            // A segment's send can come back through a synchronous path (a peer's RST processed
            // before SendData returns) and close the connection, releasing its buffers.
            if (_send == null) return;
            if (sackRecovery && _sacks.Count > 0 && _sacks.NextHole(Seq.Max(_highRxt, _sndUna), out uint holeStart, out uint holeEnd))
            {
                if (pipe >= _cwnd) break;
                int holeLen = (int)Math.Min(holeEnd - holeStart, (uint)_sndMss);
                holeLen = Math.Min(holeLen, Math.Max(0, (int)(FinSeq - holeStart)));
                if (holeLen > 0)
                {
                    if (!SendData(holeStart, holeLen, fin: false, isRetransmit: true)) break;
                    _highRxt = holeStart + (uint)holeLen;
                    pipe += holeLen;
                    sent = true;
                    continue;
                }
            }

            int offset = (int)(_sndNxt - _sndBufSeq);
            int unsent = Math.Max(0, _send.Count - offset);
            bool finPending = _finQueued && Seq.Le(_sndNxt, FinSeq);
            if (unsent == 0 && !finPending) break;
            long usable = Math.Min(_cwnd - pipe, _sndWnd - (int)(_sndNxt - _sndUna));
            int len = (int)Math.Clamp(Math.Min(usable, Math.Min(unsent, _sndChunk)), 0, unsent);
            if (len > _sndMss)
            {
                // A large send (TcpProtocol rule 8) of whole segments only, so what is left over
                // meets SWS avoidance and Nagle below as it would without; one segment when the
                // pool has no large buffer free.
                len = _tcp.Ip.Pool.LsoAvailable ? len - len % _sndMss : _sndMss;
            }
            bool fin = finPending && len == unsent;
            if (len == 0 && !fin) break;
            bool nothingOutstanding = _sndNxt == _sndUna;
            if (len < unsent && len < _sndMss && !nothingOutstanding && len < _maxSndWnd / 2)
                break;  // sender SWS avoidance (RFC 9293 3.8.6.2.1)
            if (len == unsent && len < _sndMss && len > 0 && !fin && !NoDelay && !nothingOutstanding)
                break;  // Nagle (RFC 896): one small segment in flight at a time
            bool retransmit = Seq.Lt(_sndNxt, _sndMax);
            if (!SendData(_sndNxt, len, fin, retransmit)) break;
            if (!_rttTiming && !_tsOk && !retransmit && len > 0)
            {
                _rttTiming = true;
                _rttSeq = _sndNxt;
                _rttStart = _sched.Now;
            }
            uint consumed = (uint)len + (fin ? 1u : 0u);
            _sndNxt += consumed;
            if (Seq.Gt(_sndNxt, _sndMax)) _sndMax = _sndNxt;
            pipe += consumed;
            sent = true;
        }
        if (_send == null) return;
        if (sent)
        {
            if (_timerMode != TimerMode.Retransmit || !_rtxTimer.IsArmed) ArmRetransmit();
        }
        else if (_ackNow)
        {
            SendAck();
        }
        if (_sndWnd == 0 && _sndNxt == _sndUna && _send.Count > (int)(_sndNxt - _sndBufSeq) && !_rtxTimer.IsArmed)
        {
            // Zero window and nothing in flight: probe (RFC 9293 3.8.6.1).
            _timerMode = TimerMode.Persist;
            _rtxTimer.ArmAfter(CurrentRto());
        }
        AssertInvariants();
    }

    /// <summary>RFC 6675's pipe: retransmitted bytes not yet SACKed, plus everything above the
    /// highest SACK or retransmission. Holes between are deemed lost.</summary>
    private long Pipe()
    {
        uint rx = Seq.Max(_highRxt, _sndUna);
        long pipe = (long)(uint)(rx - _sndUna) - SackedBetween(_sndUna, rx);
        uint top = _sacks.Count > 0 ? Seq.Max(_sacks.HighestSacked, rx) : rx;
        if (Seq.Gt(_sndNxt, top)) pipe += (long)(uint)(_sndNxt - top);
        return Math.Max(pipe, 0);
    }

    private long SackedBetween(uint a, uint b)
    {
        long n = 0;
        for (int i = 0; i < _sacks.Count; i++)
        {
            var r = _sacks[i];
            uint l = Seq.Max(r.Left, a), h = Seq.Min(r.Right, b);
            if (Seq.Lt(l, h)) n += h - l;
        }
        return n;
    }

    private void RetransmitFirst()
    {
        int avail = Math.Max(0, (int)(FinSeq - _sndUna));
        int len = Math.Min(avail, _sndMss);
        bool fin = _finQueued && len == avail && Seq.Lt(FinSeq, _sndMax);
        if (len == 0 && !fin) return;
        if (SendData(_sndUna, len, fin, isRetransmit: true))
            _highRxt = _sndUna + (uint)len;
    }

    private void RetransmitTimeout()
    {
        _timerMode = TimerMode.None;
        if (State is TcpState.SynSent or TcpState.SynReceived)
        {
            if (++_retries > _cfg.SynRetries)
            {
                if (Listener != null) _stats.HalfOpenDrops++;
                Drop(TcpError.ETIMEDOUT);
                return;
            }
            _stats.Timeouts++;
            _backoff++;
            _rttTiming = false;
            SendSyn(isRetransmit: true);
            return;
        }
        if (_sndUna == _sndMax)
        {
            Output();
            return;
        }
        if (++_retries > _cfg.MaxRetries)
        {
            Drop(TcpError.ETIMEDOUT);
            return;
        }
        _stats.Timeouts++;
        // RFC 5681 (4): halve on the first timeout of an episode only; RFC 6298 5.5: back off.
        if (_backoff == 0) OnCongestionEvent();
        _cwnd = _sndMss;
        _caBytes = 0;
        _rtoSlowStart = true;
        _backoff++;
        _recover = _sndMax;         // RFC 6582 section 4: no fast retransmit on the old duplicates
        _inRecovery = false;
        _dupAcks = 0;
        _sacks.Clear();
        _highRxt = _sndUna;
        _rttTiming = false;         // Karn
        _tsRtoFloor = TsNow;        // and its timestamp counterpart (see ProcessAck)
        _undoArmed = false;         // a timeout is never undone
        _sndNxt = _sndUna;          // go back N
        Output();
        if (!_rtxTimer.IsArmed) ArmRetransmit();
    }

    private void PersistProbe()
    {
        _timerMode = TimerMode.None;
        int offset = (int)(_sndNxt - _sndBufSeq);
        if (_send == null || _sndWnd != 0 || _send.Count - offset <= 0)
        {
            Output();
            return;
        }
        // One byte of new data past the closed window (RFC 9293 3.8.6.1); it is counted in SND.MAX
        // so an ACK that takes it is acceptable, but not in SND.NXT until then.
        _stats.PersistProbes++;
        if (SendData(_sndNxt, 1, fin: false, isRetransmit: false) && Seq.Gt(_sndNxt + 1, _sndMax)) _sndMax = _sndNxt + 1;
        _backoff++;
        _timerMode = TimerMode.Persist;
        _rtxTimer.ArmAfter(CurrentRto());
    }

    // ---- building segments --------------------------------------------------------------------

    private void SendSyn(bool isRetransmit = false)
    {
        bool synAck = State == TcpState.SynReceived;
        var repr = new TcpRepr
        {
            SourcePort = Key.LocalPort,
            DestinationPort = Key.RemotePort,
            Seq = _iss,
            Ack = synAck ? _rcvNxt : 0,
            Flags = synAck ? TcpFlags.Syn | TcpFlags.Ack : TcpFlags.Syn,
            Window = (ushort)Math.Min(_recvBufferSize, ushort.MaxValue),
        };
        repr.Options.Mss = (ushort)_tcp.LocalMss(Key.Remote);
        if (synAck ? _wsOk : _cfg.WindowScaling)
        {
            repr.Options.HasWindowScale = true;
            repr.Options.WindowScale = _rcvScale;
        }
        repr.Options.SackPermitted = synAck ? _sackOk : _cfg.Sack;
        if (synAck ? _tsOk : _cfg.Timestamps)
        {
            repr.Options.HasTimestamp = true;
            repr.Options.TsVal = TsNow;
            repr.Options.TsEcr = synAck ? _tsRecent : 0;
        }
        var p = _tcp.RentSegment(repr.HeaderLength);
        if (p != null)
        {
            repr.TryEmit(p.Data, out _);
            if (isRetransmit) { _stats.RetransSegs++; Retransmits++; }
            _lastAckSent = _rcvNxt;
            _tcp.Transmit(p, Key.Local, Key.Remote, this);
        }
        _sndNxt = _iss + 1;
        if (Seq.Gt(_sndNxt, _sndMax)) _sndMax = _sndNxt;
        _sndBufSeq = _iss + 1;
        _rcvAdv = _rcvNxt + repr.Window;
        if (!isRetransmit && !_rttTiming)
        {
            _rttTiming = true;
            _rttSeq = _iss;
            _rttStart = _sched.Now;
        }
        ArmRetransmit();
    }

    private void SendAck() => SendSegment(_sndNxt, 0, TcpFlags.Ack, isRetransmit: false);

    private bool SendData(uint seq, int len, bool fin, bool isRetransmit)
    {
        TcpFlags flags = TcpFlags.Ack;
        if (fin) flags |= TcpFlags.Fin;
        if (len > 0 && seq + (uint)len == FinSeq) flags |= TcpFlags.Psh;
        return SendSegment(seq, len, flags, isRetransmit);
    }

    /// <summary>Builds one segment straight into a pooled packet: header, then data copied from the send ring.</summary>
    private bool SendSegment(uint seq, int len, TcpFlags flags, bool isRetransmit)
    {
        var repr = new TcpRepr
        {
            SourcePort = Key.LocalPort,
            DestinationPort = Key.RemotePort,
            Seq = seq,
            Ack = _rcvNxt,
            Flags = flags,
            Window = WindowField(),
        };
        if (_tsOk)
        {
            repr.Options.HasTimestamp = true;
            repr.Options.TsVal = TsNow;
            repr.Options.TsEcr = _tsRecent;
        }
        bool large = len > _sndMss;
        if (_sackOk && _recv != null && _recv.HasOutOfOrder)
        {
            // SACK blocks ride only in the room a segment leaves below the MSS, as Linux's
            // tcp_current_mss keeps them: a full segment (and every piece of a large send) has none,
            // so no segment grows past the MTU. The option with its two NOPs takes 4 + 8n bytes.
            int room = _sndMss - (large ? _sndMss : len);
            int blocks = Math.Min(_tsOk ? 3 : 4, room >= 12 ? (room - 4) / 8 : 0);
            if (blocks > 0) _recv.FillSack(ref repr.Options, blocks);
        }
        int hl = repr.HeaderLength;
        var p = large ? _tcp.RentLsoSegment(hl + len) : _tcp.RentSegment(hl + len);
        if (p == null) return false;
        if (large) p.LsoMss = (ushort)_sndMss;
        var data = p.Data;
        repr.TryEmit(data, out _);
        if (len > 0) _send!.CopyOut((int)(seq - _sndBufSeq), data.Slice(hl, len));
        _rackCnt = 0;
        _ackNow = false;
        _delAckTimer.Cancel();
        _lastAckSent = _rcvNxt;
        if (isRetransmit) { _stats.RetransSegs++; Retransmits++; }
        _tcp.Transmit(p, Key.Local, Key.Remote, this);
        return true;
    }

    private void SendReset(uint seq) => _tcp.SendControl(Key.Local, Key.LocalPort, Key.Remote, Key.RemotePort, seq, 0, TcpFlags.Rst);

    /// <summary>The window to advertise, scaled. Never shrinks the right edge already advertised, and
    /// opens only by useful amounts (receiver SWS avoidance, RFC 9293 3.8.6.2.2).</summary>
    private ushort WindowField()
    {
        if (_recv == null) return (ushort)Math.Min(_recvBufferSize, ushort.MaxValue);
        long free = _recv.Free;
        long advertised = Math.Max(0, (long)(int)(_rcvAdv - _rcvNxt));
        if (free - advertised < Math.Min(_recv.Capacity / 2, _sndMss)) free = Math.Max(advertised, 0);
        long field = Math.Min(free >> _rcvScale, ushort.MaxValue);
        uint edge = _rcvNxt + (uint)(field << _rcvScale);
        if (Seq.Gt(edge, _rcvAdv)) _rcvAdv = edge;
        else if (Seq.Lt(edge, _rcvAdv))
            field = Math.Min((advertised + (1L << _rcvScale) - 1) >> _rcvScale, ushort.MaxValue);  // round up: never shrink
        return (ushort)field;
    }

    /// <summary>After the application reads: a window update when the window the peer knows has
    /// shrunk below what one ACK may cover now and the read opens it by a segment or more (illumos's
    /// tcp_rwnd_reopen; receiver SWS avoidance, RFC 9293 3.8.6.2.2). A window that is still wide
    /// waits for the next ACK the data causes.</summary>
    private void MaybeWindowUpdate()
    {
        if (_recv == null) return;
        long advertised = Math.Max(0, (long)(int)(_rcvAdv - _rcvNxt));
        long opened = _recv.Free - advertised;
        if (opened < _sndMss || advertised >= Math.Max(_rackCurMax, 1) * (long)_sndMss) return;
        _stats.OutWinUpdate++;
        SendAck();
    }
}
