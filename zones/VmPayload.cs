using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using SmartOS.Kernel;
using SmartOS.Kernel.Wire;

namespace SmartOS.Zones;

/// <summary>
/// vmadm(8)'s payloads: JSON turned into zone configurations (Host.cs glossary, "VM") by create and
/// update (VmFields.cs turns zones back into vmadm's JSON and list fields). Payloads are checked whole before anything is created:
/// unknown properties, ill-typed or out-of-range values, missing nic tags and duplicate IPs or MACs are
/// refused, and so are payloads over MaxPayloadBytes and aliases longer than SmartOS stores (README,
/// "Configuration files: bad records and limits"). Messages quote at most ConfigText.EchoLimit
/// characters of a refused value.
/// </summary>
public static partial class VmModel
{
    /// <summary>Properties vmadm create takes here and enforces.</summary>
    private static readonly string[] s_createProps = ["uuid", "alias", "brand", "max_physical_memory", "quota", "autoboot", "resolvers", "nics", "image_uuid", "nowait", "delegate_dataset"];
    /// <summary>Properties vmadm create takes for bhyve and kvm VMs (HvmGuest.cs): ram, not max_physical_memory.</summary>
    private static readonly string[] s_hvmCreateProps = ["uuid", "alias", "brand", "ram", "vcpus", "image", "quota", "autoboot", "resolvers", "nics", "image_uuid", "disks"];
    private static readonly string[] s_updateProps = ["alias", "autoboot", "max_physical_memory", "quota", "resolvers", "add_nics", "update_nics", "remove_nics"];
    private static readonly string[] s_nicProps =
    [
        "nic_tag", "ips", "gateways", "vlan_id", "mac", "primary", "mtu", "allow_ip_spoofing", "allow_mac_spoofing",
        "allow_dhcp_spoofing", "allow_restricted_traffic", "allowed_ips", "blocked_outgoing_ports", "allowed_dhcp_cids",
        "ip", "netmask", "gateway", "interface",
    ];

    /// <summary>SmartOS properties this project does not take: refused, never ignored (Host.cs rule 6),
    /// because accepting them would mislead (storage, VRRP MACs, firewall rules, routes).</summary>
    private static readonly string[] s_unsupported =
    [
        "ram", "vcpus", "disks", "filesystems", "zpool", "routes", "firewall_enabled", "set_routes",
        "remove_routes", "image", "add_disks", "update_disks", "remove_disks", "add_filesystems", "update_filesystems",
        "remove_filesystems", "pci_devices", "add_pci_devices", "update_pci_devices", "remove_pci_devices", "zfs_storage_pool_name",
        "dataset_uuid", "zone_dataset_uuid", "zonename",
    ];
    /// <summary>What vmadm update ignores silently (VM.js: properties of the VM that cannot change).</summary>
    private static readonly string[] s_unmodifiable = ["brand", "hvm", "last_modified", "server_uuid", "uuid", "zonename"];
    private static readonly string[] s_unsupportedNic = ["network_uuid", "vrrp_vrid", "vrrp_primary_ip", "dhcp_server"];

    /// <summary>How a kept property's value is checked (proptable.js's payload types).</summary>
    private enum KeptType { Integer, String, Boolean, List, Object }

    /// <summary>Which brands take a kept property (proptable.js's payload.allowed): another brand's
    /// payload has it warned about and dropped, as VM.js does.</summary>
    private enum KeptBrands { All, Os, Hvm }

    /// <summary>A property SmartOS takes that this host keeps and shows (vmadm get) without acting on
    /// it. Enforced: SmartOS enforces it (a resource control, a device setting), so a payload giving it is
    /// warned about once (README, "vmadm properties kept but not enforced"); the others are plain
    /// metadata. Update: vmadm update may change it; Objects are changed by set_X/remove_X.</summary>
    private sealed record Kept(KeptType Type, KeptBrands Brands, bool Enforced, bool Update = true, long Min = 0);

    private static readonly Dictionary<string, Kept> s_kept = new(StringComparer.Ordinal)
    {
        ["archive_on_delete"] = new(KeptType.Boolean, KeptBrands.All, false),
        ["billing_id"] = new(KeptType.String, KeptBrands.All, false),
        ["do_not_inventory"] = new(KeptType.Boolean, KeptBrands.All, false),
        ["hostname"] = new(KeptType.String, KeptBrands.All, false),
        ["owner_uuid"] = new(KeptType.String, KeptBrands.All, false),
        ["package_name"] = new(KeptType.String, KeptBrands.All, false),
        ["package_version"] = new(KeptType.String, KeptBrands.All, false),
        ["dns_domain"] = new(KeptType.String, KeptBrands.Os, false),
        ["tags"] = new(KeptType.Object, KeptBrands.All, false, Update: false),
        ["customer_metadata"] = new(KeptType.Object, KeptBrands.All, false, Update: false),
        ["internal_metadata"] = new(KeptType.Object, KeptBrands.All, false, Update: false),
        ["internal_metadata_namespaces"] = new(KeptType.List, KeptBrands.All, false),
        ["cpu_cap"] = new(KeptType.Integer, KeptBrands.All, true),
        ["cpu_shares"] = new(KeptType.Integer, KeptBrands.All, true),
        ["max_locked_memory"] = new(KeptType.Integer, KeptBrands.All, true),
        ["max_lwps"] = new(KeptType.Integer, KeptBrands.All, true),
        ["max_msg_ids"] = new(KeptType.Integer, KeptBrands.All, true),
        ["max_sem_ids"] = new(KeptType.Integer, KeptBrands.All, true),
        ["max_shm_ids"] = new(KeptType.Integer, KeptBrands.All, true),
        ["max_shm_memory"] = new(KeptType.Integer, KeptBrands.All, true),
        ["max_swap"] = new(KeptType.Integer, KeptBrands.All, true, Min: MinSwapMiB),
        ["zfs_io_priority"] = new(KeptType.Integer, KeptBrands.All, true),
        ["zfs_root_compression"] = new(KeptType.String, KeptBrands.All, true),
        ["zfs_root_recsize"] = new(KeptType.Integer, KeptBrands.All, true),
        ["zfs_filesystem_limit"] = new(KeptType.Integer, KeptBrands.All, true),
        ["zfs_snapshot_limit"] = new(KeptType.Integer, KeptBrands.All, true),
        ["indestructible_zoneroot"] = new(KeptType.Boolean, KeptBrands.All, true),
        ["indestructible_delegated"] = new(KeptType.Boolean, KeptBrands.All, true),
        ["limit_priv"] = new(KeptType.List, KeptBrands.All, true),
        ["fs_allowed"] = new(KeptType.List, KeptBrands.Os, true),
        ["maintain_resolvers"] = new(KeptType.Boolean, KeptBrands.Os, true),
        ["tmpfs"] = new(KeptType.Integer, KeptBrands.Os, true),
        ["zfs_data_compression"] = new(KeptType.String, KeptBrands.Os, true),
        ["zfs_data_recsize"] = new(KeptType.Integer, KeptBrands.Os, true),
        ["zlog_max_size"] = new(KeptType.Integer, KeptBrands.Os, true),
        ["kernel_version"] = new(KeptType.String, KeptBrands.Os, true),
        ["init_name"] = new(KeptType.String, KeptBrands.Os, true),
        ["restart_init"] = new(KeptType.Boolean, KeptBrands.Os, true),
        ["nic_driver"] = new(KeptType.String, KeptBrands.Hvm, true),
        ["disk_driver"] = new(KeptType.String, KeptBrands.Hvm, true),
        ["vnc_port"] = new(KeptType.Integer, KeptBrands.Hvm, true),
        ["vnc_password"] = new(KeptType.String, KeptBrands.Hvm, true),
        ["cpu_type"] = new(KeptType.String, KeptBrands.Hvm, true),
        ["boot"] = new(KeptType.String, KeptBrands.Hvm, true),
        ["vga"] = new(KeptType.String, KeptBrands.Hvm, true),
        ["qemu_opts"] = new(KeptType.String, KeptBrands.Hvm, true),
        ["qemu_extra_opts"] = new(KeptType.String, KeptBrands.Hvm, true),
        ["spice_opts"] = new(KeptType.String, KeptBrands.Hvm, true),
        ["spice_password"] = new(KeptType.String, KeptBrands.Hvm, true),
        ["spice_port"] = new(KeptType.Integer, KeptBrands.Hvm, true),
        ["virtio_txburst"] = new(KeptType.Integer, KeptBrands.Hvm, true),
        ["virtio_txtimer"] = new(KeptType.Integer, KeptBrands.Hvm, true),
    };

