using SmartOS.Kernel;
using SmartOS.Vnic;

namespace SmartOS.Zones;

/// <summary>One interface of a booting zone: a MAC client the zone opened on one of its datalinks,
/// and what vmadm or zonecfg asked to configure on it.</summary>
/// <param name="Name">The interface name inside the zone (net0, net1, ...).</param>
/// <param name="Client">The open MAC client; the zone owns it and closes it after the stack stops.</param>
/// <param name="Addresses">CIDR addresses ("10.0.0.2/24"), "dhcp" or "addrconf".</param>
/// <param name="Gateways">Default routers reached through this interface.</param>
public sealed record ZoneInterface(string Name, MacClient Client, IReadOnlyList<string> Addresses, IReadOnlyList<string> Gateways, bool Primary, int Mtu);

/// <summary>Everything a zone's IP stack is given when the zone boots.</summary>
public sealed record ZoneNetworkPlan(
    string Zone, IReadOnlyList<ZoneInterface> Interfaces, IReadOnlyList<string> Resolvers, IMemoryAccount Memory,
    Scheduler Scheduler, HostRandom Random, PacketPool Pool);

/// <summary>
/// The seam between zones and the per-zone TCP/IP stack (netstack/). A booting zone opens a MAC
/// client on each of its datalinks and calls <see cref="TryStart"/>; halting calls
/// <see cref="IZoneStack.Stop"/> and then closes the clients. The stack may set each client's
/// Receiver, must charge what it holds to <see cref="ZoneNetworkPlan.Memory"/>, and must not close
/// the clients itself.
/// </summary>
public interface IZoneNetwork
{
    /// <summary>Brings up an IP stack on the plan's interfaces; false with a message when it cannot
    /// (a bad address, say), in which case the zone does not boot.</summary>
    bool TryStart(ZoneNetworkPlan plan, out IZoneStack? stack, out string? error);
}

/// <summary>A running zone's IP stack.</summary>
public interface IZoneStack
{
    ZoneNetworkPlan Plan { get; }
    /// <summary>Stops the stack: timers cancelled, sockets closed, memory released.</summary>
    void Stop();
    /// <summary>Completes (on the loop) once the static addresses are usable and the default routes
    /// are in: duplicate address detection has ended. vmadm create waits for it.</summary>
    Task Up => Task.CompletedTask;
    /// <summary>Completes (on the loop) once every address is up, the dhcp and addrconf ones too, with
    /// those that never came ("net0: dhcp: ..."); bounded in the zone's time (DhcpClient.ReadyAttempts,
    /// duplicate address detection). vmadm create and start wait for it.</summary>
    Task<IReadOnlyList<string>> AddressesUp => Task.FromResult<IReadOnlyList<string>>([]);
}

/// <summary>Address forms shared by zonecfg, vmadm and the network seam.</summary>
public static class ZoneAddresses
{
    /// <summary>A CIDR address (IPv4 or IPv6 with a prefix length), "dhcp" or "addrconf".</summary>
    public static bool IsValidAddress(string text)
    {
        if (text is "dhcp" or "addrconf") return true;
        return TryParseCidr(text, out _, out _);
    }

    public static bool TryParseCidr(string text, out Kernel.Wire.IpAddress address, out int prefix)
    {
        address = default;
        prefix = 0;
        int slash = text.IndexOf('/');
        if (slash < 0) return false;
        if (!Kernel.Wire.IpAddress.TryParse(text[..slash], out address)) return false;
        if (!int.TryParse(text[(slash + 1)..], System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out prefix)) return false;
        return prefix >= 0 && prefix <= (address.IsV4 ? 32 : 128);
    }

    public static bool IsValidIp(string text) => Kernel.Wire.IpAddress.TryParse(text, out _);
}
