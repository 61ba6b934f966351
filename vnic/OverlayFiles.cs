using System.Buffers.Binary;
using System.Text.Json;
using SmartOS.Kernel;
using SmartOS.Kernel.Wire;

namespace SmartOS.Vnic;

// The files search plugin of an overlay (varpd's files plugin, usr/src/lib/varpd/files, and
// overlay_files(5)): a JSON object keyed by the MAC addresses of the tenant network, each entry
// naming the underlay address ("ip", "port") that houses that MAC, and optionally the overlay
// addresses varpd answers for it ("arp" for IPv4, "ndp" for IPv6) and the MAC a DHCPv4 broadcast of
// that MAC is sent to instead ("dhcp-proxy").
//
// What it does with a frame a VNIC of the overlay sends (varpd_files_lookup and libvarpd_arp.c):
//  1. ARP (any destination): a well-formed request (Ethernet/IPv4, op 1, not gratuitous) for an
//     address that is some entry's "arp" is answered with an ARP reply from that entry's MAC, sent
//     back to the asker; every other ARP frame is dropped. ARP never crosses the underlay.
//  2. IPv6 to a 33:33 multicast MAC: a neighbour solicitation (to a solicited-node or link-local
//     multicast group, with a source link-layer option, for a unicast target) whose target is some
//     entry's "ndp" is answered with a solicited, override neighbour advertisement carrying the
//     entry's MAC; every other such frame is dropped.
//  3. IPv4 to the broadcast MAC: a DHCPv4 client message (UDP 68 -> 67) from a MAC whose entry has
//     "dhcp-proxy" is rewritten to that MAC and sent on as unicast (not a relay: the frame is the
//     client's own, only its destination changes); every other IPv4 broadcast is dropped.
//  4. Anything else is looked up by destination MAC: an entry sends it to its "ip" and "port"; a
//     unicast MAC without an entry is a miss, a group MAC without one is dropped (overlay(7): the
//     files plugin carries no broadcast or multicast).
//
// Rules:
//  1. The file is checked whole when it is loaded: a file that is not JSON, an entry whose key is not
//     a MAC, a bad or missing "ip", a bad or missing "port", bad "arp", "ndp" or "dhcp-proxy"
//     values, a key the format does not define, two entries for one MAC or two entries answering
//     for one address are refused with a message naming the file and the entry, and nothing is
//     built. varpd is more lenient (a bad entry only drops its frames at lookup time); refusing at
//     create time is what lets `dladm create-overlay` fail instead of leaving an overlay that drops.
//  2. Lookups and answers run on the host's loop for every frame and allocate nothing: the tables
//     are dictionaries keyed by value types, built once at load.
//  3. Every outcome is counted (kstat varpd:<n>:files): answers, redirects, misses and drops.
//  4. The plugin never reads the file again after loading: a changed file takes effect when the
//     overlay is created again (or at the next boot's replay). `dladm modify-overlay -s` sets
//     entries that answer before the file's, and -d / -f forget them, as they edit illumos's target
//     cache in front of varpd.

/// <summary>One entry of a files plugin's mapping, as loaded.</summary>
public readonly record struct OverlayFilesEntry(
    MacAddress Mac, UnderlayEndpoint Target, IpAddress? Arp, IpAddress? Ndp, MacAddress? DhcpProxy);

/// <summary>What the files plugin decides for a frame it does not answer.</summary>
public enum OverlaySteer
{
    /// <summary>Look the destination up as for any frame.</summary>
    Lookup,
    /// <summary>Rewrite the destination MAC to the one given and look that up (DHCPv4 proxy).</summary>
    Redirect,
    /// <summary>Drop the frame (ARP, NDP and IPv4 broadcasts the plugin does not answer).</summary>
    Drop,
}

/// <summary>
/// A search plugin that looks at the whole frame before the destination lookup (varpd hands its
/// plugins the frame's ethertype and addresses): the files plugin drops the ARP and NDP it cannot
/// answer and redirects DHCPv4 broadcasts. The overlay calls it after <see
/// cref="IOverlaySearch.TryAnswer"/> returned 0.
/// </summary>
public interface IOverlaySteering
{
    OverlaySteer Steer(ReadOnlySpan<byte> frame, out MacAddress destination);
}

