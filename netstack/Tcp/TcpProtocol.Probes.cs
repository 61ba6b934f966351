using SmartOS.Kernel.Trace;
using SmartOS.Kernel.Wire;

namespace SmartOS.Netstack.Tcp;

/// <summary>The tcp provider's sites (NetProbes.cs): each tests its probe's Enabled field first
/// (rule 2 there) and fills the protocol's one NetFiring before firing.</summary>
public sealed partial class TcpProtocol
{
    /// <summary>The host's probes, given by the stack (IpStack.AttachProbes).</summary>
    internal NetProbes Probes = NetProbes.None;
    internal IpStack? Stack;
    private readonly NetFiring _firing = new();
    private long _nextConnectionId;

    internal long NextConnectionId() => ++_nextConnectionId;

    private string Zone => Stack?.Name ?? "global";

    /// <summary>Fires a segment probe: segment is the TCP header onward, source and destination the
    /// segment's (the peer's address first for a received one).</summary>
    internal void FireSegment(Probe probe, ReadOnlySpan<byte> segment, IpAddress source, IpAddress destination, TcpConnection? conn)
    {
        var f = _firing;
        f.Stack = Stack;
        f.FromSegment(segment, segment.Length >= 13 ? (segment[12] >> 4) * 4 : segment.Length, source, destination);
        f.Connection = conn;
        if (conn != null) f.State = conn.State;
        var arg = ProbeArg.Of(f);
        probe.Fire(new ProbeArgs(arg, arg, arg, arg, arg) { Zone = Zone, Thread = (object?)conn ?? Stack });
    }

    /// <summary>Fires a probe about the segment last received (connect-established, -refused,
    /// accept-established): its header is still in the firing from ReceiveSegment.</summary>
    internal void FireWithLastReceived(Probe probe, TcpConnection conn)
    {
        var f = _firing;
        f.Connection = conn;
        f.State = conn.State;
        var arg = ProbeArg.Of(f);
        probe.Fire(new ProbeArgs(arg, arg, arg, arg, arg) { Zone = Zone, Thread = conn });
    }

    internal void FireStateChange(TcpConnection conn, TcpState previous)
    {
        var f = _firing;
        f.Stack = Stack;
        f.Connection = conn;
        f.State = conn.State;
        f.PreviousState = previous;
        var arg = ProbeArg.Of(f);
        Probes.TcpStateChange.Fire(new ProbeArgs(default, arg, default, arg, default, arg) { Zone = Zone, Thread = conn });
    }

    /// <summary>Keeps a received segment for the probes that report it later, and fires tcp:::receive.</summary>
    private void FireSegmentIfEnabled(Probe receive, ReadOnlySpan<byte> segment, IpAddress source, IpAddress destination, TcpConnection? conn)
    {
        if (receive.Enabled) FireSegment(receive, segment, source, destination, conn);
        else
        {
            _firing.Stack = Stack;
            _firing.FromSegment(segment, segment.Length >= 13 ? (segment[12] >> 4) * 4 : segment.Length, source, destination);
        }
    }

    /// <summary>Whether a received segment must be kept for the probes that report it.</summary>
    private bool ReceiveProbed => Probes.TcpReceive.Enabled || Probes.TcpReceiveListener.Enabled || Probes.TcpReceiveNoConnection.Enabled || Probes.TcpConnectEstablished.Enabled || Probes.TcpAcceptEstablished.Enabled || Probes.TcpConnectRefused.Enabled;
}
