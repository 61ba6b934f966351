using System.Text.Json;
using System.Text.Json.Serialization;
using SmartOS.Kernel;
using SmartOS.Kernel.Wire;

namespace SmartOS.Vnic;

/// <summary>One persistent datalink, as written to the host's datalink.conf.</summary>
public sealed class LinkRecord
{
    public string Name { get; set; } = "";
    public string Class { get; set; } = "";
    public string? Device { get; set; }
    public string? Over { get; set; }
    public string? Mac { get; set; }
    public string? MacType { get; set; }
    public int Vid { get; set; }
    public int? FactorySlot { get; set; }
    public string? Zone { get; set; }
    /// <summary>Link properties beyond mtu (set-linkprop), by name.</summary>
    public Dictionary<string, string>? Props { get; set; }
    /// <summary>An aggregation's ports and settings (class "aggr", MacLayer.Aggr.cs).</summary>
    public AggrRecord? Aggr { get; set; }
    /// <summary>An overlay's encapsulation, search plugin, VNID and properties (class "overlay",
    /// MacLayer.Overlay.cs).</summary>
    public OverlayRecord? Overlay { get; set; }
}

public sealed partial class MacLayer
{
    public const string ConfigName = "datalink.conf";
    public const int FactorySlots = 8;

    private readonly List<LinkRecord> _persistent = [];
    private IConfigStore? _store;

    /// <summary>Persistent records, in creation order (what the next boot recreates).</summary>
    public IReadOnlyList<LinkRecord> PersistentLinks => _persistent;

    public LinkRecord? FindPersistent(string name) => _persistent.Find(r => r.Name == name);

    /// <summary>Attaches the store and replays its configuration (boot). Returns the problems met;
    /// a record that cannot be recreated is reported and skipped, never half-applied.</summary>
    public List<string> Boot(IConfigStore store)
    {
        _store = store;
        var problems = new List<string>();
        BootLinks(store, problems);
        BootFlows(store, problems);
        return problems;
    }

    private readonly ConfigFile<LinkRecord> _linkFile = new(ConfigName, LinkJson.Default.LinkRecord);

    /// <summary>Replays datalink.conf record by record (ConfigFile.cs): a record that cannot be
    /// recreated is reported and kept in the file; a bad property is reported and left at its default.</summary>
    private void BootLinks(IConfigStore store, List<string> problems)
    {
        foreach (var rec in _linkFile.Load(store, problems))
        {
            var r = rec.Value;
            var status = Replay(r);
            if (status.IsOk) _persistent.Add(r);
            else _linkFile.Reject(rec, $"{ConfigText.Echo(r.Name)}: {status.Message}", problems);
            foreach (string p in _replayProblems) problems.Add($"{ConfigName}: record {rec.Index} (line {rec.Line}): {ConfigText.Echo(r.Name)}: {p}");
            _replayProblems.Clear();
        }
    }

    private DlStatus Replay(LinkRecord r)
    {
        if (!LinkNames.IsValid(r.Name)) return DladmStatus.LinkInval;
        // Checked before the (ushort) casts below, which would wrap 65541 into VLAN 5.
        if (r.Vid is < 0 or > 4094) return DladmStatus.VidInval;
        switch (r.Class)
        {
            case "phys":
                {
                    var phys = Links.OfType<PhysLink>().FirstOrDefault(p => p.Device == r.Device);
                    if (phys == null) return DladmStatus.NotFound;
                    if (phys.Name != r.Name)
                    {
                        if (Exists(r.Name)) return DladmStatus.Exist;
                        Rename(phys, r.Name);
                    }
                    return ReplayProps(phys, r);
                }
            case "etherstub":
                {
                    var s = CreateEtherstubLive(r.Name, out var stub);
                    return s.IsOk ? ReplayProps(stub!, r) : s;
                }
            case "vnic":
                {
                    if (!MacAddress.TryParse(r.Mac, out var mac)) return DladmStatus.MacAddrInval;
                    var type = Enum.TryParse<MacAddressType>(r.MacType, true, out var t) ? t : MacAddressType.Fixed;
                    var s = CreateVnicLive(r.Name, r.Over ?? "", mac, type, (ushort)r.Vid, r.FactorySlot, out var v);
                    if (!s.IsOk) return s;
                    if (r.Zone != null) v!.Zone = r.Zone;
                    return ReplayProps(v!, r);
                }
            case "vlan":
                {
                    var s = CreateVlanLive(r.Name, r.Over ?? "", (ushort)r.Vid, out var v);
                    return s.IsOk ? ReplayProps(v!, r) : s;
                }
            case "bridge":
                return ReplayBridge(r);
            case "overlay":
                {
                    var s = ReplayOverlay(r, out var o);
                    return s.IsOk ? ReplayProps(o!, r) : s;
                }
            case "aggr":
                {
                    var s = ReplayAggr(r, out var a);
                    return s.IsOk ? ReplayProps(a!, r) : s;
                }
            default:
                return DladmStatus.BadArg;
        }
    }

