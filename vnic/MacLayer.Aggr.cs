using SmartOS.Kernel.Wire;

namespace SmartOS.Vnic;

/// <summary>An aggregation's settings in datalink.conf (LinkRecord.Aggr): its ports by link name,
/// policy, LACP mode and timer, and the fixed address if one was given.</summary>
public sealed class AggrRecord
{
    public List<string> Ports { get; set; } = [];
    public string Policy { get; set; } = "L4";
    public string Lacp { get; set; } = "off";
    public string Timer { get; set; } = "short";
    public string? Address { get; set; }
    public int Key { get; set; }

    internal AggrRecord Clone() => new() { Ports = [.. Ports], Policy = Policy, Lacp = Lacp, Timer = Timer, Address = Address, Key = Key };
}

/// <summary>
/// Aggregations as MAC-layer operations (dladm create-aggr, add-aggr, remove-aggr, modify-aggr,
/// delete-aggr; AggrLink.cs has the theory). Every operation checks everything first (a port that
/// is missing, not a NIC, already aggregated, with VNICs or VLANs over it, or opened by a client),
/// then writes datalink.conf (unless temporary), and only then changes the live links: a refusal
/// or a failed write leaves both as they were (MacLayer.cs rule 5).
/// </summary>
public sealed partial class MacLayer
{
    /// <summary>The most ports an aggregation takes (illumos's MAXPORT).</summary>
    public const int MaxAggrPorts = 256;

    /// <summary>Parses a policy as dladm prints it: L2, L3, L4 or a comma-separated combination.</summary>
    public static bool TryParseAggrPolicy(string text, out AggrPolicy policy)
    {
        policy = 0;
        foreach (string part in text.Split(','))
        {
            var p = part.ToUpperInvariant() switch { "L2" => AggrPolicy.L2, "L3" => AggrPolicy.L3, "L4" => AggrPolicy.L4, _ => (AggrPolicy)0 };
            if (p == 0) return false;
            policy |= p;
        }
        return policy != 0;
    }

    /// <summary>The policy as dladm prints it ("L2,L3").</summary>
    public static string AggrPolicyText(AggrPolicy p)
    {
        var parts = new List<string>(3);
        if ((p & AggrPolicy.L2) != 0) parts.Add("L2");
        if ((p & AggrPolicy.L3) != 0) parts.Add("L3");
        if ((p & AggrPolicy.L4) != 0) parts.Add("L4");
        return string.Join(',', parts);
    }

    public static bool TryParseLacpMode(string text, out LacpMode mode)
    {
        mode = text switch { "off" => LacpMode.Off, "active" => LacpMode.Active, "passive" => LacpMode.Passive, _ => (LacpMode)(-1) };
        return mode >= 0;
    }

    public static bool TryParseLacpTimer(string text, out LacpTimer timer)
    {
        timer = text switch { "short" => LacpTimer.Short, "long" => LacpTimer.Long, _ => (LacpTimer)(-1) };
        return timer >= 0;
    }

    public static string LacpModeText(LacpMode m) => m.ToString().ToLowerInvariant();
    public static string LacpTimerText(LacpTimer t) => t.ToString().ToLowerInvariant();

    /// <summary>Creates an aggregation of <paramref name="ports"/> (link names), all or nothing.</summary>
    public DlStatus CreateAggr(string name, IReadOnlyList<string> ports, AggrPolicy policy, LacpMode mode, LacpTimer timer,
        MacAddress? fixedAddress, bool temporary, out AggrLink? aggr)
    {
        aggr = null;
        var s = CheckNewName(name);
        if (!s.IsOk) return s;
        if (fixedAddress is { } f && (f.IsGroup || f.IsZero)) return DladmStatus.InvalidMacAddr;
        s = CheckNewPorts(ports, null, out var phys);
        if (!s.IsOk) return s;
        ushort key = NextAggrKey();
        if (!temporary)
        {
            var rec = new LinkRecord
            {
                Name = name, Class = "aggr",
                Aggr = new AggrRecord
                {
                    Ports = [.. ports], Policy = AggrPolicyText(policy), Lacp = LacpModeText(mode), Timer = LacpTimerText(timer),
                    Address = fixedAddress?.ToString(), Key = key,
                },
            };
            Persist(l => l.Add(rec));
        }
        aggr = CreateAggrLive(name, key, phys, policy, mode, timer, fixedAddress);
        return DlStatus.Ok;
    }

    /// <summary>A key no live aggregation has (802.1AX keys are per system; 0 is not used).</summary>
    private ushort NextAggrKey()
    {
        ushort key = 1;
        foreach (var l in _links.Values)
            if (l is AggrLink a && a.Key >= key) key = (ushort)(a.Key + 1);
        foreach (var r in _persistent)
            if (r.Aggr is { } ar && ar.Key >= key && ar.Key < ushort.MaxValue) key = (ushort)(ar.Key + 1);
        return key;
    }

