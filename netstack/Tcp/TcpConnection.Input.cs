using SmartOS.Kernel;
using SmartOS.Kernel.Wire;

namespace SmartOS.Netstack.Tcp;

/// <summary>Segment arrival (RFC 9293 section 3.10.7), with RFC 5961 challenge ACKs and RFC 7323 PAWS.</summary>
internal sealed partial class TcpConnection
{
    public void Input(ref TcpRepr seg, Span<byte> payload)
    {
        NoteReceiveForKeepalive();
        if (State == TcpState.SynSent)
        {
            InputSynSent(ref seg, payload);
            return;
        }
        if (State == TcpState.Closed) return;

        TcpFlags flags = seg.Flags;
        bool syn = (flags & TcpFlags.Syn) != 0;
        bool ack = (flags & TcpFlags.Ack) != 0;
        bool rst = (flags & TcpFlags.Rst) != 0;
        bool fin = (flags & TcpFlags.Fin) != 0;
        uint seq = seg.Seq;

        if (syn && seq == _irs && State == TcpState.SynReceived)
        {
            if (!ack && !rst)
            {
                // The peer did not get our SYN-ACK: send it again.
                SendSyn(isRetransmit: true);
                return;
            }
            // Simultaneous open: the SYN of this SYN-ACK was already counted (RFC 9293 figure 8).
            syn = false;
            seq++;
        }

        // PAWS (RFC 7323 section 5.3): an old timestamp marks an old duplicate.
        if (_tsOk && seg.Options.HasTimestamp && !rst && Seq.Lt(seg.Options.TsVal, _tsRecent))
        {
            _stats.PawsDrops++;
            SendAck();
            return;
        }

        // First: is the segment acceptable (RFC 9293 3.10.7.4, the four cases)?
        int segLen = payload.Length + (syn ? 1 : 0) + (fin ? 1 : 0);
        long wnd = Math.Max(0, (long)(int)(_rcvAdv - _rcvNxt));
        bool acceptable;
        if (segLen == 0)
            acceptable = wnd == 0 ? seq == _rcvNxt : InWindow(seq, wnd);
        else
            acceptable = wnd != 0 && (InWindow(seq, wnd) || InWindow(seq + (uint)segLen - 1, wnd));
        if (!acceptable)
        {
            if (wnd == 0 && seq == _rcvNxt)
            {
                // A zero window still takes ACKs and RSTs (RFC 9293 3.8.6.2.1); the text is dropped
                // and our ACK tells the prober the window is still closed.
                payload = default;
                fin = false;
                _ackNow = true;
            }
            else
            {
                if (!rst)
                {
                    if (State == TcpState.TimeWait && fin) _rtxTimer.ArmAfter(2 * _cfg.Msl);
                    if (payload.Length > 0 && Seq.Lt(seq, _rcvNxt)) NoteDuplicateData(seq + (uint)payload.Length);
                    SendAck();
                }
                return;
            }
        }

        // Second: RST (RFC 5961 section 3.2: only an exact match resets; in-window gets a challenge ACK).
        if (rst)
        {
            if (seq != _rcvNxt)
            {
                _stats.ChallengeAcks++;
                SendAck();
                return;
            }
            TcpError error = State switch
            {
                TcpState.SynReceived => Listener != null ? TcpError.None : TcpError.ECONNREFUSED,
                TcpState.Established or TcpState.FinWait1 or TcpState.FinWait2 or TcpState.CloseWait => TcpError.ECONNRESET,
                _ => TcpError.None,
            };
            Drop(error);
            return;
        }

        // Fourth: a SYN in a synchronized state gets a challenge ACK (RFC 5961 section 4.2).
        if (syn)
        {
            _stats.ChallengeAcks++;
            SendAck();
            return;
        }

        // Fifth: the ACK field.
        if (!ack) return;
        if (_tsOk && seg.Options.HasTimestamp && Seq.Le(seq, _lastAckSent)) _tsRecent = seg.Options.TsVal;
        if (State == TcpState.SynReceived)
        {
            if (Seq.Lt(_sndUna, seg.Ack) && Seq.Le(seg.Ack, _sndMax))
            {
                _sndWnd = (long)seg.Window << _sndScale;
                _maxSndWnd = Math.Max(_maxSndWnd, _sndWnd);
                _sndWl1 = seq;
                _sndWl2 = seg.Ack;
                if (!BecomeEstablished()) return;
            }
            else
            {
                SendReset(seg.Ack);
                return;
            }
        }
        if (!ProcessAck(ref seg, seq, payload.Length, fin)) return;

        // Seventh and eighth: the text and FIN.
        if (payload.Length > 0 || fin)
        {
            if (!ProcessText(seq, payload, fin)) return;
        }
        Output();
    }