    private DlStatus ReplayProps(Datalink link, LinkRecord r)
    {
        if (r.Props == null) return DlStatus.Ok;
        foreach (var (name, value) in r.Props)
        {
            // A JSON null in Props is a bad value, not a crash (the serializer checks only the
            // record's own properties against their nullability).
            var s = value == null ? DladmStatus.BadVal : CheckLinkProp(link, name, value);
            if (!s.IsOk)
            {
                // The link stays; the bad property is reported and left at its default.
                _replayProblems.Add($"cannot set link property '{ConfigText.Echo(name)}': {s.Message}");
                continue;
            }
            FindProperty(name)!.Apply(link, value!);
        }
        return DlStatus.Ok;
    }

    private readonly List<string> _replayProblems = [];

    private void Save()
    {
        if (_store != null) _linkFile.Save(_store, _persistent);
    }

    /// <summary>Records a change to the persistent configuration, or undoes nothing if it fails to
    /// write: callers apply live state only after this succeeds (rule 5).</summary>
    private void Persist(Action<List<LinkRecord>> change)
    {
        var snapshot = _persistent.Select(Clone).ToList();
        change(_persistent);
        try { Save(); }
        catch
        {
            _persistent.Clear();
            _persistent.AddRange(snapshot);
            throw;
        }
    }

    private static LinkRecord Clone(LinkRecord r) => new()
    {
        Name = r.Name, Class = r.Class, Device = r.Device, Over = r.Over, Mac = r.Mac, MacType = r.MacType,
        Vid = r.Vid, FactorySlot = r.FactorySlot, Zone = r.Zone,
        Props = r.Props == null ? null : new Dictionary<string, string>(r.Props), Aggr = r.Aggr?.Clone(),
        Overlay = r.Overlay?.Clone(),
    };

    private DlStatus CheckNewName(string name)
    {
        if (!LinkNames.IsValid(name)) return DladmStatus.LinkInval;
        if (Exists(name) || FindPersistent(name) != null) return DladmStatus.Exist;
        return DlStatus.Ok;
    }

    // ---- etherstubs -------------------------------------------------------------------------

    public DlStatus CreateEtherstub(string name, bool temporary)
    {
        var s = CheckNewName(name);
        if (!s.IsOk) return s;
        s = CreateEtherstubLive(name, out _);
        if (!s.IsOk) return s;
        if (!temporary) PersistOrUndo(name, l => l.Add(new LinkRecord { Name = name, Class = "etherstub" }));
        return DlStatus.Ok;
    }

    private DlStatus CreateEtherstubLive(string name, out Etherstub? stub)
    {
        stub = null;
        if (!LinkNames.IsValid(name)) return DladmStatus.LinkInval;
        if (Exists(name)) return DladmStatus.Exist;
        stub = new Etherstub(this, name, NextLinkId());
        Register(stub);
        return DlStatus.Ok;
    }

    /// <summary>Writes the persistent change for a link just created live; if the write fails the
    /// live link is removed again so nothing is half-created.</summary>
    private void PersistOrUndo(string name, Action<List<LinkRecord>> change)
    {
        try { Persist(change); }
        catch
        {
            if (Find(name) is Datalink l) RemoveLive(l);
            throw;
        }
    }

    // ---- VNICs ------------------------------------------------------------------------------

    /// <summary>How the caller asked for a MAC address (dladm create-vnic -m).</summary>
    public readonly record struct MacRequest(MacAddressType Type, MacAddress Fixed = default, byte[]? Prefix = null, int? Slot = null);