/// <summary>varpd's files plugin: see the comment at the top of this file.</summary>
public sealed class OverlayFilesSearch : IOverlaySearch, IOverlaySteering, IOverlayTargetTable, IKstatSource
{
    /// <summary>The plugin as the host's registry knows it (OverlaySearch.cs): one required property,
    /// files/config, the absolute path of the mapping file (overlay(7)).</summary>
    public static readonly OverlaySearchPlugin Plugin = new("files", [new OverlayPropInfo(ConfigProperty, Required: true)], Create)
    {
        Explain = Explain,
    };

    /// <summary>The property that names the mapping file (overlay(7)).</summary>
    public const string ConfigProperty = "files/config";

    /// <summary>Mapping files larger than this are refused rather than read.</summary>
    public const long MaxFileBytes = 16 << 20;

    // ETHERMAX + VLAN_TAGSZ: varpd's query buffer; larger ARP or NDP frames are not answered.
    private const int MaxProxyFrame = 1518;
    private const int NeighborAdvertLength = 24;
    private const uint NaFlagsSolicitedOverride = 0x6000_0000;

    private readonly Dictionary<MacAddress, UnderlayEndpoint> _targets;
    private readonly Dictionary<uint, MacAddress> _arp;
    private readonly Dictionary<IpAddress, MacAddress> _ndp;
    private readonly Dictionary<MacAddress, MacAddress> _dhcpProxy;

    // modify-overlay -s entries: they answer before the file's (rule 4 keeps the file as loaded).
    private readonly Dictionary<MacAddress, UnderlayEndpoint> _set = [];
    private readonly List<MacAddress> _setOrder = [];

    // The last lookup that found a destination (rule 2): a stream of frames to one MAC, the common
    // case, is answered without the tables. Set, Delete and Flush forget it, so the next frame after
    // a mapping change looks up again.
    private MacAddress _lastMac;
    private UnderlayEndpoint _lastTarget;
    private bool _lastValid;

    private long _found, _misses, _drops, _arpAnswers, _ndpAnswers, _dhcpRedirects, _proxyDrops;

    private OverlayFilesSearch(string path, List<OverlayFilesEntry> entries)
    {
        Path = path;
        Mapping = entries;
        _targets = new Dictionary<MacAddress, UnderlayEndpoint>(entries.Count);
        _arp = new Dictionary<uint, MacAddress>();
        _ndp = new Dictionary<IpAddress, MacAddress>();
        _dhcpProxy = new Dictionary<MacAddress, MacAddress>();
        foreach (OverlayFilesEntry e in entries)
        {
            _targets.Add(e.Mac, e.Target);
            if (e.Arp is { } a) _arp.Add(a.V4Raw, e.Mac);
            if (e.Ndp is { } n) _ndp.Add(n, e.Mac);
            if (e.DhcpProxy is { } d) _dhcpProxy.Add(e.Mac, d);
        }
    }

    public string Name => "files";

    /// <summary>The mapping file, as given in files/config.</summary>
    public string Path { get; }

    /// <summary>The entries in the order of the file.</summary>
    public IReadOnlyList<OverlayFilesEntry> Mapping { get; }

    /// <summary>Lookups that found an entry.</summary>
    public long Found => _found;
    /// <summary>Unicast destinations with no entry (the lookup misses `dladm` and kstat show).</summary>
    public long Misses => _misses;
    /// <summary>Group destinations with no entry.</summary>
    public long Drops => _drops;
    public long ArpAnswers => _arpAnswers;
    public long NdpAnswers => _ndpAnswers;
    public long DhcpRedirects => _dhcpRedirects;
    /// <summary>ARP, NDP and IPv4 broadcast frames dropped because the file has no answer.</summary>
    public long ProxyDrops => _proxyDrops;

    private static DlStatus Create(IReadOnlyDictionary<string, string> props, out IOverlaySearch? search, out string? failedProp)
    {
        search = null;
        failedProp = ConfigProperty;
        if (!props.TryGetValue(ConfigProperty, out string? path)) return DladmStatus.BadArg;
        if (!System.IO.Path.IsPathFullyQualified(path)) return DladmStatus.BadVal;
        if (!TryLoad(path, out OverlayFilesSearch? files, out _)) return DladmStatus.BadVal;
        failedProp = null;
        search = files;
        return DlStatus.Ok;
    }

    /// <summary>Why <see cref="Create"/> refuses these properties, in words (the file and the entry at
    /// fault), or null when it would not.</summary>
    public static string? Explain(IReadOnlyDictionary<string, string> props)
    {
        if (!props.TryGetValue(ConfigProperty, out string? path)) return null;
        if (!System.IO.Path.IsPathFullyQualified(path)) return $"{path}: not an absolute path (overlay(7): files/config is the absolute path of the mapping file)";
        return TryLoad(path, out _, out string error) ? null : error;
    }

