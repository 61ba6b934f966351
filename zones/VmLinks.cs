using SmartOS.Kernel;
using SmartOS.Vnic;

namespace SmartOS.Zones;

/// <summary>
/// vmadm update on a running VM: the spoofing flags of its nics (allow_ip_spoofing,
/// allow_mac_spoofing, allow_dhcp_spoofing, allow_restricted_traffic, allowed_ips, allowed_dhcp_cids,
/// and the ips' dynamic methods) become the VNICs' link protection (protection, allowed-ips,
/// allowed-dhcp-cids, allow-all-dhcp-cids, dynamic-methods) at once, as VM.js sets them with dladm set-linkprop
/// (smartos-live's test-spoof-opts.js reads them back with dladm show-linkprop). Every change is
/// checked by the MAC layer first; only then is any applied, so a refused one changes nothing.
/// </summary>
public static partial class VmModel
{
    /// <summary>The link protection properties a running VM's VNICs get from its configuration
    /// (an empty value: the property's default).</summary>
    private static List<(Datalink Link, string Prop, string Value)> LiveChanges(Host host, Zone z, ZoneConfig next)
    {
        var changes = new List<(Datalink, string, string)>();
        if (z.State != ZoneState.Running) return changes;
        foreach (var n in next.Nets)
        {
            if (n.GlobalNic == null || !n.Protected) continue;
            if (host.Mac.Find(n.Physical) is not Datalink link || link.Zone != z.Name) continue;
            string prot = n.ProtectionValue();
            // allowed-ips and allowed-dhcp-cids only mean something with their protection on (ZoneTable.CreateLink).
            string ips = prot.Contains("ip-nospoof", StringComparison.Ordinal) ? n.AllowedIpsValue() : "";
            string cids = prot.Contains("dhcp-nospoof", StringComparison.Ordinal) ? n.AllowedDhcpCidsValue() : "";
            changes.Add((link, "protection", prot));
            changes.Add((link, "allowed-ips", ips));
            changes.Add((link, "allowed-dhcp-cids", cids));
            changes.Add((link, "allow-all-dhcp-cids", prot.Contains("dhcp-nospoof", StringComparison.Ordinal) ? n.AllowAllDhcpCidsValue() : ""));
            changes.Add((link, "dynamic-methods", prot.Contains("ip-nospoof", StringComparison.Ordinal) ? n.DynamicMethodsValue() : ""));
        }
        return changes;
    }

    /// <summary>Checks what an update would change on a running VM's VNICs; the MAC layer's refusal
    /// in vmadm's words, or null.</summary>
    public static string? CheckLive(Host host, Zone z, ZoneConfig next)
    {
        foreach (var (link, prop, value) in LiveChanges(host, z, next))
        {
            if (value.Length == 0) continue;
            var s = host.Mac.CheckLinkProp(link, prop, value);
            if (!s.IsOk) return $"{link.Name}: cannot set link property '{prop}' to '{ConfigText.Echo(value)}': {s.Message}";
        }
        return null;
    }

    /// <summary>Applies an update's link protection to a running VM's VNICs (after CheckLive).</summary>
    public static string? ApplyLive(Host host, Zone z)
    {
        foreach (var (link, prop, value) in LiveChanges(host, z, z.Config))
        {
            var s = value.Length == 0 ? host.Mac.ResetLinkProp(link, prop, temporary: true) : host.Mac.SetLinkProp(link, prop, value, temporary: true);
            if (!s.IsOk) return $"{link.Name}: cannot set link property '{prop}' to '{ConfigText.Echo(value)}': {s.Message}";
        }
        return null;
    }
}