    public DlStatus CreateVnic(string name, string over, MacRequest request, ushort vid, bool temporary, out VnicLink? vnic)
    {
        vnic = null;
        var s = CheckNewName(name);
        if (!s.IsOk) return s;
        var lower = Find(over);
        if (lower == null) return DladmStatus.NotFound;
        if (lower is not UplinkLink && lower is not Etherstub && lower is not OverlayLink) return DladmStatus.LinkInval;
        if (lower is PhysLink { AggrPort: not null }) return DladmStatus.LinkBusy; // its traffic is its aggregation's
        // A persistent link over a temporary one could not be recreated at boot.
        if (!temporary && lower is Etherstub or AggrLink or OverlayLink && FindPersistent(over) == null) return DladmStatus.PersistOnTemp;
        if (vid > 4094) return DladmStatus.VidInval;
        var sw = lower switch { UplinkLink p => p.Switch, OverlayLink o => o.Switch, _ => ((Etherstub)lower).Switch };
        s = ChooseAddress(lower, sw, request, vid, out var mac, out var type, out int? slot);
        if (!s.IsOk) return s;
        s = CreateVnicLive(name, over, mac, type, vid, slot, out vnic);
        if (!s.IsOk) return s;
        if (!temporary)
        {
            var rec = new LinkRecord
            {
                Name = name, Class = "vnic", Over = over, Mac = mac.ToString(), MacType = type.ToString().ToLowerInvariant(),
                Vid = vid, FactorySlot = slot,
            };
            PersistOrUndo(name, l => l.Add(rec));
        }
        return DlStatus.Ok;
    }

    private DlStatus ChooseAddress(Datalink lower, VSwitch sw, MacRequest req, ushort vid, out MacAddress mac, out MacAddressType type, out int? slot)
    {
        mac = default; type = req.Type; slot = null;
        switch (req.Type)
        {
            case MacAddressType.Fixed:
                if (req.Fixed.IsGroup || req.Fixed.IsZero) return DladmStatus.InvalidMacAddr;
                mac = req.Fixed;
                break;
            case MacAddressType.Factory:
                {
                    if (lower is not PhysLink phys) return DladmStatus.MacFactoryNotSup;
                    if (req.Slot is int want)
                    {
                        if (want < 1 || want > FactorySlots) return DladmStatus.MacFactorySlotInvalid;
                        if (FactorySlotInUse(phys, want)) return DladmStatus.MacFactorySlotUsed;
                        slot = want;
                    }
                    else
                    {
                        for (int i = 1; i <= FactorySlots && slot == null; i++)
                            if (!FactorySlotInUse(phys, i)) slot = i;
                        if (slot == null) return DladmStatus.MacFactorySlotAllUsed;
                    }
                    mac = FactoryAddress(phys, slot.Value);
                    break;
                }
            case MacAddressType.Auto:
                // dladm's auto: a factory address when the NIC has one free, else a random one.
                if (lower is PhysLink ph)
                {
                    for (int i = 1; i <= FactorySlots && slot == null; i++)
                        if (!FactorySlotInUse(ph, i)) slot = i;
                    if (slot != null)
                    {
                        mac = FactoryAddress(ph, slot.Value);
                        type = MacAddressType.Factory;
                        break;
                    }
                }
                type = MacAddressType.Random;
                mac = RandomAddress(sw, vid, null);
                break;
            case MacAddressType.Random:
                if (req.Prefix != null && (req.Prefix[0] & 0x01) != 0) return DladmStatus.InvalidMacPrefix;
                mac = RandomAddress(sw, vid, req.Prefix);
                break;
            default:
                return DladmStatus.BadArg;
        }
        if (MacInUse(mac, vid, sw)) return DladmStatus.InvalidMacAddrInUse;
        return DlStatus.Ok;
    }

    /// <summary>The factory addresses of a NIC: its own address plus the slot number in the last octets.</summary>
    public static MacAddress FactoryAddress(PhysLink phys, int slot) => new(phys.FactoryMac.Value + (ulong)slot * 0x100);

    private bool FactorySlotInUse(PhysLink phys, int slot)
    {
        foreach (var l in _links.Values)
            if (l is VnicLink v && v.OverLink == phys && v.FactorySlot == slot) return true;
        return false;
    }

    private const int RandomAttempts = 4096;

