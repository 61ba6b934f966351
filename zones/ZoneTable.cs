using System.Globalization;
using System.Text.Json;
using SmartOS.Kernel;
using SmartOS.Kernel.Wire;
using SmartOS.Virt;
using SmartOS.Vnic;

namespace SmartOS.Zones;

/// <summary>
/// The zones of one host and their state machine (Host.cs theory statement). Operations return null
/// on success or the message zoneadm prints after "zone 'NAME': "; they change nothing on failure.
/// </summary>
public sealed class ZoneTable
{
    public const string ConfigName = "zones.conf";

    /// <summary>Brands that run: joyent and joyent-minimal on the project's IP stack, lx on Linux's
    /// (LxZoneNetwork.cs; real-time hosts run as root only), bhyve and kvm as a guest of the VMM
    /// (HvmGuest.cs).</summary>
    public static readonly string[] RunnableBrands = ["joyent", "joyent-minimal", "lx", "bhyve", "kvm"];
    /// <summary>Brands SmartOS has that belong to later issues (none left).</summary>
    public static readonly string[] LaterBrands = [];

    private readonly Host _host;
    private readonly List<Zone> _zones = [];
    private IConfigStore? _store;
    private int _nextId = 1;

    internal ZoneTable(Host host)
    {
        _host = host;
        Network = new IpZoneNetwork(host.Kstats);
    }

    /// <summary>The IP stack factory joyent zones boot with (IpZoneNetwork: the project's own stack).</summary>
    public IZoneNetwork Network { get; set; }

    /// <summary>The network of lx zones: Linux network namespaces, only when the world runs in real time.</summary>
    private LxZoneNetwork? _lx;

    /// <summary>Why an lx zone cannot boot on this host now, or null when it can.</summary>
    public string? LxProblem()
        => _host.World.Driver == null
            ? "brand lx needs a real-time host (smartos boot): its programs run in a Linux network namespace, which virtual time cannot drive"
            : LxZoneNetwork.Unavailable();

    /// <summary>Zones in configuration order.</summary>
    public IReadOnlyList<Zone> Zones => _zones;

    public Zone? Find(string name) => _zones.Find(z => z.Name == name);

    /// <summary>The message for a brand that cannot run yet, or null when it can.</summary>
    public static string? BrandProblem(string brand)
    {
        if (Array.IndexOf(RunnableBrands, brand) >= 0) return null;
        if (Array.IndexOf(LaterBrands, brand) >= 0)
            return $"brand '{brand}' is not supported yet: {brand} zones come with a later issue; use joyent, joyent-minimal, bhyve or kvm";
        return $"unknown brand '{brand}'";
    }

    // ---- persistence --------------------------------------------------------------------------

    private readonly ConfigFile<ZoneRecord> _file = new(ConfigName, ZoneJson.Default.ZoneRecord);

    /// <summary>Replays zones.conf record by record (ConfigFile.cs): a zone that fails its checks is
    /// reported and kept in the file.</summary>
    internal List<string> Boot(IConfigStore store)
    {
        _store = store;
        var problems = new List<string>();
        var names = new HashSet<string>(StringComparer.Ordinal);
        foreach (var rec in _file.Load(store, problems))
        {
            var r = rec.Value;
            string? err = CheckConfig(r.Config);
            ZoneState state = ZoneState.Configured;
            if (err == null && !TryParsePersistentState(r.State, out state))
                err = $"state '{ConfigText.Echo(r.State)}' is not configured, installed or incomplete";
            if (err == null && !names.Add(r.Config.Name)) err = "zone configured twice";
            if (err != null) { _file.Reject(rec, $"{ConfigText.Echo(r.Config.Name)}: {err}", problems); continue; }
            _zones.Add(new Zone(r.Config, state));
        }
        return problems;
    }

    /// <summary>The states zones.conf holds (Host.cs glossary, "state": only these persist).</summary>
    private static bool TryParsePersistentState(string text, out ZoneState state)
    {
        switch (text)
        {
            case "configured": state = ZoneState.Configured; return true;
            case "installed": state = ZoneState.Installed; return true;
            case "incomplete": state = ZoneState.Incomplete; return true;
            default: state = ZoneState.Configured; return false;
        }
    }