    /// <summary>Nic properties kept without being enforced: allow_unfiltered_promisc (SmartOS sets
    /// promiscuous filtering for bhyve/kvm guests; this VMM's NIC does not filter).</summary>
    private static readonly Dictionary<string, Kept> s_keptNic = new(StringComparer.Ordinal)
    {
        ["allow_unfiltered_promisc"] = new(KeptType.Boolean, KeptBrands.Hvm, true),
    };

    /// <summary>The smallest max_swap VM.js takes, in MiB (smartos-live test-validate-payload.js: 128 is a bad value).</summary>
    public const long MinSwapMiB = 256;

    /// <summary>The object properties vmadm update changes key by key (set_X, remove_X).</summary>
    private static readonly string[] s_keptObjects = ["tags", "customer_metadata", "internal_metadata"];

    /// <summary>The most allowed_ips a nic takes (VM.js validateIPlist).</summary>
    public const int MaxAllowedIps = 13;
    /// <summary>The most allowed_dhcp_cids a nic takes, and the longest their comma-joined text may be
    /// (VM.js: below 1024 characters).</summary>
    public const int MaxAllowedDhcpCids = 20;
    public const int MaxAllowedDhcpCidsText = 1023;

    public const long DefaultMemoryMiB = 256;

    /// <summary>SmartOS keeps a VM's alias base64-encoded in a zonecfg attr, whose value holds
    /// 2 * BUFSIZ bytes with its NUL (libzonecfg's zone_attrtab): 2047 base64 characters encode
    /// 1535 bytes of UTF-8.</summary>
    public const int MaxAliasBytes = 1535;

    /// <summary>The largest payload vmadm create and update read here: vmadm itself sets no limit,
    /// but every property it takes fits many times over (README, "Configuration files: bad records and limits").</summary>
    public const int MaxPayloadBytes = 1 << 20;

    /// <summary>The largest quota in GiB: 2^33 GiB is the largest byte count a signed 64-bit value holds.</summary>
    public const long MaxQuotaGiB = 1L << 33;

    /// <summary>Checks what zones.conf holds of a VM against the limits vmadm applies on input; returns
    /// the first problem, naming the property.</summary>
    public static string? CheckInfo(VmInfo vm)
    {
        if (vm.Alias != null && Encoding.UTF8.GetByteCount(vm.Alias) > MaxAliasBytes) return $"alias: longer than {MaxAliasBytes} bytes";
        if (vm.Quota is < 0 or > MaxQuotaGiB) return $"quota: must be from 0 to {MaxQuotaGiB} GiB";
        if (vm.Index < 1) return "index: must be positive";
        if (vm.Vcpus is int v && v != 1) return "vcpus: this VMM runs one vCPU per guest";
        foreach (string r in vm.Resolvers)
            if (r == null || !ZoneAddresses.IsValidIp(r)) return $"resolvers: '{ConfigText.Echo(r)}' is not a valid IP address";
        return null;
    }

    /// <summary>A payload problem, worded as vmadm words it.</summary>
    public sealed class PayloadError(string message) : Exception(message);

    /// <summary>Parses a JSON object payload; throws PayloadError on bad JSON.</summary>
    public static JsonObject ParseObject(string text)
    {
        int size = Encoding.UTF8.GetByteCount(text);
        if (size > MaxPayloadBytes) throw new PayloadError($"payload of {size} bytes is larger than the limit of {MaxPayloadBytes} bytes");
        JsonNode? node;
        try { node = JsonNode.Parse(text); }
        catch (JsonException e) { throw new PayloadError("Invalid JSON payload: " + e.Message); }
        if (node is not JsonObject o) throw new PayloadError("Invalid JSON payload: not an object");
        // JsonObject finds a repeated property only when first read: read it here, while it is still a payload error.
        try { _ = o.Count; }
        catch (ArgumentException) { throw new PayloadError("Invalid JSON payload: a property is given more than once"); }
        return o;
    }

    /// <summary>A version 4 UUID from the host's identity source that no zone on the host has yet
    /// (Host.cs rule 1).</summary>
    public static string NewUuid(Host host)
    {
        Span<byte> b = stackalloc byte[16];
        for (int attempt = 0; attempt < IdentityAttempts; attempt++)
        {
            for (int i = 0; i < b.Length; i++) b[i] = (byte)(host.Identities.NextUInt64() >> 56);
            b[6] = (byte)((b[6] & 0x0F) | 0x40);
            b[8] = (byte)((b[8] & 0x3F) | 0x80);
            string uuid = new Guid(b, bigEndian: true).ToString("D");
            if (host.Zones.Find(uuid) == null) return uuid;
        }
        throw new PayloadError($"no unused UUID after {IdentityAttempts} draws: the host's random source repeats itself");
    }

    /// <summary>Draws before giving up on a fresh identity: only a broken random source needs more than one.</summary>
    private const int IdentityAttempts = 64;

    public static bool IsUuid(string s) => s.Length == 36 && Guid.TryParseExact(s, "D", out _) && s == s.ToLowerInvariant();


    public static Zone? Find(Host host, string uuid)
    {
        var z = host.Zones.Find(uuid);
        return z is { IsVm: true } ? z : null;
    }

    // ---- create -------------------------------------------------------------------------------

