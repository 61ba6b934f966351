using System.Buffers.Binary;
using System.Globalization;
using SmartOS.Kernel;
using SmartOS.Kernel.Wire;

namespace SmartOS.Vnic;

/// <summary>The six attribute combinations flowadm(8) accepts; a link holds flows of one type only.</summary>
public enum FlowType { LocalIp, RemoteIp, Transport, LocalPort, RemotePort, DsField }

/// <summary>
/// A flow's attributes, parsed and checked (flowadm add-flow -a). Only the fields of its
/// <see cref="Type"/> are meaningful.
/// </summary>
public readonly record struct FlowSpec(FlowType Type, IpAddress Address, int Prefix, byte Protocol, ushort Port, byte DsField, byte DsMask)
{
    private static readonly (string Name, byte Proto)[] s_transports =
        [("tcp", IpProtocol.Tcp), ("udp", IpProtocol.Udp), ("sctp", IpProtocol.Sctp), ("icmp", IpProtocol.Icmp), ("icmpv6", IpProtocol.Icmpv6)];

    public static string ProtocolName(byte proto)
    {
        foreach (var (n, p) in s_transports) if (p == proto) return n;
        return proto.ToString(CultureInfo.InvariantCulture);
    }

    /// <summary>Parses "attr=value[,attr=value]" into a flow spec, or says why not.</summary>
    public static DladmStatus TryParse(string text, out FlowSpec spec)
    {
        spec = default;
        string? localIp = null, remoteIp = null, transport = null, localPort = null, remotePort = null, dsfield = null;
        if (string.IsNullOrWhiteSpace(text)) return DladmStatus.BadArg;
        foreach (string part in text.Split(','))
        {
            int eq = part.IndexOf('=');
            if (eq <= 0) return DladmStatus.BadArg;
            string key = part[..eq].Trim(), value = part[(eq + 1)..].Trim();
            ref string? slot = ref localIp;
            switch (key)
            {
                case "local_ip": slot = ref localIp; break;
                case "remote_ip": slot = ref remoteIp; break;
                case "transport": slot = ref transport; break;
                case "local_port": slot = ref localPort; break;
                case "remote_port": slot = ref remotePort; break;
                case "dsfield": slot = ref dsfield; break;
                default: return DladmStatus.BadArg;
            }
            if (slot != null || value.Length == 0) return DladmStatus.BadArg;
            slot = value;
        }
        byte proto = 0;
        if (transport != null)
        {
            int i = Array.FindIndex(s_transports, t => t.Name == transport);
            if (i < 0) return DladmStatus.InvalidProtocol;
            proto = s_transports[i].Proto;
        }
        ushort port = 0;
        string? portText = localPort ?? remotePort;
        // dladm_flow_attrlist_extract: "Make sure protocol is specified if either local or remote
        // port is specified" (DLADM_STATUS_PORT_NOPROTO).
        if (portText != null && (!ushort.TryParse(portText, NumberStyles.None, CultureInfo.InvariantCulture, out port) || port == 0))
            return DladmStatus.InvalidPort;
        if (portText != null && transport == null) return DladmStatus.PortNoProto;

        // The six combinations (flowadm(8)); anything else is rejected.
        if (localIp != null && remoteIp == null && transport == null && portText == null && dsfield == null)
            return ParseIp(localIp, FlowType.LocalIp, out spec);
        if (remoteIp != null && localIp == null && transport == null && portText == null && dsfield == null)
            return ParseIp(remoteIp, FlowType.RemoteIp, out spec);
        if (transport != null && localIp == null && remoteIp == null && dsfield == null)
        {
            if (portText == null) { spec = new FlowSpec(FlowType.Transport, default, 0, proto, 0, 0, 0); return DladmStatus.Ok; }
            if (localPort != null && remotePort != null) return DladmStatus.BadArg;
            if (proto is not (IpProtocol.Tcp or IpProtocol.Udp or IpProtocol.Sctp)) return DladmStatus.BadArg;
            spec = new FlowSpec(localPort != null ? FlowType.LocalPort : FlowType.RemotePort, default, 0, proto, port, 0, 0);
            return DladmStatus.Ok;
        }
        if (dsfield != null && localIp == null && remoteIp == null && transport == null && portText == null)
        {
            string v = dsfield, m = "0xff";
            int colon = dsfield.IndexOf(':');
            if (colon >= 0) { v = dsfield[..colon]; m = dsfield[(colon + 1)..]; }
            // do_check_dsfield (flowattr.c): the mask is checked first, and neither may be zero.
            if (!TryHexByte(m, out byte mask) || mask == 0) return DladmStatus.InvalidDsfMask;
            if (!TryHexByte(v, out byte ds) || ds == 0) return DladmStatus.InvalidDsf;
            spec = new FlowSpec(FlowType.DsField, default, 0, 0, 0, (byte)(ds & mask), mask);
            return DladmStatus.Ok;
        }
        return DladmStatus.BadArg;
    }

    private static bool TryHexByte(string s, out byte b)
    {
        if (s.StartsWith("0x", StringComparison.OrdinalIgnoreCase)) s = s[2..];
        return byte.TryParse(s, NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out b) && s.Length is > 0 and <= 2;
    }

    private static DladmStatus ParseIp(string text, FlowType type, out FlowSpec spec)
    {
        spec = default;
        int slash = text.IndexOf('/');
        if (!IpAddress.TryParse(slash < 0 ? text : text[..slash], out var ip)) return DladmStatus.InvalidIp;
        int max = ip.IsV4 ? 32 : 128, prefix = max;
        if (slash >= 0 && (!int.TryParse(text[(slash + 1)..], NumberStyles.None, CultureInfo.InvariantCulture, out prefix) || prefix < 1 || prefix > max))
            return DladmStatus.InvalidPrefixLen;
        spec = new FlowSpec(type, FlowTable.Mask(ip, prefix), prefix, 0, 0, 0, 0);
        return DladmStatus.Ok;
    }

    /// <summary>The attributes as flowadm takes them (what flowadm.conf keeps).</summary>
    public override string ToString() => Type switch
    {
        FlowType.LocalIp => $"local_ip={Address}/{Prefix}",
        FlowType.RemoteIp => $"remote_ip={Address}/{Prefix}",
        FlowType.Transport => $"transport={ProtocolName(Protocol)}",
        FlowType.LocalPort => $"transport={ProtocolName(Protocol)},local_port={Port}",
        FlowType.RemotePort => $"transport={ProtocolName(Protocol)},remote_port={Port}",
        _ => $"dsfield=0x{DsField:x2}:0x{DsMask:x2}",
    };
}

