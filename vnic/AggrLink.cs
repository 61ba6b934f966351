/*
 * Link aggregation: illumos's aggr driver (usr/src/uts/common/io/aggr/) and IEEE 802.1AX-2008.
 *
 * An aggregation (dladm create-aggr) joins physical NICs, its ports, into one link. It is a MAC
 * provider as a NIC is: an UplinkLink whose switch holds its own primary port and the VNICs and
 * VLANs created over it, and whose way out of the host is its ports instead of one wire.
 *
 * Glossary
 *   port          a phys NIC in the aggregation (AggrPort). While aggregated it carries no VNICs
 *                 or VLANs of its own (refused: link busy) and every frame from its wire goes to the
 *                 aggregation (PhysLink.ReceiveFromWire hands it over).
 *   distributing  a port the aggregation may transmit on. With LACP off (static aggregation) a port
 *                 distributes while its link is up; with LACP active or passive only while its mux
 *                 machine is in COLLECTING_DISTRIBUTING, that is, in sync with the partner.
 *   policy        which header fields choose the port of a frame (-P): L2 the MAC addresses, L3 the
 *                 IP addresses, L4 the TCP/UDP ports, or any combination. A flow (the same fields)
 *                 always leaves by the same port, so its frames stay in order.
 *   address       the aggregation's MAC address: the one given with -u (fixed), else the address of
 *                 its first port (auto), which changes when that port is removed.
 *
 * Data path
 *   transmit:  VSwitch (unknown unicast, floods) -> AggrLink.SendToWire (counts, taps) -> hash of the
 *              policy's fields over the distributing ports -> that port's PhysLink.SendToWire.
 *   receive:   wire -> PhysLink.ReceiveFromWire (the port's counters) -> AggrPort.ReceiveFromWire:
 *              an LACPDU goes to the port's LACP machines, a Marker PDU to its Marker Responder
 *              (AggrLacp.cs); any other frame, if the port is collecting, is counted on the
 *              aggregation and goes to its switch. Frames arrive from any port.
 *
 * Rules
 *   1. A frame that finds no distributing port, or arrives on a port that is not collecting, is
 *      dropped and counted (drop_link_down), never queued: when a port leaves, the frames in flight
 *      on it are the only loss, and the next frame of each flow hashes over the ports left.
 *   2. The distributing ports are an array rebuilt when a port's state changes (rare), so the
 *      per-frame path is a hash and an index, and allocates nothing.
 *   3. A port's link state (PhysLink.LinkStateChanged: a wire pulled, a TAP's Linux end down) is
 *      the 802.1AX port_enabled: down disables the port at once (it stops distributing and
 *      collecting); up lets LACP negotiate again, or, static, distribute again.
 *   4. Configuration (MacLayer.Aggr.cs) is checked whole before anything changes, as for the other
 *      link classes (MacLayer.cs rule 5).
 */
using System.Buffers.Binary;
using SmartOS.Kernel;
using SmartOS.Kernel.Wire;

namespace SmartOS.Vnic;

/// <summary>Which header fields the transmit hash reads (dladm -P); any combination.</summary>
[Flags]
public enum AggrPolicy { L2 = 1, L3 = 2, L4 = 4 }

/// <summary>dladm -L: no LACP (a static aggregation), or LACP that starts negotiating or only answers.</summary>
public enum LacpMode { Off, Active, Passive }

/// <summary>dladm -T: the LACP timeout the actor asks of its partner: short (1 s periodic, 3 s
/// timeout) or long (30 s, 90 s).</summary>
public enum LacpTimer { Short, Long }

/// <summary>An aggregation of physical NICs (the theory statement above).</summary>
public sealed class AggrLink : UplinkLink
{
    private readonly List<AggrPort> _ports = [];
    private AggrPort[] _distributing = [];

    internal AggrLink(MacLayer mac, string name, int linkId, ushort key, AggrPolicy policy, LacpMode mode, LacpTimer timer, MacAddress? fixedAddress)
        : base(mac, name, linkId)
    {
        Key = key;
        Policy = policy;
        Mode = mode;
        Timer = timer;
        FixedAddress = fixedAddress;
        CountsClientTraffic = false; // counted where frames leave and arrive, as a NIC's are
        if (fixedAddress is { } f) MacAddress = f;
        Switch = new VSwitch(this);
    }

    public override LinkClass Class => LinkClass.Aggr;

    /// <summary>The LACP key of the aggregation's ports (802.1AX actor key).</summary>
    public ushort Key { get; }
    public AggrPolicy Policy { get; internal set; }
    public LacpMode Mode { get; private set; }
    public LacpTimer Timer { get; private set; }

    /// <summary>The address given with -u, or null when the address follows the first port (auto).</summary>
    public MacAddress? FixedAddress { get; internal set; }

    /// <summary>The ports in the order they were added.</summary>
    public IReadOnlyList<AggrPort> Ports => _ports;

    /// <summary>The ports frames are transmitted on now, in port order.</summary>
    public IReadOnlyList<AggrPort> Distributing => _distributing;

    /// <summary>"up" while a port distributes.</summary>
    public override string State => _distributing.Length > 0 ? "up" : "down";