    /// <summary>
    /// Reads and checks a mapping file (rule 1). On failure <paramref name="error"/> names the file and
    /// the entry, and no plugin is built.
    /// </summary>
    public static bool TryLoad(string path, out OverlayFilesSearch? search, out string error)
    {
        search = null;
        error = "";
        byte[] bytes;
        try
        {
            var info = new FileInfo(path);
            if (!info.Exists)
            {
                error = Directory.Exists(path) ? $"{path}: is a directory" : $"{path}: No such file or directory";
                return false;
            }
            if (info.Length > MaxFileBytes)
            {
                error = $"{path}: file is larger than {MaxFileBytes} bytes";
                return false;
            }
            bytes = File.ReadAllBytes(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            error = $"{path}: {(e is UnauthorizedAccessException ? "Permission denied" : e.Message)}";
            return false;
        }
        if (!TryParse(path, bytes, out List<OverlayFilesEntry>? entries, out error)) return false;
        search = new OverlayFilesSearch(path, entries!);
        return true;
    }

    /// <summary>Checks the JSON text of a mapping file; <paramref name="path"/> only names it in errors.</summary>
    public static bool TryParse(string path, ReadOnlySpan<byte> json, out List<OverlayFilesEntry>? entries, out string error)
    {
        entries = null;
        error = "";
        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(json.ToArray(), new JsonDocumentOptions { AllowTrailingCommas = false, CommentHandling = JsonCommentHandling.Disallow });
        }
        catch (JsonException e)
        {
            error = $"{path}: not valid JSON: {e.Message}";
            return false;
        }
        using (doc)
        {
            if (doc.RootElement.ValueKind != JsonValueKind.Object)
            {
                error = $"{path}: expected a JSON object whose keys are MAC addresses";
                return false;
            }
            var list = new List<OverlayFilesEntry>();
            var keyOf = new Dictionary<MacAddress, string>();
            var arpOf = new Dictionary<uint, string>();
            var ndpOf = new Dictionary<IpAddress, string>();
            foreach (JsonProperty p in doc.RootElement.EnumerateObject())
            {
                string where = $"{path}: entry \"{p.Name}\"";
                if (!TryParseMac(p.Name, out MacAddress mac))
                {
                    error = $"{where}: not a MAC address";
                    return false;
                }
                if (keyOf.TryGetValue(mac, out string? first))
                {
                    error = $"{where}: duplicate entry for {mac} (first given as \"{first}\")";
                    return false;
                }
                if (!TryParseEntry(where, mac, p.Value, out OverlayFilesEntry entry, out error)) return false;
                if (entry.Arp is { } arp)
                {
                    if (arpOf.TryGetValue(arp.V4Raw, out string? other))
                    {
                        error = $"{where}: \"arp\" address {arp} is already the \"arp\" address of entry \"{other}\"";
                        return false;
                    }
                    arpOf.Add(arp.V4Raw, p.Name);
                }
                if (entry.Ndp is { } ndp)
                {
                    if (ndpOf.TryGetValue(ndp, out string? other))
                    {
                        error = $"{where}: \"ndp\" address {ndp} is already the \"ndp\" address of entry \"{other}\"";
                        return false;
                    }
                    ndpOf.Add(ndp, p.Name);
                }
                keyOf.Add(mac, p.Name);
                list.Add(entry);
            }
            entries = list;
            return true;
        }
    }

    // ether_aton(3SOCKET): six colon-separated groups of one or two hex digits.
    private static bool TryParseMac(string text, out MacAddress mac)
    {
        mac = default;
        return !text.Contains('-') && MacAddress.TryParse(text, out mac);
    }

