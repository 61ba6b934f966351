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
    /// <summary>Properties vmadm create takes here.</summary>
    private static readonly string[] s_createProps = ["uuid", "alias", "brand", "max_physical_memory", "quota", "autoboot", "resolvers", "nics", "image_uuid"];
    /// <summary>Properties vmadm create takes for bhyve and kvm VMs (HvmGuest.cs): ram, not max_physical_memory.</summary>
    private static readonly string[] s_hvmCreateProps = ["uuid", "alias", "brand", "ram", "vcpus", "image", "quota", "autoboot", "resolvers", "nics", "image_uuid"];
    private static readonly string[] s_updateProps = ["alias", "autoboot", "max_physical_memory", "quota", "resolvers", "add_nics", "update_nics", "remove_nics"];
    private static readonly string[] s_nicProps =
    [
        "nic_tag", "ips", "gateways", "vlan_id", "mac", "primary", "mtu", "allow_ip_spoofing", "allow_mac_spoofing",
        "allow_dhcp_spoofing", "allow_restricted_traffic", "allowed_ips", "blocked_outgoing_ports",
    ];

    /// <summary>SmartOS properties this project does not enforce yet: refused, never ignored (Host.cs rule 6).</summary>
    private static readonly string[] s_unsupported =
    [
        "cpu_cap", "cpu_shares", "max_lwps", "max_swap", "max_locked_memory", "zfs_io_priority", "ram", "vcpus", "disks",
        "tmpfs", "filesystems", "delegate_dataset", "customer_metadata", "internal_metadata", "tags", "hostname", "dns_domain",
        "routes", "fs_allowed", "limit_priv", "kernel_version", "firewall_enabled", "maintain_resolvers", "zpool",
        "indestructible_zoneroot", "indestructible_delegated", "archive_on_delete", "cpu_type", "zfs_root_compression",
        "zfs_data_compression", "set_routes", "remove_routes", "set_tags", "remove_tags", "set_customer_metadata",
        "remove_customer_metadata", "set_internal_metadata", "remove_internal_metadata",
    ];
    private static readonly string[] s_unsupportedNic =
    [
        "model", "ip", "netmask", "gateway", "network_uuid", "allow_unfiltered_promisc", "vrrp_vrid",
        "vrrp_primary_ip", "interface",
    ];

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
        CheckNames(payload, hvm ? s_hvmCreateProps : s_createProps, hvm ? [.. s_unsupported.Except(["ram", "vcpus"])] : s_unsupported, "", dropped);
        var bad = new List<string>();
        string uuid = payload["uuid"] is JsonNode u ? (Str(u) is string us && IsUuid(us) ? us : Bad(bad, "uuid", "")) : NewUuid(host);
        if (host.Zones.Find(uuid) != null) throw new PayloadError($"VM with UUID {uuid} already exists");
        if (payload["brand"] is JsonNode bn && Str(bn) == null) bad.Add("brand");
        if (brand.Length > 0 && Array.IndexOf(ZoneTable.LaterBrands, brand) >= 0) throw new PayloadError(ZoneTable.BrandProblem(brand)!);
        if (Array.IndexOf(ZoneTable.RunnableBrands, brand) < 0 && !bad.Contains("brand")) bad.Add("brand");
        int index = 1;
        foreach (var z in host.Zones.Zones) if (z.Config.Vm is VmInfo vi) index = Math.Max(index, vi.Index + 1);
        var cfg = new ZoneConfig
        {
            Name = uuid, Uuid = uuid, ZonePath = "/zones/" + uuid, Brand = brand, Autoboot = true,
            CappedMemory = DefaultMemoryMiB << 20, Vm = new VmInfo { Index = index },
        };
        ApplyScalars(payload, cfg, bad);
        if (hvm) ApplyHvm(payload, cfg, bad, workingDirectory ?? Environment.CurrentDirectory);
        if (payload["nics"] is JsonNode nics)
        {
            if (nics is not JsonArray arr) bad.Add("nics");
            else for (int i = 0; i < arr.Count; i++) cfg.Nets.Add(ParseNic(arr[i], $"nics.{i}", cfg, cfg.Nets.Count, bad, dropped));
        }
        if (bad.Count > 0) throw new PayloadError("Invalid value(s) for: " + string.Join(',', bad));
        FinishNics(host, cfg, "nics", 0);
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
        if (payload["image"] is not JsonNode img)
            throw new PayloadError($"Missing property: image (what a {cfg.Brand} VM boots: {{\"guest\": NAME}} or {{\"path\": FILE}})");
        if (img is not JsonObject io || io.Count != 1 || !(io.ContainsKey("guest") || io.ContainsKey("path")))
            throw new PayloadError($"Invalid value(s) for: image ({ConfigText.Echo(img.ToJsonString())}: give {{\"guest\": NAME}} for a program of virt/guests or {{\"path\": FILE}} for a flat image)");
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

    /// <summary>Where the warnings about dropped properties go, and for which action.</summary>
    private sealed record Dropped(string Action, List<string>? Warnings);

    /// <summary>
    /// Properties SmartOS does not know are warned about and removed from the payload, as VM.js's
    /// validateProperties does ("Warning, invalid create property: [colour] removing from payload.");
    /// properties SmartOS knows but this one does not enforce are refused (README, departures).
    /// </summary>
    private static void CheckNames(JsonObject o, string[] allowed, string[] unsupported, string prefix, Dropped dropped)
    {
        var unknown = new List<string>();
        var unsup = new List<string>();
        foreach (var (key, _) in o)
        {
            if (Array.IndexOf(allowed, key) >= 0) continue;
            if (Array.IndexOf(unsupported, key) >= 0) unsup.Add(prefix + key);
            else unknown.Add(key);
        }
        if (unsup.Count > 0) throw new PayloadError("Unsupported property(s): " + string.Join(',', unsup) + " (not enforced by this SmartOS yet)");
        foreach (string key in unknown)
        {
            dropped.Warnings?.Add($"Warning, invalid {dropped.Action} property: [{ConfigText.Echo(prefix + key)}] removing from payload.");
            o.Remove(key);
        }
    }

    private static void ApplyScalars(JsonObject payload, ZoneConfig cfg, List<string> bad)
    {
        var vm = cfg.Vm!;
        if (payload["alias"] is JsonNode a)
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
        if (HvmGuest.IsHvm(cfg.Brand) && o["model"] is JsonNode model)
        {
            if (Str(model) != "virtio")
                throw new PayloadError($"Invalid value(s) for: {path}.model ({ConfigText.Echo(model.ToJsonString())}: only virtio is supported, the VMM's one NIC model)");
            o = (JsonObject)o.DeepClone();
            o.Remove("model");
        }
        CheckNames(o, s_nicProps, s_unsupportedNic, path + ".", dropped);
        FillNic(o, net, path, bad, creating: true);
        net.Physical = $"z{cfg.Vm!.Index.ToString(CultureInfo.InvariantCulture)}_net{slot.ToString(CultureInfo.InvariantCulture)}";
        return net;
    }

    private static void FillNic(JsonObject o, ZoneNet net, string path, List<string> bad, bool creating)
    {
        if (o["nic_tag"] is JsonNode t) { if (Str(t) is string s && NicTagTable.IsValidName(s, false)) net.GlobalNic = s; else bad.Add(path + ".nic_tag"); }
        else if (creating) bad.Add(path + ".nic_tag");
        if (o["ips"] is JsonNode ips)
        {
            var list = StrList(ips);
            if (list == null || list.Count == 0 || list.Exists(x => !ZoneAddresses.IsValidAddress(x))) bad.Add(path + ".ips");
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
            if (list == null || list.Exists(x => !ZoneAddresses.IsValidIp(x.Split('/')[0]))) bad.Add(path + ".allowed_ips");
            else net.AllowedIps = list;
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
            if (Str(mc) is string s && MacAddress.TryParse(s, out var mac) && !mac.IsGroup && !mac.IsZero) net.MacAddr = NicTagTable.Normalize(mac);
            else bad.Add(path + ".mac");
        }
        if (o["primary"] is JsonNode p) { if (Bool(p) is bool b) net.Primary = b; else bad.Add(path + ".primary"); }
        if (o["allow_ip_spoofing"] is JsonNode ip) { if (Bool(ip) is bool b) net.AllowIpSpoofing = b; else bad.Add(path + ".allow_ip_spoofing"); }
        if (o["allow_mac_spoofing"] is JsonNode ms) { if (Bool(ms) is bool b) net.AllowMacSpoofing = b; else bad.Add(path + ".allow_mac_spoofing"); }
        if (o["allow_dhcp_spoofing"] is JsonNode ds) { if (Bool(ds) is bool b) net.AllowDhcpSpoofing = b; else bad.Add(path + ".allow_dhcp_spoofing"); }
        if (o["allow_restricted_traffic"] is JsonNode rt) { if (Bool(rt) is bool b) net.AllowRestrictedTraffic = b; else bad.Add(path + ".allow_restricted_traffic"); }
    }

    /// <summary>Fills in MAC addresses and the primary flag, then checks tags, duplicates and the link
    /// properties the protection needs. <paramref name="firstNew"/> is the first nic added by this payload.</summary>
    private static void FinishNics(Host host, ZoneConfig cfg, string what, int firstNew)
    {
        var nets = cfg.Nets;
        if (nets.Count > 0 && !nets.Exists(n => n.Primary)) nets[0].Primary = true;
        if (nets.Count(n => n.Primary) > 1) throw new PayloadError($"Invalid value(s) for: {what}.primary (more than one primary nic)");
        var usedIps = new Dictionary<string, string>(StringComparer.Ordinal);
        var usedMacs = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var z in host.Zones.Zones)
        {
            if (z.Name == cfg.Name) continue;
            foreach (var n in z.Config.Nets)
            {
                foreach (string ip in n.Ips) if (ip is not ("dhcp" or "addrconf")) usedIps.TryAdd(ip.Split('/')[0], "VM " + z.Name);
                if (n.MacAddr != null) usedMacs.TryAdd(n.MacAddr, "VM " + z.Name);
            }
        }
        for (int i = 0; i < nets.Count; i++)
        {
            var n = nets[i];
            string path = i >= firstNew ? $"{what}.{i - firstNew}" : $"nics.{i}";
            if (n.GlobalNic == null || host.NicTags.Resolve(n.GlobalNic) == null) throw new PayloadError($"Invalid nic tag \"{ConfigText.Echo(n.GlobalNic)}\" for {path}");
            foreach (string ip in n.Ips)
            {
                if (ip is "dhcp" or "addrconf") continue;
                string addr = ip.Split('/')[0];
                if (usedIps.TryGetValue(addr, out var owner)) throw new PayloadError($"Invalid value(s) for: {path}.ips (IP address {addr} is already used by {owner})");
                usedIps.Add(addr, path);
            }
            n.MacAddr ??= RandomMac(host, usedMacs);
            if (usedMacs.TryGetValue(n.MacAddr, out var macOwner)) throw new PayloadError($"Invalid value(s) for: {path}.mac (MAC address {n.MacAddr} is already used by {macOwner})");
            usedMacs.Add(n.MacAddr, path);
        }
        // The one validator for a zone's nets (ZoneNets.cs), as zonecfg and boot use it; its problem
        // is framed as vmadm frames a bad field.
        if (ZoneNets.Check(nets, host) is ZoneNetProblem p)
        {
            int i = p.Index;
            string path = i >= firstNew ? $"{what}.{i - firstNew}" : $"nics.{i}";
            throw new PayloadError($"Invalid value(s) for: {path}.{NicField(p.Property)} ({p.Detail})");
        }
    }

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
    private static string RandomMac(Host host, Dictionary<string, string> used)
    {
        for (int attempt = 0; attempt < IdentityAttempts; attempt++)
        {
            ulong v = 0x90b8d0UL << 24 | (host.Identities.NextUInt64() & 0xFFFFFF);
            string s = NicTagTable.Normalize(new MacAddress(v));
            if (!used.ContainsKey(s) && !LinkHasMac(host, new MacAddress(v))) return s;
        }
        throw new PayloadError($"no unused MAC address after {IdentityAttempts} draws: the host's random source repeats itself");
    }

    private static bool LinkHasMac(Host host, MacAddress mac)
    {
        foreach (var l in host.Mac.Links) if (l is SmartOS.Vnic.PortLink p && p.MacAddress == mac) return true;
        return false;
    }

    // ---- update -------------------------------------------------------------------------------

    /// <summary>Checks an update payload against a VM and returns its new configuration; nothing changes.</summary>
    public static ZoneConfig BuildUpdate(Host host, Zone vm, JsonObject payload, List<string>? warnings = null)
    {
        var dropped = new Dropped("update", warnings);
        CheckNames(payload, s_updateProps, [.. s_unsupported, .. s_createProps.Except(s_updateProps)], "", dropped);
        var cfg = vm.Config.Clone();
        var bad = new List<string>();
        ApplyScalars(payload, cfg, bad);
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
            }
        }
        if (payload["update_nics"] is JsonNode up)
        {
            if (up is not JsonArray arr) bad.Add("update_nics");
            else for (int i = 0; i < arr.Count; i++)
            {
                if (arr[i] is not JsonObject o || Str(o["mac"]) is not string ms || !MacAddress.TryParse(ms, out var mac)) { bad.Add($"update_nics.{i}.mac"); continue; }
                CheckNames(o, s_nicProps, s_unsupportedNic, $"update_nics.{i}.", dropped);
                var net = cfg.Nets.Find(n => n.MacAddr == NicTagTable.Normalize(mac));
                if (net == null) throw new PayloadError($"Invalid value(s) for: update_nics.{i}.mac (no nic with MAC address {ConfigText.Echo(ms)})");
                var copy = new JsonObject();
                foreach (var (k, v) in o) if (k != "mac") copy[k] = v?.DeepClone();
                FillNic(copy, net, $"update_nics.{i}", bad, creating: false);
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
        if (bad.Count > 0) throw new PayloadError("Invalid value(s) for: " + string.Join(',', bad));
        FinishNics(host, cfg, "add_nics", firstNew);
        return cfg;
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
        // vmadm accepts "true"/"false" strings for booleans (fixBooleanLoose).
        if (v.TryGetValue(out string? s) && s is "true" or "false") return s == "true";
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
