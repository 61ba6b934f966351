using SmartOS.Kernel;
using SmartOS.Kernel.Wire;

namespace SmartOS.Vnic;

/// <summary>
/// The spanning tree of a bridge: IEEE 802.1D-1998 clause 8, its elements of procedure (8.6), the
/// operation on events (8.7) and management (8.8), with the names the standard gives them. Timers
/// are the host's KTimers in virtual time, each armed for its exact expiry rather than ticked once a
/// second. The comparisons follow the standard's priority vectors (the same order Linux's bridge
/// uses, so both pick the same root port and the same designated ports). Why classic STP and not
/// RSTP: Bridge.cs.
/// </summary>
public sealed partial class Bridge
{
    /// <summary>Added to a relayed BPDU's message age (8.6.1.3.2's overestimate): 1/256 s, the
    /// smallest unit, plus the time the information has been held.</summary>
    private const ushort MessageAgeIncrement = 1;

    public BridgeId BridgeId { get; private set; }
    public BridgeId DesignatedRoot { get; private set; }
    public uint RootPathCost { get; private set; }
    public BridgePort? RootPort { get; private set; }
    /// <summary>The timers in use (the root's, learned from its BPDUs), in 1/256 s as BPDUs carry them.</summary>
    public ushort MaxAge { get; private set; }
    public ushort HelloTime { get; private set; }
    public ushort ForwardDelay { get; private set; }
    public bool TopologyChange { get; private set; }
    public bool TopologyChangeDetected { get; private set; }
    public long TopologyChangeCount { get; private set; }
    /// <summary>When the last topology change was detected (virtual time), for TCTIME.</summary>
    public long LastTopologyChange { get; private set; }

    public bool IsRootBridge => DesignatedRoot == BridgeId;
    private long ForwardDelayNs => Bpdu.ToNs(ForwardDelay);
    private static ushort Units(int seconds) => (ushort)(seconds * Bpdu.TimerScale);

    private readonly KTimer HelloTimer, TcnTimer, TopologyChangeTimer;

    /// <summary>Fired on every port state change (tests and the benchmark watch convergence).</summary>
    public event Action<BridgePort, StpPortState>? PortStateChanged;

    /// <summary>The bridge identifier: the priority and the lowest address among the bridge's
    /// physical links (as Linux's bridge chooses), or an address drawn for the bridge when it has
    /// none. A change re-initialises the tree (8.8.1).</summary>
    private void RecomputeBridgeId(bool force = false)
    {
        MacAddress address = default;
        bool found = false;
        foreach (var p in _ports)
        {
            if (p.Uplink == null) continue;
            if (!found || p.Uplink.MacAddress.Value < address.Value) address = p.Uplink.MacAddress;
            found = true;
        }
        var id = new BridgeId((ushort)Config.Priority, found ? address : _fallbackAddress);
        if (!force && id == BridgeId && _initialised) return;
        BridgeId = id;
        Initialise();
    }

    private bool _initialised;

    /// <summary>8.8.1 Initialisation.</summary>
    private void Initialise()
    {
        _initialised = true;
        DesignatedRoot = BridgeId;
        RootPathCost = 0;
        RootPort = null;
        MaxAge = Units(Config.MaxAge);
        HelloTime = Units(Config.HelloTime);
        ForwardDelay = Units(Config.ForwardDelay);
        TopologyChangeDetected = false;
        TopologyChange = false;
        TcnTimer.Cancel();
        TopologyChangeTimer.Cancel();
        foreach (var p in _ports)
        {
            if (!p.Link.StpEnabled) SetState(p, p.IsUp ? StpPortState.Forwarding : StpPortState.Disabled);
            else if (p.IsUp) InitialisePort(p);
            else DisablePortState(p);
        }
        PortStateSelection();
        ConfigBpduGeneration();
        HelloTimer.ArmAfter(Bpdu.ToNs(HelloTime));
    }

    private void InitialisePort(BridgePort p)
    {
        p.UpSince = Mac.Scheduler.Now;
        BecomeDesignatedPort(p);
        SetState(p, StpPortState.Blocking);
        p.TopologyChangeAck = false;
        p.ConfigPending = false;
        p.MessageAgeTimer.Cancel();
        p.ForwardDelayTimer.Cancel();
        p.HoldTimer.Cancel();
    }

    private void DisablePortState(BridgePort p)
    {
        BecomeDesignatedPort(p);
        SetState(p, StpPortState.Disabled);
        p.TopologyChangeAck = false;
        p.ConfigPending = false;
        p.MessageAgeTimer.Cancel();
        p.ForwardDelayTimer.Cancel();
        p.HoldTimer.Cancel();
    }