    private static bool TryParseEntry(string where, MacAddress mac, JsonElement value, out OverlayFilesEntry entry, out string error)
    {
        entry = default;
        error = "";
        if (value.ValueKind != JsonValueKind.Object)
        {
            error = $"{where}: expected a JSON object with \"ip\" and \"port\"";
            return false;
        }
        IpAddress? ip = null, arp = null, ndp = null;
        MacAddress? proxy = null;
        int port = -1;
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (JsonProperty f in value.EnumerateObject())
        {
            if (!seen.Add(f.Name))
            {
                error = $"{where}: \"{f.Name}\" is given twice";
                return false;
            }
            switch (f.Name)
            {
                case "ip":
                    if (!TryString(f.Value, out string? ipText) || !IpAddress.TryParse(ipText, out IpAddress a))
                    {
                        error = $"{where}: \"ip\" is not an IP address: {f.Value.GetRawText()}";
                        return false;
                    }
                    ip = a;
                    break;
                case "port":
                    if (f.Value.ValueKind != JsonValueKind.Number || !f.Value.TryGetInt32(out port) || port is < 1 or > 65535)
                    {
                        error = $"{where}: \"port\" must be a number from 1 to 65535: {f.Value.GetRawText()}";
                        return false;
                    }
                    break;
                case "arp":
                    if (!TryString(f.Value, out string? arpText) || !IpAddress.TryParse(arpText, out IpAddress v4) || !v4.IsV4)
                    {
                        error = $"{where}: \"arp\" is not an IPv4 address: {f.Value.GetRawText()}";
                        return false;
                    }
                    arp = v4;
                    break;
                case "ndp":
                    if (!TryString(f.Value, out string? ndpText) || !IpAddress.TryParse(ndpText, out IpAddress v6) || !v6.IsV6
                        || v6.IsMulticast || v6.IsUnspecified || v6.IsLoopback)
                    {
                        error = $"{where}: \"ndp\" is not a unicast IPv6 address: {f.Value.GetRawText()}";
                        return false;
                    }
                    ndp = v6;
                    break;
                case "dhcp-proxy":
                    if (!TryString(f.Value, out string? proxyText) || !TryParseMac(proxyText!, out MacAddress pm) || pm.IsGroup)
                    {
                        error = $"{where}: \"dhcp-proxy\" is not a unicast MAC address: {f.Value.GetRawText()}";
                        return false;
                    }
                    proxy = pm;
                    break;
                default:
                    error = $"{where}: unknown key \"{f.Name}\" (overlay_files(5) defines ip, port, arp, ndp and dhcp-proxy)";
                    return false;
            }
        }
        if (ip is null)
        {
            error = $"{where}: \"ip\" is missing";
            return false;
        }
        // The vxlan encapsulation addresses its destinations by IP and port (overlay(7)), so the
        // port is required as varpd requires it for every lookup.
        if (port < 0)
        {
            error = $"{where}: \"port\" is missing";
            return false;
        }
        entry = new OverlayFilesEntry(mac, new UnderlayEndpoint(ip.Value, (ushort)port), arp, ndp, proxy);
        return true;
    }

    private static bool TryString(JsonElement e, out string? text)
    {
        text = e.ValueKind == JsonValueKind.String ? e.GetString() : null;
        return text is not null;
    }

    /// <inheritdoc/>
    public OverlayLookupStatus Lookup(MacAddress destination, out UnderlayEndpoint target)
    {
        if (_lastValid && destination == _lastMac)
        {
            target = _lastTarget;
            _found++;
            return OverlayLookupStatus.Found;
        }
        if ((_set.Count > 0 && _set.TryGetValue(destination, out target)) || _targets.TryGetValue(destination, out target))
        {
            _lastMac = destination;
            _lastTarget = target;
            _lastValid = true;
            _found++;
            return OverlayLookupStatus.Found;
        }
        if (destination.IsGroup)
        {
            _drops++;
            return OverlayLookupStatus.Drop;
        }
        _misses++;
        return OverlayLookupStatus.Miss;
    }

    /// <inheritdoc/>
    public int TryAnswer(ReadOnlySpan<byte> frame, Span<byte> reply)
    {
        if (frame.Length < EthernetView.HeaderLength || frame.Length > MaxProxyFrame || reply.Length < frame.Length) return 0;
        int hdr = HeaderSize(frame, out ushort type);
        if (hdr < 0) return 0;
        if (type == EtherType.Arp) return AnswerArp(frame, hdr, reply);
        if (type == EtherType.Ipv6 && frame[0] == 0x33 && frame[1] == 0x33) return AnswerNdp(frame, hdr, reply);
        return 0;
    }