    /// <summary>Checks a create payload and builds the VM's zone configuration; nothing is changed.</summary>
    /// <param name="workingDirectory">Where a relative "image": {"path": ...} is resolved from.</param>
    public static ZoneConfig BuildCreate(Host host, JsonObject payload, string? workingDirectory = null, List<string>? warnings = null)
    {
        var dropped = new Dropped("create", warnings);
        string brand = payload["brand"] is JsonNode bn0 ? Str(bn0) ?? "" : "joyent";
        bool hvm = HvmGuest.IsHvm(brand);
        // ram of a joyent or lx payload is its max_physical_memory (VM.js), unless that is given too.
        if (!hvm && payload["ram"] is JsonNode ram0)
        {
            payload.Remove("ram");
            if (!payload.ContainsKey("max_physical_memory")) payload["max_physical_memory"] = ram0;
        }
        CheckNames(payload, hvm ? s_hvmCreateProps : s_createProps, s_unsupported, s_kept, brand, update: false, "", dropped);
        var bad = new List<string>();
        if (payload["nowait"] is JsonNode nw && (hvm || Bool(nw) == null)) bad.Add("nowait");
        string uuid = payload["uuid"] is JsonNode u ? (Str(u) is string us && IsUuid(us) ? us : Bad(bad, "uuid", "")) : NewUuid(host);
        if (host.Zones.Find(uuid) != null) throw new PayloadError($"VM with UUID {uuid} already exists");
        if (payload["brand"] is JsonNode bn && Str(bn) == null) bad.Add("brand");
        if (brand.Length > 0 && Array.IndexOf(ZoneTable.LaterBrands, brand) >= 0) throw new PayloadError(ZoneTable.BrandProblem(brand).Message);
        if (Array.IndexOf(ZoneTable.RunnableBrands, brand) < 0 && !bad.Contains("brand")) bad.Add("brand");
        int index = host.Zones.NextVmIndex();
        var cfg = new ZoneConfig
        {
            Name = uuid, Uuid = uuid, ZonePath = "/zones/" + uuid, Brand = brand, Autoboot = true,
            CappedMemory = DefaultMemoryMiB << 20, Vm = new VmInfo { Index = index, CreateTimestamp = Now(host) },
        };
        ApplyScalars(payload, cfg, bad);
        ApplyKept(payload, s_kept, cfg.Vm!.Kept, "", bad, dropped);
        // VM.js's create stores these two when the payload has none (applyZoneDefaults), so an update
        // can remove them like any attribute.
        const string Nobody = "\"00000000-0000-0000-0000-000000000000\"";
        cfg.Vm.Kept.TryAdd("billing_id", Nobody);
        cfg.Vm.Kept.TryAdd("owner_uuid", Nobody);
        if (hvm)
        {
            ApplyHvm(payload, cfg, bad, workingDirectory ?? Environment.CurrentDirectory);
            SettleHvmMemory(cfg);
            ParseCreateDisks(host, payload, cfg, dropped);
        }
        // delegate_dataset: zones/UUID/data is the zone's (zonecfg's dataset resource, ZoneDatasets.cs);
        // vmadm create makes the dataset.
        if (payload["delegate_dataset"] is JsonNode dd)
        {
            if (Bool(dd) is not bool delegated) bad.Add("delegate_dataset");
            else if (delegated) cfg.Datasets.Add($"zones/{uuid}/data");
        }
        if (payload["nics"] is JsonNode nics)
        {
            if (nics is not JsonArray arr) bad.Add("nics");
            else for (int i = 0; i < arr.Count; i++) cfg.Nets.Add(ParseNic(arr[i], $"nics.{i}", cfg, cfg.Nets.Count, bad, dropped));
        }
        if (bad.Count > 0) throw new PayloadError("Invalid value(s) for: " + Fields(bad));
        FinishNics(host, cfg, "nics", 0);
        // The datasets the VM will have (VmDatasets.cs): the default quota, the image, last, as VM.js
        // validates images after the payload's own properties.
        VmDatasets.CheckCreate(host, cfg);
        dropped.WarnNotEnforced();
        return cfg;
    }

    /// <summary>ram, vcpus and image of a bhyve or kvm payload (HvmGuest.cs theory statement).</summary>
    private static void ApplyHvm(JsonObject payload, ZoneConfig cfg, List<string> bad, string workingDirectory)
    {
        var vm = cfg.Vm!;
        cfg.CappedMemory = HvmGuest.DefaultRamMiB << 20;
        if (payload["ram"] is JsonNode r)
        {
            if (Int(r) is long mib && mib is >= HvmGuest.MinRamMiB and <= HvmGuest.MaxRamMiB) cfg.CappedMemory = mib << 20;
            else throw new PayloadError($"Invalid value(s) for: ram ({ConfigText.Echo(r.ToJsonString())}: MiB from {HvmGuest.MinRamMiB} to {HvmGuest.MaxRamMiB})");
        }
        vm.Vcpus = 1;
        if (payload["vcpus"] is JsonNode v && Int(v) != 1)
            throw new PayloadError($"Invalid value(s) for: vcpus ({ConfigText.Echo(v.ToJsonString())}: this VMM runs one vCPU per guest; use 1)");
        // Without an image the VM is created and stays installed, as a SmartOS VM without disks has
        // nothing to boot (test-create-kvm.js, test-defaults.js "check default kvm properties");
        // vmadm start then says why it cannot start (HvmGuest.NoImage).
        if (payload["image"] is not JsonNode img) return;
        if (img is JsonObject ko && ko.ContainsKey("kernel"))
        {
            HvmGuest.ApplyKernelImage(ko, vm, cfg.CappedMemory ?? 0, workingDirectory);
            return;
        }
        if (img is not JsonObject io || io.Count != 1 || !(io.ContainsKey("guest") || io.ContainsKey("path")))
            throw new PayloadError($"Invalid value(s) for: image ({ConfigText.Echo(img.ToJsonString())}: give {{\"guest\": NAME}} for a program of virt/guests, {{\"path\": FILE}} for a flat image or {{\"kernel\": FILE, \"initrd\": FILE, \"cmdline\": TEXT}} for Linux)");
        if (io["guest"] is JsonNode g)
        {
            var names = HvmGuest.GuestNames();
            if (Str(g) is not string name || !names.Contains(name))
                throw new PayloadError($"Invalid value(s) for: image.guest ({ConfigText.Echo(g.ToJsonString())}: the guests are {string.Join(", ", names)})");
            vm.Guest = name;
        }
        else
        {
            if (Str(io["path"]) is not string path || path.Length == 0)
                throw new PayloadError($"Invalid value(s) for: image.path ({ConfigText.Echo(io["path"]?.ToJsonString())}: a file name)");
            string full = Path.GetFullPath(Path.IsPathRooted(path) ? path : Path.Combine(workingDirectory, path));
            if (!File.Exists(full)) throw new PayloadError($"Invalid value(s) for: image.path (no such file: {ConfigText.Echo(full)})");
            vm.ImagePath = full;
        }
    }

    private static string Bad(List<string> bad, string path, string fallback)
    {
        bad.Add(path);
        return fallback;
    }

    /// <summary>Whether a create payload asks vmadm not to wait for the VM to come up (nowait; joyent
    /// and lx brands).</summary>
    public static bool NoWait(JsonObject payload) => Bool(payload["nowait"]) == true;

