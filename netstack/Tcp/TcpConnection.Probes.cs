namespace SmartOS.Netstack.Tcp;

/// <summary>The connection's side of the tcp provider (NetProbes.cs): state changes fire
/// tcp:::state-change, and tcpsinfo_t reads these.</summary>
internal sealed partial class TcpConnection
{
    private TcpState _state;
    private bool _passive;
    private long _probeId;

    /// <summary>The connection's state; a change fires tcp:::state-change (one branch when disabled).</summary>
    public TcpState State
    {
        get => _state;
        set
        {
            var was = _state;
            _state = value;
            if (was != value && _tcp.Probes.TcpStateChange.Enabled) _tcp.FireStateChange(this, was);
        }
    }

    /// <summary>connect-established or accept-established, with the segment that completed the handshake.</summary>
    private void FireEstablished(TcpState was)
    {
        var probe = was == TcpState.SynSent ? _tcp.Probes.TcpConnectEstablished : _tcp.Probes.TcpAcceptEstablished;
        if (probe.Enabled) _tcp.FireWithLastReceived(probe, this);
    }

    private void FireConnectRefused()
    {
        var probe = _tcp.Probes.TcpConnectRefused;
        if (probe.Enabled) _tcp.FireWithLastReceived(probe, this);
    }

    internal long ProbeId => _probeId != 0 ? _probeId : _probeId = _tcp.NextConnectionId();
    internal bool ProbeActive => !_passive;
    internal uint ProbeIss => _iss;
    internal uint ProbeSndUna => _sndUna;
    internal uint ProbeSndNxt => _sndNxt;
    internal uint ProbeRcvNxt => _rcvNxt;
    /// <summary>RCV.NXT as of the last segment sent (illumos's tcp_rack, "sequence # we have acked"):
    /// behind ProbeRcvNxt while an ACK is deferred (TcpProtocol.cs rule 9).</summary>
    internal uint ProbeRcvAcked => _lastAckSent;
    internal int ProbeMss => _sndMss;
}