    /// <inheritdoc/>
    public OverlaySteer Steer(ReadOnlySpan<byte> frame, out MacAddress destination)
    {
        destination = default;
        if (frame.Length < EthernetView.HeaderLength) return OverlaySteer.Lookup;
        int hdr = HeaderSize(frame, out ushort type);
        if (hdr < 0) return OverlaySteer.Lookup;
        if (type == EtherType.Arp || (type == EtherType.Ipv6 && frame[0] == 0x33 && frame[1] == 0x33))
        {
            // libvarpd_arp.c: ARP and IPv6 multicast go only to the proxy; unanswered, they drop.
            _proxyDrops++;
            return OverlaySteer.Drop;
        }
        if (type == EtherType.Ipv4 && MacAddress.Read(frame).IsBroadcast)
        {
            if (IsDhcpClientMessage(frame[hdr..]) && _dhcpProxy.TryGetValue(MacAddress.Read(frame[6..]), out destination))
            {
                _dhcpRedirects++;
                return OverlaySteer.Redirect;
            }
            _proxyDrops++;
            return OverlaySteer.Drop;
        }
        return OverlaySteer.Lookup;
    }

    // The Ethernet header's length (14, or 18 with an 802.1Q tag) and the ethertype after it; -1
    // when the frame is too short to hold them.
    private static int HeaderSize(ReadOnlySpan<byte> frame, out ushort type)
    {
        type = BinaryPrimitives.ReadUInt16BigEndian(frame[12..]);
        if (type != EtherType.Vlan) return EthernetView.HeaderLength;
        if (frame.Length < EthernetView.HeaderLength + EthernetView.TagLength) return -1;
        type = BinaryPrimitives.ReadUInt16BigEndian(frame[16..]);
        return EthernetView.HeaderLength + EthernetView.TagLength;
    }

    private int AnswerArp(ReadOnlySpan<byte> frame, int hdr, Span<byte> reply)
    {
        frame.CopyTo(reply);
        Span<byte> out_ = reply[..frame.Length];
        if (!ArpView.TryCreate(out_[hdr..], out ArpView arp) || arp.Operation != ArpView.OpRequest) return 0;
        // A gratuitous ARP (sender = target) is not answered: the answer would look like a
        // duplicate address to the sender.
        if (arp.SenderIp == arp.TargetIp) return 0;
        if (!_arp.TryGetValue(arp.TargetIp, out MacAddress owner)) return 0;
        MacAddress asker = arp.SenderMac;
        uint askerIp = arp.SenderIp, target = arp.TargetIp;
        ArpView.TryWrite(out_[hdr..], ArpView.OpReply, owner, target, asker, askerIp);
        MacAddress.Read(frame[6..]).Write(out_);
        owner.Write(out_[6..]);
        _arpAnswers++;
        return frame.Length;
    }

    private int AnswerNdp(ReadOnlySpan<byte> frame, int hdr, Span<byte> reply)
    {
        ReadOnlySpan<byte> ip6 = frame[hdr..];
        if (ip6.Length < Ipv6View.HeaderLength + NeighborAdvertLength) return 0;
        if ((ip6[0] >> 4) != 6 || ip6[Ipv6View.NextHeaderOffset] != IpProtocol.Icmpv6) return 0;
        // The solicitation goes to a solicited-node group (ff02::1:ffxx:xxxx); some systems send it to
        // another link-local group: varpd takes both.
        if (ip6[24] != 0xFF || (ip6[25] & 0x0F) != 0x02) return 0;
        int plen = BinaryPrimitives.ReadUInt16BigEndian(ip6[4..]);
        if (plen < NeighborAdvertLength || ip6.Length - Ipv6View.HeaderLength < plen) return 0;
        ReadOnlySpan<byte> ns = ip6.Slice(Ipv6View.HeaderLength, plen);
        if (ns[0] != IcmpType.NeighborSolicitation || ns[1] != 0) return 0;
        IpAddress target = IpAddress.Read(ns[8..], v4: false);
        if (IpAddress.Read(ip6[8..], v4: false).IsUnspecified) return 0;
        if (target.IsMulticast || target.IsLoopback || target.IsUnspecified || IsV4Mapped(target)) return 0;
        // RFC 4861 7.1.1: a solicitation sent to a multicast group carries the sender's link-layer
        // address; one without it (duplicate address detection) is not answered.
        bool hasSource = false;
        ReadOnlySpan<byte> opts = ns[NeighborAdvertLength..];
        while (opts.Length >= 2)
        {
            int len = opts[1] * 8;
            if (len == 0 || len > opts.Length) return 0;
            if (opts[0] == NdpOptionReader.SourceLinkLayer) hasSource = true;
            opts = opts[len..];
        }
        if (!hasSource || !_ndp.TryGetValue(target, out MacAddress owner)) return 0;

        int length = hdr + Ipv6View.HeaderLength + NeighborAdvertLength + NdpOptionReader.LinkLayerLength;
        if (reply.Length < length) return 0;
        Span<byte> r = reply[..length];
        frame[..hdr].CopyTo(r);
        MacAddress.Read(frame[6..]).Write(r);
        owner.Write(r[6..]);
        Span<byte> rip = r[hdr..];
        ip6[..8].CopyTo(rip); // version, class, flow label, payload length (fixed below), next header, hop limit
        ip6.Slice(8, 16).CopyTo(rip[24..]); // to the solicitor
        target.Write(rip[8..]); // from the target
        BinaryPrimitives.WriteUInt16BigEndian(rip[4..], NeighborAdvertLength + NdpOptionReader.LinkLayerLength);
        Span<byte> na = rip[Ipv6View.HeaderLength..];
        IcmpView.TryWriteHeader(na, IcmpType.NeighborAdvertisement, 0, NaFlagsSolicitedOverride);
        target.Write(na[8..]);
        NdpOptionReader.WriteLinkLayer(na[NeighborAdvertLength..], NdpOptionReader.TargetLinkLayer, owner);
        IcmpView.FinishV6(na, target, IpAddress.Read(ip6[8..], v4: false));
        _ndpAnswers++;
        return length;
    }

