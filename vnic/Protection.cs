using System.Buffers.Binary;
using System.Globalization;
using SmartOS.Kernel;
using SmartOS.Kernel.Wire;

namespace SmartOS.Vnic;

/// <summary>The protection property's values (dladm(8) "protection").</summary>
[Flags]
public enum ProtectionFlags
{
    None = 0,
    MacNoSpoof = 1,
    Restricted = 2,
    IpNoSpoof = 4,
    DhcpNoSpoof = 8,
}

/// <summary>The dynamic-methods property's values (illumos-joyent dladm(8)): the ways a client may
/// come by an address that ip-nospoof lets through even when allowed-ips is set.</summary>
[Flags]
public enum DynamicMethods
{
    None = 0,
    Dhcpv4 = 1,
    Dhcpv6 = 2,
    Slaac = 4,
}

/// <summary>Why link protection dropped a frame; each reason is a kstat (LinkStats).</summary>
public enum ProtectionDrop { None, MacSpoofed, Restricted, IpSpoofed, DhcpSpoofed }

/// <summary>
/// Link protection of one port (ResourceControl.cs, "Protection"), checked on every frame the link's
/// client transmits, after the MAC layer has put the frame in its VLAN and before anything else sees
/// it. The checks follow illumos's mac_protect.c:
///   mac-nospoof   the source MAC is the link's own address;
///   restricted    only IPv4, IPv6 and ARP, and only in the link's VLAN;
///   ip-nospoof    the IPv4/IPv6 source and the ARP sender address are in allowed-ips, or were
///                 come by dynamically: handed to this client by DHCP (snooped ACKs) or formed by
///                 SLAAC (an autonomous prefix of a router advertisement delivered to the client,
///                 with the interface ID of the link's MAC). Dynamic addresses pass when allowed-ips
///                 is empty, and when it is set only for the methods dynamic-methods names (dhcpv4,
///                 dhcpv6, slaac; addrconf is slaac and dhcpv6); 0.0.0.0, :: and the link-local
///                 address formed from the link's MAC always pass;
///   dhcp-nospoof  a DHCPv4 client message's chaddr is the link's MAC and its client id (option 61),
///                 if any, is the MAC's (type 1); with allowed-dhcp-cids the client id (or, lacking
///                 one, chaddr) must be one of them; allow-all-dhcp-cids lets any client id through
///                 (chaddr is still the MAC's).
/// Not done yet: DHCPv6 (no DHCPv6 address is learned, so dhcpv6 lets none through: stricter than
/// illumos, never looser), NDP source options, learning from DHCP RELEASE.
/// </summary>
public sealed class LinkProtection
{
    public const int MaxAllowedIps = 32;
    public const int MaxAllowedCids = 32;

    private readonly HashSet<IpAddress> _learned = [];
    private readonly HashSet<IpAddress> _slaacPrefixes = [];

    public ProtectionFlags Flags { get; internal set; }
    public IReadOnlyList<(IpAddress Network, int Prefix)> AllowedIps { get; internal set; } = [];
    public IReadOnlyList<byte[]> AllowedCids { get; internal set; } = [];
    /// <summary>The text each cid was given as, for show-linkprop.</summary>
    internal IReadOnlyList<string> AllowedCidsText { get; set; } = [];
    /// <summary>allow-all-dhcp-cids: dhcp-nospoof lets any client id through.</summary>
    public bool AllowAllCids { get; internal set; }
    /// <summary>dynamic-methods: the dynamic addresses ip-nospoof lets through when allowed-ips is set.</summary>
    public DynamicMethods Dynamic { get; internal set; }
    /// <summary>The /64 prefixes learned from router advertisements delivered to this link's client.</summary>
    public IReadOnlyCollection<IpAddress> SlaacPrefixes => _slaacPrefixes;
    /// <summary>Addresses learned from DHCP ACKs delivered to this link's client.</summary>
    public IReadOnlyCollection<IpAddress> Learned => _learned;

