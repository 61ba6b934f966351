using System.Globalization;
using System.Text.Json.Serialization;

namespace SmartOS.Zones;

/// <summary>
/// One `add net` resource of a zone (zonecfg(8) "net"), with the SmartOS extensions vmadm writes:
/// a nic tag (global-nic) means the VNIC named <see cref="Physical"/> is created over the tag's link
/// when the zone readies and deleted when it halts; without one, <see cref="Physical"/> names an
/// existing global datalink that is lent to the zone while it runs (Host.cs rule 4).
/// </summary>
public sealed class ZoneNet
{
    public string Physical { get; set; } = "";
    /// <summary>illumos allowed-address: the addresses the zone may configure (comma list).</summary>
    public string? AllowedAddress { get; set; }
    public string? Defrouter { get; set; }
    /// <summary>The nic tag the VNIC is created over (SmartOS global-nic).</summary>
    public string? GlobalNic { get; set; }
    public string? MacAddr { get; set; }
    public int VlanId { get; set; }
    public int? Mtu { get; set; }
    public bool Primary { get; set; }
    /// <summary>vmadm ips: CIDR addresses, "dhcp" or "addrconf".</summary>
    public List<string> Ips { get; set; } = [];
    public List<string> Gateways { get; set; } = [];
    public bool AllowIpSpoofing { get; set; }
    public bool AllowMacSpoofing { get; set; }
    public bool AllowDhcpSpoofing { get; set; }
    public bool AllowRestrictedTraffic { get; set; }
    public List<string> AllowedIps { get; set; } = [];
    /// <summary>Whether link protection applies (vmadm nics are protected; plain zonecfg nets are not).</summary>
    public bool Protected { get; set; }
    /// <summary>vmadm blocked_outgoing_ports: TCP ports the VM may not reach; a maxbw=0 flow each while
    /// it runs (ZoneTable.BlockPorts).</summary>
    public List<int> BlockedOutgoingPorts { get; set; } = [];
    /// <summary>vmadm allowed_dhcp_cids: the DHCP client identifiers the VM may use (the link's
    /// allowed-dhcp-cids; "*" lets it use any, as SmartOS's allow-all-dhcp-cids).</summary>
    public List<string> AllowedDhcpCids { get; set; } = [];
    /// <summary>vmadm nic properties SmartOS takes and this host keeps without enforcing them
    /// (VmPayload.cs, "kept"): name to JSON text.</summary>
    public Dictionary<string, string> Kept { get; set; } = new(StringComparer.Ordinal);

    public ZoneNet Clone() => new()
    {
        Physical = Physical, AllowedAddress = AllowedAddress, Defrouter = Defrouter, GlobalNic = GlobalNic, MacAddr = MacAddr,
        VlanId = VlanId, Mtu = Mtu, Primary = Primary, Ips = [.. Ips], Gateways = [.. Gateways],
        AllowIpSpoofing = AllowIpSpoofing, AllowMacSpoofing = AllowMacSpoofing, AllowDhcpSpoofing = AllowDhcpSpoofing,
        AllowRestrictedTraffic = AllowRestrictedTraffic, AllowedIps = [.. AllowedIps], Protected = Protected,
        BlockedOutgoingPorts = [.. BlockedOutgoingPorts], AllowedDhcpCids = [.. AllowedDhcpCids],
        Kept = new(Kept, StringComparer.Ordinal),
    };

    /// <summary>The addresses handed to the zone's IP stack: vmadm ips, else allowed-address.</summary>
    public IReadOnlyList<string> Addresses
        => Ips.Count > 0 ? Ips : AllowedAddress is { Length: > 0 } a ? a.Split(',', StringSplitOptions.RemoveEmptyEntries) : [];

    /// <summary>The default routers handed to the zone's IP stack: vmadm gateways, else defrouter.</summary>
    public IReadOnlyList<string> Routers
        => Gateways.Count > 0 ? Gateways : Defrouter is { Length: > 0 } d ? d.Split(',', StringSplitOptions.RemoveEmptyEntries) : [];

    /// <summary>The dladm protection value SmartOS derives from the allow_* flags: every flag that is
    /// false turns its protection on (vmadm(8), "nics.*.allow_*").</summary>
    public string ProtectionValue()
    {
        var list = new List<string>();
        if (!AllowMacSpoofing) list.Add("mac-nospoof");
        if (!AllowRestrictedTraffic) list.Add("restricted");
        if (!AllowIpSpoofing) list.Add("ip-nospoof");
        if (!AllowDhcpSpoofing) list.Add("dhcp-nospoof");
        return list.Count == 0 ? "" : string.Join(',', list);
    }

    /// <summary>The allowed-dhcp-cids link property: vmadm allowed_dhcp_cids, but "*" (any client
    /// identifier) sets none and allow-all-dhcp-cids instead.</summary>
    public string AllowedDhcpCidsValue() => AllowedDhcpCids is ["*"] ? "" : string.Join(',', AllowedDhcpCids);