    private static bool IsV4Mapped(IpAddress a) => a.High == 0 && (a.Low >> 32) == 0xFFFF;

    // libvarpd_plugin_proxy_dhcp: an IPv4 UDP datagram from the client port to the server port
    // holding at least a BOOTP message.
    private static bool IsDhcpClientMessage(ReadOnlySpan<byte> ip)
    {
        if (ip.Length < 20 || (ip[0] >> 4) != 4 || ip[9] != IpProtocol.Udp) return false;
        int ihl = (ip[0] & 0x0F) * 4;
        if (ihl < 20 || ip.Length < ihl + UdpView.HeaderLength + DhcpView.FixedLength) return false;
        ReadOnlySpan<byte> udp = ip[ihl..];
        return BinaryPrimitives.ReadUInt16BigEndian(udp) == DhcpView.ClientPort
            && BinaryPrimitives.ReadUInt16BigEndian(udp[2..]) == DhcpView.ServerPort;
    }

    /// <summary>modify-overlay -s: this MAC goes to <paramref name="target"/>, before the file's entry.</summary>
    public void Set(MacAddress mac, UnderlayEndpoint target)
    {
        if (!_set.ContainsKey(mac)) _setOrder.Add(mac);
        _set[mac] = target;
        _lastValid = false;
    }

    /// <summary>modify-overlay -d: forgets what -s set for the MAC (the file's entry, if any, answers
    /// again, as varpd answers the kernel's next query); false when the MAC is in neither.</summary>
    public bool Delete(MacAddress mac)
    {
        bool had = _set.Remove(mac);
        if (had) _setOrder.Remove(mac);
        _lastValid = false;
        return had || _targets.ContainsKey(mac);
    }

    /// <summary>modify-overlay -f: forgets everything -s set.</summary>
    public void Flush()
    {
        _set.Clear();
        _setOrder.Clear();
        _lastValid = false;
    }

    /// <summary>show-overlay -t: the file's entries (with what -s set in their place), then the MACs
    /// only -s set.</summary>
    public IReadOnlyList<(MacAddress Mac, UnderlayEndpoint Target)> Entries => TableEntries();

    private List<(MacAddress, UnderlayEndpoint)> TableEntries()
    {
        var list = new List<(MacAddress, UnderlayEndpoint)>(Mapping.Count + _setOrder.Count);
        foreach (OverlayFilesEntry e in Mapping) list.Add((e.Mac, _set.TryGetValue(e.Mac, out var t) ? t : e.Target));
        foreach (MacAddress m in _setOrder)
        {
            if (!_targets.ContainsKey(m)) list.Add((m, _set[m]));
        }
        return list;
    }

    /// <inheritdoc/>
    public void Snapshot(List<KeyValuePair<string, long>> into)
    {
        into.Add(new("arp_answers", _arpAnswers));
        into.Add(new("dhcp_redirects", _dhcpRedirects));
        into.Add(new("drops", _drops));
        into.Add(new("entries", Mapping.Count));
        into.Add(new("found", _found));
        into.Add(new("misses", _misses));
        into.Add(new("ndp_answers", _ndpAnswers));
        into.Add(new("proxy_drops", _proxyDrops));
    }
}
