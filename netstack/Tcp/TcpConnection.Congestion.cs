using SmartOS.Kernel;

namespace SmartOS.Netstack.Tcp;

/// <summary>The congestion-avoidance algorithms: Reno's linear growth (RFC 5681) or CUBIC (RFC 9438).
/// Loss recovery itself (NewReno partial ACKs, SACK holes) is shared and lives in Input/Output.</summary>
internal sealed partial class TcpConnection
{
    // RFC 9438 section 5: beta_cubic and C.
    private const double CubicBeta = 0.7;
    private const double CubicC = 0.4;

    private double _cubicWMax;          // window before the last reduction, in segments
    private double _cubicK;             // seconds from the epoch start to reach W_max again
    private double _cubicWEst;          // the Reno-friendly estimate, in segments
    private long _cubicEpochStart = -1;

    private bool Cubic => _cfg.CongestionControl == TcpCongestionControl.Cubic;

    /// <summary>A congestion event (fast retransmit or first RTO): the new slow-start threshold.</summary>
    private void OnCongestionEvent()
    {
        long flight = (long)(uint)(_sndMax - _sndUna);
        if (!Cubic)
        {
            _ssthresh = Math.Max(flight / 2, 2L * _sndMss);
            return;
        }
        double cwnd = (double)_cwnd / _sndMss;
        // Fast convergence (RFC 9438 4.7): give up bandwidth faster when the window is still shrinking.
        _cubicWMax = cwnd < _cubicWMax ? cwnd * (1 + CubicBeta) / 2 : cwnd;
        _ssthresh = Math.Max((long)(Math.Min(flight, _cwnd) * CubicBeta), 2L * _sndMss);
        _cubicEpochStart = -1;
    }

    /// <summary>Window growth for <paramref name="acked"/> newly acknowledged bytes outside recovery.</summary>
    private void GrowWindow(uint acked)
    {
        if (_cwnd < _ssthresh)
        {
            // Slow start counts bytes (RFC 3465, illumos's newreno): L = 2 segments an ACK, but 1
            // after a timeout, when one cumulative ACK may cover everything sent before it.
            _cwnd += Math.Min(acked, (_rtoSlowStart ? 1L : 2L) * _sndMss);
            return;
        }
        _rtoSlowStart = false;
        if (!Cubic)
        {
            _caBytes += acked;
            if (_caBytes >= _cwnd)
            {
                _caBytes -= _cwnd;
                _cwnd += _sndMss;
            }
            return;
        }
        CubicGrow(acked);
    }

    private void CubicGrow(uint acked)
    {
        double mss = _sndMss;
        double cwnd = _cwnd / mss;
        long now = _sched.Now;
        if (_cubicEpochStart < 0)
        {
            _cubicEpochStart = now;
            if (_cubicWMax < cwnd) _cubicWMax = cwnd;
            _cubicK = Math.Cbrt((_cubicWMax - cwnd) / CubicC);
            _cubicWEst = cwnd;
        }
        double rtt = (_hasRtt ? _srtt : _rto) / (double)Time.Second;
        double t = (now - _cubicEpochStart) / (double)Time.Second;
        double target = WCubic(t + rtt);
        target = Math.Clamp(target, cwnd, 1.5 * cwnd);

        // Reno-friendly region (RFC 9438 4.3): never slower than Reno would be.
        double alpha = 3 * (1 - CubicBeta) / (1 + CubicBeta);
        _cubicWEst += alpha * (acked / mss) / cwnd;
        double next = WCubic(t) < _cubicWEst ? Math.Max(_cubicWEst, cwnd) : cwnd + (target - cwnd) / cwnd * (acked / mss);
        _cwnd = Math.Max(_cwnd, (long)(next * mss));
    }

    private double WCubic(double t)
    {
        double d = t - _cubicK;
        return CubicC * d * d * d + _cubicWMax;
    }
}