/// <summary>Counters of one flow (flowstat, kstat flow:0:NAME).</summary>
public sealed class FlowStats : IKstatSource
{
    public long IPackets, RBytes, IDrops, OPackets, OBytes, ODrops;

    public void Snapshot(List<KeyValuePair<string, long>> into)
    {
        into.Add(new("ipackets", IPackets));
        into.Add(new("rbytes", RBytes));
        into.Add(new("idrops", IDrops));
        into.Add(new("opackets", OPackets));
        into.Add(new("obytes", OBytes));
        into.Add(new("odrops", ODrops));
    }
}

/// <summary>A flow on a link (flowadm add-flow): its attributes, resource controls and counters.</summary>
public sealed class Flow : IShaperSink
{
    internal const int StageTx = 0, StageRx = 1;
    private const int FairKeyBase = 1 << 30;

    internal Flow(string name, PortLink link, FlowSpec spec, int id)
    {
        Name = name;
        Link = link;
        Spec = spec;
        Id = id;
    }

    public string Name { get; }
    public PortLink Link { get; }
    public FlowSpec Spec { get; }
    internal int Id { get; }
    internal int FairKey => FairKeyBase | Id;
    public FlowStats Stats { get; } = new();
    internal Kstat? Kstat { get; set; }
    /// <summary>maxbw in bit/s, or null when unlimited.</summary>
    public long? MaxBw { get; internal set; }
    /// <summary>Flows default to medium priority, as illumos's flowadm.</summary>
    public MacPriority Priority { get; internal set; } = MacPriority.Medium;
    internal Shaper? Tx, Rx;

    void IShaperSink.Release(Packet p, int stage)
    {
        var c = Link.Control!;
        if (stage == StageTx)
        {
            Stats.OPackets++;
            Stats.OBytes += p.Length;
            c.AfterFlowTxCore(p);
        }
        else
        {
            Stats.IPackets++;
            Stats.RBytes += p.Length;
            c.AfterFlowRxCore(p);
        }
    }
}

/// <summary>
/// The flows of one link, all of one type, in a hash table keyed by the fields that type matches
/// (illumos mac_flow.c keeps one flow_tab_t per type the same way). Lookup parses the frame once and
/// probes the table once per distinct prefix length (IP types) or dsfield mask, so its cost does not
/// grow with the number of flows. Fragments never match port flows (they may carry no ports).
/// </summary>
internal sealed class FlowTable
{
    private readonly Dictionary<FlowKey, Flow> _table = new();
    private int[] _lengths = [];   // distinct prefix lengths (IP types) or masks (dsfield), longest first

    public FlowTable(FlowType type) { Type = type; }

    public FlowType Type { get; }
    public int Count => _table.Count;

    private readonly record struct FlowKey(ulong High, ulong Low, int Extra);

    private static FlowKey KeyOf(in FlowSpec s) => s.Type switch
    {
        FlowType.LocalIp or FlowType.RemoteIp => new FlowKey(s.Address.High, s.Address.Low, s.Prefix | (s.Address.IsV4 ? 0x1000 : 0)),
        FlowType.Transport => new FlowKey(0, 0, s.Protocol),
        FlowType.LocalPort or FlowType.RemotePort => new FlowKey(0, s.Port, s.Protocol),
        _ => new FlowKey(0, s.DsField, s.DsMask),
    };

    public bool Contains(in FlowSpec s) => _table.ContainsKey(KeyOf(s));

    public void Add(Flow f)
    {
        _table.Add(KeyOf(f.Spec), f);
        if (LengthOf(f.Spec) is int l)
        {
            _lengthUse.TryGetValue(l, out int n);
            _lengthUse[l] = n + 1;
            if (n == 0) RebuildLengths();
        }
    }

