using SmartOS.Kernel;
using SmartOS.Vnic;

namespace SmartOS.Zones;

/// <summary>
/// The underlay hook of a host in real time (smartos boot; vnic/Overlay.cs rule 5): a listen_ip that
/// is an address of the Linux machine (of the daemon's network namespace) gets a UDP socket of its
/// own (vnic/UdpUnderlay.cs), so daemons in other processes, namespaces or machines reach it over
/// real UDP; any other listen_ip stays on the global zone's simulated IP stack, as in virtual time.
/// A socket that cannot be opened (the port is in use) refuses the overlay, and <see cref="LastRefusal"/>
/// says why in words.
/// </summary>
public sealed class RealTimeUnderlays
{
    private readonly Host _host;
    private readonly RealTimeDriver _driver;
    private List<string>? _refusals;

    public RealTimeUnderlays(Host host, RealTimeDriver driver)
    {
        _host = host;
        _driver = driver;
    }

    /// <summary>The message of the last refusal, or null.</summary>
    public string? LastRefusal { get; private set; }

    /// <summary>Whether the endpoint gets a socket rather than the global zone's stack.</summary>
    public bool IsMachineEndpoint(UnderlayEndpoint listen) => UdpUnderlay.IsMachineAddress(listen.Address);

    /// <summary>The provider (MacLayer.SetUnderlayProvider).</summary>
    public DlStatus Open(UnderlayEndpoint listen, out IOverlayUnderlay? underlay)
    {
        underlay = null;
        LastRefusal = null;
        if (!IsMachineEndpoint(listen)) return _host.Underlays.Open(listen, out underlay);
        var socket = UdpUnderlay.Open(listen, _driver, out string error, out DlStatus status);
        if (socket == null)
        {
            LastRefusal = error;
            _refusals?.Add(error);
            return status;
        }
        socket.RegisterKstat(_host.Kstats, $"udp_{listen.Address}_{socket.Local.Port}");
        underlay = socket;
        return DlStatus.Ok;
    }

    /// <summary>Installs the provider on the host and moves the overlays booted on machine addresses
    /// to sockets; returns the problems, worded for the daemon's log.</summary>
    public List<string> Install()
    {
        _refusals = [];
        var problems = _host.Mac.SetUnderlayProvider(Open, IsMachineEndpoint);
        var detailed = _refusals;
        _refusals = null;
        // Every refusal here is a socket's, in the order of the problems: its words replace the code's.
        return detailed.Count == problems.Count ? detailed : problems;
    }
}
