/*
 * Bridges: dladm's bridge link class (illumos usr/src/uts/common/io/bridge.c, libdlbridge, bridged).
 *
 * A bridge joins several datalinks into one broadcast domain, as a learning Ethernet switch between
 * their wires, and runs the spanning tree protocol on them so that a loop of bridges never carries
 * a frame around forever.
 *
 * Glossary
 *   bridge      a named object (dladm create-bridge NAME) with its settings: priority, max age,
 *               hello time, forward delay, force protocol. It is not a datalink itself; its
 *               observability link NAME0 (class "bridge") is, and snoop on it sees every data frame
 *               the bridge forwards.
 *   port        one link of the bridge (BridgePort): a phys (its wire), an aggregation (its ports,
 *               as one wire: up while one distributes) or an etherstub (no wire), the classes
 *               libdlbridge lets a bridge have; VNICs, VLANs and the bridge's own link are refused, as
 *               dladm refuses them ("vnic vnic0 cannot be bridged"), and so is an aggregation's port
 *               (its frames are the aggregation's). Each port has an STP state; only its wire side
 *               obeys it (rule 3). Its priority, path cost and whether it is in the tree at all
 *               are the link's stp_priority, stp_cost and stp properties (MacLayer.Bridge.cs).
 *   local side  the virtual switch of each port's link, with its VNICs and the phys's own primary
 *               port. The bridge treats all local sides as one: a VNIC over e1000g0 and one over
 *               e1000g1 of the same bridge are in one broadcast domain.
 *   FDB         the forwarding database: (VLAN, source MAC) -> the port a frame from it came in on,
 *               with the virtual time last seen; an entry older than the ageing time (300 s, or the
 *               forward delay while the topology is changing: 802.1D 8.3.5) is ignored and swept.
 *
 * Data path
 *   wire rx:  PhysLink.ReceiveFromWire or AggrLink.ReceiveFromPort -> Bridge.Input(port): a BPDU goes to the spanning tree
 *             (BridgeStp.cs); other reserved 01:80:c2:00:00:0x frames are dropped; a frame on a port
 *             that is not learning or forwarding is dropped; the source is learned; on a forwarding
 *             port the frame goes to every local side (group), to the local port with its address,
 *             to the port the FDB names, or out of every other forwarding wire (group, unknown).
 *   local tx: VSwitch.Forward, for a frame its switch does not deliver itself (group, or unicast to
 *             no local port) -> Bridge.FromLocal(port): the other local sides, then the FDB's wire
 *             or every forwarding wire, the sender's own wire included.
 *
 * Rules
 *   1. A frame never goes back out of the wire it came in on; unicast whose FDB port is the port
 *      it came in on is filtered (counted as a drop).
 *   2. Group frames are copied once per receiver (MacLayer.cs rule 6); the original goes to the last.
 *   3. Port states govern wires only: a blocked port's wire neither sends nor receives data frames,
 *      but its link's local side stays part of the bridge (it is this host, not a segment).
 *   4. Every drop is counted: per bridge (show-bridge -s DROPS) and per port (show-bridge -l -s).
 *   5. Nothing on the data path allocates in steady state: the ports are an array rebuilt on change,
 *      a known source refreshes its FDB entry in place.
 *
 * Spanning tree: IEEE 802.1D-1998 clause 8 (classic STP), not the RSTP of 802.1D-2004 that
 * illumos's bridged runs through librstp. Classic STP is what Linux's bridge runs, so the two
 * interoperate, and its timers make convergence easy to hold against the standard (two forward
 * delays from blocking to forwarding). FORCEPROTO is therefore 0 (STP); a request for RSTP (2) is
 * refused, not silently accepted. TRILL is refused.
 *
 * A port whose link has stp=0 is outside the tree: it forwards while its link is up, sends no BPDU
 * and heeds none (BridgeStp.cs InTree); a loop through it is the administrator's to avoid.
 *
 * Not done: TRILL, RSTP, and the link properties forward, and stp_edge, stp_p2p and stp_mcheck
 * (RSTP's edge, point-to-point and migration check, which 802.1D-1998 STP has no use for): they
 * are listed read-only and refused when set, never accepted and ignored.
 */
using SmartOS.Kernel;
using SmartOS.Kernel.Wire;

namespace SmartOS.Vnic;