    private void StpPortAdded(BridgePort port)
    {
        // RecomputeBridgeId has run: if the identifier changed, Initialise covered the new port.
        if (!port.Link.StpEnabled) SetState(port, port.IsUp ? StpPortState.Forwarding : StpPortState.Disabled);
        else if (port.State == StpPortState.Disabled && port.IsUp) EnablePort(port);
    }

    private void StpPortRemoved(BridgePort port)
    {
        if (!port.Link.StpEnabled) SetState(port, StpPortState.Disabled);
        else if (port.State != StpPortState.Disabled) DisablePort(port);
    }

    /// <summary>Whether the port takes part in the spanning tree now: enabled, and stp not off.</summary>
    private static bool InTree(BridgePort p) => p.State != StpPortState.Disabled && p.Link.StpEnabled;

    /// <summary>The stp property changed on a bridged link. Off: the port leaves the tree as a port
    /// disabled (8.8.3, the tree is computed without it), then forwards while its link is up. On: it
    /// joins as a port enabled (8.8.2), blocking, and listens and learns like any other.</summary>
    internal void StpEnabledChanged(BridgePort p)
    {
        if (!p.Link.StpEnabled)
        {
            if (p.State != StpPortState.Disabled) DisablePort(p);
            if (p.IsUp) SetState(p, StpPortState.Forwarding);
            return;
        }
        SetState(p, StpPortState.Disabled);
        FlushPort(p);
        if (p.IsUp) EnablePort(p);
    }

    /// <summary>8.8.4 Set Port Priority and 8.8.5 Set Path Cost (stp_priority, stp_cost changed on a
    /// bridged link): the port's identifier or cost is already the new one; a designated port keeps
    /// being designated under its new identifier, and the tree is computed again.</summary>
    internal void PortParametersChanged(BridgePort p, ushort oldPortId)
    {
        if (p.DesignatedBridge == BridgeId && p.DesignatedPort == oldPortId) p.DesignatedPort = p.PortId;
        ConfigurationUpdate();
        PortStateSelection();
    }

    /// <summary>A link went up or down (a wire attached or detached): 8.8.2 Enable Port or 8.8.3
    /// Disable Port.</summary>
    internal void LinkStateChanged(BridgePort port)
    {
        if (!port.Link.StpEnabled)
        {
            if (!port.IsUp) FlushPort(port);
            SetState(port, port.IsUp ? StpPortState.Forwarding : StpPortState.Disabled);
            return;
        }
        if (port.IsUp && port.State == StpPortState.Disabled) EnablePort(port);
        else if (!port.IsUp && port.State != StpPortState.Disabled) DisablePort(port);
    }

    /// <summary>8.8.2 Enable Port.</summary>
    private void EnablePort(BridgePort p)
    {
        InitialisePort(p);
        PortStateSelection();
    }

    /// <summary>8.8.3 Disable Port.</summary>
    private void DisablePort(BridgePort p)
    {
        bool wasRoot = IsRootBridge;
        DisablePortState(p);
        FlushPort(p);
        ConfigurationUpdate();
        PortStateSelection();
        if (IsRootBridge && !wasRoot) BecomeRootBridge();
    }

    private void SetState(BridgePort p, StpPortState state)
    {
        if (p.State == state) return;
        p.State = state;
        p.StateSince = Mac.Scheduler.Now;
        PortStateChanged?.Invoke(p, state);
    }

    private bool IsDesignatedPort(BridgePort p) => p.DesignatedBridge == BridgeId && p.DesignatedPort == p.PortId;

    // ---- 8.6 elements of procedure -----------------------------------------------------------

    /// <summary>8.6.1 Transmit Configuration BPDU (held back while the hold timer runs, 8.6.1.3.1).</summary>
    private void TransmitConfig(BridgePort p)
    {
        if (p.HoldTimer.IsArmed)
        {
            p.ConfigPending = true;
            return;
        }
        ushort age = 0;
        if (!IsRootBridge && RootPort is { } rp)
        {
            long held = Bpdu.FromNs(Mac.Scheduler.Now - rp.RecordedAt);
            age = (ushort)Math.Min(ushort.MaxValue, rp.RecordedMessageAge + held + MessageAgeIncrement);
        }
        // 8.6.1.3.3: information at or beyond Max Age is not propagated.
        if (age >= MaxAge) return;
        var bpdu = new Bpdu(BpduType.Config, TopologyChange, p.TopologyChangeAck, DesignatedRoot, RootPathCost,
            BridgeId, p.PortId, age, MaxAge, HelloTime, ForwardDelay);
        if (!SendBpdu(p, bpdu)) return;
        p.TopologyChangeAck = false;
        p.ConfigPending = false;
        p.HoldTimer.ArmAfter(BridgeConfig.HoldTime * Time.Second);
    }

