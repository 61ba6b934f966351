using System.Globalization;
using SmartOS.Kernel.Wire;

namespace SmartOS.Vnic;

/// <summary>
/// Bridges as MAC-layer operations (dladm create-bridge, add-bridge, remove-bridge, modify-bridge,
/// delete-bridge; the bridge itself: Bridge.cs). Every operation checks everything first, writes
/// datalink.conf, and only then changes live state, so a refusal or a failed write leaves both
/// unchanged (MacLayer.cs rule 5). A bridge persists as one record named after its observability
/// link (NAME0, class "bridge") with its links in Over (space-separated) and its settings in Props;
/// a change moves the record to the end of the file, so that at boot the etherstubs it names have
/// been recreated before it.
/// </summary>
public sealed partial class MacLayer
{
    private readonly Dictionary<string, Bridge> _bridges = new(StringComparer.Ordinal);

    /// <summary>The bridges, in the order their observability links were created.</summary>
    public IEnumerable<Bridge> Bridges
    {
        get
        {
            var list = new List<Bridge>(_bridges.Values);
            list.Sort((a, b) => a.Link.LinkId.CompareTo(b.Link.LinkId));
            return list;
        }
    }

    public Bridge? FindBridge(string name) => _bridges.GetValueOrDefault(name);

    /// <summary>The bridge a link is a port of, or null.</summary>
    public static Bridge? BridgeOf(Datalink link) => link switch
    {
        UplinkLink u => u.Switch.Bridged?.Bridge,
        Etherstub e => e.Switch.Bridged?.Bridge,
        _ => null,
    };

    /// <summary>dladm_valid_bridgename: letters, digits and underscores, neither first nor last a
    /// digit, short enough that NAME0 is a link name.</summary>
    public static bool IsValidBridgeName(string name)
    {
        if (name.Length == 0 || name.Length + 1 > LinkNames.MaxLength) return false;
        if (char.IsAsciiDigit(name[0]) || char.IsAsciiDigit(name[^1])) return false;
        foreach (char c in name) if (!char.IsAsciiLetterOrDigit(c) && c != '_') return false;
        return true;
    }

    /// <summary>Whether a link may join a bridge: it exists (NotFound), is a phys, an aggregation or
    /// an etherstub, the classes libdlbridge walks (LinkInval: dladm's "cannot be bridged"), is no
    /// aggregation's port (LinkBusy: its frames are the aggregation's), and is in no bridge yet
    /// (LinkBusy).</summary>
    public DlStatus CheckBridgeLink(string name, out Datalink? link)
    {
        link = Find(name);
        if (link == null) return DladmStatus.NotFound;
        if (link is not (PhysLink or AggrLink or Etherstub)) return DladmStatus.LinkInval;
        if (link is PhysLink { AggrPort: not null }) return DladmStatus.LinkBusy;
        if (BridgeOf(link) != null) return DladmStatus.LinkBusy;
        if (link is Etherstub or AggrLink && FindPersistent(name) == null) return DladmStatus.PersistOnTemp;
        return DlStatus.Ok;
    }

    public DlStatus CreateBridge(string name, BridgeConfig config, IReadOnlyList<string> links)
    {
        if (!IsValidBridgeName(name) || !config.IsValid) return DladmStatus.BadArg;
        var s = CheckNewName(name + "0");
        if (!s.IsOk) return s;
        if (_bridges.ContainsKey(name)) return DladmStatus.Exist;
        s = CheckLinks(links, out var members);
        if (!s.IsOk) return s;
        Persist(l => l.Add(BridgeRecord(name, config, links)));
        CreateBridgeLive(name, config, members);
        return DlStatus.Ok;
    }

    public DlStatus AddBridgeLinks(string name, IReadOnlyList<string> links)
    {
        if (!_bridges.TryGetValue(name, out var bridge)) return DladmStatus.NotFound;
        var s = CheckLinks(links, out var members);
        if (!s.IsOk) return s;
        var names = bridge.Ports.Select(p => p.Link.Name).Concat(links).ToList();
        RewriteBridgeRecord(bridge, bridge.Config, names);
        foreach (var m in members) bridge.AddPort(m, SwitchOf(m));
        return DlStatus.Ok;
    }