    /// <summary>The sum of the distributing ports' speeds, as illumos reports an aggregation's.</summary>
    public override long SpeedMbps
    {
        get
        {
            long sum = 0;
            foreach (var p in _distributing) sum += p.Phys.SpeedMbps;
            return sum;
        }
    }

    public override string Duplex => _distributing.Length > 0 ? "full" : "unknown";

    /// <summary>Raised when the set of distributing ports changes (a port joined or left).</summary>
    public event Action<AggrLink>? DistributionChanged;

    internal void AddPort(AggrPort port) => _ports.Add(port);

    internal void RemovePort(AggrPort port)
    {
        _ports.Remove(port);
        RebuildDistribution();
    }

    /// <summary>Changes the LACP mode or timer of every port (modify-aggr): the machines start again.</summary>
    internal void SetLacp(LacpMode mode, LacpTimer timer)
    {
        Mode = mode;
        Timer = timer;
        foreach (var p in _ports) p.Lacp.Begin();
        RebuildDistribution();
    }

    /// <summary>The selection logic (802.1AX 5.4.14) for one port, with one aggregator per aggregation:
    /// the aggregator's partner is that of the first port (in port order) that hears an aggregatable
    /// partner; a port is selected while it hears that same partner (system and key). A port that
    /// update_Selected unselected is selected again only once its mux has detached, so the mux sees
    /// the change. Returns whether the port's selection changed.</summary>
    internal bool Select(AggrPort port)
    {
        if (Mode == LacpMode.Off) return false;
        LacpInfo? chosen = null;
        foreach (var p in _ports)
        {
            if (Heard(p))
            {
                chosen = p.Lacp.Partner;
                break;
            }
        }
        var l = port.Lacp;
        bool eligible = Heard(port) && chosen is { } c && c.SystemPriority == l.Partner.SystemPriority
            && c.System == l.Partner.System && c.Key == l.Partner.Key;
        if (l.Selected == AggrLacp.Selection.Selected && !eligible)
        {
            l.Selected = AggrLacp.Selection.Unselected;
            return true;
        }
        if (l.Selected == AggrLacp.Selection.Unselected && eligible && l.Mux == AggrLacp.MuxState.Detached)
        {
            l.Selected = AggrLacp.Selection.Selected;
            return true;
        }
        return false;
    }

    /// <summary>Whether the port hears a partner that aggregates (CURRENT, or EXPIRED with its record).</summary>
    private static bool Heard(AggrPort p)
        => p.PortEnabled && p.Lacp.Rx is AggrLacp.RxState.Current or AggrLacp.RxState.Expired
            && (p.Lacp.Partner.State & LacpState.Aggregation) != 0;

    /// <summary>Rule 2: the distributing ports as an array, rebuilt only when one changes.</summary>
    internal void RebuildDistribution()
    {
        int n = 0;
        foreach (var p in _ports) if (p.IsDistributing) n++;
        if (n == _distributing.Length)
        {
            bool same = true;
            int i = 0;
            foreach (var p in _ports) if (p.IsDistributing && _distributing[i++] != p) same = false;
            if (same) return;
        }
        var d = new AggrPort[n];
        n = 0;
        foreach (var p in _ports) if (p.IsDistributing) d[n++] = p;
        bool wasUp = _distributing.Length > 0;
        _distributing = d;
        // A bridge port over the aggregation is up while a port distributes (Bridge.cs).
        if (wasUp != (d.Length > 0) && Switch.Bridged is { } bp) bp.Bridge.LinkStateChanged(bp);
        DistributionChanged?.Invoke(this);
    }

    /// <summary>Transmit: counts and taps on the aggregation, then the port the policy's hash picks
    /// among the distributing ones (rule 1 when there is none). Consumes the packet.</summary>
    internal override void SendToWire(Packet p)
    {
        var s = Stats;
        var ports = _distributing;
        if (ports.Length == 0)
        {
            s.DropLinkDown++;
            p.Free();
            return;
        }
        CountTx(s, p, MacAddress.Read(p.Data));
        Tap(p, TapDirection.Transmitted, showTag: false);
        var port = ports.Length == 1 ? ports[0] : ports[(int)(Hash(p.Data, Policy) % (uint)ports.Length)];
        port.OutPackets++;
        port.Phys.SendToWire(p);
    }

    /// <summary>A frame a collecting port received: counted and tapped on the aggregation, then its
    /// switch. Consumes the packet.</summary>
    internal void ReceiveFromPort(Packet p)
    {
        CountRx(Stats, p, MacAddress.Read(p.Data));
        Tap(p, TapDirection.Received, showTag: false);
        if (Switch.Bridged is { } bp)
        {
            bp.Bridge.Input(bp, p); // a bridged aggregation's frames are the bridge's (Bridge.cs)
            return;
        }
        Switch.ForwardFromUplink(p);
    }