    /// <summary>Checks that every name is a NIC free to join (<paramref name="into"/> may already hold it
    /// only for remove). illumos refuses a port that is another aggregation's, or in use.</summary>
    private DlStatus CheckNewPorts(IReadOnlyList<string> ports, AggrLink? into, out List<PhysLink> phys)
    {
        phys = [];
        if (ports.Count == 0) return DladmStatus.BadArg;
        if (ports.Count + (into?.Ports.Count ?? 0) > MaxAggrPorts) return DladmStatus.TooManyElements;
        foreach (string n in ports)
        {
            var l = Find(n);
            if (l == null) return DladmStatus.NotFound;
            if (l is not PhysLink p) return DladmStatus.LinkInval;
            if (phys.Contains(p)) return DladmStatus.BadArg;
            if (p.AggrPort != null || p.Switch.Bridged != null) return DladmStatus.LinkBusy; // a bridge's NIC stays the bridge's
            if (p.Client != null || p.Zone != "global" || p.Switch.Ports.Count > 1 || HasFlows(p.Name)) return DladmStatus.LinkBusy;
            phys.Add(p);
        }
        return DlStatus.Ok;
    }

    private AggrLink CreateAggrLive(string name, ushort key, List<PhysLink> phys, AggrPolicy policy, LacpMode mode, LacpTimer timer, MacAddress? fixedAddress)
    {
        var aggr = new AggrLink(this, name, NextLinkId(), key, policy, mode, timer, fixedAddress);
        if (fixedAddress == null) aggr.MacAddress = phys[0].MacAddress;
        aggr.Mtu = phys.Min(p => p.Mtu);
        Register(aggr);
        aggr.Switch.AddPort(aggr);
        AttachPorts(aggr, phys);
        return aggr;
    }

    private static void AttachPorts(AggrLink aggr, List<PhysLink> phys)
    {
        foreach (var p in phys)
        {
            ushort number = 1;
            foreach (var q in aggr.Ports) if (q.Number >= number) number = (ushort)(q.Number + 1);
            var port = new AggrPort(aggr, p, number);
            aggr.AddPort(port);
            port.Attach();
        }
    }

    /// <summary>Recreates an aggregation from its record at boot.</summary>
    private DlStatus ReplayAggr(LinkRecord r, out AggrLink? aggr)
    {
        aggr = null;
        var a = r.Aggr;
        if (a == null || !TryParseAggrPolicy(a.Policy, out var policy) || !TryParseLacpMode(a.Lacp, out var mode)
            || !TryParseLacpTimer(a.Timer, out var timer) || a.Key is < 1 or > ushort.MaxValue)
            return DladmStatus.BadArg;
        MacAddress? fixedAddress = null;
        if (a.Address != null)
        {
            if (!MacAddress.TryParse(a.Address, out var m) || m.IsGroup || m.IsZero) return DladmStatus.MacAddrInval;
            fixedAddress = m;
        }
        if (!LinkNames.IsValid(r.Name)) return DladmStatus.LinkInval;
        if (Exists(r.Name)) return DladmStatus.Exist;
        var s = CheckNewPorts(a.Ports, null, out var phys);
        if (!s.IsOk) return s;
        aggr = CreateAggrLive(r.Name, (ushort)a.Key, phys, policy, mode, timer, fixedAddress);
        return DlStatus.Ok;
    }

    /// <summary>The live aggregation, or the status dladm reports for a name that is not one.</summary>
    private DlStatus FindAggr(string name, out AggrLink? aggr)
    {
        aggr = Find(name) as AggrLink;
        if (aggr != null) return DlStatus.Ok;
        return Find(name) == null ? DladmStatus.NotFound : DladmStatus.LinkInval;
    }

    public DlStatus DeleteAggr(string name, bool temporary)
    {
        var s = FindAggr(name, out var aggr);
        var rec = FindPersistent(name);
        if (!s.IsOk)
        {
            // Only in the persistent configuration (deleted with -t earlier).
            if (s.Code != DladmStatus.NotFound || rec == null || temporary) return s;
            if (rec.Class != "aggr") return DladmStatus.LinkInval;
            Persist(l => l.Remove(rec));
            return DlStatus.Ok;
        }
        if (aggr!.Client != null || aggr.Zone != "global" || aggr.Switch.Ports.Count > 1 || aggr.Switch.Bridged != null) return DladmStatus.LinkBusy;
        if (HasFlows(name)) return DladmStatus.FlowExists;
        if (!temporary && rec != null) Persist(l => l.Remove(rec));
        foreach (var p in aggr.Ports.ToList()) p.Detach();
        RemoveLive(aggr);
        return DlStatus.Ok;
    }

