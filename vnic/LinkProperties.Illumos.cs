using System.Globalization;

namespace SmartOS.Vnic;

/// <summary>
/// The link properties illumos's libdladm knows (prop_table in usr/src/lib/libdladm/common/linkprop.c),
/// in its order and with the link classes each applies to, so that show-linkprop lists for a link what
/// illumos lists for a link of that class. Properties this MAC layer implements are registered with
/// their own rows (LinkProperties.cs, ResourceControl.cs); every other one is shown read-only ("r-"),
/// with the value this layer has (speed, duplex, state, zone) or "--", and setting it is refused
/// ("read-only property") rather than accepted and ignored. Wireless, InfiniBand and IP-tunnel rows
/// are left out: this layer has no such links.
/// </summary>
public sealed partial class MacLayer
{
    [Flags]
    private enum Classes { Phys = 1, Vlan = 2, Vnic = 4, Etherstub = 8, Aggr = 16, All = Phys | Vlan | Vnic | Etherstub | Aggr }

    /// <summary>One prop_table row: its name, the link classes it has (pd_class) and, for the rows this
    /// layer reports, a value getter, the possible values and the default illumos lists.</summary>
    private sealed record IllumosProp(string Name, Classes On, Func<Datalink, string>? Value = null, string Possible = "", string Default = "");

    private static readonly Classes s_bridged = Classes.Phys | Classes.Aggr | Classes.Etherstub;

    private static readonly IllumosProp[] s_illumosProps =
    [
        new("speed", Classes.Phys, l => l.SpeedMbps.ToString(CultureInfo.InvariantCulture)),
        new("autopush", Classes.All),
        new("zone", Classes.All, l => l.Zone == "global" ? "" : l.Zone),
        new("duplex", Classes.Phys, l => ((PhysLink)l).Duplex, "half,full"),
        new("state", Classes.All, l => l.State, "up,down", "up"),
        new("adv_autoneg_cap", Classes.Phys),
        new("mtu", Classes.All),
        new("flowctrl", Classes.Phys),
        new("secondary-macs", Classes.Vnic),
        new("adv_10gfdx_cap", Classes.Phys), new("en_10gfdx_cap", Classes.Phys),
        new("adv_1000fdx_cap", Classes.Phys), new("en_1000fdx_cap", Classes.Phys),
        new("adv_1000hdx_cap", Classes.Phys), new("en_1000hdx_cap", Classes.Phys),
        new("adv_100fdx_cap", Classes.Phys), new("en_100fdx_cap", Classes.Phys),
        new("adv_100hdx_cap", Classes.Phys), new("en_100hdx_cap", Classes.Phys),
        new("adv_10fdx_cap", Classes.Phys), new("en_10fdx_cap", Classes.Phys),
        new("adv_10hdx_cap", Classes.Phys), new("en_10hdx_cap", Classes.Phys),
        new("maxbw", Classes.All),
        new("cpus", Classes.All), new("cpus-effective", Classes.All),
        new("pool", Classes.All), new("pool-effective", Classes.All),
        new("priority", Classes.All),
        new("tagmode", Classes.Phys | Classes.Vnic),
        new("forward", Classes.All & ~Classes.Vnic),
        new("default_tag", s_bridged), new("learn_limit", s_bridged), new("learn_decay", s_bridged),
        new("stp", s_bridged), new("stp_priority", s_bridged), new("stp_cost", s_bridged),
        new("stp_edge", s_bridged), new("stp_p2p", s_bridged), new("stp_mcheck", s_bridged),
        new("protection", Classes.All),
        new("promisc-filtered", Classes.Vnic),
        new("allowed-ips", Classes.All),
        new("allowed-dhcp-cids", Classes.All),
        new("allow-all-dhcp-cids", Classes.All),
        new("dynamic-methods", Classes.All),
        new("rxrings", Classes.All), new("rxrings-effective", Classes.All),
        new("txrings", Classes.All), new("txrings-effective", Classes.All),
        new("txrings-available", Classes.All), new("rxrings-available", Classes.All),
        new("rxhwclnt-available", Classes.All), new("txhwclnt-available", Classes.All),
    ];

    private static Classes ClassOf(Datalink l) => l.Class switch
    {
        LinkClass.Phys => Classes.Phys,
        LinkClass.Vlan => Classes.Vlan,
        LinkClass.Vnic => Classes.Vnic,
        LinkClass.Aggr => Classes.Aggr,
        _ => Classes.Etherstub,
    };

    /// <summary>Registers, read-only, every illumos property this layer does not implement.</summary>
    private void RegisterIllumosReadOnlyProperties()
    {
        foreach (var row in s_illumosProps)
        {
            if (FindProperty(row.Name) != null) continue;
            var on = row.On;
            var value = row.Value;
            string possible = row.Possible, def = row.Default;
            RegisterProperty(new LinkProperty
            {
                Name = row.Name,
                Perm = "r-",
                AppliesTo = l => (on & ClassOf(l)) != 0,
                Get = l => value?.Invoke(l) ?? "",
                Default = _ => def,
                Possible = _ => possible,
                Validate = (_, _) => DladmStatus.PropRdOnly,
                Apply = (_, _) => throw new InvalidOperationException("read-only property"),
            });
        }
    }

    /// <summary>
    /// The properties show-linkprop lists for a link, in prop_table's order: those that apply to it,
    /// and, read-only and without a value, those illumos has for its class that this layer implements
    /// only for other classes (maxbw on an etherstub, say).
    /// </summary>
    public IReadOnlyList<LinkProperty> PropertiesOf(Datalink link)
    {
        var list = new List<LinkProperty>();
        foreach (var row in s_illumosProps)
        {
            var p = FindProperty(row.Name);
            if (p != null && p.AppliesTo(link)) list.Add(p);
            else if ((row.On & ClassOf(link)) != 0) list.Add(Unsupported(row.Name));
        }
        foreach (var p in _props)
            if (Array.FindIndex(s_illumosProps, r => r.Name == p.Name) < 0 && p.AppliesTo(link)) list.Add(p);
        return list;
    }

    /// <summary>Whether illumos has the property for this link's class (so refusing it is "not
    /// supported here", not "no such property").</summary>
    public static bool IllumosHas(Datalink link, string name)
        => Array.Find(s_illumosProps, r => r.Name == name) is { } row && (row.On & ClassOf(link)) != 0;

    private static LinkProperty Unsupported(string name) => new()
    {
        Name = name,
        Perm = "r-",
        AppliesTo = _ => true,
        Get = _ => "",
        Default = _ => "",
        Possible = _ => "",
        Validate = (_, _) => DladmStatus.NotSup,
        Apply = (_, _) => throw new InvalidOperationException("not supported"),
    };
}