/// <summary>A bridge's settings (dladm create-bridge/modify-bridge), in illumos's units: seconds for
/// the timers, the priority already masked to its upper 4 bits.</summary>
public readonly record struct BridgeConfig(int Priority, int MaxAge, int HelloTime, int ForwardDelay, int ForceProtocol)
{
    public const int DefaultPriority = 32768, MinPriority = 0, MaxPriority = 61440;
    public const int DefaultHelloTime = 2, MinHelloTime = 1, MaxHelloTime = 10;
    public const int DefaultMaxAge = 20, MinMaxAge = 6, MaxMaxAge = 40;
    public const int DefaultForwardDelay = 15, MinForwardDelay = 4, MaxForwardDelay = 30;
    /// <summary>The protocol this bridge runs: 0, 802.1D STP (illumos's default, 2, is RSTP).</summary>
    public const int StpProtocol = 0;
    /// <summary>The hold time, 802.1D-1998 table 8-3: at most one config BPDU a second per port.</summary>
    public const int HoldTime = 1;

    public static readonly BridgeConfig Default = new(DefaultPriority, DefaultMaxAge, DefaultHelloTime, DefaultForwardDelay, StpProtocol);

    /// <summary>Whether each value is in its range and the three timers meet 802.1D's relations
    /// (libdlbridge's CHECK_BRIDGE_CONFIG): 2 x (forward delay - 1) >= max age >= 2 x (hello + 1).</summary>
    public bool IsValid =>
        Priority is >= MinPriority and <= MaxPriority && (Priority & 0x0FFF) == 0 &&
        MaxAge is >= MinMaxAge and <= MaxMaxAge && HelloTime is >= MinHelloTime and <= MaxHelloTime &&
        ForwardDelay is >= MinForwardDelay and <= MaxForwardDelay && ForceProtocol == StpProtocol &&
        TimersConsistent;

    public bool TimersConsistent => 2 * (ForwardDelay - 1) >= MaxAge && MaxAge >= 2 * (HelloTime + 1);
}

/// <summary>The spanning-tree state of a port (802.1D-1998 8.4), as show-bridge -l prints it.</summary>
public enum StpPortState { Disabled, Blocking, Listening, Learning, Forwarding }

/// <summary>The bridge's observability link NAME0 (dladm class "bridge"): taps see every data frame
/// the bridge forwards.</summary>
public sealed class BridgeLink : Datalink
{
    internal BridgeLink(MacLayer mac, string name, int linkId, Bridge bridge) : base(mac, name, linkId)
    {
        Bridge = bridge;
    }

    public Bridge Bridge { get; }
    public override LinkClass Class => LinkClass.Bridge;
    public override string State => "unknown";
    public override long SpeedMbps => 0;

    internal void Observe(Packet p)
    {
        CountRx(Stats, p, MacAddress.Read(p.Data));
        Tap(p, TapDirection.Forwarded, showTag: true);
    }
}

/// <summary>One link of a bridge with its spanning-tree port variables (802.1D-1998 8.5.5).</summary>
public sealed class BridgePort
{
    internal BridgePort(Bridge bridge, Datalink link, VSwitch sw, int number)
    {
        Bridge = bridge;
        Link = link;
        Switch = sw;
        Uplink = link as UplinkLink;
        Number = number;
        var sched = bridge.Mac.Scheduler;
        MessageAgeTimer = new KTimer(sched, static s => ((BridgePort)s!).Bridge.MessageAgeExpired((BridgePort)s), this);
        ForwardDelayTimer = new KTimer(sched, static s => ((BridgePort)s!).Bridge.ForwardDelayExpired((BridgePort)s), this);
        HoldTimer = new KTimer(sched, static s => ((BridgePort)s!).Bridge.HoldExpired((BridgePort)s), this);
    }

    public Bridge Bridge { get; }
    public Datalink Link { get; }
    internal VSwitch Switch { get; }
    /// <summary>The link's way out of the host (a phys's wire, an aggregation's ports), or null for
    /// an etherstub.</summary>
    internal UplinkLink? Uplink { get; }
    /// <summary>The port number (show-bridge -l INDEX), 1 upwards in the order links joined.</summary>
    public int Number { get; internal set; }
    /// <summary>stp_priority's default and largest value (802.1D-1998 8.5.5.1: one octet).</summary>
    public const int DefaultPriority = 128, MaxPriority = 255;
    /// <summary>stp_cost's range: 802.1D-1998's path cost is 16 bits (8.5.5.3).</summary>
    public const int MinCost = 1, MaxCost = 65535;

