using System.Globalization;
using System.Text.Json;
using SmartOS.Kernel;
using SmartOS.Kernel.Wire;
using SmartOS.Virt;
using SmartOS.Vnic;

namespace SmartOS.Zones;

/// <summary>
/// The zones of one host and their state machine (Host.cs theory statement). Operations return a
/// ZoneStatus (ZoneStatus.cs): Ok, or the code with what zoneadm prints after "zone 'NAME': "; they
/// change nothing on failure.
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
    private readonly ZoneIndex _index = new();
    private IConfigStore? _store;
    private int _nextId = 1;

    internal ZoneTable(Host host)
    {
        _host = host;
        Network = new IpZoneNetwork(host.Kstats, host.Mac.Probes);
    }

    /// <summary>The IP stack factory joyent zones boot with (IpZoneNetwork: the project's own stack).</summary>
    public IZoneNetwork Network { get; set; }

    /// <summary>The network of lx zones: Linux network namespaces, only when the world runs in real time.</summary>
    private LxZoneNetwork? _lx;

    /// <summary>Why an lx zone cannot boot on this host now (Z_BRAND_ERROR), or Ok when it can.</summary>
    public ZoneStatus LxProblem()
    {
        string? why = _host.World.Driver == null
            ? "brand lx needs a real-time host (smartos boot): its programs run in a Linux network namespace, which virtual time cannot drive"
            : LxZoneNetwork.Unavailable();
        return why == null ? ZoneStatus.Ok : ZoneStatus.Problem(ZoneError.BrandError, why);
    }

    /// <summary>Zones in configuration order.</summary>
    public IReadOnlyList<Zone> Zones => _zones;

    /// <summary>The zone of that name (one lookup: ZoneIndex.cs).</summary>
    public Zone? Find(string name) => _index.Find(name);

    /// <summary>The number the next VM gets (ZoneIndex.cs rule 3).</summary>
    internal int NextVmIndex() => _index.NextVmIndex(_zones);

    /// <summary>The zone that holds an IP address on a nic tag and VLAN (ZoneIndex.IpKey) or a MAC
    /// address in its committed nics, first in configuration order, passing over
    /// <paramref name="except"/> and those <paramref name="skip"/> says do not count (ZoneIndex.cs rule 2).</summary>
    internal Zone? Holding(string key, bool mac, string except, Func<Zone, bool> skip)
    {
        Zone? first = null;
        int firstAt = int.MaxValue;
        var holders = mac ? _index.HoldingMac(key) : _index.HoldingIp(key);
        foreach (var z in holders)
        {
            if (z.Name == except || skip(z)) continue;
            // Several holders only when a conflict is already there: the order costs a pass then.
            int at = holders.Count == 1 ? 0 : _zones.IndexOf(z);
            if (at < firstAt) { first = z; firstAt = at; }
        }
        return first;
    }

    /// <summary>Why a brand cannot run (Z_BRAND_ERROR with the brand named), or Ok when it can.</summary>
    public static ZoneStatus BrandProblem(string brand)
    {
        if (Array.IndexOf(RunnableBrands, brand) >= 0) return ZoneStatus.Ok;
        if (Array.IndexOf(LaterBrands, brand) >= 0)
            return ZoneStatus.Problem(ZoneError.BrandError, $"brand '{brand}' is not supported yet: {brand} zones come with a later issue; use joyent, joyent-minimal, bhyve or kvm");
        return ZoneStatus.Problem(ZoneError.BrandError, $"unknown brand '{brand}'");
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
            string? err = CheckConfig(r.Config) is { IsOk: false } bad ? bad.Message : null;
            ZoneState state = ZoneState.Configured;
            if (err == null && !TryParsePersistentState(r.State, out state))
                err = $"state '{ConfigText.Echo(r.State)}' is not configured, installed or incomplete";
            if (err == null && !names.Add(r.Config.Name)) err = "zone configured twice";
            if (err != null) { _file.Reject(rec, $"{ConfigText.Echo(r.Config.Name)}: {err}", problems); continue; }
            var zone = new Zone(r.Config, state);
            _zones.Add(zone);
            _index.Add(zone);
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

    private static ZoneRecord Record(ZoneConfig c, ZoneState s)
        => new() { Config = c, State = s >= ZoneState.Installed ? "installed" : Zone.StateName(s) };

    private void Save(IEnumerable<(ZoneConfig Config, ZoneState State)> zones)
    {
        var list = new List<ZoneRecord>();
        foreach (var (c, s) in zones) list.Add(Record(c, s));
        if (_store != null) _file.Save(_store, list);
    }

    /// <summary>The table's records as they stand.</summary>
    private IEnumerable<ZoneRecord> Records()
    {
        foreach (var z in _zones) yield return Record(z.Config, z.State);
    }

    /// <summary>Writes the table as it would be after a change to one zone (null config: removed).
    /// A store that defers (ConfigFile.cs rule 6) gets the table's records as they will stand when it
    /// is read: every caller makes that change to the table right after this returns, so the text is
    /// the same, and N creates cost no N renders of N records.</summary>
    private void SaveWith(string name, ZoneConfig? config, ZoneState state)
    {
        if (_store is IDeferredConfigStore)
        {
            _file.SaveDeferred(_store, Records);
            return;
        }
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
    public static ZoneStatus CheckConfig(ZoneConfig c)
    {
        if (!ZoneConfig.IsValidName(c.Name)) return ZoneStatus.Problem(ZoneError.BogusZoneName, $"invalid zone name '{ConfigText.Echo(c.Name)}'");
        if (string.IsNullOrEmpty(c.ZonePath)) return ZoneStatus.Problem(ZoneError.ReqdPropertyMissing, "zonepath not specified");
        if (!c.ZonePath.StartsWith('/')) return ZoneStatus.Problem(ZoneError.InvalidProperty, $"zonepath '{ConfigText.Echo(c.ZonePath)}' is not an absolute path");
        if (c.ZonePath.Length > ZoneConfig.MaxPathLength) return ZoneStatus.Problem(ZoneError.InvalidProperty, $"zonepath is longer than {ZoneConfig.MaxPathLength} characters");
        if (BrandProblem(ConfigText.Echo(c.Brand)) is { IsOk: false } b) return b;
        if (c.IpType != "exclusive") return ZoneStatus.Problem(ZoneError.InvalidProperty, "ip-type shared is not supported: every zone has its own IP stack (exclusive)");
        if (ZoneNets.Check(c.Nets) is ZoneNetProblem net) return ZoneStatus.Problem(ZoneError.InvalidProperty, net.Message);
        if (c.CappedMemory is <= 0 or > ZoneConfig.MaxCappedMemory)
            return ZoneStatus.Problem(ZoneError.InvalidProperty, $"capped-memory: physical must be from 1 to {ZoneConfig.FormatSize(ZoneConfig.MaxCappedMemory)}");
        if (c.Vm is VmInfo vm && VmModel.CheckInfo(vm) is string vmErr) return ZoneStatus.Problem(ZoneError.InvalidProperty, vmErr);
        if (HvmGuest.IsHvm(c.Brand) && c.Vm is null)
            return ZoneStatus.Problem(ZoneError.BrandError, $"brand '{c.Brand}' needs a guest image: create {c.Brand} zones with vmadm and an \"image\"");
        return ZoneStatus.Ok;
    }

    /// <summary>zonecfg commit: creates or replaces a zone's configuration.</summary>
    public ZoneStatus Commit(ZoneConfig config)
    {
        if (CheckConfig(config) is { IsOk: false } err) return err;
        var zone = Find(config.Name);
        if (zone != null && zone.State >= ZoneState.Installed)
        {
            if (zone.Config.ZonePath != config.ZonePath) return ZoneStatus.State(ZoneStateCheck.InstalledSetNotAllowed, config.Name, "zonepath");
            if (zone.Config.Brand != config.Brand) return ZoneStatus.State(ZoneStateCheck.InstalledSetNotAllowed, config.Name, "brand");
        }
        var copy = config.Clone();
        // A VM's last_modified is when its configuration was last written (VmInfo.LastModified).
        if (copy.Vm != null) copy.Vm.LastModified = WallClock.Iso8601(_host.Clock.UnixNanoseconds, wholeSeconds: true);
        SaveWith(config.Name, copy, zone?.State ?? ZoneState.Configured);
        if (zone == null)
        {
            zone = new Zone(copy, ZoneState.Configured);
            _zones.Add(zone);
            _index.Add(zone);
        }
        else
        {
            _index.Replace(zone, copy);
            zone.Config = copy;
        }
        if (zone?.Memory != null) zone.Memory.Cap = copy.CappedMemory ?? long.MaxValue;
        return ZoneStatus.Ok;
    }

    /// <summary>zonecfg delete: only a zone in the configured state.</summary>
    public ZoneStatus Delete(string name)
    {
        var zone = Find(name);
        if (zone == null) return ZoneError.NoZone;
        if (zone.State != ZoneState.Configured) return ZoneStatus.State(ZoneStateCheck.DeleteNotAllowed, name);
        SaveWith(name, null, ZoneState.Configured);
        _zones.Remove(zone);
        _index.Remove(zone);
        _store?.Delete(IpadmConfig.FileName(name));
        return ZoneStatus.Ok;
    }

    // ---- the state machine ------------------------------------------------------------------

    private static ZoneStatus Invalid(string cmd, Zone z) => ZoneStatus.State(ZoneStateCheck.InvalidForState, cmd, Zone.StateName(z.State));

    private static ZoneStatus NotInstalled(string cmd) => ZoneStatus.State(ZoneStateCheck.NotInstalled, cmd);

    /// <summary>A failure below the zone table (a datalink, the zone's network, its guest), in that layer's words.</summary>
    private static ZoneStatus Failed(string message) => ZoneStatus.Problem(ZoneError.System, message);

    public ZoneStatus Verify(string name)
    {
        var z = Find(name);
        if (z == null) return ZoneError.NoZone;
        if (z.State == ZoneState.Incomplete) return ZoneStatus.State(ZoneStateCheck.Incomplete);
        if (CheckConfig(z.Config) is { IsOk: false } e) return e;
        return ZoneNets.Check(z.Config.Nets, _host) is ZoneNetProblem p ? ZoneStatus.Problem(ZoneError.InvalidProperty, p.Message) : ZoneStatus.Ok;
    }

    /// <summary>zoneadm install (vmadm create installs too): on a host with a zones pool, the zone's
    /// dataset is made first (VmDatasets.cs rule 1), from <paramref name="options"/> (zoneadm install's
    /// -t and -q) or, for a VM, its image_uuid and quota.</summary>
    public ZoneStatus Install(string name, VmDatasets.InstallOptions? options = null)
    {
        var z = Find(name);
        if (z == null) return ZoneError.NoZone;
        if (InstallProblem(z, "install") is { IsOk: false } e) return e;
        var made = VmDatasets.Install(_host, z.Config, options ?? (z.IsVm ? VmDatasets.ForVm(z.Config) : new(null, null)));
        if (!made.IsOk) return made;
        SaveWith(name, z.Config, ZoneState.Installed);
        z.State = ZoneState.Installed;
        return ZoneStatus.Ok;
    }

    /// <summary>sanity_check for install and clone: the zone must be configured and verify.</summary>
    private ZoneStatus InstallProblem(Zone z, string cmd)
    {
        if (z.State >= ZoneState.Ready) return Invalid(cmd, z);
        if (z.State == ZoneState.Installed) return ZoneStatus.State(ZoneStateCheck.AlreadyInstalled);
        if (z.State == ZoneState.Incomplete) return ZoneStatus.State(ZoneStateCheck.Incomplete);
        return Verify(z.Name);
    }

    /// <summary>zoneadm clone: installs a configured zone as a ZFS clone of an installed one's dataset
    /// (VmDatasets.cs rule 4); <paramref name="output"/> gets what zoneadm prints. The caller has
    /// checked the source exists and is not the global zone.</summary>
    public ZoneStatus Clone(string name, string source, string? snapshot, List<string> output)
    {
        var z = Find(name);
        if (z == null) return ZoneError.NoZone;
        var src = Find(source);
        if (src == null) return ZoneError.NoZone;
        if (src.State >= ZoneState.Ready) return Invalid("clone", src);
        if (InstallProblem(z, "clone") is { IsOk: false } e) return e;
        if (src.State != ZoneState.Installed) return ZoneStatus.Problem(ZoneError.BadZoneState, $"zone {source} is {Zone.StateName(src.State)}; installed is required.");
        var made = VmDatasets.Clone(_host, z.Config, src.Config, snapshot, output);
        if (!made.IsOk) return made;
        SaveWith(name, z.Config, ZoneState.Installed);
        z.State = ZoneState.Installed;
        return ZoneStatus.Ok;
    }

    /// <summary>zoneadm uninstall (vmadm delete uninstalls too): the zone's dataset is destroyed
    /// (VmDatasets.cs rule 3) before the zone goes back to configured; zoneadm's hands the snapshots
    /// other datasets are cloned from to a clone first (promoteClones, rule 7), vmadm's refuses.</summary>
    public ZoneStatus Uninstall(string name, bool promoteClones = false)
    {
        var z = Find(name);
        if (z == null) return ZoneError.NoZone;
        if (z.State >= ZoneState.Ready) return Invalid("uninstall", z);
        if (z.State == ZoneState.Configured) return ZoneStatus.State(ZoneStateCheck.AlreadyConfigured);
        var destroyed = VmDatasets.Uninstall(_host, z.Config, promoteClones);
        if (!destroyed.IsOk) return destroyed;
        SaveWith(name, z.Config, ZoneState.Configured);
        z.State = ZoneState.Configured;
        return ZoneStatus.Ok;
    }

    public ZoneStatus Ready(string name)
    {
        var z = Find(name);
        if (z == null) return ZoneError.NoZone;
        if (z.State < ZoneState.Installed) return NotInstalled("ready");
        if (z.State == ZoneState.Ready) return ZoneStatus.Ok;
        if (z.State > ZoneState.Ready) return Invalid("ready", z);
        return ReadyLocked(z);
    }

    /// <summary>installed -> ready: lend or create the zone's datalinks, open its memory account.</summary>
    private ZoneStatus ReadyLocked(Zone z)
    {
        if (BrandProblem(z.Config.Brand) is { IsOk: false } b) return b;
        if (ZoneDatasets.Prepare(_host, z.Config) is { IsOk: false } ds) return ds;
        // The same validator as zonecfg verify and vmadm: a net the host cannot carry is refused
        // before any link is made.
        if (ZoneNets.Check(z.Config.Nets, _host) is ZoneNetProblem bad) return ZoneStatus.Problem(ZoneError.InvalidProperty, bad.Message);
        if (CheckFs(z) is { IsOk: false } fs) return fs;
        z.FsMounts = z.Config.Fs.ConvertAll(f => f.Clone());
        z._nets = z.Config.Nets.ConvertAll(n => n.Clone());
        foreach (var n in z._nets)
        {
            var err = n.GlobalNic != null ? CreateLink(z, n) : LendLink(z, n);
            if (!err.IsOk)
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
        return ZoneStatus.Ok;
    }

    /// <summary>zoneadmd's check of each lofs mount at ready: its special must be a directory of the
    /// global zone's tree (FileView.cs).</summary>
    private ZoneStatus CheckFs(Zone z)
    {
        var global = FileView.Global(_host.Mounts);
        foreach (var fs in z.Config.Fs)
        {
            var status = global.Resolve(fs.Special, true, out var at);
            var attributes = default(Storage.FileAttributes);
            if (status == Storage.StorageStatus.Ok) status = at.Mount.FileSystem.Stat(at.Inner, out attributes).Status;
            if (status == Storage.StorageStatus.Ok && attributes.Type != Storage.FileType.Directory) status = Storage.StorageStatus.NotDirectory;
            if (status != Storage.StorageStatus.Ok)
                return ZoneStatus.Problem(ZoneError.InvalidProperty, $"could not verify fs {fs.Dir}: could not access {fs.Special}: {(status == Storage.StorageStatus.NotDirectory ? "Not a directory" : "No such file or directory")}");
        }
        return ZoneStatus.Ok;
    }

    private ZoneStatus CreateLink(Zone z, ZoneNet n)
    {
        var mac = _host.Mac;
        var lower = _host.NicTags.Resolve(n.GlobalNic!);
        if (lower == null) return ZoneStatus.Problem(ZoneError.InvalidProperty, $"net {n.Physical}: nic tag '{n.GlobalNic}' does not exist");
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
            if (prot.Contains("dhcp-nospoof", StringComparison.Ordinal) && n.AllowAllDhcpCidsValue() is { Length: > 0 } all) props.Add(("allow-all-dhcp-cids", all));
            if (prot.Contains("ip-nospoof", StringComparison.Ordinal) && n.DynamicMethodsValue() is { Length: > 0 } dyn) props.Add(("dynamic-methods", dyn));
        }
        // One MAC-layer operation (MacLayer.Create.cs): a property refused leaves no VNIC behind.
        var s = mac.CreateVnic(n.Physical, lower.Name, req, (ushort)n.VlanId, props, temporary: true, out var vnic, out int bad);
        if (!s.IsOk)
        {
            return Failed(bad < 0
                ? $"net {n.Physical}: vnic creation over {lower.Name} failed: {s.Message}"
                : $"net {n.Physical}: cannot set link property '{props[bad].Prop}' to '{props[bad].Value}': {s.Message}");
        }
        z._links.Add(vnic!);
        z._created.Add(vnic!);
        vnic!.Zone = z.Name;
        return ZoneStatus.Ok;
    }

    private ZoneStatus LendLink(Zone z, ZoneNet n)
    {
        var link = _host.Mac.Find(n.Physical);
        if (link == null) return ZoneStatus.Problem(ZoneError.InvalidProperty, $"net {n.Physical}: physical '{n.Physical}' does not exist");
        if (link is not VnicLink and not VlanLink) return ZoneStatus.Problem(ZoneError.InvalidProperty, $"net {n.Physical}: only a vnic or vlan can be given to a zone");
        if (link.Zone != "global") return Failed($"net {n.Physical}: link is in use by zone '{link.Zone}'");
        if (link is PortLink { Client: not null }) return Failed($"net {n.Physical}: {DlStatusText.Of(DladmStatus.LinkBusy)}");
        link.Zone = z.Name;
        z._links.Add(link);
        return ZoneStatus.Ok;
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

    public ZoneStatus Boot(string name)
    {
        var z = Find(name);
        if (z == null) return ZoneError.NoZone;
        if (z.State < ZoneState.Installed) return NotInstalled("boot");
        if (z.State == ZoneState.Running) return ZoneStatus.State(ZoneStateCheck.AlreadyBooted);
        if (z.State > ZoneState.Running) return Invalid("boot", z);
        bool lx = z.Config.Brand == "lx";
        if (lx && LxProblem() is { IsOk: false } lp) return lp;
        bool wasReady = z.State == ZoneState.Ready;
        if (!wasReady && ReadyLocked(z) is { IsOk: false } e) return e;
        var interfaces = new List<ZoneInterface>();
        for (int i = 0; i < z._links.Count; i++)
        {
            var link = (PortLink)z._links[i];
            var net = z._nets[i];
            var client = link.OpenClient("zone " + z.Name);
            if (client == null)
            {
                Unready(z);
                return Failed($"net {link.Name}: {DlStatusText.Of(DladmStatus.LinkBusy)}");
            }
            z._clients.Add(client);
            interfaces.Add(new ZoneInterface("net" + i.ToString(CultureInfo.InvariantCulture), client, net.Addresses, net.Routers, net.Primary || i == 0, link.Mtu));
        }
        if (BlockPorts(z) is { IsOk: false } blocked)
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
            return Failed($"network start failed: {error}");
        }
        z.Stack = stack;
        z.State = ZoneState.Running;
        z.BootedAt = _host.Clock.UnixNanoseconds;
        // ipadm changes made in the zone without -t (ipmgmtd replays them as the zone boots).
        z.BootWarnings = stack is IZoneIpStack ips ? IpadmConfig.Replay(_host, z.Name, ips.Ip) : [];
        return ZoneStatus.Ok;
    }

    /// <summary>The VMM's backend choice for bhyve/kvm guests; Auto except where a test forces one.</summary>
    public VmBackend GuestBackend { get; set; } = VmBackend.Auto;

    /// <summary>Starts a bhyve/kvm zone's guest on its open MAC clients (HvmGuest.cs rule 1).</summary>
    private ZoneStatus BootGuest(Zone z)
    {
        var config = HvmGuest.TryVmConfig(z.Config, z.Name, GuestBackend, _host.World.Driver != null,
            HostRandom.Derive(_host.World.Seed, "guest:" + _host.Name), _host.Clock.Epoch, out string why);
        if (config == null)
        {
            Unready(z);
            return Failed(why);
        }
        var old = z.Guest;
        z.Guest = null;
        old?.Dispose();
        var vm = new Vm(_host.Scheduler, config);
        vm.UseProbes(_host.Mac.Probes, z.Name);   // the vmm provider: this zone's dtrace hears its guest
        foreach (var c in z._clients) vm.AttachNic(c);
        if (!HvmGuest.TryAttachDisks(_host, z.Config, vm, out string diskError))
        {
            vm.Dispose();
            Unready(z);
            return Failed(diskError);
        }
        vm.Stopped += v => GuestStopped(z, v);
        z.Guest = vm;
        z.State = ZoneState.Running;
        z.BootedAt = _host.Clock.UnixNanoseconds;
        vm.Start();
        if (vm.IsStopped && z.State == ZoneState.Installed)
            return Failed($"guest failed to start: {vm.StopDetail}");
        return ZoneStatus.Ok;
    }

    /// <summary>A guest stopped: by itself, the zone halts and gives its links back (HvmGuest.cs rule 2).</summary>
    private void GuestStopped(Zone z, Vm vm)
    {
        HvmGuest.CloseDisks(vm);
        if (z.Guest == vm && z.State == ZoneState.Running) Halt(z.Name);
        // Guest memory goes once the VMM is off the stack that reported the stop.
        // (Dispose keeps what vmadm get and console read: the stop reason and the console text.)
        _host.Scheduler.Post(vm.Dispose);
    }

    /// <summary>vmadm blocked_outgoing_ports, as SmartOS's joyent brand sets them up at boot: a
    /// temporary flow per port on the nic's VNIC, transport=tcp,remote_port=PORT with maxbw=0,
    /// named f&lt;MAC with '_'&gt;_br_&lt;PORT&gt;; removed at halt. Ok, or why it could not be done.</summary>
    private ZoneStatus BlockPorts(Zone z)
    {
        for (int i = 0; i < z._nets.Count && i < z._links.Count; i++)
        {
            var link = (PortLink)z._links[i];
            foreach (int port in z._nets[i].BlockedOutgoingPorts)
            {
                string name = $"f{link.MacAddress.ToString().Replace(':', '_')}_br_{port.ToString(CultureInfo.InvariantCulture)}";
                var st = _host.Mac.AddFlow(name, link.Name, $"transport=tcp,remote_port={port.ToString(CultureInfo.InvariantCulture)}", [("maxbw", "0")], temporary: true);
                if (!st.IsOk) return Failed($"blocked_outgoing_ports: port {port} on {link.Name}: {st.Message}");
                z._blockFlows.Add(name);
            }
        }
        return ZoneStatus.Ok;
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

    public ZoneStatus Halt(string name)
    {
        var z = Find(name);
        if (z == null) return ZoneError.NoZone;
        if (z.State < ZoneState.Installed) return NotInstalled("halt");
        if (z.State == ZoneState.Installed) return ZoneStatus.Ok;
        z.State = ZoneState.Down;
        z.Stack?.Stop();
        z.Guest?.Stop("stopped by the host (vmadm stop, zoneadm halt)"); // Before the clients close (HvmGuest.cs rule 3).
        Unready(z);
        return ZoneStatus.Ok;
    }

    /// <summary>A clean shutdown: the zone passes through shutting_down and down to installed.</summary>
    public ZoneStatus Shutdown(string name)
    {
        var z = Find(name);
        if (z == null) return ZoneError.NoZone;
        if (z.State != ZoneState.Running) return ZoneStatus.State(ZoneStateCheck.NotRunning);
        z.State = ZoneState.ShuttingDown;
        return Halt(name);
    }

    public ZoneStatus Reboot(string name)
    {
        var z = Find(name);
        if (z == null) return ZoneError.NoZone;
        if (z.State != ZoneState.Running) return ZoneStatus.State(ZoneStateCheck.NotRunning);
        Halt(name);
        return Boot(name);
    }

    /// <summary>
    /// vmadm reboot -F. Of a kvm VM, VM.js posts "reset" to vmadmd, whose qemu restarts the guest
    /// (system_reset) in the zone as it runs: the guest starts again from its image on the same links
    /// and disks, and the zone's boot_timestamp stays. Any other zone is rebooted (zoneadm reboot -X).
    /// </summary>
    public ZoneStatus Reset(string name)
    {
        var z = Find(name);
        if (z == null) return ZoneError.NoZone;
        if (z.State != ZoneState.Running) return ZoneStatus.State(ZoneStateCheck.NotRunning);
        if (z.Config.Brand != "kvm" || z.Guest is not Vm old) return Reboot(name);
        var booted = z.BootedAt;
        z.Guest = null;   // so that its stop is not taken for the zone's (GuestStopped), and its disks close
        old.Stop("reset by the host (vmadm reboot -F)");
        var started = BootGuest(z);
        if (started.IsOk) z.BootedAt = booted;
        return started;
    }

    /// <summary>Boots every installed zone with autoboot=true (smartos boot); returns the failures.</summary>
    public List<string> BootAutoboot()
    {
        var problems = new List<string>();
        foreach (var z in _zones.ToList())
        {
            if (!z.Config.Autoboot || z.State != ZoneState.Installed) continue;
            if (Boot(z.Name) is { IsOk: false } e) problems.Add($"zone '{z.Name}': {e.Message}");
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