    private bool InWindow(uint s, long wnd) => Seq.Le(_rcvNxt, s) && (long)(uint)(s - _rcvNxt) < wnd;

    /// <summary>RFC 9293 3.10.7.3: SYN_SENT.</summary>
    private void InputSynSent(ref TcpRepr seg, Span<byte> payload)
    {
        bool ack = (seg.Flags & TcpFlags.Ack) != 0;
        bool rst = (seg.Flags & TcpFlags.Rst) != 0;
        bool syn = (seg.Flags & TcpFlags.Syn) != 0;
        if (ack && (Seq.Le(seg.Ack, _iss) || Seq.Gt(seg.Ack, _sndMax)))
        {
            if (!rst) SendReset(seg.Ack);
            return;
        }
        if (rst)
        {
            if (ack)
            {
                FireConnectRefused();
                Drop(TcpError.ECONNREFUSED);
            }
            return;
        }
        if (!syn) return;

        _irs = seg.Seq;
        _rcvNxt = seg.Seq + 1;
        NegotiateFromSyn(ref seg);
        // The window of a SYN is never scaled (RFC 7323 section 2.2).
        _sndWnd = seg.Window;
        _maxSndWnd = _sndWnd;
        _sndWl1 = seg.Seq;
        _sndWl2 = seg.Ack;
        if (ack)
        {
            if (_rttTiming && Seq.Gt(seg.Ack, _rttSeq))
            {
                RttSample(_sched.Now - _rttStart);
                _rttTiming = false;
            }
            _sndUna = seg.Ack;
            _rtxTimer.Cancel();
            _timerMode = TimerMode.None;
            _backoff = 0;
            if (!BecomeEstablished()) return;
            _ackNow = true;
            if (payload.Length > 0 || (seg.Flags & TcpFlags.Fin) != 0)
            {
                if (!ProcessText(seg.Seq + 1, payload, (seg.Flags & TcpFlags.Fin) != 0)) return;
            }
            Output();
        }
        else
        {
            // Simultaneous open: answer with a SYN-ACK carrying our original ISS.
            State = TcpState.SynReceived;
            _rttTiming = false;
            SendSyn(isRetransmit: true);
        }
    }

    /// <summary>The ACK field in synchronized states. False when the segment is finished with.</summary>
    private bool ProcessAck(ref TcpRepr seg, uint seq, int payloadLength, bool fin)
    {
        uint ack = seg.Ack;
        if (Seq.Gt(ack, _sndMax))
        {
            // Acknowledges something not yet sent.
            SendAck();
            return false;
        }
        long segWnd = (long)seg.Window << _sndScale;
        if (Seq.Ge(ack, _sndUna))
        {
            if (_sackOk)
            {
                for (int i = 0; i < seg.Options.SackCount; i++)
                {
                    var b = seg.Options.Sack[i];
                    if (Seq.Gt(b.Right, ack) && Seq.Le(b.Right, _sndMax) && Seq.Lt(b.Left, b.Right))
                        _sacks.Add(Seq.Max(b.Left, ack), b.Right);
                }
            }
            if (ack == _sndUna)
            {
                if (payloadLength == 0 && !fin && segWnd == _sndWnd && _sndMax != _sndUna) DuplicateAck();
            }
            else
            {
                // RFC 7323 section 4: with timestamps every ACK of new data gives an RTT sample
                // (the echo tells which transmission it answers). Except an echo older than our last
                // timeout: when the ACK of a retransmission was lost, the receiver echoes that first
                // retransmission for every later duplicate, and the sample would span the whole
                // backoff. Seen with 16% loss: SRTT climbed to 10 s and RTO sat at 60 s.
                long tsRtt = _tsOk && seg.Options.HasTimestamp && seg.Options.TsEcr != 0 && Seq.Ge(seg.Options.TsEcr, _tsRtoFloor)
                    ? (long)(int)(TsNow - seg.Options.TsEcr) * Time.Millisecond : -1;
                if (_undoArmed && _tsOk && seg.Options.HasTimestamp)
                {
                    // Eifel detection (RFC 3522): the first ACK after a fast retransmit echoes the
                    // original transmission's timestamp, so the segment was reordered, not lost.
                    if (Seq.Lt(seg.Options.TsEcr, _undoTsVal)) UndoRecovery(ack);
                    _undoArmed = false;
                }
                NewAck(ack, tsRtt);
            }
            // Window update (RFC 9293 3.10.7.4): only from a segment newer than the last one used.
            if (Seq.Lt(_sndWl1, seq) || (_sndWl1 == seq && Seq.Le(_sndWl2, ack)))
            {
                _sndWnd = segWnd;
                _sndWl1 = seq;
                _sndWl2 = ack;
                if (_sndWnd > _maxSndWnd) _maxSndWnd = _sndWnd;
                if (_sndWnd > 0 && _timerMode == TimerMode.Persist)
                {
                    _rtxTimer.Cancel();
                    _timerMode = TimerMode.None;
                    _backoff = 0;
                }
            }
        }

        bool finAcked = _finQueued && _send != null && _send.Count == 0 && _sndUna == _sndBufSeq + 1;
        switch (State)
        {
            case TcpState.FinWait1:
                if (finAcked)
                {
                    State = TcpState.FinWait2;
                    if (_orphaned) ArmFinWait2();
                }
                break;
            case TcpState.Closing:
                if (finAcked) EnterTimeWait();
                return false;
            case TcpState.LastAck:
                if (finAcked)
                {
                    Drop(TcpError.None);
                    return false;
                }
                break;
            case TcpState.TimeWait:
                if (fin)
                {
                    _rtxTimer.ArmAfter(2 * _cfg.Msl);
                    SendAck();
                }
                return false;
        }
        return true;
    }