    /// <summary>Checks a frame from the link's client; the frame is untagged and p.Vid is set.</summary>
    internal ProtectionDrop Check(PortLink link, Packet p)
    {
        var f = p.Data;
        var flags = Flags;
        if ((flags & ProtectionFlags.MacNoSpoof) != 0 && MacAddress.Read(f[6..]) != link.MacAddress) return ProtectionDrop.MacSpoofed;
        ushort type = BinaryPrimitives.ReadUInt16BigEndian(f[12..]);
        if ((flags & ProtectionFlags.Restricted) != 0)
        {
            if (type is not (EtherType.Ipv4 or EtherType.Ipv6 or EtherType.Arp)) return ProtectionDrop.Restricted;
            if (p.Vid != link.Vid) return ProtectionDrop.Restricted;
        }
        if ((flags & (ProtectionFlags.IpNoSpoof | ProtectionFlags.DhcpNoSpoof)) == 0) return ProtectionDrop.None;
        var payload = f[EthernetView.HeaderLength..];
        switch (type)
        {
            case EtherType.Ipv4:
                {
                    if (!Ipv4View.TryCreate(payload, out var ip))
                        return (flags & ProtectionFlags.IpNoSpoof) != 0 ? ProtectionDrop.IpSpoofed : ProtectionDrop.None;
                    if ((flags & ProtectionFlags.IpNoSpoof) != 0 && ip.SourceRaw != 0 && !IsAllowed(IpAddress.V4(ip.SourceRaw)))
                        return ProtectionDrop.IpSpoofed;
                    if ((flags & ProtectionFlags.DhcpNoSpoof) != 0 && ip.Protocol == IpProtocol.Udp && !ip.IsFragment
                        && UdpView.TryCreate(ip.Payload, out var udp) && udp.SourcePort == DhcpView.ClientPort && udp.DestinationPort == DhcpView.ServerPort
                        && !DhcpClientAllowed(link, udp.Payload))
                        return ProtectionDrop.DhcpSpoofed;
                    return ProtectionDrop.None;
                }
            case EtherType.Ipv6:
                {
                    if ((flags & ProtectionFlags.IpNoSpoof) == 0) return ProtectionDrop.None;
                    if (!Ipv6View.TryCreate(payload, out var ip6)) return ProtectionDrop.IpSpoofed;
                    var src = ip6.Source;
                    if (src.IsUnspecified || src == Ipv6View.LinkLocalFromMac(link.MacAddress) || IsAllowed(src)) return ProtectionDrop.None;
                    if (DynamicAllowed(DynamicMethods.Slaac) && IsSlaac(link, src)) return ProtectionDrop.None;
                    return ProtectionDrop.IpSpoofed;
                }
            case EtherType.Arp:
                {
                    if ((flags & ProtectionFlags.IpNoSpoof) == 0) return ProtectionDrop.None;
                    if (!ArpView.TryCreate(payload, out var arp)) return ProtectionDrop.IpSpoofed;
                    uint spa = arp.SenderIp;
                    return spa == 0 || IsAllowed(IpAddress.V4(spa)) ? ProtectionDrop.None : ProtectionDrop.IpSpoofed;
                }
            default:
                return ProtectionDrop.None;
        }
    }

    private bool IsAllowed(IpAddress src)
    {
        var allowed = AllowedIps;
        for (int i = 0; i < allowed.Count; i++)
            if (src.InPrefix(allowed[i].Network, allowed[i].Prefix)) return true;
        return DynamicAllowed(DynamicMethods.Dhcpv4) && _learned.Contains(src);
    }

    /// <summary>Whether addresses come by through a method pass: always when allowed-ips is empty,
    /// else when dynamic-methods names it.</summary>
    private bool DynamicAllowed(DynamicMethods method) => AllowedIps.Count == 0 || (Dynamic & method) != 0;

    /// <summary>Whether an IPv6 source is a SLAAC address of this link: a learned /64 prefix and the
    /// interface ID of the link's MAC.</summary>
    private bool IsSlaac(PortLink link, IpAddress src)
    {
        if (src.Low != Ipv6View.InterfaceIdFromMac(link.MacAddress)) return false;
        return _slaacPrefixes.Contains(IpAddress.V6(src.High, 0));
    }