    /// <summary>Where the warnings about dropped and kept properties go, and for which action.</summary>
    private sealed class Dropped(string action, List<string>? warnings)
    {
        public string Action { get; } = action;
        private readonly HashSet<string> _warned = new(StringComparer.Ordinal);
        private readonly List<string> _notEnforced = [];

        /// <summary>VM.js's warning for a property it removes, once per name.</summary>
        public void Drop(string name)
        {
            if (_warned.Add(name)) warnings?.Add($"Warning, invalid {Action} property: [{ConfigText.Echo(name)}] removing from payload.");
        }

        public void NotEnforced(string name)
        {
            if (!_notEnforced.Contains(name)) _notEnforced.Add(name);
        }

        /// <summary>One warning naming every kept property SmartOS would enforce and this host does not.</summary>
        public void WarnNotEnforced()
        {
            if (_notEnforced.Count > 0)
                warnings?.Add("Warning, not enforced on this host (kept, shown by vmadm get): " + string.Join(", ", _notEnforced) + ".");
        }
    }

    /// <summary>
    /// Properties SmartOS does not take (for this brand and action) are warned about and removed from the
    /// payload, as VM.js's validateProperties does ("Warning, invalid create property: [colour] removing
    /// from payload."; a nic's is named nics.*.X); properties SmartOS takes that would mislead here
    /// (storage, VRRP) are refused; kept ones stay for ApplyKept.
    /// </summary>
    private static void CheckNames(JsonObject o, string[] allowed, string[] unsupported, Dictionary<string, Kept> kept, string brand,
        bool update, string prefix, Dropped dropped)
    {
        var unknown = new List<string>();
        var unsup = new List<string>();
        foreach (var (key, _) in o)
        {
            if (Array.IndexOf(allowed, key) >= 0) continue;
            if (kept.TryGetValue(key, out var k) && KeptHere(k, brand, update)) continue;
            if (update && (key.StartsWith("set_", StringComparison.Ordinal) || key.StartsWith("remove_", StringComparison.Ordinal))
                && Array.IndexOf(s_keptObjects, key[(key.IndexOf('_') + 1)..]) >= 0) continue;
            if (Array.IndexOf(unsupported, key) >= 0) unsup.Add(prefix + key);
            else unknown.Add(key);
        }
        if (unsup.Count > 0) throw new PayloadError("Unsupported property(s): " + string.Join(',', unsup) + " (not enforced by this SmartOS yet)");
        foreach (string key in unknown)
        {
            dropped.Drop(prefix + key);
            o.Remove(key);
        }
    }

    private static bool KeptHere(Kept k, string brand, bool update)
        => (!update || k.Update) && k.Brands switch
        {
            KeptBrands.Os => !HvmGuest.IsHvm(brand),
            KeptBrands.Hvm => HvmGuest.IsHvm(brand),
            _ => true,
        };

    /// <summary>Whether an update's value removes a property, as VM.js's update does: null (its
    /// undefined) or "" removes an attribute, and a cpu_cap of 0 removes the cap (test-update.js "set
    /// then unset simple properties", "remove cpu_cap").</summary>
    /// <summary>List properties VM.js keeps as a zonecfg property's comma-separated text.</summary>
    private static readonly string[] s_listsAsText = ["fs_allowed", "limit_priv"];

    private static bool Unsets(string key, JsonNode? value) =>
        value == null || Str(value) == "" || (key == "cpu_cap" && Int(value) == 0);

    /// <summary>Checks and stores the kept properties a payload gives (after CheckNames), and the
    /// set_X/remove_X of an update; bad values are added to <paramref name="bad"/>.</summary>
    private static void ApplyKept(JsonObject o, Dictionary<string, Kept> table, Dictionary<string, string> into, string prefix, List<string> bad,
        Dropped dropped, bool update = false)
    {
        foreach (var (key, value) in o)
        {
            if (table.TryGetValue(key, out var k))
            {
                if (update && Unsets(key, value)) { into.Remove(key); continue; }
                if (!KeptValueOk(k.Type, value) || !AtLeast(value, k.Min)) { bad.Add(prefix + key); continue; }
                // VM.js writes these to zonecfg as one comma-separated value and shows that string,
                // however the payload gave them (test-fsallowed.js "add fs_allowed using array").
                if (value is JsonArray list && Array.IndexOf(s_listsAsText, key) >= 0)
                {
                    string joined = string.Join(',', list.Select(e => e is JsonValue ev && ev.TryGetValue(out string? es) ? es : e!.ToJsonString()));
                    if (joined.Length == 0) into.Remove(key);
                    else into[key] = JsonValue.Create(joined).ToJsonString();
                }
                else into[key] = value!.ToJsonString();
                if (k.Enforced) dropped.NotEnforced(prefix + key);
                continue;
            }
            bool set = key.StartsWith("set_", StringComparison.Ordinal), remove = key.StartsWith("remove_", StringComparison.Ordinal);
            if (!set && !remove) continue;
            string target = key[(key.IndexOf('_') + 1)..];
            if (Array.IndexOf(s_keptObjects, target) < 0) continue;
            var current = into.TryGetValue(target, out string? text) && JsonNode.Parse(text) is JsonObject co ? co : new JsonObject();
            if (set)
            {
                if (value is not JsonObject so || !KeptValueOk(KeptType.Object, so)) { bad.Add(key); continue; }
                foreach (var (sk, sv) in so) current[sk] = sv?.DeepClone();
            }
            else
            {
                if (StrList(value) is not List<string> keys) { bad.Add(key); continue; }
                foreach (string rk in keys) current.Remove(rk);
            }
            into[target] = current.ToJsonString();
        }
    }

    private static bool AtLeast(JsonNode? v, long min)
        => min == 0 || (Int(v) ?? (long.TryParse(Str(v), NumberStyles.None, CultureInfo.InvariantCulture, out long l) ? l : 0)) >= min;

    /// <summary>A nic's interface as VM.js takes it ("net0"): here a nic's interface is netN with N
    /// its index (its zone's interface and vmadm get's), so only that name is taken; another would
    /// be shown and not be what the zone has.</summary>
    private static void CheckInterface(JsonObject o, string path, int index)
    {
        if (o["interface"] is not JsonNode node) return;
        string want = "net" + index.ToString(CultureInfo.InvariantCulture);
        if (Str(node) != want)
            throw new PayloadError($"Invalid value(s) for: {path}.interface ({ConfigText.Echo(Str(node) ?? node.ToJsonString())}: "
                + $"a nic's interface here is netN by its index, this one's is {want})");
    }

    /// <summary>proptable.js's payload types: integers are whole numbers from 0 (or their digits as a
    /// string, as VM.js's fixups take them), lists are arrays of strings (or a comma-separated string),
    /// objects are flat (string, number or boolean values).</summary>
    private static bool KeptValueOk(KeptType type, JsonNode? v) => type switch
    {
        KeptType.Integer => Int(v) is >= 0 || (Str(v) is string si && si.Length is > 0 and < 19 && si.All(char.IsAsciiDigit)),
        KeptType.String => Str(v) != null,
        KeptType.Boolean => Bool(v) != null,
        KeptType.List => Str(v) != null || v is JsonArray la && la.All(e => e is JsonValue ev && ev.GetValueKind() is JsonValueKind.String or JsonValueKind.Number),
        _ => v is JsonObject fo && fo.All(p => p.Value is JsonValue pv && pv.GetValueKind() is JsonValueKind.String or JsonValueKind.Number
            or JsonValueKind.True or JsonValueKind.False),
    };