    /// <summary>8.6.6 Transmit Topology Change Notification BPDU, on the root port.</summary>
    private void TransmitTcn()
    {
        if (RootPort is { } rp) SendBpdu(rp, Bpdu.Tcn());
    }

    private bool SendBpdu(BridgePort p, in Bpdu bpdu)
    {
        var phys = p.Uplink;
        if (phys == null || !p.IsUp || !p.Link.StpEnabled) return false;
        var frame = Mac.Pool.Rent(Bpdu.FrameLength);
        if (frame == null)
        {
            phys.Stats.DropNoBuf++;
            return false;
        }
        bpdu.Emit(frame.Data, phys.MacAddress);
        frame.Vid = 0;
        frame.Pcp = 7; // network control
        p.TxBpdus++;
        phys.SendToWire(frame);
        return true;
    }

    /// <summary>8.6.2.2: whether a received Configuration BPDU carries better information than the
    /// port holds.</summary>
    private bool SupersedesPortInfo(BridgePort p, in Bpdu b)
    {
        if (b.RootId != p.DesignatedRoot) return b.RootId < p.DesignatedRoot;
        if (b.RootPathCost != p.DesignatedCost) return b.RootPathCost < p.DesignatedCost;
        if (b.BridgeId != p.DesignatedBridge) return b.BridgeId < p.DesignatedBridge;
        if (b.BridgeId != BridgeId) return true;
        return b.PortId <= p.DesignatedPort;
    }

    /// <summary>8.6.2 Record Configuration Information; the message age timer runs out when the
    /// information reaches the Max Age it was sent with.</summary>
    private void RecordConfigInformation(BridgePort p, in Bpdu b)
    {
        p.DesignatedRoot = b.RootId;
        p.DesignatedCost = b.RootPathCost;
        p.DesignatedBridge = b.BridgeId;
        p.DesignatedPort = b.PortId;
        p.RecordedMessageAge = b.MessageAge;
        long now = Mac.Scheduler.Now;
        p.RecordedAt = now;
        p.MessageAgeTimer.ArmAt(now + Bpdu.ToNs((ushort)(b.MaxAge - b.MessageAge)));
    }

    /// <summary>8.6.3 Record Configuration Timeout Values (from the root port's BPDU).</summary>
    private void RecordConfigTimeoutValues(in Bpdu b)
    {
        MaxAge = b.MaxAge;
        HelloTime = b.HelloTime;
        ForwardDelay = b.ForwardDelay;
        TopologyChange = b.TopologyChange;
    }

    /// <summary>8.6.4 Configuration BPDU Generation: on every designated port.</summary>
    private void ConfigBpduGeneration()
    {
        foreach (var p in _ports)
            if (IsDesignatedPort(p) && InTree(p)) TransmitConfig(p);
    }

    /// <summary>8.6.7 Configuration Update.</summary>
    private void ConfigurationUpdate()
    {
        RootSelection();
        DesignatedPortSelection();
    }

    /// <summary>8.6.8 Root Selection: the port whose designated root, root path cost, designated
    /// bridge, designated port and own port identifier are best, among those that lead to a root
    /// better than this bridge.</summary>
    private void RootSelection()
    {
        BridgePort? root = null;
        foreach (var p in _ports)
        {
            if (!InTree(p) || IsDesignatedPort(p)) continue;
            if (!(p.DesignatedRoot < BridgeId)) continue;
            if (root == null || BetterRootPort(p, root)) root = p;
        }
        RootPort = root;
        if (root == null)
        {
            DesignatedRoot = BridgeId;
            RootPathCost = 0;
        }
        else
        {
            DesignatedRoot = root.DesignatedRoot;
            RootPathCost = root.DesignatedCost + root.PathCost;
        }
    }

    private static bool BetterRootPort(BridgePort p, BridgePort best)
    {
        if (p.DesignatedRoot != best.DesignatedRoot) return p.DesignatedRoot < best.DesignatedRoot;
        uint a = p.DesignatedCost + p.PathCost, b = best.DesignatedCost + best.PathCost;
        if (a != b) return a < b;
        if (p.DesignatedBridge != best.DesignatedBridge) return p.DesignatedBridge < best.DesignatedBridge;
        if (p.DesignatedPort != best.DesignatedPort) return p.DesignatedPort < best.DesignatedPort;
        return p.PortId < best.PortId;
    }