    private void Save(IEnumerable<(ZoneConfig Config, ZoneState State)> zones)
    {
        var list = new List<ZoneRecord>();
        foreach (var (c, s) in zones)
            list.Add(new ZoneRecord { Config = c, State = s >= ZoneState.Installed ? "installed" : Zone.StateName(s) });
        if (_store != null) _file.Save(_store, list);
    }

    /// <summary>Writes the table as it would be after a change to one zone (null config: removed).</summary>
    private void SaveWith(string name, ZoneConfig? config, ZoneState state)
    {
        var next = new List<(ZoneConfig, ZoneState)>();
        bool found = false;
        foreach (var z in _zones)
        {
            if (z.Name != name) { next.Add((z.Config, z.State)); continue; }
            found = true;
            if (config != null) next.Add((config, state));
        }
        if (!found && config != null) next.Add((config, state));
        Save(next);
    }

    // ---- configuration (zonecfg commit / delete, vmadm create / update / delete) ------------

    /// <summary>Checks a configuration as zonecfg verify does; returns the first problem, naming the property.</summary>
    public static string? CheckConfig(ZoneConfig c)
    {
        if (!ZoneConfig.IsValidName(c.Name)) return $"invalid zone name '{ConfigText.Echo(c.Name)}'";
        if (string.IsNullOrEmpty(c.ZonePath)) return "zonepath not specified";
        if (!c.ZonePath.StartsWith('/')) return $"zonepath '{ConfigText.Echo(c.ZonePath)}' is not an absolute path";
        if (c.ZonePath.Length > ZoneConfig.MaxPathLength) return $"zonepath is longer than {ZoneConfig.MaxPathLength} characters";
        if (BrandProblem(ConfigText.Echo(c.Brand)) is string b) return b;
        if (c.IpType != "exclusive") return "ip-type shared is not supported: every zone has its own IP stack (exclusive)";
        if (ZoneNets.Check(c.Nets) is ZoneNetProblem net) return net.Message;
        if (c.CappedMemory is <= 0 or > ZoneConfig.MaxCappedMemory)
            return $"capped-memory: physical must be from 1 to {ZoneConfig.FormatSize(ZoneConfig.MaxCappedMemory)}";
        if (c.Vm is VmInfo vm && VmModel.CheckInfo(vm) is string vmErr) return vmErr;
        if (HvmGuest.IsHvm(c.Brand) && c.Vm is not { Guest: not null } and not { ImagePath: not null })
            return $"brand '{c.Brand}' needs a guest image: create {c.Brand} zones with vmadm and an \"image\"";
        return null;
    }

    /// <summary>zonecfg commit: creates or replaces a zone's configuration.</summary>
    public string? Commit(ZoneConfig config)
    {
        if (CheckConfig(config) is string err) return err;
        var zone = Find(config.Name);
        if (zone != null && zone.State >= ZoneState.Installed)
        {
            if (zone.Config.ZonePath != config.ZonePath) return $"Zone {config.Name} already installed; set zonepath not allowed.";
            if (zone.Config.Brand != config.Brand) return $"Zone {config.Name} already installed; set brand not allowed.";
        }
        var copy = config.Clone();
        SaveWith(config.Name, copy, zone?.State ?? ZoneState.Configured);
        if (zone == null) _zones.Add(new Zone(copy, ZoneState.Configured));
        else zone.Config = copy;
        if (zone?.Memory != null) zone.Memory.Cap = copy.CappedMemory ?? long.MaxValue;
        return null;
    }

    /// <summary>zonecfg delete: only a zone in the configured state.</summary>
    public string? Delete(string name)
    {
        var zone = Find(name);
        if (zone == null) return $"{name}: No such zone configured";
        if (zone.State != ZoneState.Configured) return $"Zone {name} not in configured state; delete not allowed.";
        SaveWith(name, null, ZoneState.Configured);
        _zones.Remove(zone);
        _store?.Delete(IpadmConfig.FileName(name));
        return null;
    }

    // ---- the state machine ------------------------------------------------------------------

    private static string Invalid(string cmd, Zone z) => $"{cmd} operation is invalid for {Zone.StateName(z.State)} zones.";