    private bool DhcpClientAllowed(PortLink link, Span<byte> udpPayload)
    {
        if (!DhcpView.TryCreate(udpPayload, out var dhcp)) return false;
        bool hasCid = dhcp.TryGetOption(DhcpOption.ClientIdentifier, out var cid);
        var cids = AllowedCids;
        if (AllowAllCids) return dhcp.ClientMac == link.MacAddress;
        if (cids.Count == 0)
        {
            if (dhcp.ClientMac != link.MacAddress) return false;
            if (!hasCid) return true;
            Span<byte> own = stackalloc byte[7];
            own[0] = 1;
            link.MacAddress.Write(own[1..]);
            return cid.SequenceEqual(own);
        }
        Span<byte> chaddr = stackalloc byte[6];
        dhcp.ClientMac.Write(chaddr);
        ReadOnlySpan<byte> id = hasCid ? cid : chaddr;
        for (int i = 0; i < cids.Count; i++)
            if (id.SequenceEqual(cids[i])) return true;
        return false;
    }

    /// <summary>Snoops a frame delivered to the client: a DHCP ACK for its own MAC teaches its address,
    /// a router advertisement its autonomous /64 prefixes (SLAAC).</summary>
    internal void Snoop(PortLink link, Packet p)
    {
        var f = p.Data;
        if (f.Length < EthernetView.HeaderLength) return;
        ushort type = BinaryPrimitives.ReadUInt16BigEndian(f[12..]);
        if (type == EtherType.Ipv6) { SnoopRouterAdvertisement(f[EthernetView.HeaderLength..]); return; }
        if (type != EtherType.Ipv4) return;
        if (!Ipv4View.TryCreate(f[EthernetView.HeaderLength..], out var ip) || ip.Protocol != IpProtocol.Udp || ip.IsFragment) return;
        if (!UdpView.TryCreate(ip.Payload, out var udp) || udp.SourcePort != DhcpView.ServerPort || udp.DestinationPort != DhcpView.ClientPort) return;
        if (!DhcpView.TryCreate(udp.Payload, out var dhcp) || dhcp.Op != 2 || dhcp.ClientMac != link.MacAddress) return;
        if (dhcp.MessageType == DhcpOption.Ack && dhcp.YourIp != 0) _learned.Add(IpAddress.V4(dhcp.YourIp));
    }

    /// <summary>Learns the autonomous /64 prefixes of a router advertisement (RFC 4862 5.5.3: a prefix
    /// of another length forms no address); at most <see cref="MaxSlaacPrefixes"/>, as illumos bounds
    /// its SLAAC table. A prefix whose valid lifetime is 0 is forgotten.</summary>
    private void SnoopRouterAdvertisement(Span<byte> packet)
    {
        if (!Ipv6View.TryCreate(packet, out var ip) || ip.NextHeader != IpProtocol.Icmpv6 || ip.HopLimit != 255) return;
        var icmp = ip.Payload;
        const int RaHeader = 16;
        if (icmp.Length < RaHeader || icmp[0] != IcmpType.RouterAdvertisement || icmp[1] != 0) return;
        var options = new NdpOptionReader(icmp[RaHeader..]);
        while (options.MoveNext())
        {
            if (!NdpPrefixInformation.TryParse(options.Value, out var pi) || !pi.Autonomous || pi.PrefixLength != 64) continue;
            var prefix = IpAddress.V6(pi.Prefix.High, 0);
            if (pi.ValidLifetime == 0) _slaacPrefixes.Remove(prefix);
            else if (_slaacPrefixes.Count < MaxSlaacPrefixes) _slaacPrefixes.Add(prefix);
        }
    }

    /// <summary>The most SLAAC prefixes a link learns (mac_protect.c's slaac_max_allowed).</summary>
    public const int MaxSlaacPrefixes = 512;

    // ---- property values ---------------------------------------------------------------------------

    internal static readonly (string Name, DynamicMethods Methods)[] MethodNames =
    [
        ("dhcpv4", DynamicMethods.Dhcpv4), ("dhcpv6", DynamicMethods.Dhcpv6), ("slaac", DynamicMethods.Slaac),
        ("addrconf", DynamicMethods.Slaac | DynamicMethods.Dhcpv6),
    ];

    /// <summary>Parses dynamic-methods: dhcpv4, dhcpv6, slaac and addrconf, comma-separated.</summary>
    internal static bool TryParseMethods(string value, out DynamicMethods methods)
    {
        methods = DynamicMethods.None;
        if (value.Length == 0) return true;
        foreach (string word in value.Split(','))
        {
            var m = Array.Find(MethodNames, n => n.Name == word.Trim()).Methods;
            if (m == DynamicMethods.None) return false;
            methods |= m;
        }
        return true;
    }