    /// <summary>The allow-all-dhcp-cids link property ("true", or "" for its default, false): on for
    /// allowed_dhcp_cids "*", and for a nic that gets its address dynamically ("dhcp", "addrconf")
    /// and names no client identifiers, as SmartOS sets it (test-spoof-opts.js: an addrconf nic has
    /// it, a static one does not).</summary>
    public string AllowAllDhcpCidsValue() =>
        AllowedDhcpCids is ["*"] || (AllowedDhcpCids.Count == 0 && Ips.Exists(ip => ip is "dhcp" or "addrconf")) ? "true" : "";

    /// <summary>The dynamic-methods link property: "dhcp" in ips is dhcpv4, "addrconf" is addrconf
    /// (slaac and dhcpv6), as VM.js's updateVnicAllowedIPs sets it; "" when the nic has neither.</summary>
    public string DynamicMethodsValue()
    {
        var list = new List<string>();
        if (Ips.Contains("dhcp")) list.Add("dhcpv4");
        if (Ips.Contains("addrconf")) list.Add("addrconf");
        return string.Join(',', list);
    }

    /// <summary>The allowed-ips link property: the static addresses plus allowed_ips.</summary>
    public string AllowedIpsValue()
    {
        var list = new List<string>();
        foreach (string ip in Ips)
            if (ip is not ("dhcp" or "addrconf")) list.Add(ip.Split('/')[0]);
        foreach (string ip in AllowedIps) if (!list.Contains(ip)) list.Add(ip);
        return string.Join(',', list);
    }
}

/// <summary>What vmadm adds to a zone: its alias, disk quota, resolvers and the index its VNICs are named by.</summary>
public sealed class VmInfo
{
    public string? Alias { get; set; }
    public long? Quota { get; set; }
    public List<string> Resolvers { get; set; } = [];
    public string? ImageUuid { get; set; }
    /// <summary>A host-unique number; the VM's VNICs are named z{Index}_net{N} in the global zone.</summary>
    public int Index { get; set; }
    /// <summary>bhyve/kvm: the vCPU count (always 1 here; HvmGuest.cs).</summary>
    public int? Vcpus { get; set; }
    /// <summary>bhyve/kvm: a guest program of virt/guests, built with gcc at start ("image": {"guest": NAME}).</summary>
    public string? Guest { get; set; }
    /// <summary>bhyve/kvm: an absolute path to a flat image ("image": {"path": PATH}).</summary>
    public string? ImagePath { get; set; }
    /// <summary>bhyve/kvm: an absolute path to a bzImage booted by the Linux boot protocol ("image":
    /// {"kernel": PATH, "initrd": PATH, "cmdline": TEXT}; HvmGuest.cs), with its initrd and command line.</summary>
    public string? Kernel { get; set; }
    public string? Initrd { get; set; }
    public string? Cmdline { get; set; }
    /// <summary>vmadm properties SmartOS takes and this host keeps and shows without enforcing them
    /// (cpu_cap, max_lwps, ...; VmPayload.cs, "kept"): name to JSON text.</summary>
    public Dictionary<string, string> Kept { get; set; } = new(StringComparer.Ordinal);
    /// <summary>bhyve/kvm: the disks, each a volume of the zones pool (VmDisks.cs), in the order the VMM attaches them.</summary>
    public List<VmDisk> Disks { get; set; } = [];
    /// <summary>When vmadm created the VM, as VM.js writes it in the create-timestamp attr
    /// ("2014-05-06T18:29:22.381Z"); null once a zonecfg remove attr takes it away.</summary>
    public string? CreateTimestamp { get; set; }
    /// <summary>When the VM's configuration was last written (vmadm create, update, zonecfg commit),
    /// to the second, as VM.js reads it from the zone's files' mtimes.</summary>
    public string? LastModified { get; set; }

    public VmInfo Clone() => new()
    {
        Alias = Alias, Quota = Quota, Resolvers = [.. Resolvers], ImageUuid = ImageUuid, Index = Index, Vcpus = Vcpus, Guest = Guest,
        ImagePath = ImagePath, Kernel = Kernel, Initrd = Initrd, Cmdline = Cmdline, Kept = new(Kept, StringComparer.Ordinal), Disks = Disks.ConvertAll(d => d.Clone()), CreateTimestamp = CreateTimestamp, LastModified = LastModified,
    };
}

/// <summary>One `add attr` resource of a zone (zonecfg(8) "attr"): a name, a type (boolean, int,
/// string or uint) and a value. A VM's attrs that vmadm owns live in its VmInfo (VmModel.Attrs).</summary>
public sealed class ZoneAttr
{
    public string Name { get; set; } = "";
    public string Type { get; set; } = "";
    public string Value { get; set; } = "";

    public ZoneAttr Clone() => new() { Name = Name, Type = Type, Value = Value };
}

/// <summary>One `add fs` resource of a zone (zonecfg(8) "fs"): the global path Special seen at Dir inside
/// the zone while it runs (FileView.cs). Type is lofs, the one type this host mounts.</summary>
public sealed class ZoneFs
{
    public string Dir { get; set; } = "";
    public string Special { get; set; } = "";
    public string Type { get; set; } = "";
    /// <summary>The options, as zonecfg lists them: ro or rw (or none, which is rw).</summary>
    public List<string> Options { get; set; } = [];