    public string? Verify(string name)
    {
        var z = Find(name);
        if (z == null) return "No such zone configured";
        if (z.State == ZoneState.Incomplete) return "zone is incomplete; uninstall required.";
        if (CheckConfig(z.Config) is string e) return e;
        return ZoneNets.Check(z.Config.Nets, _host)?.Message;
    }

    public string? Install(string name)
    {
        var z = Find(name);
        if (z == null) return "No such zone configured";
        if (z.State >= ZoneState.Ready) return Invalid("install", z);
        if (z.State == ZoneState.Installed) return "is already installed.";
        if (z.State == ZoneState.Incomplete) return "zone is incomplete; uninstall required.";
        if (Verify(name) is string e) return e;
        SaveWith(name, z.Config, ZoneState.Installed);
        z.State = ZoneState.Installed;
        return null;
    }

    public string? Uninstall(string name)
    {
        var z = Find(name);
        if (z == null) return "No such zone configured";
        if (z.State >= ZoneState.Ready) return Invalid("uninstall", z);
        if (z.State == ZoneState.Configured) return "is already in state 'configured'.";
        SaveWith(name, z.Config, ZoneState.Configured);
        z.State = ZoneState.Configured;
        return null;
    }

    public string? Ready(string name)
    {
        var z = Find(name);
        if (z == null) return "No such zone configured";
        if (z.State < ZoneState.Installed) return "must be installed before ready.";
        if (z.State == ZoneState.Ready) return null;
        if (z.State > ZoneState.Ready) return Invalid("ready", z);
        return ReadyLocked(z);
    }

    /// <summary>installed -> ready: lend or create the zone's datalinks, open its memory account.</summary>
    private string? ReadyLocked(Zone z)
    {
        if (BrandProblem(z.Config.Brand) is string b) return b;
        // The same validator as zonecfg verify and vmadm: a net the host cannot carry is refused
        // before any link is made.
        if (ZoneNets.Check(z.Config.Nets, _host) is ZoneNetProblem bad) return bad.Message;
        z._nets = z.Config.Nets.ConvertAll(n => n.Clone());
        foreach (var n in z._nets)
        {
            string? err = n.GlobalNic != null ? CreateLink(z, n) : LendLink(z, n);
            if (err != null)
            {
                ReleaseLinks(z);
                return err;
            }
        }
        z.Memory = new MemoryAccount(z.Config.CappedMemory);
        z.Id = _nextId++;
        z._memoryKstat = _host.Kstats.Add("memory_cap", z.Id.Value, z.Name.Length > 30 ? z.Name[..30] : z.Name, "zone_memory_cap", z.Memory);
        z._memoryKstat.Zone = z.Name;
        z.State = ZoneState.Ready;
        return null;
    }

    private string? CreateLink(Zone z, ZoneNet n)
    {
        var mac = _host.Mac;
        var lower = _host.NicTags.Resolve(n.GlobalNic!);
        if (lower == null) return $"net {n.Physical}: nic tag '{n.GlobalNic}' does not exist";
        var req = n.MacAddr != null && MacAddress.TryParse(n.MacAddr, out var fixedMac)
            ? new MacLayer.MacRequest(MacAddressType.Fixed, fixedMac)
            : new MacLayer.MacRequest(MacAddressType.Random);
        var props = new List<(string Prop, string Value)>();
        if (n.Mtu is int m) props.Add(("mtu", m.ToString(CultureInfo.InvariantCulture)));
        if (n.Protected && n.ProtectionValue() is { Length: > 0 } prot)
        {
            props.Add(("protection", prot));
            if (prot.Contains("ip-nospoof", StringComparison.Ordinal) && n.AllowedIpsValue() is { Length: > 0 } ips) props.Add(("allowed-ips", ips));
            if (prot.Contains("dhcp-nospoof", StringComparison.Ordinal) && n.AllowedDhcpCidsValue() is { Length: > 0 } cids) props.Add(("allowed-dhcp-cids", cids));
        }
        // One MAC-layer operation (MacLayer.Create.cs): a property refused leaves no VNIC behind.
        var s = mac.CreateVnic(n.Physical, lower.Name, req, (ushort)n.VlanId, props, temporary: true, out var vnic, out int bad);
        if (!s.IsOk)
        {
            return bad < 0
                ? $"net {n.Physical}: vnic creation over {lower.Name} failed: {s.Error}"
                : $"net {n.Physical}: cannot set link property '{props[bad].Prop}' to '{props[bad].Value}': {s.Error}";
        }
        z._links.Add(vnic!);
        z._created.Add(vnic!);
        vnic!.Zone = z.Name;
        return null;
    }