    /// <summary>The transmit hash (rule 2: no allocation): FNV-1a over the fields the policy names,
    /// read from an untagged frame (the VLAN travels as Packet.Vid). Fields a frame lacks (no IP, no
    /// TCP/UDP) count as absent, so ARP under L3 hashes to one port, as illumos's hash does.</summary>
    public static uint Hash(ReadOnlySpan<byte> frame, AggrPolicy policy)
    {
        uint h = 2166136261;
        if (frame.Length < EthernetView.HeaderLength) return Finish(h);
        if ((policy & AggrPolicy.L2) != 0) h = Mix(h, frame[..12]);
        if ((policy & (AggrPolicy.L3 | AggrPolicy.L4)) == 0) return Finish(h);
        ushort type = BinaryPrimitives.ReadUInt16BigEndian(frame[12..]);
        var ip = frame[EthernetView.HeaderLength..];
        ReadOnlySpan<byte> addresses, transport;
        byte proto;
        if (type == EtherType.Ipv4 && ip.Length >= Ipv4View.MinHeaderLength && (ip[0] >> 4) == 4)
        {
            int ihl = (ip[0] & 0xF) * 4;
            if (ihl < Ipv4View.MinHeaderLength || ip.Length < ihl) return Finish(h);
            addresses = ip.Slice(12, 8);
            proto = ip[9];
            // Only a first fragment carries the ports; later ones hash on addresses alone.
            bool first = (BinaryPrimitives.ReadUInt16BigEndian(ip[6..]) & 0x1FFF) == 0;
            transport = first ? ip[ihl..] : default;
        }
        else if (type == EtherType.Ipv6 && ip.Length >= Ipv6View.HeaderLength)
        {
            addresses = ip.Slice(8, 32);
            proto = ip[6];
            transport = ip[Ipv6View.HeaderLength..];
        }
        else return Finish(h);
        if ((policy & AggrPolicy.L3) != 0) h = Mix(h, addresses);
        if ((policy & AggrPolicy.L4) != 0 && proto is 6 or 17 && transport.Length >= 4) h = Mix(h, transport[..4]);
        return Finish(h);
    }

    /// <summary>FNV's low bits are only the XOR of its input's low bits, and the port is chosen by a
    /// modulus: an avalanche step (lowbias32) lets every input bit reach them.</summary>
    private static uint Finish(uint h)
    {
        h ^= h >> 16;
        h *= 0x7feb352d;
        h ^= h >> 15;
        h *= 0x846ca68b;
        return h ^ (h >> 16);
    }

    private static uint Mix(uint h, ReadOnlySpan<byte> bytes)
    {
        foreach (byte b in bytes) h = (h ^ b) * 16777619;
        return h;
    }
}

/// <summary>One NIC of an aggregation: its place in the distribution and its LACP machines.</summary>
public sealed class AggrPort
{
    internal AggrPort(AggrLink aggr, PhysLink phys, ushort number)
    {
        Aggr = aggr;
        Phys = phys;
        Number = number;
        Lacp = new AggrLacp(this);
    }

    public AggrLink Aggr { get; }
    public PhysLink Phys { get; }

    /// <summary>The 802.1AX port number (unique in the aggregation, from 1).</summary>
    public ushort Number { get; }

    /// <summary>The port's LACP state (AggrLacp.cs).</summary>
    public AggrLacp Lacp { get; }

    /// <summary>Frames the aggregation put on this port and took from it (show-aggr -s distribution).</summary>
    public long OutPackets, InPackets;

    /// <summary>Whether the aggregation transmits on this port: static, while its link is up; with LACP,
    /// while in sync with the partner (mux COLLECTING_DISTRIBUTING).</summary>
    public bool IsDistributing => Aggr.Mode == LacpMode.Off ? PortEnabled : Lacp.Distributing;

    /// <summary>Whether frames from this port are taken in.</summary>
    public bool IsCollecting => Aggr.Mode == LacpMode.Off ? PortEnabled : Lacp.Collecting;

    /// <summary>802.1AX port_enabled: the NIC has a backend and its link is up.</summary>
    public bool PortEnabled => Phys.Backend != null && Phys.Carrier;

    /// <summary>"attached" while distributing, else "standby" (show-aggr -x PORTSTATE).</summary>
    public string PortState => IsDistributing ? "attached" : "standby";

    internal void Attach()
    {
        Phys.AggrPort = this;
        Phys.LinkStateChanged += OnLinkState;
        Lacp.Begin();
        Aggr.RebuildDistribution();
    }

    internal void Detach()
    {
        Lacp.Stop();
        Phys.LinkStateChanged -= OnLinkState;
        Phys.AggrPort = null;
    }

    /// <summary>Rule 3: the NIC's link changed.</summary>
    private void OnLinkState(PhysLink phys)
    {
        Lacp.PortEnabledChanged();
        Aggr.RebuildDistribution();
    }

    /// <summary>A frame from the port's wire (already counted on the NIC). Consumes the packet.</summary>
    internal void ReceiveFromWire(Packet p)
    {
        if (LacpPdu.IsSlowProtocol(p.Data))
        {
            Lacp.Receive(p.Data);
            p.Free();
            return;
        }
        if (!IsCollecting)
        {
            Phys.Stats.DropLinkDown++; // rule 1
            p.Free();
            return;
        }
        InPackets++;
        Aggr.ReceiveFromPort(p);
    }
}