    [JsonIgnore]
    public bool ReadOnly => Options.Contains("ro");

    public ZoneFs Clone() => new() { Dir = Dir, Special = Special, Type = Type, Options = [.. Options] };
}

/// <summary>A zone's configuration (zonecfg(8)): what `commit` writes and `info`/`export` print.</summary>
public sealed class ZoneConfig
{
    public string Name { get; set; } = "";
    public string? ZonePath { get; set; }
    public string Brand { get; set; } = "joyent";
    public bool Autoboot { get; set; }
    public string IpType { get; set; } = "exclusive";
    public List<ZoneNet> Nets { get; set; } = [];
    /// <summary>capped-memory physical, in bytes (null when uncapped).</summary>
    public long? CappedMemory { get; set; }
    public string? Uuid { get; set; }
    public VmInfo? Vm { get; set; }
    /// <summary>The attrs zonecfg added that vmadm does not own (VmModel.Attrs): "failed", or any other.</summary>
    public List<ZoneAttr> Attrs { get; set; } = [];
    /// <summary>zonecfg dataset resources: the datasets delegated to the zone (ZoneDatasets.cs).</summary>
    public List<string> Datasets { get; set; } = [];
    /// <summary>The `add fs` resources (lofs mounts into the zone's view, FileView.cs).</summary>
    public List<ZoneFs> Fs { get; set; } = [];

    public ZoneConfig Clone() => new()
    {
        Name = Name, ZonePath = ZonePath, Brand = Brand, Autoboot = Autoboot, IpType = IpType,
        Nets = Nets.ConvertAll(n => n.Clone()), CappedMemory = CappedMemory, Uuid = Uuid, Vm = Vm?.Clone(),
        Attrs = Attrs.ConvertAll(a => a.Clone()), Fs = Fs.ConvertAll(f => f.Clone()),
        Datasets = [.. Datasets],
    };

    /// <summary>The largest capped-memory physical: vmadm's max_physical_memory limit (2^30 MiB).</summary>
    public const long MaxCappedMemory = 1L << 50;

    /// <summary>illumos MAXPATHLEN (1024) less the terminating NUL: the longest zonepath.</summary>
    public const int MaxPathLength = 1023;

    /// <summary>The zonecfg(8) size form of a byte count: 512M, 2G, or plain bytes.</summary>
    public static string FormatSize(long bytes)
    {
        if (bytes % (1L << 40) == 0) return (bytes >> 40).ToString(CultureInfo.InvariantCulture) + "T";
        if (bytes % (1L << 30) == 0) return (bytes >> 30).ToString(CultureInfo.InvariantCulture) + "G";
        if (bytes % (1L << 20) == 0) return (bytes >> 20).ToString(CultureInfo.InvariantCulture) + "M";
        if (bytes % (1L << 10) == 0) return (bytes >> 10).ToString(CultureInfo.InvariantCulture) + "K";
        return bytes.ToString(CultureInfo.InvariantCulture);
    }

    /// <summary>Parses a zonecfg size ("512m", "2G", "1048576"); false on anything else.</summary>
    public static bool TryParseSize(string text, out long bytes)
    {
        bytes = 0;
        if (string.IsNullOrEmpty(text)) return false;
        long scale = 1;
        string digits = text;
        switch (char.ToUpperInvariant(text[^1]))
        {
            case 'K': scale = 1L << 10; digits = text[..^1]; break;
            case 'M': scale = 1L << 20; digits = text[..^1]; break;
            case 'G': scale = 1L << 30; digits = text[..^1]; break;
            case 'T': scale = 1L << 40; digits = text[..^1]; break;
        }
        if (!long.TryParse(digits, NumberStyles.None, CultureInfo.InvariantCulture, out long n) || n <= 0) return false;
        if (n > long.MaxValue / scale) return false;
        bytes = n * scale;
        return true;
    }

    /// <summary>zonecfg(8) zone names: an alphanumeric first, then alphanumerics, '-', '_' and '.',
    /// at most 64 characters; "global" and names starting with "SUNW" are reserved.</summary>
    public static bool IsValidName(string? name)
    {
        if (string.IsNullOrEmpty(name) || name.Length > 64 || !char.IsAsciiLetterOrDigit(name[0])) return false;
        if (name == "global" || name.StartsWith("SUNW", StringComparison.Ordinal)) return false;
        foreach (char c in name)
            if (!char.IsAsciiLetterOrDigit(c) && c is not ('-' or '_' or '.')) return false;
        return true;
    }
}

/// <summary>One zone as zones.conf stores it: its configuration and whether it is installed.</summary>
internal sealed class ZoneRecord
{
    public ZoneConfig Config { get; set; } = new();
    public string State { get; set; } = "configured";
}

[JsonSourceGenerationOptions(WriteIndented = true, DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull, RespectNullableAnnotations = true)]
[JsonSerializable(typeof(ZoneRecord))]
[JsonSerializable(typeof(NicTag))]
internal partial class ZoneJson : JsonSerializerContext { }