    private string? LendLink(Zone z, ZoneNet n)
    {
        var link = _host.Mac.Find(n.Physical);
        if (link == null) return $"net {n.Physical}: physical '{n.Physical}' does not exist";
        if (link is not VnicLink and not VlanLink) return $"net {n.Physical}: only a vnic or vlan can be given to a zone";
        if (link.Zone != "global") return $"net {n.Physical}: link is in use by zone '{link.Zone}'";
        if (link is PortLink { Client: not null }) return $"net {n.Physical}: {MacStatus.Busy}";
        link.Zone = z.Name;
        z._links.Add(link);
        return null;
    }

    /// <summary>Gives lent links back to the global zone and deletes the ones created at ready.</summary>
    private void ReleaseLinks(Zone z)
    {
        foreach (var c in z._clients) c.Close();
        z._clients.Clear();
        foreach (var l in z._links)
        {
            l.Zone = "global";
            if (z._created.Contains(l)) _host.Mac.Delete(l.Name, l.Class, temporary: true);
        }
        z._links.Clear();
        z._created.Clear();
    }

    public string? Boot(string name)
    {
        var z = Find(name);
        if (z == null) return "No such zone configured";
        if (z.State < ZoneState.Installed) return "must be installed before boot.";
        if (z.State == ZoneState.Running) return "zone is already booted";
        if (z.State > ZoneState.Running) return Invalid("boot", z);
        bool lx = z.Config.Brand == "lx";
        if (lx && LxProblem() is string lp) return lp;
        bool wasReady = z.State == ZoneState.Ready;
        if (!wasReady && ReadyLocked(z) is string e) return e;
        var interfaces = new List<ZoneInterface>();
        for (int i = 0; i < z._links.Count; i++)
        {
            var link = (PortLink)z._links[i];
            var net = z._nets[i];
            var client = link.OpenClient("zone " + z.Name);
            if (client == null)
            {
                Unready(z);
                return $"net {link.Name}: {MacStatus.Busy}";
            }
            z._clients.Add(client);
            interfaces.Add(new ZoneInterface("net" + i.ToString(CultureInfo.InvariantCulture), client, net.Addresses, net.Routers, net.Primary || i == 0, link.Mtu));
        }
        if (BlockPorts(z) is string blocked)
        {
            Unready(z);
            return blocked;
        }
        if (HvmGuest.IsHvm(z.Config.Brand)) return BootGuest(z);
        var plan = new ZoneNetworkPlan(z.Name, interfaces, z.Config.Vm?.Resolvers ?? [], z.Memory!, _host.Scheduler, _host.Random, _host.Pool);
        var network = lx ? (_lx ??= new LxZoneNetwork(_host.World.Driver!)) : Network;
        if (!network.TryStart(plan, out var stack, out string? error))
        {
            Unready(z);
            return $"network start failed: {error}";
        }
        z.Stack = stack;
        z.State = ZoneState.Running;
        // ipadm changes made in the zone without -t (ipmgmtd replays them as the zone boots).
        z.BootWarnings = stack is IZoneIpStack ips ? IpadmConfig.Replay(_host, z.Name, ips.Ip) : [];
        return null;
    }

    /// <summary>The VMM's backend choice for bhyve/kvm guests; Auto except where a test forces one.</summary>
    public VmBackend GuestBackend { get; set; } = VmBackend.Auto;

    /// <summary>Starts a bhyve/kvm zone's guest on its open MAC clients (HvmGuest.cs rule 1).</summary>
    private string? BootGuest(Zone z)
    {
        if (!HvmGuest.TryImage(z.Config, out var image, out string why))
        {
            Unready(z);
            return why;
        }
        var old = z.Guest;
        z.Guest = null;
        old?.Dispose();
        var vm = new Vm(_host.Scheduler, new VmConfig
        {
            Name = z.Name, Image = image, MemorySize = (ulong)(z.Config.CappedMemory ?? HvmGuest.DefaultRamMiB << 20),
            Backend = GuestBackend, RealTime = _host.World.Driver != null,
        });
        foreach (var c in z._clients) vm.AttachNic(c);
        vm.Stopped += v => GuestStopped(z, v);
        z.Guest = vm;
        z.State = ZoneState.Running;
        vm.Start();
        if (vm.IsStopped && z.State == ZoneState.Installed)
            return $"guest failed to start: {vm.StopDetail}";
        return null;
    }

