using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using SmartOS.Kernel.Wire;

namespace SmartOS.Zones;

/// <summary>
/// vmadm's view of a VM (VmPayload.cs holds the way in): the JSON object vmadm get and lookup -j
/// print, and the fields vmadm list shows and its filters match.
/// </summary>
public static partial class VmModel
{
    /// <summary>vmadm's name for a zone state ("stopped" for installed).</summary>
    public static string StateName(ZoneState s) => s switch
    {
        ZoneState.Installed => "stopped",
        ZoneState.ShuttingDown => "stopping",
        _ => Zone.StateName(s),
    };

    /// <summary>vmadm list's TYPE column.</summary>
    public static string TypeName(string brand) => brand switch
    {
        "lx" => "LX",
        "kvm" => "KVM",
        "bhyve" => "BHYV",
        _ => "OS",
    };

    /// <summary>The VM as vmadm get prints it (keys sorted, as vmadm does); with the host, what its
    /// datasets are (VmDatasets.AddToJson: zfs_filesystem, zpool, snapshots) and what zfs holds of its
    /// disks (AddDiskProperties).</summary>
    public static JsonObject ToJson(Zone z, Host? host = null)
    {
        var c = z.Config;
        var vm = c.Vm!;
        var nics = new JsonArray();
        for (int i = 0; i < c.Nets.Count; i++)
        {
            var n = c.Nets[i];
            var o = new JsonObject();
            if (n.AllowDhcpSpoofing) o["allow_dhcp_spoofing"] = true;
            if (n.AllowIpSpoofing) o["allow_ip_spoofing"] = true;
            if (n.AllowMacSpoofing) o["allow_mac_spoofing"] = true;
            if (n.AllowRestrictedTraffic) o["allow_restricted_traffic"] = true;
            if (n.AllowedDhcpCids.Count > 0) o["allowed_dhcp_cids"] = new JsonArray([.. n.AllowedDhcpCids.Select(x => (JsonNode)x)]);
            if (n.AllowedIps.Count > 0) o["allowed_ips"] = new JsonArray([.. n.AllowedIps.Select(x => (JsonNode)x)]);
            if (n.BlockedOutgoingPorts.Count > 0) o["blocked_outgoing_ports"] = new JsonArray([.. n.BlockedOutgoingPorts.Select(x => (JsonNode)x)]);
            if (n.Gateways.Count > 0) o["gateways"] = new JsonArray([.. n.Gateways.Select(x => (JsonNode)x)]);
            o["interface"] = "net" + i.ToString(CultureInfo.InvariantCulture);
            if (n.Ips.Count > 0) o["ips"] = new JsonArray([.. n.Ips.Select(x => (JsonNode)x)]);
            if (PrimaryIp(n) is string ip)
            {
                o["ip"] = ip.Split('/')[0];
                if (Netmask(ip) is string mask) o["netmask"] = mask;
            }
            if (n.Gateways.Count > 0) o["gateway"] = n.Gateways[0];
            o["mac"] = n.MacAddr;
            if (HvmGuest.IsHvm(c.Brand)) o["model"] = "virtio";
            if (n.Mtu is int mtu) o["mtu"] = mtu;
            o["nic_tag"] = n.GlobalNic;
            if (n.Primary) o["primary"] = true;
            o["vlan_id"] = n.VlanId;
            foreach (var (k, v) in n.Kept) o[k] = JsonNode.Parse(v);
            nics.Add(Sorted(o));
        }
        var j = new JsonObject();
        if (vm.Alias != null) j["alias"] = vm.Alias;
        j["autoboot"] = c.Autoboot;
        j["brand"] = c.Brand;
        bool hvm = HvmGuest.IsHvm(c.Brand);
        if (vm.Guest != null) j["image"] = new JsonObject { ["guest"] = vm.Guest };
        else if (vm.ImagePath != null) j["image"] = new JsonObject { ["path"] = vm.ImagePath };
        else if (vm.Kernel != null) j["image"] = HvmGuest.KernelImageJson(vm);
        if (vm.ImageUuid != null) j["image_uuid"] = vm.ImageUuid;
        j["max_physical_memory"] = MaxPhysicalMemoryMiB(c);
        j["nics"] = nics;
        if (vm.Quota is long q) j["quota"] = q;
        if (hvm) j["ram"] = (c.CappedMemory ?? 0) >> 20;
        j["resolvers"] = new JsonArray([.. vm.Resolvers.Select(x => (JsonNode)x)]);
        j["state"] = State(z);
        j["uuid"] = c.Uuid;
        if (hvm) j["vcpus"] = vm.Vcpus ?? 1;
        if (z.Guest is SmartOS.Virt.Vm g)
        {
            // The VMM's view (HvmGuest.cs rule 2): which backend ran the guest and why it stopped.
            j["vm_backend"] = g.BackendName;
            if (g.IsStopped)
            {
                j["vm_stop_detail"] = g.StopDetail;
                j["vm_stop_reason"] = HvmGuest.ReasonName(g.StopReason);
            }
        }
        if (c.Datasets.Count > 0) j["datasets"] = new JsonArray([.. c.Datasets.Select(d => (JsonNode)d)]);
        j["zone_state"] = Zone.StateName(z.State);
        if (z.Id is int id) j["zoneid"] = id;
        j["zonename"] = c.Name;
        j["zonepath"] = c.ZonePath;
        j["hvm"] = hvm;
        if (vm.CreateTimestamp != null) j["create_timestamp"] = vm.CreateTimestamp;
        if (vm.LastModified != null) j["last_modified"] = vm.LastModified;
        if (BootTimestamp(z) is string boot) j["boot_timestamp"] = boot;
        foreach (var (k, v) in vm.Kept) j[k] = JsonNode.Parse(v);
        if (host != null) VmDatasets.AddToJson(host, z, j);
        FillDefaults(j, c, hvm);
        var sorted = Sorted(j);
        if (host != null) AddDiskProperties(host, sorted);
        return sorted;
    }