    /// <summary>dynamic-methods as dladm shows it: addrconf as the two it stands for.</summary>
    internal static string FormatMethods(DynamicMethods methods)
    {
        var names = new List<string>();
        foreach (var (name, m) in MethodNames) if (name != "addrconf" && (methods & m) != 0) names.Add(name);
        return string.Join(',', names);
    }

    internal static readonly (string Name, ProtectionFlags Flag)[] Names =
    [
        ("mac-nospoof", ProtectionFlags.MacNoSpoof), ("restricted", ProtectionFlags.Restricted),
        ("ip-nospoof", ProtectionFlags.IpNoSpoof), ("dhcp-nospoof", ProtectionFlags.DhcpNoSpoof),
    ];

    internal static bool TryParseFlags(string value, out ProtectionFlags flags)
    {
        flags = ProtectionFlags.None;
        if (value.Length == 0) return true;
        foreach (string word in value.Split(','))
        {
            var f = Array.Find(Names, n => n.Name == word.Trim()).Flag;
            if (f == ProtectionFlags.None) return false;
            flags |= f;
        }
        return true;
    }

    internal static string FormatFlags(ProtectionFlags flags)
    {
        var names = new List<string>();
        foreach (var (name, flag) in Names) if ((flags & flag) != 0) names.Add(name);
        return string.Join(',', names);
    }

    /// <summary>Parses allowed-ips: addresses or CIDRs, comma-separated, at most 32.</summary>
    internal static DladmStatus TryParseAllowedIps(string value, out List<(IpAddress, int)> list)
    {
        list = [];
        if (value.Length == 0) return DladmStatus.Ok;
        string[] items = value.Split(',');
        if (items.Length > MaxAllowedIps) return DladmStatus.BadValCnt;
        foreach (string raw in items)
        {
            string item = raw.Trim();
            int slash = item.IndexOf('/');
            string addr = slash < 0 ? item : item[..slash];
            if (!IpAddress.TryParse(addr, out var ip)) return DladmStatus.BadVal;
            int max = ip.IsV4 ? 32 : 128;
            int prefix = max;
            if (slash >= 0 && (!int.TryParse(item[(slash + 1)..], NumberStyles.None, CultureInfo.InvariantCulture, out prefix) || prefix < 1 || prefix > max))
                return DladmStatus.BadVal;
            if (ip.IsMulticast || (ip.IsV4 && ip.V4Raw == 0xFFFFFFFF)) return DladmStatus.BadVal;
            list.Add((ip, prefix));
        }
        return DladmStatus.Ok;
    }

    /// <summary>allowed-ips as illumos's dladm shows it: every entry in CIDR form, a lone address
    /// with /32 or /128 (smartos-live's test-spoof-opts.js expects "10.3.0.200/32").</summary>
    internal static string FormatAllowedIps(IReadOnlyList<(IpAddress Network, int Prefix)> list)
    {
        var parts = new List<string>();
        foreach (var (net, prefix) in list) parts.Add(string.Create(CultureInfo.InvariantCulture, $"{net}/{prefix}"));
        return string.Join(',', parts);
    }

    /// <summary>Parses allowed-dhcp-cids: 0x-prefixed hex or text, comma-separated, at most 32.</summary>
    internal static DladmStatus TryParseCids(string value, out List<byte[]> cids, out List<string> text)
    {
        cids = [];
        text = [];
        if (value.Length == 0) return DladmStatus.Ok;
        string[] items = value.Split(',');
        if (items.Length > MaxAllowedCids) return DladmStatus.BadValCnt;
        foreach (string raw in items)
        {
            string item = raw.Trim();
            byte[] bytes;
            if (item.StartsWith("0x", StringComparison.OrdinalIgnoreCase))
            {
                string hex = item[2..];
                if (hex.Length == 0 || hex.Length % 2 != 0) return DladmStatus.BadVal;
                try { bytes = Convert.FromHexString(hex); }
                catch (FormatException) { return DladmStatus.BadVal; }
            }
            else
            {
                if (item.Length == 0) return DladmStatus.BadVal;
                bytes = System.Text.Encoding.ASCII.GetBytes(item);
            }
            if (bytes.Length > 255) return DladmStatus.BadVal;
            cids.Add(bytes);
            text.Add(item);
        }
        return DladmStatus.Ok;
    }
}
