using System.Globalization;
using SmartOS.Kernel;
using SmartOS.Kernel.Wire;
using SmartOS.Vnic;

namespace SmartOS.Zones;

/// <summary>A nic tag (nictagadm(8)): a name for a physical NIC (by its MAC address) or, for a
/// local tag, an etherstub of the same name that exists only while the tag does.</summary>
public sealed class NicTag
{
    public string Name { get; set; } = "";
    /// <summary>The NIC's MAC address, two hex digits per octet (null for a local tag).</summary>
    public string? Mac { get; set; }
    public int? Mtu { get; set; }
    public bool Local { get; set; }
}

/// <summary>
/// The host's nic tags, kept in nictags.conf. A local tag's etherstub is created temporarily
/// (dladm create-etherstub -t) when the tag is added or the host boots, as SmartOS does.
/// </summary>
public sealed class NicTagTable
{
    public const string ConfigName = "nictags.conf";

    private readonly MacLayer _mac;
    private readonly List<NicTag> _tags = [];
    private IConfigStore? _store;

    internal NicTagTable(MacLayer mac) => _mac = mac;

    public IReadOnlyList<NicTag> Tags => _tags;

    public NicTag? Find(string name) => _tags.Find(t => t.Name == name);

    private readonly ConfigFile<NicTag> _file = new(ConfigName, ZoneJson.Default.NicTag);

    /// <summary>Replays nictags.conf record by record (ConfigFile.cs); a tag that cannot be recreated
    /// is reported and kept in the file.</summary>
    internal List<string> Boot(IConfigStore store)
    {
        _store = store;
        var problems = new List<string>();
        var names = new HashSet<string>(StringComparer.Ordinal);
        foreach (var rec in _file.Load(store, problems))
        {
            var t = rec.Value;
            string? err = null;
            if (!IsValidName(t.Name, t.Local) || !names.Add(t.Name)) err = "invalid nic tag";
            else if (!t.Local && !MacAddress.TryParse(t.Mac, out _)) err = "invalid MAC address";
            else if (t.Mtu is int m && (m < 1500 || m > 9000)) err = "mtu must be between 1500-9000";
            else if (t.Local)
            {
                var s = _mac.CreateEtherstub(t.Name, temporary: true);
                if (!s.IsOk && _mac.Find(t.Name) is not Etherstub) err = $"etherstub: {s.Message}";
            }
            if (err != null) _file.Reject(rec, $"{ConfigText.Echo(t.Name)}: {err}", problems);
            else _tags.Add(t);
        }
        return problems;
    }

    private void Save(List<NicTag> tags)
    {
        if (_store != null) _file.Save(_store, tags);
    }

    /// <summary>nictagadm's names: letters, digits and '_', under 31 characters; a local tag is also an
    /// etherstub name and so ends in a digit.</summary>
    public static bool IsValidName(string name, bool local)
    {
        if (string.IsNullOrEmpty(name) || name.Length >= 31) return false;
        foreach (char c in name) if (!char.IsAsciiLetterOrDigit(c) && c != '_') return false;
        return !local || LinkNames.IsValid(name);
    }

    /// <summary>MAC in nictagadm's normalized form (00:0c:29:a1:b2:c3).</summary>
    public static string Normalize(MacAddress mac)
    {
        Span<byte> b = stackalloc byte[6];
        ulong v = mac.Value;
        for (int i = 5; i >= 0; i--) { b[i] = (byte)v; v >>= 8; }
        return string.Create(CultureInfo.InvariantCulture, $"{b[0]:x2}:{b[1]:x2}:{b[2]:x2}:{b[3]:x2}:{b[4]:x2}:{b[5]:x2}");
    }

    /// <summary>Finds the physical NIC named by a MAC address or a link name.</summary>
    public PhysLink? FindNic(string macOrLink)
    {
        if (_mac.Find(macOrLink) is PhysLink byName) return byName;
        if (!MacAddress.TryParse(macOrLink, out var mac)) return null;
        foreach (var l in _mac.Links)
            if (l is PhysLink p && p.FactoryMac == mac) return p;
        return null;
    }