    /// <summary>Takes links out of a bridge; each must be on it (NotFound otherwise).</summary>
    public DlStatus RemoveBridgeLinks(string name, IReadOnlyList<string> links)
    {
        if (!_bridges.TryGetValue(name, out var bridge)) return DladmStatus.NotFound;
        var ports = new List<BridgePort>();
        foreach (string l in links)
        {
            var link = Find(l);
            var port = link == null ? null : bridge.PortOf(link);
            if (port == null) return DladmStatus.NotFound;
            if (!ports.Contains(port)) ports.Add(port);
        }
        var names = bridge.Ports.Where(p => !ports.Contains(p)).Select(p => p.Link.Name).ToList();
        RewriteBridgeRecord(bridge, bridge.Config, names);
        foreach (var p in ports) bridge.RemovePort(p);
        return DlStatus.Ok;
    }

    public DlStatus ModifyBridge(string name, BridgeConfig config)
    {
        if (!_bridges.TryGetValue(name, out var bridge)) return DladmStatus.NotFound;
        if (!config.IsValid) return DladmStatus.BadArg;
        RewriteBridgeRecord(bridge, config, bridge.Ports.Select(p => p.Link.Name).ToList());
        bridge.Reconfigure(config);
        return DlStatus.Ok;
    }

    /// <summary>Deletes a bridge that has no links left (LinkBusy otherwise, as libdlbridge refuses
    /// while links are held).</summary>
    public DlStatus DeleteBridge(string name)
    {
        if (!_bridges.TryGetValue(name, out var bridge)) return DladmStatus.NotFound;
        if (bridge.Ports.Count > 0) return DladmStatus.LinkBusy;
        var rec = FindPersistent(bridge.Link.Name);
        if (rec != null) Persist(l => l.Remove(rec));
        bridge.Stop();
        _bridges.Remove(name);
        Unregister(bridge.Link);
        return DlStatus.Ok;
    }

    private DlStatus CheckLinks(IReadOnlyList<string> links, out List<Datalink> members)
    {
        members = [];
        foreach (string l in links)
        {
            var s = CheckBridgeLink(l, out var link);
            if (!s.IsOk) return s;
            if (members.Contains(link!)) return DladmStatus.LinkBusy;
            members.Add(link!);
        }
        return DlStatus.Ok;
    }

    /// <summary>
    /// The per-port spanning-tree properties that 802.1D-1998 STP has: stp (1, or 0 to take the port
    /// out of the tree: it forwards while up, sends no BPDUs and heeds none, so a loop through it is
    /// the administrator's to avoid, as illumos warns), stp_priority (the port
    /// identifier's priority octet, 0-255, default 128) and stp_cost (the path cost, 1-65535, or auto
    /// from the link's speed). They live on the link (Datalink.StpPriority/StpCost), as libdladm's do,
    /// so a value set before the link joins a bridge, or replayed at boot before the bridge is
    /// recreated, applies when it joins. Like illumos's (PD_AFTER_PERM) they change only persistently:
    /// -t is refused. A change on a bridged link reruns the tree (8.8.2-8.8.5). The RSTP-only ones
    /// (stp_edge, stp_p2p, stp_mcheck) and forward stay refused as read-only (the theory statement
    /// of Bridge.cs says why).
    /// </summary>
    private void RegisterBridgePortProperties()
    {
        static bool Bridgeable(Datalink l) => l is PhysLink or AggrLink or Etherstub;
        RegisterProperty(new LinkProperty
        {
            Name = "stp",
            AppliesTo = Bridgeable,
            Get = l => l.StpEnabled ? "1" : "0",
            Default = _ => "1",
            Possible = _ => "1,0",
            Validate = (_, v) => v is "0" or "1" ? DladmStatus.Ok : DladmStatus.BadVal,
            Apply = (l, v) =>
            {
                bool on = v == "1";
                if (l.StpEnabled == on) return;
                l.StpEnabled = on;
                if (BridgeOf(l)?.PortOf(l) is { } port) port.Bridge.StpEnabledChanged(port);
            },
            PersistentOnly = true,
        });
        RegisterProperty(new LinkProperty
        {
            Name = "stp_priority",
            AppliesTo = Bridgeable,
            Get = l => l.StpPriority.ToString(CultureInfo.InvariantCulture),
            Default = _ => BridgePort.DefaultPriority.ToString(CultureInfo.InvariantCulture),
            Possible = _ => "",
            Validate = (_, v) => int.TryParse(v, NumberStyles.None, CultureInfo.InvariantCulture, out int n) && n <= BridgePort.MaxPriority
                ? DladmStatus.Ok : DladmStatus.BadVal,
            Apply = (l, v) => SetStpPortParameter(l, () => l.StpPriority = int.Parse(v, CultureInfo.InvariantCulture)),
            PersistentOnly = true,
        });
        RegisterProperty(new LinkProperty
        {
            Name = "stp_cost",
            AppliesTo = Bridgeable,
            Get = l => l.StpCost == 0 ? "auto" : l.StpCost.ToString(CultureInfo.InvariantCulture),
            Default = _ => "auto",
            Possible = _ => "",
            Validate = (_, v) => v == "auto"
                || int.TryParse(v, NumberStyles.None, CultureInfo.InvariantCulture, out int n) && n is >= BridgePort.MinCost and <= BridgePort.MaxCost
                ? DladmStatus.Ok : DladmStatus.BadVal,
            Apply = (l, v) => SetStpPortParameter(l, () => l.StpCost = v == "auto" ? 0 : int.Parse(v, CultureInfo.InvariantCulture)),
            PersistentOnly = true,
        });
    }