    private MacAddress RandomAddress(VSwitch sw, ushort vid, byte[]? prefix)
    {
        // dladm's default random prefix is Sun's OUI with the locally administered bit (2:8:20).
        prefix ??= [0x02, 0x08, 0x20];
        // Bounded: a five-octet prefix leaves 256 addresses, and once they are all in use an
        // unbounded search never ends. The caller's in-use check then reports the failure.
        for (int attempt = 0; ; attempt++)
        {
            ulong v = 0;
            for (int i = 0; i < 6; i++)
                v = (v << 8) | (i < prefix.Length ? prefix[i] : (byte)(Identities.NextUInt64() >> 56));
            var mac = new MacAddress(v);
            if (!mac.IsGroup && !mac.IsZero && !MacInUse(mac, vid, sw)) return mac;
            if (prefix.Length >= 6 || attempt >= RandomAttempts) return mac;
        }
    }

    private DlStatus CreateVnicLive(string name, string over, MacAddress mac, MacAddressType type, ushort vid, int? slot, out VnicLink? vnic)
    {
        vnic = null;
        if (!LinkNames.IsValid(name)) return DladmStatus.LinkInval;
        if (Exists(name)) return DladmStatus.Exist;
        var lower = Find(over);
        VSwitch? sw = lower switch { UplinkLink p => p.Switch, Etherstub e => e.Switch, OverlayLink o => o.Switch, _ => null };
        if (lower == null || sw == null) return DladmStatus.NotFound;
        if (vid > 4094) return DladmStatus.VidInval;
        if (MacInUse(mac, vid, sw)) return DladmStatus.InvalidMacAddrInUse;
        vnic = new VnicLink(this, name, NextLinkId(), lower, sw, mac, type, vid) { FactorySlot = slot };
        // A new link starts at the default MTU (1500), or lower if the link below is smaller.
        vnic.Mtu = Math.Min(lower.Mtu, 1500);
        Register(vnic);
        sw.AddPort(vnic);
        return DlStatus.Ok;
    }

    // ---- VLANs ------------------------------------------------------------------------------

    public DlStatus CreateVlan(string name, string over, ushort vid, bool temporary, out VlanLink? vlan)
    {
        vlan = null;
        var s = CheckNewName(name);
        if (!s.IsOk) return s;
        s = CreateVlanLive(name, over, vid, out vlan);
        if (!s.IsOk) return s;
        if (!temporary) PersistOrUndo(name, l => l.Add(new LinkRecord { Name = name, Class = "vlan", Over = over, Vid = vid }));
        return DlStatus.Ok;
    }

    private DlStatus CreateVlanLive(string name, string over, ushort vid, out VlanLink? vlan)
    {
        vlan = null;
        if (!LinkNames.IsValid(name)) return DladmStatus.LinkInval;
        if (Exists(name)) return DladmStatus.Exist;
        var lower = Find(over);
        if (lower == null) return DladmStatus.NotFound;
        if (lower is not UplinkLink phys) return DladmStatus.LinkInval;
        if (phys is PhysLink { AggrPort: not null }) return DladmStatus.LinkBusy;
        if (vid is < 1 or > 4094) return DladmStatus.VidInval;
        // A VLAN link uses the NIC's own address, so the port holding that address in the VLAN is
        // either a VLAN link of the same VID (it exists) or a VNIC (the address is in use): one
        // lookup (rule 8).
        if (phys.Switch.PortWith(phys.MacAddress, vid) is PortLink holder)
            return holder is VlanLink ? DladmStatus.Exist : DladmStatus.InvalidMacAddrInUse;
        vlan = new VlanLink(this, name, NextLinkId(), phys, vid) { Mtu = Math.Min(phys.Mtu, 1500) };
        Register(vlan);
        phys.Switch.AddPort(vlan);
        return DlStatus.Ok;
    }

    // ---- delete, rename, properties --------------------------------------------------------------

    /// <summary>Deletes a VNIC, VLAN or etherstub (expected class given by the subcommand).</summary>
    public DlStatus Delete(string name, LinkClass expected, bool temporary)
    {
        var link = Find(name);
        var rec = FindPersistent(name);
        if (link == null && rec == null) return DladmStatus.NotFound;
        if (link == null)
        {
            // Only in the persistent configuration (it was deleted with -t earlier).
            if (temporary) return DladmStatus.NotFound;
            if (!string.Equals(rec!.Class, expected.ToString(), StringComparison.OrdinalIgnoreCase)) return DladmStatus.LinkInval;
            Persist(l => l.Remove(rec));
            return DlStatus.Ok;
        }
        if (link.Class != expected) return DladmStatus.LinkInval;
        if (link is PortLink pl && pl.Client != null) return DladmStatus.LinkBusy;
        if (link.Zone != "global") return DladmStatus.LinkBusy;
        if (link is Etherstub stub && (stub.Switch.Ports.Count > 0 || stub.Switch.Bridged != null)) return DladmStatus.LinkBusy;
        if (link is OverlayLink ov && ov.Switch.Ports.Count > 0) return DladmStatus.LinkBusy; // a VNIC over it
        if (HasFlows(name)) return DladmStatus.FlowExists;
        if (!temporary && rec != null) Persist(l => l.Remove(rec));
        RemoveLive(link);
        return DlStatus.Ok;
    }