    private void NewAck(uint ack, long tsRtt)
    {
        uint acked = ack - _sndUna;
        // Our SYN's sequence number is not data: the handshake's ACK leaves the initial window as it is.
        uint dataAndFin = _sndUna == _iss ? acked - 1 : acked;
        if (tsRtt >= 0)
        {
            RttSample(tsRtt);
            _rttTiming = false;
        }
        else if (_rttTiming && Seq.Gt(ack, _rttSeq))
        {
            RttSample(_sched.Now - _rttStart);
            _rttTiming = false;
        }
        if (_send != null)
        {
            int dataAcked = (int)Math.Clamp((long)(int)(ack - _sndBufSeq), 0, _send.Count);
            _send.Drop(dataAcked);
            _sndBufSeq += (uint)dataAcked;
        }
        _sndUna = ack;
        if (Seq.Lt(_sndNxt, _sndUna)) _sndNxt = _sndUna;
        _sacks.AdvanceTo(ack);
        _backoff = 0;
        _retries = 0;

        if (_inRecovery)
        {
            if (Seq.Ge(ack, _recover))
            {
                // Full acknowledgment (RFC 6582 3.2 step 3): deflate the window.
                _inRecovery = false;
                _dupAcks = 0;
                long flight = (long)(uint)(_sndMax - _sndUna);
                _cwnd = Math.Min(_ssthresh, Math.Max(flight, _sndMss) + _sndMss);
            }
            else
            {
                // Partial acknowledgment: the next hole is lost too.
                if (Seq.Lt(_highRxt, _sndUna)) _highRxt = _sndUna;
                if (!_sackOk)
                {
                    RetransmitFirst();
                    _cwnd = Math.Max(_cwnd - acked + _sndMss, _sndMss);
                }
            }
        }
        else
        {
            _dupAcks = 0;
            GrowWindow(dataAndFin);
            // An application-limited sender does not grow its window without bound (RFC 7661 in spirit).
            long cap = 2L * (_sendBufferSize + _maxSndWnd) + 2L * _sndMss;
            if (_cwnd > cap) _cwnd = cap;
        }

        if (_sndUna == _sndMax)
        {
            if (_timerMode == TimerMode.Retransmit)
            {
                _rtxTimer.Cancel();
                _timerMode = TimerMode.None;
            }
        }
        else if (_timerMode != TimerMode.Persist)
        {
            ArmRetransmit();
        }
        Socket?.Wake();
    }

    private void DuplicateAck()
    {
        _stats.DupAcks++;
        _dupAcks++;
        if (_inRecovery)
        {
            if (!_sackOk) _cwnd += _sndMss;     // NewReno window inflation
            return;
        }
        bool sackSaysLost = _sackOk && _sacks.SackedBytes() >= 3L * _sndMss;
        if ((_dupAcks >= 3 || sackSaysLost) && Seq.Gt(_sndUna, _recover)) EnterRecovery();
    }

    private void EnterRecovery()
    {
        _undoCwnd = _cwnd;
        _undoSsthresh = _ssthresh;
        _undoWMax = _cubicWMax;
        _undoTsVal = TsNow;
        _undoArmed = _tsOk;
        OnCongestionEvent();
        _recover = _sndMax;
        _inRecovery = true;
        _rttTiming = false;
        _stats.FastRetransmits++;
        _highRxt = _sndUna;
        RetransmitFirst();
        _cwnd = _sackOk ? _ssthresh : _ssthresh + 3L * _sndMss;
    }

    /// <summary>Eifel response for a spurious fast retransmit (RFC 4015 in spirit): the window and
    /// threshold from before it come back and recovery ends.</summary>
    private void UndoRecovery(uint ack)
    {
        _stats.SpuriousRetransmits++;
        _cwnd = Math.Max(_cwnd, _undoCwnd);
        _ssthresh = Math.Max(_ssthresh, _undoSsthresh);
        _cubicWMax = _undoWMax;
        _inRecovery = false;
        _dupAcks = 0;
        _recover = ack - 1;
    }

