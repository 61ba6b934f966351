using SmartOS.Kernel;
using SmartOS.Kernel.Wire;
using SmartOS.Netstack;
using SmartOS.Vnic;

namespace SmartOS.Zones;

/// <summary>
/// The underlay of a host's overlays in virtual time (vnic/Overlay.cs rule 5): the global zone's IP
/// stack, as on SmartOS, so the VXLAN datagrams are routed, resolved (ARP) and sized (MTU) by the
/// same stack `ipadm` and `route` configure. One kernel UDP socket per listen port, bound to every
/// address of the stack, is shared by the listen addresses on that port and demultiplexed by the
/// address a datagram was sent to; binding to every address lets an overlay be configured (and
/// replayed at boot) before its listen_ip is, as the address may come later. Datagrams go out from
/// listen_ip and the per-flow source port the overlay chose; while listen_ip is not an address of the
/// stack they cannot be sent, and the overlay counts them (underlay_err). The outer UDP checksum is
/// zero, as RFC 7348 section 5 says it should be over IPv4 (Linux's vxlan sends it so too).
/// </summary>
public sealed class GlobalZoneUnderlays
{
    private readonly IpStack _stack;
    private readonly Dictionary<ushort, Port> _ports = new();

    private sealed class Port
    {
        public required UdpSocket Socket;
        public readonly Dictionary<IpAddress, Underlay> ByAddress = new();
        // The listen address of the last datagram and its underlay: a stream to one address finds it
        // by one compare. Cleared whenever ByAddress changes.
        public IpAddress LastTo;
        public Underlay? LastUnderlay;
    }

    public GlobalZoneUnderlays(IpStack stack) => _stack = stack;

    /// <summary>Datagrams heard on a listen port for an address no overlay listens on.</summary>
    public long Unlistened { get; private set; }

    /// <summary>The provider a host installs (MacLayer.SetUnderlayProvider).</summary>
    public DlStatus Open(UnderlayEndpoint listen, out IOverlayUnderlay? underlay)
    {
        underlay = null;
        if (!listen.Address.IsV4) return DladmStatus.NotSup;
        if (!_ports.TryGetValue(listen.Port, out var port))
        {
            var socket = _stack.OpenUdpSocket();
            if (socket.Bind(IpAddress.AnyV4, listen.Port) != NetError.None)
            {
                socket.Dispose();
                return DladmStatus.AddrInUse; // a program of the global zone has the port
            }
            socket.NoChecksum = true; // RFC 7348 section 5: the outer UDP checksum SHOULD be zero
            port = new Port { Socket = socket };
            var p = port;
            socket.PacketUpcall = (from, to, packet) => Deliver(p, from, to, packet);
            _ports.Add(listen.Port, port);
        }
        if (port.ByAddress.ContainsKey(listen.Address)) return DladmStatus.AddrInUse;
        var u = new Underlay(this, port, listen);
        port.ByAddress.Add(listen.Address, u);
        port.LastUnderlay = null;
        underlay = u;
        return DlStatus.Ok;
    }

    /// <summary>A datagram for a listen port: to its listen address's overlays, in its packet when
    /// they take packets (in-place decapsulation). Consumes the packet.</summary>
    private void Deliver(Port port, IpEndpoint from, IpAddress to, Packet packet)
    {
        var u = port.LastUnderlay;
        if (u == null || port.LastTo != to)
        {
            if (!port.ByAddress.TryGetValue(to, out u))
            {
                Unlistened++;
                packet.Free();
                return;
            }
            port.LastTo = to;
            port.LastUnderlay = u;
        }
        var source = new UnderlayEndpoint(from.Address, from.Port);
        if (u.PacketReceiver is { } take) take(source, packet);
        else
        {
            if (u.Receiver is { } r) r(source, packet.Memory);
            else Unlistened++;
            packet.Free();
        }
    }

    private void Close(Underlay u)
    {
        if (!_ports.TryGetValue(u.Local.Port, out var port) || !port.ByAddress.Remove(u.Local.Address)) return;
        port.LastUnderlay = null;
        if (port.ByAddress.Count > 0) return;
        _ports.Remove(u.Local.Port);
        port.Socket.Dispose();
    }

    private sealed class Underlay(GlobalZoneUnderlays owner, Port port, UnderlayEndpoint local) : IOverlayUnderlay, IDisposable
    {
        public Action<UnderlayEndpoint, ReadOnlyMemory<byte>>? Receiver;
        public OverlayPacketReceiver? PacketReceiver;
        public UnderlayEndpoint Local { get; } = local;

        public int MaxPayload(UnderlayEndpoint target)
        {
            var stack = owner._stack;
            if (!stack.IsLocalAddress(target.Address) && stack.LookupRoute(target.Address) == null) return -1;
            return stack.PathMtu(target.Address) - 20 - UdpView.HeaderLength;
        }

        public bool Send(UnderlayEndpoint target, ReadOnlySpan<byte> payload) => Send(target, Local.Port, payload);

        public bool Send(UnderlayEndpoint target, ushort sourcePort, ReadOnlySpan<byte> payload)
            => port.Socket.SendFrom(payload, Local.Address, sourcePort, new IpEndpoint(target.Address, target.Port)) == NetError.None;

        public bool Send(UnderlayEndpoint target, ushort sourcePort, Packet datagram)
            => port.Socket.SendFrom(datagram, Local.Address, sourcePort, new IpEndpoint(target.Address, target.Port)) == NetError.None;

        public void SetReceiver(Action<UnderlayEndpoint, ReadOnlyMemory<byte>>? receive) => Receiver = receive;

        public bool SetPacketReceiver(OverlayPacketReceiver? receive)
        {
            PacketReceiver = receive;
            return true;
        }

        public void Dispose() => owner.Close(this);
    }
}