    public DlStatus AddAggrPorts(string name, IReadOnlyList<string> ports, bool temporary)
    {
        var s = FindAggr(name, out var aggr);
        if (!s.IsOk) return s;
        s = CheckNewPorts(ports, aggr, out var phys);
        if (!s.IsOk) return s;
        var rec = FindPersistent(name);
        if (!temporary && rec?.Aggr != null) Persist(_ => rec.Aggr.Ports.AddRange(ports));
        AttachPorts(aggr!, phys);
        return DlStatus.Ok;
    }

    public DlStatus RemoveAggrPorts(string name, IReadOnlyList<string> ports, bool temporary)
    {
        var s = FindAggr(name, out var aggr);
        if (!s.IsOk) return s;
        var leaving = new List<AggrPort>();
        foreach (string n in ports)
        {
            var port = aggr!.Ports.FirstOrDefault(p => p.Phys.Name == n);
            if (port == null) return Find(n) == null ? DladmStatus.NotFound : DladmStatus.BadArg;
            if (!leaving.Contains(port)) leaving.Add(port);
        }
        // An aggregation keeps at least one port (illumos: remove the last port by deleting it).
        if (leaving.Count >= aggr!.Ports.Count) return DladmStatus.BadArg;
        var rec = FindPersistent(name);
        if (!temporary && rec?.Aggr != null) Persist(_ => rec.Aggr.Ports.RemoveAll(p => ports.Contains(p)));
        foreach (var port in leaving)
        {
            port.Detach();
            aggr.RemovePort(port);
        }
        if (aggr.FixedAddress == null && aggr.MacAddress != aggr.Ports[0].Phys.MacAddress)
            ChangeAggrAddress(aggr, aggr.Ports[0].Phys.MacAddress);
        return DlStatus.Ok;
    }

    /// <summary>modify-aggr: any of policy, address, LACP mode and timer (null leaves one as it is).</summary>
    public DlStatus ModifyAggr(string name, AggrPolicy? policy, MacAddress? address, bool autoAddress, LacpMode? mode, LacpTimer? timer, bool temporary)
    {
        var s = FindAggr(name, out var aggr);
        if (!s.IsOk) return s;
        if (address is { } f && (f.IsGroup || f.IsZero)) return DladmStatus.InvalidMacAddr;
        var newAddress = autoAddress ? aggr!.Ports[0].Phys.MacAddress : address ?? aggr!.MacAddress;
        if (newAddress != aggr!.MacAddress && aggr.Switch.PortWith(newAddress, 0) is { } holder && holder != aggr)
            return DladmStatus.InvalidMacAddrInUse;
        var rec = FindPersistent(name);
        if (!temporary && rec?.Aggr != null)
        {
            Persist(_ =>
            {
                if (policy is { } p) rec.Aggr.Policy = AggrPolicyText(p);
                if (mode is { } m) rec.Aggr.Lacp = LacpModeText(m);
                if (timer is { } t) rec.Aggr.Timer = LacpTimerText(t);
                if (autoAddress) rec.Aggr.Address = null;
                else if (address is { } a) rec.Aggr.Address = a.ToString();
            });
        }
        if (policy is { } np) aggr.Policy = np;
        if (autoAddress) aggr.FixedAddress = null;
        else if (address is { } na) aggr.FixedAddress = na;
        if (newAddress != aggr.MacAddress) ChangeAggrAddress(aggr, newAddress);
        if (mode != null || timer != null) aggr.SetLacp(mode ?? aggr.Mode, timer ?? aggr.Timer);
        return DlStatus.Ok;
    }

    /// <summary>The aggregation's own port moves to a new address in its switch and the host's table.</summary>
    private void ChangeAggrAddress(AggrLink aggr, MacAddress mac)
    {
        aggr.Switch.RemovePort(aggr);
        if (_portAddresses.TryGetValue(aggr.MacAddress.Value, out int n))
        {
            if (n <= 1) _portAddresses.Remove(aggr.MacAddress.Value);
            else _portAddresses[aggr.MacAddress.Value] = n - 1;
        }
        aggr.MacAddress = mac;
        _portAddresses[mac.Value] = _portAddresses.GetValueOrDefault(mac.Value) + 1;
        aggr.Switch.AddPort(aggr);
        // The system identifier in LACPDUs is the address: the partner must hear of it.
        if (aggr.Mode != LacpMode.Off) aggr.SetLacp(aggr.Mode, aggr.Timer);
    }
}