    /// <summary>Adds a tag; returns Ok or why not (NicTagStatus.cs).</summary>
    public NicTagStatus Add(string name, string? macOrLink, int? mtu, bool local)
    {
        if (local && macOrLink != null) return NicTagError.LocalWithMac;
        if (!local && macOrLink == null) return NicTagError.NonLocalWithoutMac;
        if (local && mtu != null) return NicTagError.LocalWithMtu;
        if (mtu is int m && (m < 1500 || m > 9000)) return NicTagError.BadMtu;
        if (Find(name) != null) return new(NicTagError.Exists, name);
        if (!IsValidName(name, local)) return NicTagError.BadName;
        var tag = new NicTag { Name = name, Mtu = mtu, Local = local };
        if (!local)
        {
            var nic = FindNic(macOrLink!);
            if (nic == null)
                return MacAddress.TryParse(macOrLink, out _) || _mac.Find(macOrLink!) != null
                    ? new(NicTagError.NoNic, macOrLink)
                    : new(NicTagError.BadMac, macOrLink);
            tag.Mac = Normalize(nic.FactoryMac);
        }
        else
        {
            if (_mac.Exists(name) || _mac.FindPersistent(name) != null) return new(NicTagError.EtherstubFailed, name, DladmStatus.Exist);
            var s = _mac.CreateEtherstub(name, temporary: true);
            if (!s.IsOk) return new(NicTagError.EtherstubFailed, name, s.Code);
        }
        var next = new List<NicTag>(_tags) { tag };
        try { Save(next); }
        catch
        {
            if (local) _mac.Delete(name, LinkClass.Etherstub, temporary: true);
            throw;
        }
        _tags.Add(tag);
        return NicTagStatus.Ok;
    }

    /// <summary>Changes a normal tag's NIC or MTU; returns Ok or why not.</summary>
    public NicTagStatus Update(string name, string? macOrLink, int? mtu)
    {
        if (macOrLink == null && mtu == null) return NicTagError.NothingToUpdate;
        if (mtu is int m && (m < 1500 || m > 9000)) return NicTagError.BadMtu;
        var tag = Find(name);
        if (tag == null) return new(NicTagError.NoSuchTag, name);
        if (tag.Local) return NicTagError.LocalUpdate;
        string? mac = tag.Mac;
        if (macOrLink != null)
        {
            var nic = FindNic(macOrLink);
            if (nic == null) return new(NicTagError.NoNic, macOrLink);
            mac = Normalize(nic.FactoryMac);
        }
        var updated = new NicTag { Name = name, Mac = mac, Mtu = mtu ?? tag.Mtu, Local = false };
        var next = _tags.ConvertAll(t => t == tag ? updated : t);
        Save(next);
        _tags[_tags.IndexOf(tag)] = updated;
        return NicTagStatus.Ok;
    }

    /// <summary>Deletes a tag; returns Ok or why not.</summary>
    public NicTagStatus Delete(string name, bool inUse)
    {
        var tag = Find(name);
        if (tag == null) return new(NicTagError.NoSuchTag, name);
        if (inUse) return new(NicTagError.InUse, name);
        if (tag.Local && _mac.Find(name) is Etherstub stub && stub.Switch.Ports.Count > 0)
            return new(NicTagError.EtherstubBusy, name);
        var next = new List<NicTag>(_tags);
        next.Remove(tag);
        Save(next);
        _tags.Remove(tag);
        if (tag.Local && _mac.Find(name) is Etherstub) _mac.Delete(name, LinkClass.Etherstub, temporary: true);
        return NicTagStatus.Ok;
    }

    /// <summary>Triton's fabric nic tags, "RULE/VNID" (vmadm nics of fabric networks, e.g.
    /// sdc_overlay/4567): the overlay SmartOS makes from the node's overlay rule RULE for virtual
    /// network VNID, a link named RULE followed by the VNID (sdc_overlay4567). Here the overlay is
    /// not made from a rule: the operator creates it (dladm create-overlay -v VNID ... RULEVNID), and
    /// a tag whose overlay does not exist does not resolve.</summary>
    public static bool TryParseOverlayTag(string tag, out string rule, out uint vnid)
    {
        rule = "";
        vnid = 0;
        int slash = tag.IndexOf('/');
        if (slash <= 0 || !IsValidName(tag[..slash], false)) return false;
        if (!uint.TryParse(tag.AsSpan(slash + 1), NumberStyles.None, CultureInfo.InvariantCulture, out vnid) || vnid > VxlanHeader.MaxVnid) return false;
        rule = tag[..slash];
        return true;
    }

    /// <summary>The overlay link an overlay tag names (<see cref="TryParseOverlayTag"/>).</summary>
    public static string OverlayLinkName(string rule, uint vnid) => rule + vnid.ToString(CultureInfo.InvariantCulture);

    /// <summary>The datalink a tag stands for: the NIC with its MAC address, the local tag's etherstub,
    /// or for "RULE/VNID" the overlay RULEVNID with that VNID.</summary>
    public Datalink? Resolve(string name)
    {
        if (TryParseOverlayTag(name, out var rule, out uint vnid))
            return _mac.Find(OverlayLinkName(rule, vnid)) is OverlayLink o && o.Vnid == vnid ? o : null;
        var tag = Find(name);
        // An etherstub serves as a nic tag of its own name, as on SmartOS (smartos-live test-invalid-nic-tags.js).
        if (tag == null || tag.Local) return _mac.Find(name) as Etherstub;
        return tag.Mac == null ? null : FindNic(tag.Mac);
    }
}