    /// <summary>Port identifier: the link's stp_priority (128 by default) in the high octet, the port
    /// number in the low (9.2.7).</summary>
    public ushort PortId => (ushort)((Link.StpPriority << 8) | (Number & 0xFF));

    public StpPortState State { get; internal set; } = StpPortState.Disabled;
    internal long StateSince;
    /// <summary>When the port was last enabled (show-bridge -l UPTIME).</summary>
    public long UpSince { get; internal set; }
    /// <summary>Path cost from the link's speed, 802.1D-1998 table 8-5 (as Linux's bridge uses it).</summary>
    public uint PathCost => Link.StpCost != 0 ? (uint)Link.StpCost : Uplink == null ? 100 : Bridge.CostForSpeed(Uplink.SpeedMbps);
    public BridgeId DesignatedRoot { get; internal set; }
    public uint DesignatedCost { get; internal set; }
    public BridgeId DesignatedBridge { get; internal set; }
    public ushort DesignatedPort { get; internal set; }
    public bool TopologyChangeAck { get; internal set; }
    internal bool ConfigPending;
    // The message age the designated bridge's BPDU carried, and when it was recorded (8.6.2.3).
    internal ushort RecordedMessageAge;
    internal long RecordedAt;

    internal readonly KTimer MessageAgeTimer, ForwardDelayTimer, HoldTimer;

    /// <summary>Whether the link can carry frames: an etherstub always, a phys while it has a wire
    /// with carrier, an aggregation while a port distributes.</summary>
    public bool IsUp => Uplink switch
    {
        null => true,
        PhysLink p => p.Backend != null && p.Carrier,
        AggrLink a => a.Distributing.Count > 0,
        _ => false,
    };

    // show-bridge -l -s: BPDUs by kind, BPDUs sent, and data frames dropped, received and sent.
    public long RxConfigBpdus, RxTcnBpdus, RxRstBpdus, TxBpdus, Drops, Recv, Xmit;
}

/// <summary>A bridge (see the theory statement above); the spanning tree is in BridgeStp.cs.</summary>
public sealed partial class Bridge
{
    /// <summary>FDB ageing time outside topology changes (802.1D table 7-5's default, 300 s).</summary>
    public const long AgeingTime = 300 * Time.Second;

    private sealed class FdbEntry(BridgePort port, long lastSeen)
    {
        public BridgePort Port = port;
        public long LastSeen = lastSeen;
    }

    private readonly Dictionary<ulong, FdbEntry> _fdb = new();
    private readonly List<BridgePort> _portList = [];
    private BridgePort[] _ports = [];
    private readonly MacAddress _fallbackAddress;

    internal Bridge(MacLayer mac, string name, BridgeConfig config, MacAddress fallbackAddress)
    {
        Mac = mac;
        Name = name;
        Config = config;
        _fallbackAddress = fallbackAddress;
        HelloTimer = new KTimer(mac.Scheduler, static s => ((Bridge)s!).HelloExpired(), this);
        TcnTimer = new KTimer(mac.Scheduler, static s => ((Bridge)s!).TcnExpired(), this);
        TopologyChangeTimer = new KTimer(mac.Scheduler, static s => ((Bridge)s!).TopologyChangeExpired(), this);
        SweepTimer = new KTimer(mac.Scheduler, static s => ((Bridge)s!).Sweep(), this);
    }

    public MacLayer Mac { get; }
    public string Name { get; }
    public BridgeConfig Config { get; private set; }
    /// <summary>The observability link NAME0.</summary>
    public BridgeLink Link { get; internal set; } = null!;
    public IReadOnlyList<BridgePort> Ports => _portList;

    // show-bridge -s: frames dropped, forwarded to a known port, flooded as group, flooded as
    // unknown unicast, received from links and sent to links.
    public long Drops, ForwardDirect, ForwardMbcast, ForwardUnknown, Received, Sent;

    public BridgePort? PortOf(Datalink link)
    {
        foreach (var p in _ports) if (p.Link == link) return p;
        return null;
    }

    /// <summary>802.1D-1998 table 8-5's recommended path cost for a link speed.</summary>
    internal static uint CostForSpeed(long mbps) => mbps switch
    {
        >= 10_000 => 2,
        >= 1_000 => 4,
        >= 100 => 19,
        _ => 100,
    };