    private static void SetStpPortParameter(Datalink link, Action set)
    {
        var port = BridgeOf(link)?.PortOf(link);
        ushort oldId = port?.PortId ?? 0;
        set();
        port?.Bridge.PortParametersChanged(port, oldId);
    }

    private static VSwitch SwitchOf(Datalink link) => link is UplinkLink u ? u.Switch : ((Etherstub)link).Switch;

    private Bridge CreateBridgeLive(string name, BridgeConfig config, List<Datalink> members)
    {
        // An address for a bridge with no phys (its identifier needs one): locally administered,
        // from the host's seeded source.
        var fallback = new MacAddress((Random.NextUInt64() & 0xFEFF_FFFF_FFFFUL) | 0x0200_0000_0000UL);
        var bridge = new Bridge(this, name, config, fallback);
        var link = new BridgeLink(this, name + "0", NextLinkId(), bridge);
        bridge.Link = link;
        Register(link);
        _bridges.Add(name, bridge);
        foreach (var m in members) bridge.AddPort(m, SwitchOf(m));
        if (members.Count == 0) bridge.Reconfigure(config);
        return bridge;
    }

    private void RewriteBridgeRecord(Bridge bridge, BridgeConfig config, List<string> links)
    {
        var rec = FindPersistent(bridge.Link.Name);
        var fresh = BridgeRecord(bridge.Name, config, links);
        Persist(l =>
        {
            if (rec != null) l.Remove(rec);
            l.Add(fresh);
        });
    }

    private static LinkRecord BridgeRecord(string name, BridgeConfig c, IEnumerable<string> links) => new()
    {
        Name = name + "0",
        Class = "bridge",
        Over = string.Join(' ', links),
        Props = new()
        {
            ["priority"] = Num(c.Priority),
            ["max-age"] = Num(c.MaxAge),
            ["hello-time"] = Num(c.HelloTime),
            ["forward-delay"] = Num(c.ForwardDelay),
            ["force-protocol"] = Num(c.ForceProtocol),
        },
    };

    private static string Num(int v) => v.ToString(CultureInfo.InvariantCulture);

    /// <summary>Recreates a bridge from its record (boot): its settings checked as dladm checks them,
    /// its links as add-bridge checks them.</summary>
    private DlStatus ReplayBridge(LinkRecord r)
    {
        if (!r.Name.EndsWith('0')) return DladmStatus.BadArg;
        string name = r.Name[..^1];
        if (!IsValidBridgeName(name)) return DladmStatus.BadArg;
        if (Exists(r.Name) || _bridges.ContainsKey(name)) return DladmStatus.Exist;
        int Get(string key, int dflt)
        {
            if (r.Props == null || !r.Props.TryGetValue(key, out var v)) return dflt;
            return int.TryParse(v, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out int n) ? n : int.MinValue;
        }
        var d = BridgeConfig.Default;
        var config = new BridgeConfig(Get("priority", d.Priority), Get("max-age", d.MaxAge), Get("hello-time", d.HelloTime),
            Get("forward-delay", d.ForwardDelay), Get("force-protocol", d.ForceProtocol));
        if (!config.IsValid) return DladmStatus.BadVal;
        var links = (r.Over ?? "").Split(' ', StringSplitOptions.RemoveEmptyEntries);
        var s = CheckLinks(links, out var members);
        if (!s.IsOk) return s;
        CreateBridgeLive(name, config, members);
        return DlStatus.Ok;
    }
}
