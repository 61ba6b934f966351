using SmartOS.Kernel;
using SmartOS.Kernel.Wire;
using SmartOS.Vnic;

namespace SmartOS.Zones;

/// <summary>
/// The one validator for a zone's nets. zonecfg (end, commit, verify), vmadm (create, update),
/// zoneadm verify and boot all ask it, so the same bad net gets the same words whichever way it
/// came in. <see cref="Check(IReadOnlyList{ZoneNet})"/> is what the configuration alone can tell
/// (names, addresses, ranges); <see cref="Check(IReadOnlyList{ZoneNet}, Host)"/> adds what the host
/// must have (the nic tag or the lent link, and an MTU the link below can carry). A problem names
/// the net and the zonecfg property at fault; each front end prints it in its own frame (vmadm maps
/// the property to its nics.N field).
/// </summary>
public static class ZoneNets
{
    /// <summary>The first problem with the configuration's nets, or null.</summary>
    public static ZoneNetProblem? Check(IReadOnlyList<ZoneNet> nets)
    {
        var names = new HashSet<string>(StringComparer.Ordinal);
        for (int i = 0; i < nets.Count; i++)
        {
            var n = nets[i];
            // zones.conf is read with the nullability of each property checked, but not of list elements.
            if (n == null) return new(i, "", "", "empty resource (null)");
            if (n.Ips.Contains(null!) || n.Gateways.Contains(null!) || n.AllowedIps.Contains(null!)) return new(i, ConfigText.Echo(n.Physical), "", "empty address (null)");
            if (string.IsNullOrEmpty(n.Physical)) return new(i, "", "physical", "not specified");
            if (!LinkNames.IsValid(n.Physical)) return new(i, "", "physical", $"'{ConfigText.Echo(n.Physical)}' is not a valid link name");
            if (!names.Add(n.Physical)) return new(i, "", "physical", $"'{n.Physical}' is specified more than once");
            string p = n.Physical;
            foreach (string a in n.Addresses)
                if (!ZoneAddresses.IsValidAddress(a)) return new(i, p, "allowed-address", $"'{ConfigText.Echo(a)}' is not a valid address/prefix");
            foreach (string r in n.Routers)
                if (!ZoneAddresses.IsValidIp(r)) return new(i, p, "defrouter", $"'{ConfigText.Echo(r)}' is not a valid IP address");
            if (n.MacAddr != null && (!MacAddress.TryParse(n.MacAddr, out var m) || m.IsGroup || m.IsZero))
                return new(i, p, "mac-addr", $"'{ConfigText.Echo(n.MacAddr)}' is not a valid unicast MAC address");
            if (n.VlanId is < 0 or > 4094 or 1) return new(i, p, "vlan-id", $"'{n.VlanId}' is not valid");
            if (n.VlanId != 0 && n.GlobalNic == null) return new(i, p, "vlan-id", "needs global-nic");
            if (n.Mtu is < 576 or > 9000) return new(i, p, "mtu", $"'{n.Mtu}' is not from 576 to 9000");
            foreach (int port in n.BlockedOutgoingPorts)
                if (port is < 1 or > 65535) return new(i, p, "blocked outgoing port", $"'{port}' is not from 1 to 65535");
        }
        return null;
    }

    /// <summary>The first problem with the nets on this host: the configuration's own, then the nic
    /// tag (or the lent link) each needs and the MTU the link below it can carry.</summary>
    public static ZoneNetProblem? Check(IReadOnlyList<ZoneNet> nets, Host host)
    {
        if (Check(nets) is ZoneNetProblem own) return own;
        for (int i = 0; i < nets.Count; i++)
        {
            var n = nets[i];
            Datalink? lower;
            if (n.GlobalNic != null)
            {
                lower = host.NicTags.Resolve(n.GlobalNic);
                if (lower == null) return new(i, n.Physical, "global-nic", $"'{ConfigText.Echo(n.GlobalNic)}' does not exist");
            }
            else
            {
                if (host.Mac.Find(n.Physical) == null) return new(i, n.Physical, "physical", $"'{n.Physical}' does not exist");
                continue; // A lent link keeps its own MTU.
            }
            if (n.Mtu > lower.Mtu) return new(i, n.Physical, "mtu", $"{n.Mtu} is larger than the MTU of {lower.Name}, {lower.Mtu}");
        }
        return null;
    }
}

/// <summary>One problem with a zone's nets: which net (its index and physical name, "" when it has
/// none yet), the zonecfg property at fault ("" for the resource as a whole) and what is wrong.</summary>
public sealed record ZoneNetProblem(int Index, string Physical, string Property, string Detail)
{
    /// <summary>As zonecfg and zoneadm print it: "net web0: mtu 9000 is larger than ...".</summary>
    public string Message
        => (Physical.Length > 0 ? $"net {Physical}: " : "net: ") + (Property.Length > 0 ? Property + " " : "") + Detail;

    public override string ToString() => Message;
}