    /// <summary>The values VM.js shows for kept properties a payload did not give (smartos-live
    /// test-defaults.js); the memory limits follow max_physical_memory.</summary>
    private static void FillDefaults(JsonObject j, ZoneConfig c, bool hvm)
    {
        long mpm = MaxPhysicalMemoryMiB(c);
        void D(string key, JsonNode value)
        {
            if (!j.ContainsKey(key)) j[key] = value;
        }
        D("cpu_shares", 100);
        D("customer_metadata", new JsonObject());
        D("internal_metadata", new JsonObject());
        D("tags", new JsonObject());
        D("routes", new JsonObject());
        D("firewall_enabled", false);
        D("limit_priv", hvm ? "default,-file_link_any,-net_access,-proc_fork,-proc_info,-proc_session" : "default");
        D("max_locked_memory", mpm);
        D("max_shm_memory", mpm);
        D("max_swap", mpm);
        D("max_lwps", 2000);
        D("max_msg_ids", 4096);
        D("max_sem_ids", 4096);
        D("max_shm_ids", 4096);
        D("zfs_io_priority", 100);
        D("zfs_root_recsize", 131072);
        if (hvm) D("disks", DisksJson(c));
        if (!hvm)
        {
            D("dns_domain", "local");
            D("tmpfs", mpm);
        }
    }

    /// <summary>The max_physical_memory vmadm shows, in MiB. A joyent or lx VM's is its memory cap;
    /// a bhyve or kvm VM's is its guest's ram plus the VMM's overhead as VM.js fills it when ram is
    /// set (proptable.js: KVM_MEM_OVERHEAD 1024, BHYVE_MEM_OVERHEAD 1024 + 256; test-defaults.js
    /// "check default kvm properties": ram 256, max_physical_memory 1280). Here the guest is given
    /// ram MiB and the VMM's own memory is not charged to the zone, so that cap is never reached.</summary>
    private static long MaxPhysicalMemoryMiB(ZoneConfig c)
    {
        long ram = (c.CappedMemory ?? 0) >> 20;
        return c.Brand switch { "kvm" => ram + KvmMemOverheadMiB, "bhyve" => ram + BhyveMemOverheadMiB, _ => ram };
    }