    private void RemoveLive(Datalink link)
    {
        if (link is PortLink { Control: { } control }) control.Discard();
        if (link is PortLink pl && link is not UplinkLink) pl.Switch.RemovePort(pl);
        if (link is OverlayLink o) DetachOverlay(o);
        Unregister(link);
    }

    public DlStatus RenameLink(string oldName, string newName)
    {
        var link = Find(oldName);
        var rec = FindPersistent(oldName);
        if (link == null && rec == null) return DladmStatus.NotFound;
        if (!LinkNames.IsValid(newName)) return DladmStatus.LinkInval;
        if (Exists(newName) || FindPersistent(newName) != null) return DladmStatus.Exist;
        if (link is PortLink pl && pl.Client != null) return DladmStatus.LinkBusy;
        if (link != null && link.Zone != "global") return DladmStatus.LinkBusy;
        if (link != null && (link is BridgeLink || BridgeOf(link) != null)) return DladmStatus.LinkBusy; // the bridge's record names it
        if (link is PhysLink phys && rec == null)
        {
            var physRec = new LinkRecord { Name = newName, Class = "phys", Device = phys.Device };
            Persist(l =>
            {
                // The links over the NIC name it by its link name, so they follow the rename too.
                foreach (var r in l) if (r.Over == oldName) r.Over = newName;
                l.Insert(0, physRec);
            });
        }
        else if (rec != null)
        {
            Persist(l =>
            {
                rec.Name = newName;
                foreach (var r in l) if (r.Over == oldName) r.Over = newName;
            });
        }
        RenameFlowLink(oldName, newName);
        if (link != null) Rename(link, newName);
        return DlStatus.Ok;
    }

    /// <summary>Makes a link created with temporary=true persistent, with the given properties
    /// (MacLayer.Create.cs: the link and its properties are written in one step, or not at all).</summary>
    private DlStatus PersistLink(Datalink link, IEnumerable<(string Name, string Value)> props)
    {
        if (FindPersistent(link.Name) != null) throw new InvalidOperationException($"{link.Name} is already persistent");
        if (link.Over is Datalink lower && lower is not PhysLink && FindPersistent(lower.Name) == null) return DladmStatus.PersistOnTemp;
        var rec = link switch
        {
            VnicLink v => new LinkRecord
            {
                Name = v.Name, Class = "vnic", Over = v.OverLink.Name, Mac = v.MacAddress.ToString(),
                MacType = v.AddressType.ToString().ToLowerInvariant(), Vid = v.Vid, FactorySlot = v.FactorySlot,
            },
            VlanLink l => new LinkRecord { Name = l.Name, Class = "vlan", Over = l.OverPhys.Name, Vid = l.Vid },
            Etherstub e => new LinkRecord { Name = e.Name, Class = "etherstub" },
            _ => throw new InvalidOperationException($"{link.Name} cannot be persisted this way"),
        };
        foreach (var (name, value) in props) (rec.Props ??= new())[name] = value;
        Persist(l => l.Add(rec));
        return DlStatus.Ok;
    }

    /// <summary>Changes a link's persistent record (creating one for a phys on first change).</summary>
    public void PersistProp(Datalink link, Action<LinkRecord> change)
    {
        var rec = FindPersistent(link.Name);
        if (rec == null && link is PhysLink phys)
        {
            var physRec = new LinkRecord { Name = link.Name, Class = "phys", Device = phys.Device };
            Persist(l => { l.Insert(0, physRec); change(physRec); });
            return;
        }
        if (rec == null) return; // A temporary link: nothing persists.
        Persist(_ => change(rec));
    }
}

[JsonSourceGenerationOptions(WriteIndented = true, DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull, RespectNullableAnnotations = true)]
[JsonSerializable(typeof(LinkRecord))]
internal partial class LinkJson : JsonSerializerContext { }
