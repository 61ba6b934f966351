using SmartOS.Kernel.Trace;
using SmartOS.Kernel.Wire;

namespace SmartOS.Netstack;

/// <summary>The ip and udp providers' sites (NetProbes.cs) and how a stack gets its host's probes.</summary>
public sealed partial class IpStack
{
    private NetProbes _probes = NetProbes.None;
    private readonly NetFiring _ipFiring = new(), _udpFiring = new();

    /// <summary>The host's ip, tcp and udp probes; until set, the stack fires none.</summary>
    public NetProbes Probes
    {
        get => _probes;
        set
        {
            _probes = value;
            Tcp.Probes = value;
            Tcp.Stack = this;
        }
    }

    /// <summary>ip:::send or ip:::receive; data is the datagram from its IP header on.</summary>
    private void FireIp(Probe probe, ReadOnlySpan<byte> data, bool v6, IpInterface? ifc)
    {
        var f = _ipFiring;
        f.Stack = this;
        f.FromIpHeader(data, v6, ifc);
        var arg = ProbeArg.Of(f);
        probe.Fire(new ProbeArgs(arg, arg, arg, arg, v6 ? default : arg, v6 ? arg : default) { Zone = Name, Thread = this });
    }

    /// <summary>udp:::send or udp:::receive; datagram is the UDP header onward.</summary>
    internal void FireUdp(Probe probe, ReadOnlySpan<byte> datagram, IpAddress source, IpAddress destination, UdpSocket? socket)
    {
        var f = _udpFiring;
        f.Stack = this;
        f.FromSegment(datagram, UdpView.HeaderLength, source, destination);
        f.Socket = socket;
        var arg = ProbeArg.Of(f);
        probe.Fire(new ProbeArgs(arg, arg, arg, arg, arg) { Zone = Name, Thread = (object?)socket ?? this });
    }
}