    /// <summary>8.6.9 Designated Port Selection.</summary>
    private void DesignatedPortSelection()
    {
        foreach (var p in _ports)
            if (InTree(p) && ShouldBecomeDesignated(p)) BecomeDesignatedPort(p);
    }

    private bool ShouldBecomeDesignated(BridgePort p)
    {
        if (IsDesignatedPort(p)) return true;
        if (p.DesignatedRoot != DesignatedRoot) return true;
        if (RootPathCost != p.DesignatedCost) return RootPathCost < p.DesignatedCost;
        if (BridgeId != p.DesignatedBridge) return BridgeId < p.DesignatedBridge;
        return p.PortId < p.DesignatedPort;
    }

    /// <summary>8.6.10 Become Designated Port.</summary>
    private void BecomeDesignatedPort(BridgePort p)
    {
        p.DesignatedRoot = DesignatedRoot;
        p.DesignatedCost = RootPathCost;
        p.DesignatedBridge = BridgeId;
        p.DesignatedPort = p.PortId;
    }

    /// <summary>8.6.11 Port State Selection.</summary>
    private void PortStateSelection()
    {
        foreach (var p in _ports)
        {
            if (!InTree(p)) continue;
            if (p == RootPort)
            {
                p.ConfigPending = false;
                p.TopologyChangeAck = false;
                MakeForwarding(p);
            }
            else if (IsDesignatedPort(p))
            {
                p.MessageAgeTimer.Cancel();
                MakeForwarding(p);
            }
            else
            {
                p.ConfigPending = false;
                p.TopologyChangeAck = false;
                MakeBlocking(p);
            }
        }
    }

    /// <summary>8.6.12 Make Forwarding: a blocked port starts listening, for a forward delay.</summary>
    private void MakeForwarding(BridgePort p)
    {
        if (p.State != StpPortState.Blocking) return;
        SetState(p, StpPortState.Listening);
        p.ForwardDelayTimer.ArmAfter(ForwardDelayNs);
    }

    /// <summary>8.6.13 Make Blocking.</summary>
    private void MakeBlocking(BridgePort p)
    {
        if (p.State is StpPortState.Disabled or StpPortState.Blocking) return;
        if (p.State is StpPortState.Forwarding or StpPortState.Learning) TopologyChangeDetection();
        SetState(p, StpPortState.Blocking);
        p.ForwardDelayTimer.Cancel();
    }

    /// <summary>8.6.14 Topology Change Detection: the root flags the change in its BPDUs for max
    /// age + forward delay; any other bridge tells the root with TCNs until acknowledged.</summary>
    private void TopologyChangeDetection()
    {
        if (IsRootBridge)
        {
            TopologyChange = true;
            TopologyChangeTimer.ArmAfter(Bpdu.ToNs(MaxAge) + ForwardDelayNs);
        }
        else if (!TopologyChangeDetected)
        {
            TransmitTcn();
            TcnTimer.ArmAfter(Bpdu.ToNs(HelloTime));
        }
        if (!TopologyChangeDetected)
        {
            TopologyChangeCount++;
            LastTopologyChange = Mac.Scheduler.Now;
        }
        TopologyChangeDetected = true;
    }

    /// <summary>8.6.15 Topology Change Acknowledged.</summary>
    private void TopologyChangeAcknowledged()
    {
        TopologyChangeDetected = false;
        TcnTimer.Cancel();
    }

    /// <summary>8.6.16 Acknowledge Topology Change.</summary>
    private void AcknowledgeTopologyChange(BridgePort p)
    {
        p.TopologyChangeAck = true;
        TransmitConfig(p);
    }

    private void BecomeRootBridge()
    {
        MaxAge = Units(Config.MaxAge);
        HelloTime = Units(Config.HelloTime);
        ForwardDelay = Units(Config.ForwardDelay);
        TopologyChangeDetection();
        TcnTimer.Cancel();
        ConfigBpduGeneration();
        HelloTimer.ArmAfter(Bpdu.ToNs(HelloTime));
    }

    // ---- 8.7 operation: received BPDUs and timer expiries ------------------------------------