    public void Remove(Flow f)
    {
        _table.Remove(KeyOf(f.Spec));
        if (LengthOf(f.Spec) is int l && --_lengthUse[l] == 0)
        {
            _lengthUse.Remove(l);
            RebuildLengths();
        }
    }

    /// <summary>How many flows use each prefix length or mask: the probe list changes only when a count
    /// goes to or from zero, so adding the 10,000th flow costs what adding the first did.</summary>
    private readonly Dictionary<int, int> _lengthUse = new();

    private int? LengthOf(in FlowSpec s) => Type switch
    {
        FlowType.LocalIp or FlowType.RemoteIp => s.Prefix | (s.Address.IsV4 ? 0x1000 : 0),
        FlowType.DsField => s.DsMask,
        _ => null,
    };

    private void RebuildLengths()
    {
        var list = new List<int>(_lengthUse.Keys);
        list.Sort((a, b) => (b & 0xFFF).CompareTo(a & 0xFFF)); // longest prefix (or widest mask) first
        _lengths = [.. list];
    }

    public static IpAddress Mask(IpAddress a, int prefix)
    {
        if (a.IsV4)
        {
            uint m = prefix >= 32 ? 0xFFFFFFFF : prefix <= 0 ? 0 : ~(0xFFFFFFFFu >> prefix);
            return IpAddress.V4(a.V4Raw & m);
        }
        ulong mh = prefix >= 64 ? ulong.MaxValue : prefix <= 0 ? 0 : ~(ulong.MaxValue >> prefix);
        ulong ml = prefix >= 128 ? ulong.MaxValue : prefix <= 64 ? 0 : ~(ulong.MaxValue >> (prefix - 64));
        return IpAddress.V6(a.High & mh, a.Low & ml);
    }

    /// <summary>The flow a frame belongs to, or null for the link's default flow. <paramref name="transmit"/>
    /// says which end is local: the source on transmit, the destination on receive.</summary>
    public Flow? Classify(ReadOnlySpan<byte> frame, bool transmit)
    {
        if (frame.Length < EthernetView.HeaderLength) return null;
        ushort type = BinaryPrimitives.ReadUInt16BigEndian(frame[12..]);
        var l3 = frame[EthernetView.HeaderLength..];
        IpAddress src, dst;
        byte proto, tos;
        bool fragment;
        ReadOnlySpan<byte> l4;
        if (type == EtherType.Ipv4)
        {
            if (l3.Length < Ipv4View.MinHeaderLength || (l3[0] >> 4) != 4) return null;
            int ihl = (l3[0] & 0xF) * 4;
            if (ihl < Ipv4View.MinHeaderLength || ihl > l3.Length) return null;
            tos = l3[1];
            proto = l3[9];
            fragment = (BinaryPrimitives.ReadUInt16BigEndian(l3[6..]) & 0x3FFF) != 0;
            src = IpAddress.V4(BinaryPrimitives.ReadUInt32BigEndian(l3[12..]));
            dst = IpAddress.V4(BinaryPrimitives.ReadUInt32BigEndian(l3[16..]));
            l4 = l3[ihl..];
        }
        else if (type == EtherType.Ipv6)
        {
            if (l3.Length < Ipv6View.HeaderLength || (l3[0] >> 4) != 6) return null;
            tos = (byte)((BinaryPrimitives.ReadUInt16BigEndian(l3) >> 4) & 0xFF);
            proto = l3[6];
            fragment = proto == 44;
            src = IpAddress.Read(l3[8..], v4: false);
            dst = IpAddress.Read(l3[24..], v4: false);
            l4 = l3[Ipv6View.HeaderLength..];
        }
        else return null;

        Flow? f;
        switch (Type)
        {
            case FlowType.LocalIp:
            case FlowType.RemoteIp:
                {
                    var a = (Type == FlowType.LocalIp) == transmit ? src : dst;
                    int family = a.IsV4 ? 0x1000 : 0;
                    foreach (int l in _lengths)
                    {
                        if ((l & 0x1000) != family) continue;
                        var m = Mask(a, l & 0xFFF);
                        if (_table.TryGetValue(new FlowKey(m.High, m.Low, l), out f)) return f;
                    }
                    return null;
                }
            case FlowType.Transport:
                return _table.TryGetValue(new FlowKey(0, 0, proto), out f) ? f : null;
            case FlowType.LocalPort:
            case FlowType.RemotePort:
                {
                    if (fragment || l4.Length < 4 || proto is not (IpProtocol.Tcp or IpProtocol.Udp or IpProtocol.Sctp)) return null;
                    bool wantSource = (Type == FlowType.LocalPort) == transmit;
                    ushort port = BinaryPrimitives.ReadUInt16BigEndian(wantSource ? l4 : l4[2..]);
                    return _table.TryGetValue(new FlowKey(0, port, proto), out f) ? f : null;
                }
            default:
                foreach (int mask in _lengths)
                    if (_table.TryGetValue(new FlowKey(0, (ulong)(tos & mask), mask), out f)) return f;
                return null;
        }
    }
}
