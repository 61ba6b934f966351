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

/// <summary>Why link protection dropped a frame; each reason is a kstat (LinkStats).</summary>
public enum ProtectionDrop { None, MacSpoofed, Restricted, IpSpoofed, DhcpSpoofed }

/// <summary>
/// Link protection of one port (ResourceControl.cs, "Protection"), checked on every frame the link's
/// client transmits, after the MAC layer has put the frame in its VLAN and before anything else sees
/// it. The checks follow illumos's mac_protect.c:
///   mac-nospoof   the source MAC is the link's own address;
///   restricted    only IPv4, IPv6 and ARP, and only in the link's VLAN;
///   ip-nospoof    the IPv4/IPv6 source and the ARP sender address are in allowed-ips, or, when
///                 allowed-ips is empty, were handed to this client by DHCP (snooped ACKs);
///                 0.0.0.0, :: and the link-local address formed from the link's MAC always pass;
///   dhcp-nospoof  a DHCPv4 client message's chaddr is the link's MAC and its client id (option 61),
///                 if any, is the MAC's (type 1); with allowed-dhcp-cids the client id (or, lacking
///                 one, chaddr) must be one of them.
/// Not done yet: DHCPv6 DUIDs, NDP source options, learning from DHCP RELEASE.
/// </summary>
public sealed class LinkProtection
{
    public const int MaxAllowedIps = 32;
    public const int MaxAllowedCids = 32;

    private readonly HashSet<IpAddress> _learned = [];

    public ProtectionFlags Flags { get; internal set; }
    public IReadOnlyList<(IpAddress Network, int Prefix)> AllowedIps { get; internal set; } = [];
    public IReadOnlyList<byte[]> AllowedCids { get; internal set; } = [];
    /// <summary>The text each cid was given as, for show-linkprop.</summary>
    internal IReadOnlyList<string> AllowedCidsText { get; set; } = [];
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
        if (allowed.Count == 0) return _learned.Contains(src);
        for (int i = 0; i < allowed.Count; i++)
            if (src.InPrefix(allowed[i].Network, allowed[i].Prefix)) return true;
        return false;
    }

    private bool DhcpClientAllowed(PortLink link, Span<byte> udpPayload)
    {
        if (!DhcpView.TryCreate(udpPayload, out var dhcp)) return false;
        bool hasCid = dhcp.TryGetOption(DhcpOption.ClientIdentifier, out var cid);
        var cids = AllowedCids;
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

    /// <summary>Snoops a frame delivered to the client: a DHCP ACK for its own MAC teaches its address.</summary>
    internal void Snoop(PortLink link, Packet p)
    {
        var f = p.Data;
        if (f.Length < EthernetView.HeaderLength || BinaryPrimitives.ReadUInt16BigEndian(f[12..]) != EtherType.Ipv4) return;
        if (!Ipv4View.TryCreate(f[EthernetView.HeaderLength..], out var ip) || ip.Protocol != IpProtocol.Udp || ip.IsFragment) return;
        if (!UdpView.TryCreate(ip.Payload, out var udp) || udp.SourcePort != DhcpView.ServerPort || udp.DestinationPort != DhcpView.ClientPort) return;
        if (!DhcpView.TryCreate(udp.Payload, out var dhcp) || dhcp.Op != 2 || dhcp.ClientMac != link.MacAddress) return;
        if (dhcp.MessageType == DhcpOption.Ack && dhcp.YourIp != 0) _learned.Add(IpAddress.V4(dhcp.YourIp));
    }

    // ---- property values ---------------------------------------------------------------------------

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
