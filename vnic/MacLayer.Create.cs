namespace SmartOS.Vnic;

/// <summary>
/// Create-with-properties as one MAC-layer operation (dladm create-vnic/create-vlan -p, zone boot,
/// vmadm): the link is created live, every property value is checked against it before any applies,
/// the values apply, and only then is the link with its properties written to datalink.conf in one
/// step (temporary links skip that). A failed check, a failed apply, a failed write or anything thrown
/// on the way removes the live link again, so a failed create leaves nothing, live or persistent.
/// Callers describe the failure; they no longer create and then set.
/// </summary>
public sealed partial class MacLayer
{
    /// <summary>Creates a VNIC with creation-time properties, all or nothing. On failure
    /// <paramref name="failedProp"/> is the index of the property at fault, or -1 when the creation
    /// itself (or the persistent write) failed.</summary>
    public DlStatus CreateVnic(string name, string over, MacRequest request, ushort vid,
        IReadOnlyList<(string Prop, string Value)> props, bool temporary, out VnicLink? vnic, out int failedProp)
    {
        failedProp = -1;
        // Checked before the live create, as CreateVnic checks it for a persistent create: the
        // persistent write at the end would refuse it anyway, after work to undo.
        var lower = Find(over);
        if (!temporary && lower is Etherstub or AggrLink or OverlayLink && FindPersistent(over) == null)
        {
            vnic = null;
            return DladmStatus.PersistOnTemp;
        }
        var s = CreateVnic(name, over, request, vid, temporary: true, out vnic);
        if (!s.IsOk) return s;
        s = FinishCreate(vnic!, props, temporary, out failedProp);
        if (!s.IsOk) vnic = null;
        return s;
    }

    /// <summary>Creates a VLAN link with creation-time properties, all or nothing (as the VNIC one).</summary>
    public DlStatus CreateVlan(string name, string over, ushort vid,
        IReadOnlyList<(string Prop, string Value)> props, bool temporary, out VlanLink? vlan, out int failedProp)
    {
        failedProp = -1;
        var s = CreateVlan(name, over, vid, temporary: true, out vlan);
        if (!s.IsOk) return s;
        s = FinishCreate(vlan!, props, temporary, out failedProp);
        if (!s.IsOk) vlan = null;
        return s;
    }

    /// <summary>Checks, applies and persists the properties of a link just created live (and not yet
    /// persistent); removes the link again on any failure or exception.</summary>
    private DlStatus FinishCreate(Datalink link, IReadOnlyList<(string Prop, string Value)> props, bool temporary, out int failedProp)
    {
        failedProp = -1;
        try
        {
            var s = ApplyAndPersist(link, props, temporary, out failedProp);
            if (!s.IsOk) RemoveLive(link);
            return s;
        }
        catch
        {
            if (Find(link.Name) == link) RemoveLive(link);
            throw;
        }
    }

    private DlStatus ApplyAndPersist(Datalink link, IReadOnlyList<(string Prop, string Value)> props, bool temporary, out int failedProp)
    {
        // Validated once, all values before any applies: a bad last value changes nothing.
        for (failedProp = 0; failedProp < props.Count; failedProp++)
        {
            var (prop, value) = props[failedProp];
            var s = CheckLinkProp(link, prop, value);
            if (!s.IsOk) return s;
        }
        // Applied in order; a value can still be refused here when an earlier one changed what it
        // is checked against (an mtu, say), so each is checked again as it applies.
        for (failedProp = 0; failedProp < props.Count; failedProp++)
        {
            var (prop, value) = props[failedProp];
            var s = SetLinkProp(link, prop, value, temporary: true);
            if (!s.IsOk) return s;
        }
        failedProp = -1;
        return temporary ? DlStatus.Ok : PersistLink(link, props);
    }
}