    internal void AddPort(Datalink link, VSwitch sw)
    {
        var port = new BridgePort(this, link, sw, _portList.Count + 1);
        _portList.Add(port);
        _ports = _portList.ToArray();
        sw.Bridged = port;
        RecomputeBridgeId();
        StpPortAdded(port);
    }

    internal void RemovePort(BridgePort port)
    {
        StpPortRemoved(port);
        port.Switch.Bridged = null;
        _portList.Remove(port);
        for (int i = 0; i < _portList.Count; i++) _portList[i].Number = i + 1;
        _ports = _portList.ToArray();
        FlushPort(port);
        RecomputeBridgeId();
    }

    internal void Reconfigure(BridgeConfig config)
    {
        Config = config;
        RecomputeBridgeId(force: true);
    }

    // ---- data path -------------------------------------------------------------------------

    /// <summary>A frame from a port's wire (tag already in p.Vid). Consumes it.</summary>
    internal void Input(BridgePort port, Packet p)
    {
        var data = p.Data;
        var dst = MacAddress.Read(data);
        if (Bpdu.IsReserved(dst))
        {
            if (dst == Bpdu.GroupAddress) ReceiveBpdu(port, data);
            else CountDrop(port);
            p.Free();
            return;
        }
        port.Recv++;
        if (port.State is not (StpPortState.Learning or StpPortState.Forwarding))
        {
            CountDrop(port, p);
            return;
        }
        var src = MacAddress.Read(data[6..]);
        if (!src.IsGroup) Learn(src, p.Vid, port);
        if (port.State != StpPortState.Forwarding)
        {
            CountDrop(port, p);
            return;
        }
        Received++;
        Link.Observe(p);
        if (dst.IsGroup)
        {
            ForwardMbcast++;
            Flood(p, wireExcept: port, localExcept: null, toLocal: true);
            return;
        }
        if (DeliverLocal(p, dst, except: null)) return;
        var to = Lookup(dst, p.Vid);
        if (to == port)
        {
            CountDrop(port, p); // rule 1: the destination is on the segment the frame came from
            return;
        }
        if (to != null)
        {
            SendOnWire(to, p);
            return;
        }
        ForwardUnknown++;
        Flood(p, wireExcept: port, localExcept: null, toLocal: false);
    }

    /// <summary>A frame from a client on a port's local side that its own switch did not deliver
    /// (group frames it has already flooded locally; unicast to no local port). Consumes it.</summary>
    internal void FromLocal(BridgePort port, Packet p)
    {
        var dst = MacAddress.Read(p.Data);
        Received++;
        Link.Observe(p);
        if (dst.IsGroup)
        {
            ForwardMbcast++;
            Flood(p, wireExcept: null, localExcept: port, toLocal: true);
            return;
        }
        if (DeliverLocal(p, dst, except: port)) return;
        var to = Lookup(dst, p.Vid);
        if (to != null)
        {
            SendOnWire(to, p);
            return;
        }
        ForwardUnknown++;
        Flood(p, wireExcept: null, localExcept: null, toLocal: false);
    }

    /// <summary>Delivers unicast to the local port that has the address on another port's link.</summary>
    private bool DeliverLocal(Packet p, MacAddress dst, BridgePort? except)
    {
        foreach (var q in _ports)
        {
            if (q == except || q.Switch.PortWith(dst, p.Vid) == null) continue;
            ForwardDirect++;
            Sent++;
            q.Switch.ForwardFromUplink(p);
            return true;
        }
        return false;
    }

    private void SendOnWire(BridgePort to, Packet p)
    {
        if (to.State != StpPortState.Forwarding || !to.IsUp)
        {
            CountDrop(to, p);
            return;
        }
        ForwardDirect++;
        Sent++;
        to.Xmit++;
        to.Uplink!.SendToWire(p);
    }

    /// <summary>Sends a frame to every local side but <paramref name="localExcept"/>'s (when
    /// <paramref name="toLocal"/>) and out of every forwarding wire but <paramref name="wireExcept"/>'s,
    /// one copy each (rule 2).</summary>
    private void Flood(Packet p, BridgePort? wireExcept, BridgePort? localExcept, bool toLocal)
    {
        BridgePort? last = null;
        bool lastWire = false;
        foreach (var q in _ports)
        {
            if (toLocal && q != localExcept && q.Switch.HasVlan(p.Vid))
            {
                if (last != null) Emit(p.Clone(), last, lastWire);
                last = q;
                lastWire = false;
            }
            if (q != wireExcept && q.Uplink != null && q.State == StpPortState.Forwarding && q.IsUp)
            {
                if (last != null) Emit(p.Clone(), last, lastWire);
                last = q;
                lastWire = true;
            }
        }
        if (last != null) Emit(p, last, lastWire);
        else p.Free();
    }