    /// <summary>Text and FIN processing (RFC 9293 3.10.7.4, seventh and eighth). False when the
    /// connection was dropped.</summary>
    private bool ProcessText(uint seq, Span<byte> payload, bool fin)
    {
        if (!(State is TcpState.Established or TcpState.FinWait1 or TcpState.FinWait2) || _recv == null) return true;
        if (_orphaned && payload.Length > 0)
        {
            // Nobody will read this data: tell the peer (RFC 9293 3.10.4, as Linux and illumos do).
            SendReset(_sndNxt);
            Drop(TcpError.ECONNRESET);
            return false;
        }
        uint finSeq = seq + (uint)payload.Length;
        if (Seq.Lt(seq, _rcvNxt))
        {
            int skip = (int)(_rcvNxt - seq);
            if (payload.Length > 0) NoteDuplicateData(seq + (uint)Math.Min(skip, payload.Length));
            if (skip >= payload.Length)
            {
                payload = default;
                if (fin && Seq.Lt(finSeq, _rcvNxt)) fin = false;
            }
            else
            {
                payload = payload[skip..];
            }
            seq = _rcvNxt;
            _ackNow = true;
        }
        int offset = (int)(seq - _rcvNxt);
        int room = _recv.Free - offset;
        if (payload.Length > room)
        {
            payload = payload[..Math.Max(room, 0)];
            fin = false;
        }
        if (payload.Length > 0)
        {
            if (offset == 0)
            {
                bool hadHoles = _recv.HasOutOfOrder;
                uint unacked = _rcvNxt - _lastAckSent;
                if (Socket is not { } reader || !_recv.TryPlace(payload, reader.PendingReceiveBuffer)) _recv.WriteAt(0, payload);
                int advance = _recv.Deliver(_rcvNxt, payload.Length);
                _rcvNxt += (uint)advance;
                if (hadHoles) _ackNow = true;
                else DeferAck(payload.Length, unacked);
                Socket?.Wake();
            }
            else
            {
                _stats.OutOfOrderSegs++;
                if (_recv.AddRange(seq, seq + (uint)payload.Length)) _recv.WriteAt(offset, payload);
                else _stats.OutOfOrderDrops++;
                _ackNow = true;     // a duplicate ACK at once, for fast retransmit
            }
        }
        if (fin && finSeq != _rcvNxt)
        {
            _oooFin = true;
            _oooFinSeq = finSeq;
            _ackNow = true;
            fin = false;
        }
        if (fin || (_oooFin && _oooFinSeq == _rcvNxt)) ProcessFin();
        return true;
    }

    /// <summary>An in-order segment of <paramref name="length"/> bytes arrived with
    /// <paramref name="unacked"/> bytes before it not yet acknowledged: ACK now or arm the delayed-ACK
    /// timer (rule 9, illumos's tcp_input_data at update_ack).</summary>
    private void DeferAck(int length, uint unacked)
    {
        if (++_rackCnt >= _rackCurMax)
        {
            _ackNow = true;
            if (_rackCurMax < _rackAbsMax) _rackCurMax++;
            return;
        }
        if (length > _sndMss)
        {
            // A large segment (a TAP's GSO frame received whole, rule 8) is many: ACK it at once,
            // as Linux does for more than one full frame.
            _ackNow = true;
            return;
        }
        if (length < _sndMss && unacked != 0 && unacked % (uint)_sndMss != 0)
        {
            // A short segment after a short one: likely a transaction's tail; the answer may take
            // a while, so do not make the sender wait for the timer.
            _ackNow = true;
            return;
        }
        if (!_delAckTimer.IsArmed) _delAckTimer.ArmAfter(_localNet ? _cfg.LocalDelayedAck : _cfg.DelayedAck);
    }

    /// <summary>Data the peer sent again although it had arrived: our ACK came late or was lost.
    /// ACK every segment for now, and, if it was data whose ACK was being deferred, defer less for
    /// good (illumos's tcp_input_data, "unacceptable" segments).</summary>
    private void NoteDuplicateData(uint end)
    {
        if (Seq.Gt(end, _lastAckSent) && _rackCnt >= 1 && _rackAbsMax > 2) _rackAbsMax--;
        _rackCurMax = 1;
    }

    private void ProcessFin()
    {
        _rcvNxt++;
        _finReceived = true;
        _oooFin = false;
        _ackNow = true;
        switch (State)
        {
            case TcpState.Established:
                State = TcpState.CloseWait;
                break;
            case TcpState.FinWait1:
                State = TcpState.Closing;
                break;
            case TcpState.FinWait2:
                SendAck();
                EnterTimeWait();
                break;
        }
        Socket?.Wake();
    }
}