    /// <summary>proptable.js's KVM_MEM_OVERHEAD and BHYVE_MEM_OVERHEAD, in MiB.</summary>
    private const long KvmMemOverheadMiB = 1024, BhyveMemOverheadMiB = 1024 + 256;

    /// <summary>The address vmadm get shows as a nic's ip: its first, without the prefix ("dhcp" too).</summary>
    private static string? PrimaryIp(ZoneNet n) => n.Ips.Count > 0 ? n.Ips[0] : null;

    /// <summary>The dotted netmask of an IPv4 CIDR address; null for another.</summary>
    private static string? Netmask(string cidr)
        => cidr.Contains('/') && !cidr.Contains(':') && int.TryParse(cidr.Split('/')[1], NumberStyles.None, CultureInfo.InvariantCulture, out int len) && len <= 32
            ? IpAddress.V4(len == 0 ? 0u : 0xFFFFFFFFu << (32 - len)).ToString() : null;

    /// <summary>An object with its keys in ordinal order, as vmadm prints them.</summary>
    private static JsonObject Sorted(JsonObject o)
    {
        var keys = o.Select(p => p.Key).ToList();
        keys.Sort(StringComparer.Ordinal);
        var sorted = new JsonObject();
        foreach (string k in keys)
        {
            var v = o[k];
            o.Remove(k);
            sorted[k] = v;
        }
        return sorted;
    }

    public static readonly JsonSerializerOptions Pretty = new() { WriteIndented = true, IndentSize = 2 };

    /// <summary>Listable fields for vmadm list and lookup; nics.*.X yields one value per nic.</summary>
    public static IReadOnlyList<string>? Field(Zone z, string field)
    {
        var c = z.Config;
        var vm = c.Vm!;
        string S(long v) => v.ToString(CultureInfo.InvariantCulture);
        // nics.*.key (any nic, filters) and nics.N.key (the Nth nic), as vmadm.js's validFilterKey
        // and VM.flatten take them; a nic that is not there has no value ("-" in vmadm list).
        if (field.StartsWith("nics.", StringComparison.Ordinal) && field.IndexOf('.', 5) is int dot and > 5)
        {
            string which = field[5..dot], sub = field[(dot + 1)..];
            bool all = which == "*";
            if (!all && !int.TryParse(which, NumberStyles.None, CultureInfo.InvariantCulture, out _)) return null;
            int only = all ? -1 : int.Parse(which, NumberStyles.None, CultureInfo.InvariantCulture);
            var list = new List<string>();
            if (NicValues(c.Nets.Count > 0 ? c.Nets[0] : new ZoneNet(), 0, sub) == null) return null;
            for (int i = 0; i < c.Nets.Count; i++)
                if (all || i == only) list.AddRange(NicValues(c.Nets[i], i, sub)!);
            return list;
        }
        if (KeptField(vm, field) is IReadOnlyList<string> kept) return kept;
        string? one = field switch
        {
            "uuid" => c.Uuid,
            "type" => TypeName(c.Brand),
            "ram" => S((c.CappedMemory ?? 0) >> 20),
            "max_physical_memory" => S(MaxPhysicalMemoryMiB(c)),
            "state" => State(z),
            "create_timestamp" => vm.CreateTimestamp ?? "-",
            "last_modified" => vm.LastModified ?? "-",
            "boot_timestamp" => BootTimestamp(z) ?? "-",
            "alias" => vm.Alias ?? "-",
            "brand" => c.Brand,
            "zonename" => c.Name,
            "zonepath" => c.ZonePath,
            "autoboot" => c.Autoboot ? "true" : "false",
            "quota" => vm.Quota is long q ? S(q) : "-",
            "zone_state" => Zone.StateName(z.State),
            "zoneid" => z.Id is int id ? S(id) : "-",
            "image_uuid" => vm.ImageUuid ?? "-",
            "vcpus" => vm.Vcpus is int n ? S(n) : "-",
            "vm_backend" => z.Guest?.BackendName ?? "-",
            _ => null,
        };
        return one == null ? null : [one];
    }