    private static void ApplyScalars(JsonObject payload, ZoneConfig cfg, List<string> bad, bool update = false)
    {
        var vm = cfg.Vm!;
        if (update && payload.TryGetPropertyValue("alias", out var unset) && Unsets("alias", unset)) vm.Alias = null;
        else if (payload["alias"] is JsonNode a)
        {
            if (Str(a) is not string s) bad.Add("alias");
            else if (Encoding.UTF8.GetByteCount(s) > MaxAliasBytes)
                throw new PayloadError($"Invalid value(s) for: alias (longer than {MaxAliasBytes} bytes, what SmartOS stores)");
            else vm.Alias = s;
        }
        if (payload["image_uuid"] is JsonNode img) { if (Str(img) is string s && IsUuid(s)) vm.ImageUuid = s; else bad.Add("image_uuid"); }
        if (payload["autoboot"] is JsonNode ab) { if (Bool(ab) is bool b) cfg.Autoboot = b; else bad.Add("autoboot"); }
        if (payload["max_physical_memory"] is JsonNode m)
        {
            if (Int(m) is long mib && mib > 0 && mib <= 1L << 30) cfg.CappedMemory = mib << 20;
            else bad.Add("max_physical_memory");
        }
        if (payload["quota"] is JsonNode q) { if (Int(q) is long gib && gib is >= 0 and <= MaxQuotaGiB) vm.Quota = gib; else bad.Add("quota"); }
        if (payload["resolvers"] is JsonNode r)
        {
            var list = StrList(r);
            if (list == null || list.Exists(x => !ZoneAddresses.IsValidIp(x))) bad.Add("resolvers");
            else vm.Resolvers = list;
        }
    }

    private static ZoneNet ParseNic(JsonNode? node, string path, ZoneConfig cfg, int slot, List<string> bad, Dropped dropped)
    {
        var net = new ZoneNet { Protected = true };
        if (node is not JsonObject o) { bad.Add(path); return net; }
        CheckInterface(o, path, cfg.Nets.Count);
        // bhyve and kvm need a model on every nic (proptable.js model_required); VM.js takes the VM's
        // nic_driver, or the first nic's model, for a nic without one.
        JsonNode? model = o["model"];
        if (HvmGuest.IsHvm(cfg.Brand) && model == null)
        {
            if (cfg.Vm!.Kept.TryGetValue("nic_driver", out string? driver)) model = JsonNode.Parse(driver);
            else if (cfg.Nets.Count > 0) model = "virtio";
            else throw new PayloadError("missing .model option for NIC: " + o.ToJsonString());
        }
        if (HvmGuest.IsHvm(cfg.Brand) && model != null)
        {
            if (Str(model) != "virtio")
                throw new PayloadError($"Invalid value(s) for: nics.*.model ({path}: {ConfigText.Echo(model.ToJsonString())}: only virtio is supported, the VMM's one NIC model)");
            o = (JsonObject)o.DeepClone();
            o.Remove("model");
        }
        CheckNicNames(o, cfg.Brand, dropped);
        FillNic(o, net, path, bad, creating: true);
        ApplyKept(o, s_keptNic, net.Kept, "nics.*.", bad, dropped);
        net.Physical = $"z{cfg.Vm!.Index.ToString(CultureInfo.InvariantCulture)}_net{slot.ToString(CultureInfo.InvariantCulture)}";
        return net;
    }

    /// <summary>A nic's properties as CheckNames checks a payload's: allowed_dhcp_cids is not a bhyve
    /// property, allow_unfiltered_promisc only a bhyve or kvm one (proptable.js).</summary>
    private static void CheckNicNames(JsonObject o, string brand, Dropped dropped)
    {
        string[] allowed = brand == "bhyve" ? [.. s_nicProps.Where(p => p != "allowed_dhcp_cids")] : s_nicProps;
        CheckNames(o, allowed, s_unsupportedNic, s_keptNic, brand, update: false, "nics.*.", dropped);
    }

    private static void FillNic(JsonObject o, ZoneNet net, string path, List<string> bad, bool creating)
    {
        FromDeprecatedForm(o, path, bad);
        if (o["nic_tag"] is JsonNode t) { if (Str(t) is string s && (NicTagTable.IsValidName(s, false) || NicTagTable.TryParseOverlayTag(s, out _, out _))) net.GlobalNic = s; else bad.Add(path + ".nic_tag"); }
        else if (creating) bad.Add(path + ".nic_tag");
        if (o["ips"] is JsonNode ips)
        {
            var list = StrList(ips);
            // An update's "ips": [] empties the nic (test-update.js "remove IPs to make empty NIC").
            if (list == null || (list.Count == 0 && creating) || list.Exists(x => !ZoneAddresses.IsValidAddress(x))) bad.Add(path + ".ips");
            else net.Ips = list;
        }
        if (o["gateways"] is JsonNode gw)
        {
            var list = StrList(gw);
            if (list == null || list.Exists(x => !ZoneAddresses.IsValidIp(x))) bad.Add(path + ".gateways");
            else net.Gateways = list;
        }
        if (o["allowed_ips"] is JsonNode al)
        {
            var list = StrList(al);
            if (list == null) bad.Add(path + ".allowed_ips");
            else net.AllowedIps = CheckAllowedIps(list);
        }
        if (o["allowed_dhcp_cids"] is JsonNode cidsNode)
        {
            var list = StrList(cidsNode);
            if (list == null) bad.Add("nics.*.allowed_dhcp_cids");
            else net.AllowedDhcpCids = CheckDhcpCids(list, bad);
        }
        if (o["blocked_outgoing_ports"] is JsonNode bp)
        {
            var ports = new List<int>();
            if (bp is JsonArray arr)
                foreach (var e in arr) { if (Int(e) is long port && port is >= 1 and <= 65535) ports.Add((int)port); else { ports = null; break; } }
            if (bp is not JsonArray || ports == null) bad.Add(path + ".blocked_outgoing_ports");
            else net.BlockedOutgoingPorts = [.. ports.Distinct()];
        }
        if (o["vlan_id"] is JsonNode v) { if (Int(v) is long vid && vid is >= 0 and <= 4094 and not 1) net.VlanId = (int)vid; else bad.Add(path + ".vlan_id"); }
        if (o["mtu"] is JsonNode mt) { if (Int(mt) is long mtu && mtu is >= 576 and <= 9000) net.Mtu = (int)mtu; else bad.Add(path + ".mtu"); }
        if (o["mac"] is JsonNode mc)
        {
            // SmartOS's own tests give nics group MACs (01:02:03:04:05:06); VM.js takes any but the
            // broadcast and zero addresses, and the VNIC is refused at boot if the MAC layer will not have it.
            if (Str(mc) is string s && MacAddress.TryParse(s, out var mac) && !mac.IsBroadcast && !mac.IsZero) net.MacAddr = NicTagTable.Normalize(mac);
            else bad.Add(path + ".mac");
        }
        if (o["primary"] is JsonNode p) { if (Bool(p) is bool b) net.Primary = b; else bad.Add(path + ".primary"); }
        if (o["allow_ip_spoofing"] is JsonNode ip) { if (Bool(ip) is bool b) net.AllowIpSpoofing = b; else bad.Add(path + ".allow_ip_spoofing"); }
        if (o["allow_mac_spoofing"] is JsonNode ms) { if (Bool(ms) is bool b) net.AllowMacSpoofing = b; else bad.Add(path + ".allow_mac_spoofing"); }
        if (o["allow_dhcp_spoofing"] is JsonNode ds) { if (Bool(ds) is bool b) net.AllowDhcpSpoofing = b; else bad.Add(path + ".allow_dhcp_spoofing"); }
        if (o["allow_restricted_traffic"] is JsonNode rt) { if (Bool(rt) is bool b) net.AllowRestrictedTraffic = b; else bad.Add(path + ".allow_restricted_traffic"); }
    }

