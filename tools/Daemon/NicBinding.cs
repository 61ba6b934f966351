using SmartOS.Vnic;
using SmartOS.Zones;

namespace SmartOS.Cli.Daemon;

/// <summary>
/// `smartos boot --nic NIC=tap:NAME | NIC=pcap:IFACE`: binds a physical NIC of the booting host to a
/// real Linux interface, a TAP device (vnic/TapNic.cs) or an existing interface through libpcap
/// (PcapNic.cs), instead of leaving it unwired. Real time only, as `smartos boot` is.
/// </summary>
public sealed record NicBinding(string Nic, string Kind, string Device)
{
    public static bool TryParse(string spec, out NicBinding? binding, out string? error)
    {
        binding = null;
        int eq = spec.IndexOf('=');
        int colon = eq < 0 ? -1 : spec.IndexOf(':', eq + 1);
        if (eq <= 0 || colon < 0 || colon == spec.Length - 1)
        {
            error = "expected NIC=tap:NAME or NIC=pcap:IFACE (for example e1000g0=tap:smartos0)";
            return false;
        }
        string kind = spec[(eq + 1)..colon];
        if (kind is not ("tap" or "pcap"))
        {
            error = $"unknown NIC backend '{kind}' (expected tap or pcap)";
            return false;
        }
        binding = new NicBinding(spec[..eq], kind, spec[(colon + 1)..]);
        error = null;
        return true;
    }

    /// <summary>Opens every binding's device for <paramref name="host"/>. On any failure closes what it
    /// opened and returns null with the reason, so the boot stops with nothing half-started.</summary>
    public static List<Bound>? OpenAll(Host host, IReadOnlyList<NicBinding> bindings, out string? error)
    {
        var opened = new List<Bound>();
        error = null;
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var b in bindings)
        {
            if (host.Mac.Find(b.Nic) is not PhysLink phys)
                error = $"--nic {b.Nic}: no such physical NIC (the host has e1000g0..e1000g{host.Mac.Links.OfType<PhysLink>().Count() - 1})";
            else if (!seen.Add(b.Nic))
                error = $"--nic {b.Nic}: bound twice";
            else
            {
                string? why;
                Bound? bound = b.Kind == "tap"
                    ? (TapNic.TryOpen(b.Device, out why) is { } tap ? new Bound(phys, tap, (d) => tap.Start(phys, d)) : null)
                    : (PcapNic.TryOpen(b.Device, out why) is { } pcap ? new Bound(phys, pcap, (d) => pcap.Start(phys, d)) : null);
                if (bound != null) opened.Add(bound);
                else error = $"--nic {b.Nic}={b.Kind}:{b.Device}: {why}";
            }
            if (error != null)
            {
                foreach (var o in opened) o.Backend.Dispose();
                return null;
            }
        }
        return opened;
    }

    /// <summary>An opened backend and how to start it on the loop.</summary>
    public sealed record Bound(PhysLink Phys, IDisposable Backend, Action<Kernel.RealTimeDriver> Start);
}