    /// <summary>A kept property as a filter sees it (vmadm lookup cpu_cap=100, tags.role=db: VM.js
    /// flattens objects to dotted keys); null for a field that is not one.</summary>
    private static IReadOnlyList<string>? KeptField(VmInfo vm, string field)
    {
        if (!IsKeptField(field)) return null;
        int dot = field.IndexOf('.');
        string top = dot < 0 ? field : field[..dot];
        if (!vm.Kept.TryGetValue(top, out string? text)) return [];
        var node = JsonNode.Parse(text);
        if (dot >= 0) node = node is JsonObject o ? o[field[(dot + 1)..]] : null;
        return node switch
        {
            null => [],
            JsonValue v when v.TryGetValue(out string? str) => [str],
            JsonArray a => [string.Join(',', a.Select(e => e is JsonValue ev && ev.TryGetValue(out string? es) ? es : e?.ToJsonString()))],
            _ => [node.ToJsonString()],
        };
    }

    private static bool IsKeptField(string field)
    {
        int dot = field.IndexOf('.');
        if (dot > 0) return Array.IndexOf(s_keptObjects, field[..dot]) >= 0 && dot < field.Length - 1;
        return s_kept.TryGetValue(field, out var k) && k.Type != KeptType.Object;
    }

    /// <summary>Whether <see cref="Field"/> knows the field (vmadm list columns, filters).</summary>
    public static bool IsField(string field)
    {
        if (IsKeptField(field)) return true;
        if (field.StartsWith("nics.", StringComparison.Ordinal))
        {
            string[] p = field.Split('.');
            return p.Length == 3 && (p[1] == "*" || (p[1].Length > 0 && p[1].All(char.IsAsciiDigit))) && NicValues(new ZoneNet(), 0, p[2]) != null;
        }
        return field is "uuid" or "type" or "ram" or "max_physical_memory" or "state" or "alias" or "brand" or "zonename"
            or "zonepath" or "autoboot" or "quota" or "zone_state" or "zoneid" or "image_uuid" or "vcpus" or "vm_backend"
            or "create_timestamp" or "last_modified" or "boot_timestamp";
    }

    /// <summary>A nic's values for one key of vmadm's nic fields (vmadm.js nic_re: gateway, interface,
    /// ip, mac, netmask, nic_tag, vlan_id; and ips, gateways, mtu, primary); null for another key.</summary>
    private static IEnumerable<string>? NicValues(ZoneNet n, int index, string key)
    {
        static string Addr(string cidr) => cidr.Split('/')[0];
        string? First(List<string> l) => l.Count > 0 ? l[0] : null;
        return key switch
        {
            "nic_tag" => n.GlobalNic is string t ? [t] : [],
            "mac" => n.MacAddr is string m ? [m] : [],
            "ips" => n.Ips,
            "ip" => First(n.Ips) is string ip ? [Addr(ip)] : [],
            "netmask" => First(n.Ips) is string c4 && Netmask(c4) is string mask ? [mask] : [],
            "gateways" => n.Gateways,
            "gateway" => First(n.Gateways) is string g ? [g] : [],
            "vlan_id" => [n.VlanId.ToString(CultureInfo.InvariantCulture)],
            "interface" => ["net" + index.ToString(CultureInfo.InvariantCulture)],
            "mtu" => n.Mtu is int mtu ? [mtu.ToString(CultureInfo.InvariantCulture)] : [],
            "primary" => [n.Primary ? "true" : "false"],
            _ => null,
        };
    }
}