    /// <summary>
    /// The deprecated nic form SmartOS still takes: "ip" (an address, "dhcp" or "addrconf") with
    /// "netmask", and "gateway", turned into ips and gateways as VM.js does when ips is not given.
    /// </summary>
    private static void FromDeprecatedForm(JsonObject o, string path, List<string> bad)
    {
        if (o["gateway"] is JsonNode gw)
        {
            o.Remove("gateway");
            if (Str(gw) is not string g || !ZoneAddresses.IsValidIp(g)) bad.Add(path + ".gateway");
            else if (!o.ContainsKey("gateways")) o["gateways"] = new JsonArray(g);
        }
        var ip = o["ip"];
        var mask = o["netmask"];
        o.Remove("ip");
        o.Remove("netmask");
        if (ip == null)
        {
            // A netmask needs an IPv4 address to apply to; kept alone it would be shown and mean nothing.
            if (mask != null && (Str(mask) is not string || !o.ContainsKey("ips"))) bad.Add(path + ".netmask");
            return;
        }
        if (Str(ip) is not string addr) { bad.Add(path + ".ip"); return; }
        if (o.ContainsKey("ips")) return;
        if (addr is "dhcp" or "addrconf") { o["ips"] = new JsonArray(addr); return; }
        if (!IpAddress.TryParse(addr, out var a) || !a.IsV4) { bad.Add(path + ".ip"); return; }
        if (Str(mask) is not string m || !IpAddress.TryParse(m, out var ma) || !ma.IsV4 || PrefixOf(ma.V4Raw) is not int prefix)
        {
            bad.Add(path + ".netmask");
            return;
        }
        o["ips"] = new JsonArray($"{addr}/{prefix.ToString(CultureInfo.InvariantCulture)}");
    }

    /// <summary>The prefix length of a contiguous IPv4 netmask; null for another value.</summary>
    private static int? PrefixOf(uint mask)
    {
        int len = System.Numerics.BitOperations.PopCount(mask);
        uint expect = len == 0 ? 0u : 0xFFFFFFFFu << (32 - len);
        return mask == expect ? len : null;
    }