    private void ReceiveBpdu(BridgePort p, ReadOnlySpan<byte> frame)
    {
        if (!Bpdu.TryParse(frame, out var b))
        {
            CountDrop(p);
            return;
        }
        switch (b.Type)
        {
            case BpduType.Config:
                p.RxConfigBpdus++;
                if (InTree(p)) ReceivedConfig(p, b);
                break;
            case BpduType.Tcn:
                p.RxTcnBpdus++;
                if (InTree(p)) ReceivedTcn(p);
                break;
            default:
                p.RxRstBpdus++; // an RSTP bridge's BPDU: this bridge runs 802.1D STP only
                break;
        }
    }

    /// <summary>8.7.1 Received Configuration BPDU.</summary>
    private void ReceivedConfig(BridgePort p, in Bpdu b)
    {
        // 9.3.4: our own BPDU looped back, or information already too old, is discarded.
        if (b.BridgeId == BridgeId && b.PortId == p.PortId) return;
        if (b.MessageAge >= b.MaxAge) return;
        bool wasRoot = IsRootBridge;
        if (SupersedesPortInfo(p, b))
        {
            RecordConfigInformation(p, b);
            ConfigurationUpdate();
            PortStateSelection();
            if (!IsRootBridge && wasRoot)
            {
                HelloTimer.Cancel();
                if (TopologyChangeDetected)
                {
                    TopologyChangeTimer.Cancel();
                    TransmitTcn();
                    TcnTimer.ArmAfter(Bpdu.ToNs(HelloTime));
                }
            }
            if (p == RootPort)
            {
                RecordConfigTimeoutValues(b);
                ConfigBpduGeneration();
                if (b.TopologyChangeAck) TopologyChangeAcknowledged();
            }
        }
        else if (IsDesignatedPort(p))
        {
            TransmitConfig(p); // 8.6.5 Reply
        }
    }

    /// <summary>8.7.2 Received Topology Change Notification BPDU.</summary>
    private void ReceivedTcn(BridgePort p)
    {
        if (!IsDesignatedPort(p)) return;
        TopologyChangeDetection();
        AcknowledgeTopologyChange(p);
    }

    /// <summary>8.7.3 Hello Timer Expiry (runs on the root only).</summary>
    private void HelloExpired()
    {
        if (!IsRootBridge) return;
        ConfigBpduGeneration();
        HelloTimer.ArmAfter(Bpdu.ToNs(HelloTime));
    }

    /// <summary>8.7.4 Message Age Timer Expiry: the port's information is stale.</summary>
    internal void MessageAgeExpired(BridgePort p)
    {
        bool wasRoot = IsRootBridge;
        BecomeDesignatedPort(p);
        ConfigurationUpdate();
        PortStateSelection();
        if (IsRootBridge && !wasRoot) BecomeRootBridge();
    }

    /// <summary>8.7.5 Forward Delay Timer Expiry: listening to learning, learning to forwarding.</summary>
    internal void ForwardDelayExpired(BridgePort p)
    {
        if (p.State == StpPortState.Listening)
        {
            SetState(p, StpPortState.Learning);
            p.ForwardDelayTimer.ArmAfter(ForwardDelayNs);
        }
        else if (p.State == StpPortState.Learning)
        {
            SetState(p, StpPortState.Forwarding);
            if (IsDesignatedForSomePort()) TopologyChangeDetection();
        }
    }

    private bool IsDesignatedForSomePort()
    {
        foreach (var p in _ports) if (InTree(p) && IsDesignatedPort(p)) return true;
        return false;
    }

    /// <summary>8.7.6 Topology Change Notification Timer Expiry: tell the root again.</summary>
    private void TcnExpired()
    {
        TransmitTcn();
        TcnTimer.ArmAfter(Bpdu.ToNs(HelloTime));
    }

    /// <summary>8.7.7 Topology Change Timer Expiry.</summary>
    private void TopologyChangeExpired()
    {
        TopologyChangeDetected = false;
        TopologyChange = false;
    }

    /// <summary>8.7.8 Hold Timer Expiry: send what was held back.</summary>
    internal void HoldExpired(BridgePort p)
    {
        if (p.ConfigPending) TransmitConfig(p);
    }

    /// <summary>Stops every timer (the bridge is being deleted).</summary>
    internal void Stop()
    {
        HelloTimer.Cancel();
        TcnTimer.Cancel();
        TopologyChangeTimer.Cancel();
        SweepTimer.Cancel();
        foreach (var p in _ports)
        {
            p.MessageAgeTimer.Cancel();
            p.ForwardDelayTimer.Cancel();
            p.HoldTimer.Cancel();
        }
    }
}