    private void Emit(Packet? p, BridgePort to, bool wire)
    {
        if (p == null)
        {
            Drops++;
            return;
        }
        Sent++;
        if (!wire)
        {
            to.Switch.ForwardFromUplink(p);
            return;
        }
        to.Xmit++;
        to.Uplink!.SendToWire(p);
    }

    private void CountDrop(BridgePort port, Packet? p = null)
    {
        Drops++;
        port.Drops++;
        p?.Free();
    }

    // ---- forwarding database ---------------------------------------------------------------

    private static ulong Key(MacAddress mac, ushort vid) => ((ulong)vid << 48) | mac.Value;

    /// <summary>The ageing time now: the forward delay while a topology change is in progress
    /// (802.1D-1998 8.3.5), else 300 s.</summary>
    public long CurrentAgeingTime => TopologyChange ? ForwardDelayNs : AgeingTime;

    private void Learn(MacAddress src, ushort vid, BridgePort port)
    {
        long now = Mac.Scheduler.Now;
        if (_fdb.TryGetValue(Key(src, vid), out var e))
        {
            e.Port = port;
            e.LastSeen = now;
            return;
        }
        _fdb.Add(Key(src, vid), new FdbEntry(port, now));
        if (!SweepTimer.IsArmed) SweepTimer.ArmAt(now + CurrentAgeingTime);
    }

    private BridgePort? Lookup(MacAddress dst, ushort vid)
    {
        if (!_fdb.TryGetValue(Key(dst, vid), out var e)) return null;
        return Mac.Scheduler.Now - e.LastSeen <= CurrentAgeingTime ? e.Port : null;
    }

    private readonly KTimer SweepTimer;

    /// <summary>Removes aged entries, and runs again while any remain.</summary>
    private void Sweep()
    {
        long now = Mac.Scheduler.Now, age = CurrentAgeingTime;
        long oldest = long.MaxValue;
        List<ulong>? stale = null;
        foreach (var (key, e) in _fdb)
        {
            if (now - e.LastSeen > age) (stale ??= []).Add(key);
            else oldest = Math.Min(oldest, e.LastSeen);
        }
        if (stale != null) foreach (ulong k in stale) _fdb.Remove(k);
        if (oldest != long.MaxValue) SweepTimer.ArmAt(Math.Max(now + 1, oldest + age + 1));
    }

    private void FlushPort(BridgePort port)
    {
        List<ulong>? gone = null;
        foreach (var (key, e) in _fdb) if (e.Port == port) (gone ??= []).Add(key);
        if (gone != null) foreach (ulong k in gone) _fdb.Remove(k);
    }

    /// <summary>One show-bridge -f row: a destination, its age in milliseconds (null for a local
    /// address), and the link it is reached through.</summary>
    public readonly record struct FdbRow(MacAddress Destination, long? AgeMs, string Output);

    /// <summary>The forwarding table as show-bridge -f lists it: the local addresses of every port's
    /// link (flag L), then the learned entries that have not aged out, each sorted by address.</summary>
    public List<FdbRow> ForwardingTable()
    {
        var rows = new List<FdbRow>();
        var seen = new HashSet<ulong>();
        foreach (var q in _ports)
            foreach (var l in q.Switch.Ports)
                if (seen.Add(l.MacAddress.Value)) rows.Add(new FdbRow(l.MacAddress, null, q.Link.Name));
        rows.Sort((a, b) => a.Destination.CompareTo(b.Destination));
        long now = Mac.Scheduler.Now, age = CurrentAgeingTime;
        var learned = new List<FdbRow>();
        foreach (var (key, e) in _fdb)
        {
            if (now - e.LastSeen > age) continue;
            learned.Add(new FdbRow(new MacAddress(key & 0xFFFF_FFFF_FFFFUL), (now - e.LastSeen) / Time.Millisecond, e.Port.Link.Name));
        }
        learned.Sort((a, b) => a.Destination.CompareTo(b.Destination));
        rows.AddRange(learned);
        return rows;
    }
}