    /// <summary>VM.js validateIPlist: each an address or a CIDR with a prefix from 1 to 32 (128), at
    /// most 13; its messages.</summary>
    private static List<string> CheckAllowedIps(List<string> list)
    {
        var invalid = new List<string>();
        foreach (string ip in list)
        {
            if (ZoneAddresses.IsValidIp(ip)) continue;
            string[] parts = ip.Split('/');
            if (parts.Length != 2 || !IpAddress.TryParse(parts[0], out var a)
                || !int.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out int len) || len < 1 || len > (a.IsV4 ? 32 : 128))
                invalid.Add(ConfigText.Echo(ip));
        }
        if (invalid.Count > 0) throw new PayloadError("invalid allowed_ips: " + string.Join(", ", invalid));
        if (list.Count > MaxAllowedIps) throw new PayloadError($"Maximum of {MaxAllowedIps} allowed_ips per nic");
        return list;
    }

    /// <summary>allowed_dhcp_cids: "*" alone (any), or client identifiers as 0x-prefixed hex of whole
    /// bytes; at most 20, joined text under 1024 characters (VM.js's words).</summary>
    private static List<string> CheckDhcpCids(List<string> list, List<string> bad)
    {
        if (list.Count > MaxAllowedDhcpCids)
            throw new PayloadError($"nics.*.allowed_dhcp_cids contains {list.Count} Client Identifiers, but is limited to {MaxAllowedDhcpCids}");
        if (string.Join(',', list).Length > MaxAllowedDhcpCidsText)
            throw new PayloadError("nics.*.allowed_dhcp_cids contains too many long Client Identifiers");
        foreach (string cid in list)
        {
            bool ok = cid == "*" ? list.Count == 1
                : cid.Length > 2 && cid.Length % 2 == 0 && cid.StartsWith("0x", StringComparison.Ordinal) && cid[2..].All(char.IsAsciiHexDigit);
            if (!ok) { if (!bad.Contains("nics.*.allowed_dhcp_cids")) bad.Add("nics.*.allowed_dhcp_cids"); return []; }
        }
        return list;
    }

    /// <summary>Fills in MAC addresses and the primary flag, then checks tags, duplicates and the link
    /// properties the protection needs. <paramref name="firstNew"/> is the first nic added by this payload.</summary>
    private static void FinishNics(Host host, ZoneConfig cfg, string what, int firstNew)
    {
        var nets = cfg.Nets;
        // VM.js's create makes the first nic primary when none is; its update's add_nics does not
        // (test-update.js "add NIC with minimal properties"): only a nic given primary, or one
        // elected when remove_nics takes the primary away, becomes primary there.
        if (what != "add_nics" && nets.Count > 0 && !nets.Exists(n => n.Primary)) nets[0].Primary = true;
        if (nets.Count(n => n.Primary) > 1) throw new PayloadError($"Invalid value(s) for: nics.*.primary (more than one primary nic in {what})");
        // This payload's own addresses; the other zones' are one lookup each in the table's index
        // (ZoneIndex.cs), not a pass over every zone.
        var usedIps = new Dictionary<string, string>(StringComparer.Ordinal);
        var usedMacs = new Dictionary<string, string>(StringComparer.Ordinal);
        string? IpOwner(string key) => usedIps.TryGetValue(key, out var o) ? o : OtherVm(host, cfg, key, mac: false);
        string? MacOwner(string mac) => usedMacs.TryGetValue(mac, out var o) ? o : OtherVm(host, cfg, mac, mac: true);
        if (NicTagProblem(host, cfg) is string tagProblem) throw new PayloadError(tagProblem);
        for (int i = 0; i < nets.Count; i++)
        {
            var n = nets[i];
            string path = i >= firstNew ? $"{what}.{i - firstNew}" : $"nics.{i}";
            foreach (string ip in n.Ips)
            {
                if (ip is "dhcp" or "addrconf") continue;
                string addr = ip.Split('/')[0];
                if (IpOwner(IpKey(n, ip)) is string owner) throw new PayloadError($"Invalid value(s) for: nics.*.ips ({path}: IP address {addr} is already used by {owner})");
                usedIps.Add(IpKey(n, ip), path);
            }
            n.MacAddr ??= RandomMac(host, mac => MacOwner(mac) != null);
            if (MacOwner(n.MacAddr) is string macOwner) throw new PayloadError($"Invalid value(s) for: nics.*.mac ({path}: MAC address {n.MacAddr} is already used by {macOwner})");
            usedMacs.Add(n.MacAddr, path);
        }
        // The one validator for a zone's nets (ZoneNets.cs), as zonecfg and boot use it; its problem
        // is framed as vmadm frames a bad field.
        if (ZoneNets.Check(nets, host) is ZoneNetProblem p)
        {
            int i = p.Index;
            string path = i >= firstNew ? $"{what}.{i - firstNew}" : $"nics.{i}";
            throw new PayloadError($"Invalid value(s) for: nics.*.{NicField(p.Property)} ({path}: {p.Detail})");
        }
    }

    /// <summary>Bad values as VM.js names them: a nic's field as nics.*.X, whichever list (nics,
    /// add_nics, update_nics) and nic it came from; each once.</summary>
    private static string Fields(List<string> bad)
    {
        var names = new List<string>();
        foreach (string b in bad)
        {
            string name = System.Text.RegularExpressions.Regex.Replace(b, @"^(?:nics|add_nics|update_nics)\.\d+\.", "nics.*.");
            if (!names.Contains(name)) names.Add(name);
        }
        return string.Join(',', names);
    }

    /// <summary>The nic tags of a VM's nics that the host does not have, in VM.js's words (one
    /// 'Invalid nic tag "X"' line each), or null: create, update, start and reboot check them first.</summary>
    public static string? NicTagProblem(Host host, ZoneConfig cfg)
    {
        var missing = new List<string>();
        foreach (var n in cfg.Nets)
        {
            string tag = n.GlobalNic ?? "";
            if ((n.GlobalNic == null || host.NicTags.Resolve(n.GlobalNic) == null) && !missing.Contains(tag)) missing.Add(tag);
        }
        return missing.Count == 0 ? null : string.Join('\n', missing.Select(t => $"Invalid nic tag \"{ConfigText.Echo(t)}\"" + OverlayHint(t)));
    }

    /// <summary>For a fabric tag (RULE/VNID) whose overlay is missing: which link it needs, since
    /// here the operator creates it (NicTagTable.TryParseOverlayTag).</summary>
    private static string OverlayHint(string tag)
    {
        if (!NicTagTable.TryParseOverlayTag(tag, out var rule, out uint vnid)) return "";
        string link = NicTagTable.OverlayLinkName(rule, vnid);
        return $": overlay {link} with vnetid {vnid} does not exist (create it with dladm create-overlay -v {vnid} ... {link})";
    }

    /// <summary>What an IP address conflicts within: SmartOS checks addresses per nic tag and VLAN
    /// (smartos-live test-net-conflicts.js: the same IP on another nic tag is no conflict).</summary>
    private static string IpKey(ZoneNet n, string ip) => ZoneIndex.IpKey(n, ip);

    /// <summary>"VM UUID" of the zone other than <paramref name="cfg"/>'s that holds the key, first in
    /// configuration order; VM.js's checkNicConflicts passes over a failed VM that is not running (VmAttrs.cs).</summary>
    private static string? OtherVm(Host host, ZoneConfig cfg, string key, bool mac)
        => host.Zones.Holding(key, mac, cfg.Name, z => IsFailed(z.Config) && z.State != ZoneState.Running) is Zone z ? "VM " + z.Name : null;

    /// <summary>The vmadm nics.N field that holds a zonecfg net property.</summary>
    private static string NicField(string property) => property switch
    {
        "global-nic" => "nic_tag",
        "vlan-id" => "vlan_id",
        "mac-addr" => "mac",
        "allowed-address" => "ips",
        "defrouter" => "gateways",
        "blocked outgoing port" => "blocked_outgoing_ports",
        "physical" => "interface",
        "" => "nic",
        _ => property,
    };

    /// <summary>A MAC address under Joyent's OUI (90:b8:d0), as SmartOS gives VM nics, that no VM and
    /// no datalink of the host has (Host.cs rule 1).</summary>
    private static string RandomMac(Host host, Func<string, bool> used)
    {
        for (int attempt = 0; attempt < IdentityAttempts; attempt++)
        {
            ulong v = 0x90b8d0UL << 24 | (host.Identities.NextUInt64() & 0xFFFFFF);
            string s = NicTagTable.Normalize(new MacAddress(v));
            if (!used(s) && !host.Mac.HasPortAddress(new MacAddress(v))) return s;
        }
        throw new PayloadError($"no unused MAC address after {IdentityAttempts} draws: the host's random source repeats itself");
    }

    // ---- update -------------------------------------------------------------------------------

    /// <summary>Checks an update payload against a VM and returns its new configuration; nothing changes.</summary>
    public static ZoneConfig BuildUpdate(Host host, Zone vm, JsonObject payload, List<string>? warnings = null)
    {
        var dropped = new Dropped("update", warnings);
        // vmadm get's properties that no update changes are ignored without a word, so that a VM's
        // whole object can be sent back (test-update.js "attempt to modify unmodifiable properties").
        foreach (string key in s_unmodifiable) payload.Remove(key);
        bool hvm = HvmGuest.IsHvm(vm.Config.Brand);
        var derived = hvm ? null : FixPayloadMemory(payload, ToJson(vm));
        CheckNames(payload, hvm ? [.. s_updateProps, .. s_hvmDiskUpdateProps] : s_updateProps, [.. s_unsupported, .. s_createProps.Except(s_updateProps)],
            s_kept, vm.Config.Brand, update: true, "", dropped);
        var cfg = vm.Config.Clone();
        if (hvm) ParseDiskUpdate(host, vm, payload, cfg, dropped);
        var bad = new List<string>();
        ApplyScalars(payload, cfg, bad, update: true);
        ApplyKept(payload, s_kept, cfg.Vm!.Kept, "", bad, dropped, update: true);
        if (derived != null)
            foreach (var (key, value) in derived) cfg.Vm.Kept[key] = value.ToString(CultureInfo.InvariantCulture);
        bool newPrimary = CheckPrimaryFlags(payload);
        string? oldPrimary = cfg.Nets.Find(n => n.Primary)?.MacAddr;
        if (payload["remove_nics"] is JsonNode rm)
        {
            var macs = StrList(rm);
            if (macs == null) bad.Add("remove_nics");
            else
            {
                foreach (string m in macs)
                {
                    string? norm = MacAddress.TryParse(m, out var mac) ? NicTagTable.Normalize(mac) : null;
                    int at = cfg.Nets.FindIndex(n => n.MacAddr == norm);
                    if (at < 0) throw new PayloadError($"Invalid value(s) for: remove_nics (no nic with MAC address {ConfigText.Echo(m)})");
                    cfg.Nets.RemoveAt(at);
                }
                if (!newPrimary && oldPrimary != null && !cfg.Nets.Exists(n => n.MacAddr == oldPrimary) && ElectPrimary(cfg.Nets) is ZoneNet elected)
                    elected.Primary = true;
            }
        }
        if (payload["update_nics"] is JsonNode up)
        {
            if (up is not JsonArray arr) bad.Add("update_nics");
            else for (int i = 0; i < arr.Count; i++)
            {
                if (arr[i] is not JsonObject o || Str(o["mac"]) is not string ms || !MacAddress.TryParse(ms, out var mac)) { bad.Add($"update_nics.{i}.mac"); continue; }
                if (HvmGuest.IsHvm(cfg.Brand) && o["model"] is JsonNode model)
                {
                    // VM.js refuses an empty model in update_nics (test-required-nic-props.js "update to
                    // empty model"); virtio, the one model here, changes nothing.
                    if (Str(model) is not { Length: > 0 } m) throw new PayloadError("invalid .model option for NIC: " + o.ToJsonString());
                    if (m != "virtio")
                        throw new PayloadError($"Invalid value(s) for: nics.*.model (update_nics.{i}: {ConfigText.Echo(model.ToJsonString())}: only virtio is supported, the VMM's one NIC model)");
                    o = (JsonObject)o.DeepClone();
                    o.Remove("model");
                }
                CheckNicNames(o, cfg.Brand, dropped);
                var net = cfg.Nets.Find(n => n.MacAddr == NicTagTable.Normalize(mac));
                if (net == null) throw new PayloadError($"Invalid value(s) for: update_nics.{i}.mac (no nic with MAC address {ConfigText.Echo(ms)})");
                CheckInterface(o, $"update_nics.{i}", cfg.Nets.IndexOf(net));
                var copy = new JsonObject();
                foreach (var (k, v) in o) if (k != "mac") copy[k] = v?.DeepClone();
                // A netmask alone changes the prefix of the nic's IPv4 address, as VM.js keeps ip and
                // netmask apart (a bad or empty one is refused: test-required-nic-props.js).
                if (copy.ContainsKey("netmask") && !copy.ContainsKey("ip") && !copy.ContainsKey("ips")
                    && net.Ips.Find(x => x.Contains('/') && !x.Contains(':')) is string v4)
                    copy["ip"] = v4.Split('/')[0];
                FillNic(copy, net, $"update_nics.{i}", bad, creating: false);
                ApplyKept(copy, s_keptNic, net.Kept, "nics.*.", bad, dropped, update: true);
                if (copy["primary"] is JsonNode pn && Bool(pn) == true) foreach (var other in cfg.Nets) if (other != net) other.Primary = false;
            }
        }
        int firstNew = cfg.Nets.Count;
        if (payload["add_nics"] is JsonNode add)
        {
            if (add is not JsonArray arr) bad.Add("add_nics");
            else for (int i = 0; i < arr.Count; i++)
            {
                int slot = 0;
                while (cfg.Nets.Exists(n => n.Physical == $"z{cfg.Vm!.Index}_net{slot}")) slot++;
                var net = ParseNic(arr[i], $"add_nics.{i}", cfg, slot, bad, dropped);
                if (arr[i] is JsonObject ao && ao["primary"] is JsonNode pn && Bool(pn) == true) foreach (var other in cfg.Nets) other.Primary = false;
                cfg.Nets.Add(net);
            }
        }
        if (bad.Count > 0) throw new PayloadError("Invalid value(s) for: " + Fields(bad));
        if (hvm) SettleHvmMemory(cfg);
        FinishNics(host, cfg, "add_nics", firstNew);
        dropped.WarnNotEnforced();
        return cfg;
    }

    /// <summary>VM.js's rules for primary in add_nics and update_nics: a nic always has one primary, so
    /// only true may be given, and to one nic; whether one is.</summary>
    private static bool CheckPrimaryFlags(JsonObject payload)
    {
        int primaries = 0;
        foreach (string field in (string[])["add_nics", "update_nics"])
        {
            if (payload[field] is not JsonArray arr) continue;
            foreach (var item in arr)
            {
                if (item is not JsonObject o || o["primary"] is not JsonNode p) continue;
                if (Bool(p) != true)
                    throw new PayloadError($"invalid value for NIC's primary flag: {ConfigText.Echo(Str(p) ?? p.ToJsonString())} (must be true)");
                primaries++;
            }
        }
        if (primaries > 1) throw new PayloadError("payload specifies more than 1 primary NIC");
        return primaries > 0;
    }

    /// <summary>The nic VM.js makes primary when remove_nics takes the primary away and no new one is
    /// given: the first with a public address, else the first with a private one (10/8, 172.16/12,
    /// 192.168/16); null when no nic has a static address.</summary>
    private static ZoneNet? ElectPrimary(List<ZoneNet> nets)
    {
        ZoneNet? publicNic = null, privateNic = null;
        foreach (var n in nets)
        {
            foreach (string ip in n.Ips)
            {
                if (!ZoneAddresses.TryParseCidr(ip, out var a, out _) || !a.IsV4) continue;
                uint v = a.V4Raw;
                bool priv = (v >> 24) == 10 || (v >> 20) == 0xAC1 || (v >> 16) == 0xC0A8;
                if (priv) privateNic ??= n; else publicNic ??= n;
                break;
            }
        }
        return publicNic ?? privateNic;
    }

    /// <summary>key=value arguments of vmadm update as a payload: numbers and booleans typed, the rest strings.</summary>
    public static JsonObject FromKeyValues(IEnumerable<string> args)
    {
        var o = new JsonObject();
        foreach (string a in args)
        {
            int eq = a.IndexOf('=');
            if (eq <= 0) throw new PayloadError($"Invalid property=value argument '{ConfigText.Echo(a)}'");
            string k = a[..eq], v = a[(eq + 1)..];
            if (v is "true" or "false") o[k] = v == "true";
            else if (long.TryParse(v, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out long n)) o[k] = n;
            else o[k] = v;
        }
        return o;
    }

    // ---- JSON helpers ---------------------------------------------------------------------------

    private static string? Str(JsonNode? n) => n is JsonValue v && v.TryGetValue(out string? s) ? s : null;

    private static bool? Bool(JsonNode? n)
    {
        if (n is not JsonValue v) return null;
        if (v.TryGetValue(out bool b)) return b;
        // vmadm takes "true"/"false", "1"/"0" and 1/0 for booleans (utils.js fixBooleanLoose).
        if (v.TryGetValue(out string? s) && s is "true" or "false" or "1" or "0") return s is "true" or "1";
        if (v.GetValueKind() == JsonValueKind.Number && v.TryGetValue(out long num) && num is 0 or 1) return num == 1;
        return null;
    }

    private static long? Int(JsonNode? n)
    {
        if (n is not JsonValue v) return null;
        if (v.GetValueKind() == JsonValueKind.Number && v.TryGetValue(out long l)) return l;
        return null;
    }

    private static List<string>? StrList(JsonNode? n)
    {
        if (n is not JsonArray a) return null;
        var list = new List<string>();
        foreach (var item in a)
        {
            if (Str(item) is not string s) return null;
            list.Add(s);
        }
        return list;
    }
}