    /// <summary>A guest stopped: by itself, the zone halts and gives its links back (HvmGuest.cs rule 2).</summary>
    private void GuestStopped(Zone z, Vm vm)
    {
        if (z.Guest == vm && z.State == ZoneState.Running) Halt(z.Name);
        // Guest memory goes once the VMM is off the stack that reported the stop.
        // (Dispose keeps what vmadm get and console read: the stop reason and the console text.)
        _host.Scheduler.Post(vm.Dispose);
    }

    /// <summary>vmadm blocked_outgoing_ports, as SmartOS's joyent brand sets them up at boot: a
    /// temporary flow per port on the nic's VNIC, transport=tcp,remote_port=PORT with maxbw=0,
    /// named f&lt;MAC with '_'&gt;_br_&lt;PORT&gt;; removed at halt. Null, or why it could not be done.</summary>
    private string? BlockPorts(Zone z)
    {
        for (int i = 0; i < z._nets.Count && i < z._links.Count; i++)
        {
            var link = (PortLink)z._links[i];
            foreach (int port in z._nets[i].BlockedOutgoingPorts)
            {
                string name = $"f{link.MacAddress.ToString().Replace(':', '_')}_br_{port.ToString(CultureInfo.InvariantCulture)}";
                var st = _host.Mac.AddFlow(name, link.Name, $"transport=tcp,remote_port={port.ToString(CultureInfo.InvariantCulture)}", [("maxbw", "0")], temporary: true);
                if (!st.IsOk) return $"blocked_outgoing_ports: port {port} on {link.Name}: {st.Error}";
                z._blockFlows.Add(name);
            }
        }
        return null;
    }

    private void Unready(Zone z)
    {
        foreach (string flow in z._blockFlows) _host.Mac.RemoveFlow(flow, temporary: true);
        z._blockFlows.Clear();
        ReleaseLinks(z);
        if (z._memoryKstat != null) _host.Kstats.Remove(z._memoryKstat);
        z._memoryKstat = null;
        z.Memory = null;
        z.Id = null;
        z.Stack = null;
        z.State = ZoneState.Installed;
    }

    public string? Halt(string name)
    {
        var z = Find(name);
        if (z == null) return "No such zone configured";
        if (z.State < ZoneState.Installed) return "must be installed before halt.";
        if (z.State == ZoneState.Installed) return null;
        z.State = ZoneState.Down;
        z.Stack?.Stop();
        z.Guest?.Stop("stopped by the host (vmadm stop, zoneadm halt)"); // Before the clients close (HvmGuest.cs rule 3).
        Unready(z);
        return null;
    }

    /// <summary>A clean shutdown: the zone passes through shutting_down and down to installed.</summary>
    public string? Shutdown(string name)
    {
        var z = Find(name);
        if (z == null) return "No such zone configured";
        if (z.State != ZoneState.Running) return "not running";
        z.State = ZoneState.ShuttingDown;
        return Halt(name);
    }

    public string? Reboot(string name)
    {
        var z = Find(name);
        if (z == null) return "No such zone configured";
        if (z.State != ZoneState.Running) return "not running";
        Halt(name);
        return Boot(name);
    }

    /// <summary>Boots every installed zone with autoboot=true (smartos boot); returns the failures.</summary>
    public List<string> BootAutoboot()
    {
        var problems = new List<string>();
        foreach (var z in _zones.ToList())
        {
            if (!z.Config.Autoboot || z.State != ZoneState.Installed) continue;
            if (Boot(z.Name) is string e) problems.Add($"zone '{z.Name}': {e}");
        }
        return problems;
    }

    /// <summary>Shuts every running or ready zone down (SIGTERM to the daemon).</summary>
    public void ShutdownAll()
    {
        foreach (var z in _zones)
            if (z.State >= ZoneState.Ready) Halt(z.Name);
    }
}
