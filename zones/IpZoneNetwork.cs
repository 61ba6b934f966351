using SmartOS.Kernel.Trace;
using SmartOS.Kernel;
using SmartOS.Kernel.Wire;
using SmartOS.Netstack;
using SmartOS.Netstack.Tcp;

namespace SmartOS.Zones;

/// <summary>
/// The real zone network (Host.cs rule 5): a booting zone gets its own IpStack bound to its MAC
/// clients, with the addresses, default routes and address-configuration modes its config asks for.
/// Halting shuts the stack down (sockets aborted, kstats removed) before the zone closes the clients.
/// </summary>
public sealed class IpZoneNetwork : IZoneNetwork
{
    private readonly KstatRegistry _kstats;
    private int _nextInstance = 1;

    private readonly NetProbes _probes;

    /// <param name="probes">The host's probe registry: a zone's stack fires the host's ip, tcp and
    /// udp probes (netstack/NetProbes.cs) naming the zone.</param>
    public IpZoneNetwork(KstatRegistry kstats, ProbeRegistry? probes = null)
    {
        _kstats = kstats;
        _probes = probes == null ? NetProbes.None : NetProbes.For(probes);
    }

    public bool TryStart(ZoneNetworkPlan plan, out IZoneStack? stack, out string? error)
    {
        stack = null;
        foreach (var nic in plan.Interfaces)
        {
            foreach (string a in nic.Addresses)
            {
                if (!ZoneAddresses.IsValidAddress(a)) { error = $"{nic.Name}: invalid address '{a}'"; return false; }
            }
            foreach (string g in nic.Gateways)
            {
                if (!IpAddress.TryParse(g, out _)) { error = $"{nic.Name}: invalid gateway '{g}'"; return false; }
            }
        }
        // The zone's memory cap bounds what its TCP holds: connection state and socket buffers are
        // charged before they exist, and a refusal is ENOBUFS in that zone only.
        var ip = new IpStack(plan.Zone, plan.Scheduler, plan.Pool, plan.Random, _kstats, _nextInstance++,
            tcpMemory: new ZoneTcpMemory(plan.Memory));
        ip.Probes = _probes;
        error = Configure(ip, plan, out Task up, out Task<IReadOnlyList<string>> addressesUp);
        if (error != null)
        {
            ip.Shutdown();
            return false;
        }
        stack = new ZoneIpStack(plan, ip, up, addressesUp);
        return true;
    }

    /// <summary>Plumbs the zone's interfaces and addresses; <paramref name="up"/> completes on the
    /// loop once duplicate address detection has ended and the default routes are in;
    /// <paramref name="addressesUp"/> once the dynamic addresses have come too, or never will.</summary>
    private static string? Configure(IpStack ip, ZoneNetworkPlan plan, out Task up, out Task<IReadOnlyList<string>> addressesUp)
    {
        up = Task.CompletedTask;
        addressesUp = Task.FromResult<IReadOnlyList<string>>([]);
        var pending = new List<Task<IpStatus>>();
        var dynamic = new List<(string What, Task<IpStatus> Ready)>();
        foreach (var nic in plan.Interfaces)
        {
            var s = ip.CreateInterface(nic.Name, nic.Client);
            if (!s.IsOk) return $"{nic.Name}: {s.Message}";
            int v4 = 0, v6 = 0;
            foreach (string a in nic.Addresses)
            {
                IpStatus st;
                if (a == "dhcp")
                {
                    st = ip.StartDhcp($"{nic.Name}/dhcp", out var client);
                    if (client != null) dynamic.Add(($"{nic.Name}: dhcp", client.Ready));
                }
                else if (a == "addrconf")
                {
                    st = ip.StartAddrconf($"{nic.Name}/v6", out var linkLocal);
                    if (linkLocal != null) dynamic.Add(($"{nic.Name}: addrconf", linkLocal.Ready));
                }
                else
                {
                    ZoneAddresses.TryParseCidr(a, out var addr, out int prefix);
                    string obj = addr.IsV4 ? $"{nic.Name}/v4" + (v4++ == 0 ? "" : v4.ToString(System.Globalization.CultureInfo.InvariantCulture))
                                           : $"{nic.Name}/v6s" + (v6++ == 0 ? "" : v6.ToString(System.Globalization.CultureInfo.InvariantCulture));
                    st = ip.AddAddress(obj, addr, prefix, out var ao);
                    if (ao != null) pending.Add(ao.Ready);
                }
                if (!st.IsOk) return $"{nic.Name}: {a}: {st.Message}";
            }
        }
        // Default routes need their gateway on a connected network, which exists once duplicate
        // address detection has passed; they are added then, on the loop, as the zone comes up.
        var context = new LoopSynchronizationContext(plan.Scheduler);
        if (pending.Count == 0 || pending.TrueForAll(t => t.IsCompleted))
        {
            if (AddRoutes(ip, plan) is string routeError) return routeError;
        }
        else
        {
            up = context.Start(async () =>
            {
                await Task.WhenAll(pending);
                AddRoutes(ip, plan);
                return 0;
            });
        }
        var staticUp = up;
        // Bounded in the zone's time: a DHCP client gives up after DhcpClient.ReadyAttempts discovers,
        // and duplicate address detection ends after its probes.
        if (dynamic.Count > 0 || !staticUp.IsCompleted)
        {
            addressesUp = context.Start<IReadOnlyList<string>>(async () =>
            {
                await staticUp;
                var missing = new List<string>();
                foreach (var (what, ready) in dynamic)
                {
                    var st = await ready;
                    if (!st.IsOk) missing.Add($"{what}: {st.Message}");
                }
                return missing;
            });
        }
        return null;
    }

    /// <summary>Adds the zone's default routes; a failure is reported by the route's absence
    /// (netstat -rn) as on a system whose defrouter is not on any of its subnets.</summary>
    private static string? AddRoutes(IpStack ip, ZoneNetworkPlan plan)
    {
        foreach (var nic in plan.Interfaces)
        {
            foreach (string g in nic.Gateways)
            {
                IpAddress.TryParse(g, out var gw);
                var any = gw.IsV4 ? IpAddress.AnyV4 : IpAddress.AnyV6;
                var s = ip.AddRoute(any, 0, gw);
                // With dhcp or addrconf the subnet is not known yet; the lease or RA brings the router.
                bool dynamic = nic.Addresses.Contains("dhcp") || nic.Addresses.Contains("addrconf");
                if (s != NetError.None && s != NetError.Exists && !(dynamic && s == NetError.NetworkUnreachable))
                    return $"{nic.Name}: default route via {g}: {NetErrors.Message(s)}";
            }
        }
        return null;
    }

    private sealed class ZoneIpStack(ZoneNetworkPlan plan, IpStack ip, Task up, Task<IReadOnlyList<string>> addressesUp) : IZoneStack, IZoneIpStack
    {
        public ZoneNetworkPlan Plan { get; } = plan;
        public IpStack Ip { get; } = ip;
        public Task Up { get; } = up;
        public Task<IReadOnlyList<string>> AddressesUp { get; } = addressesUp;
        public void Stop() => Ip.Shutdown();
    }
}

/// <summary>Charges a zone's TCP memory to the zone's memory account (capped-memory).</summary>
internal sealed class ZoneTcpMemory(IMemoryAccount account) : ITcpMemoryAccount
{
    public bool TryCharge(long bytes) => account.TryCharge(bytes);
    public void Release(long bytes) => account.Release(bytes);
}

/// <summary>A zone stack backed by the project's IpStack (what zlogin's programs run on).</summary>
public interface IZoneIpStack
{
    IpStack Ip { get; }
}
