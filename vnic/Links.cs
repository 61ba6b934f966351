using SmartOS.Kernel;
using SmartOS.Kernel.Wire;

namespace SmartOS.Vnic;

/// <summary>
/// The far side of a physical NIC: a simulated wire, or later a TAP or pcap device. The phys
/// hands it frames already tagged for the wire and owns nothing after the call.
/// </summary>
public interface IPhysBackend
{
    /// <summary>Takes ownership of a frame leaving the host.</summary>
    void Transmit(PhysLink from, Packet frame);
    /// <summary>Bits per second, for dladm's SPEED column.</summary>
    long SpeedBps { get; }
    void Detach(PhysLink phys);

    /// <summary>Whether the device fills in a pending transport checksum itself (MacLayer.cs rule 7):
    /// a TAP with offloads hands it to Linux in its virtio_net_hdr. Read once, when attached.</summary>
    bool OffloadsChecksum => false;

    /// <summary>Whether the device takes large-send frames (Packet.LsoMss) whole and segments them
    /// itself (MacLayer.cs rule 9): a TAP with offloads writes them as virtio_net_hdr GSO frames.
    /// Read once, when attached.</summary>
    bool OffloadsSegmentation => false;
}

/// <summary>A link whose switch has a way out of the host, and is that switch's primary port: a phys
/// (its wire or device) or an aggregation (its member NICs, AggrLink.cs). VNICs and VLANs are
/// created over either alike.</summary>
public abstract class UplinkLink : PortLink
{
    private protected UplinkLink(MacLayer mac, string name, int linkId) : base(mac, name, linkId) { }

    internal override bool IsTrunk => true;

    /// <summary>"full", "half" or "unknown" (show-phys and show-aggr -x DUPLEX).</summary>
    public abstract string Duplex { get; }

    /// <summary>Sends a frame out of the host (VSwitch's unknown unicast and floods). Consumes it.</summary>
    internal abstract void SendToWire(Packet p);
}

/// <summary>A physical NIC: a switch with an uplink, and its own primary port (vid 0, factory MAC).</summary>
public sealed class PhysLink : UplinkLink
{
    internal PhysLink(MacLayer mac, string name, int linkId, MacAddress factory) : base(mac, name, linkId)
    {
        FactoryMac = factory;
        MacAddress = factory;
        CountsClientTraffic = false;
        Switch = new VSwitch(this);
        Switch.AddPort(this);
    }

    public override LinkClass Class => LinkClass.Phys;
    public MacAddress FactoryMac { get; }
    /// <summary>The device name as show-phys prints it (same as the link name until renamed).</summary>
    public string Device { get; internal set; } = "";
    public IPhysBackend? Backend { get; private set; }
    public override string State => Backend != null && Carrier ? "up" : "down";
    public override long SpeedMbps => Backend != null ? Backend.SpeedBps / 1_000_000 : 0;
    /// <summary>"full" with a backend, "unknown" without (show-phys DUPLEX).</summary>
    public override string Duplex => Backend != null ? "full" : "unknown";

    /// <summary>Whether the far side reports a link (a wire that is up, a TAP whose Linux end is up).
    /// While it is down the NIC's state is "down" and frames to it are dropped (drop_link_down).</summary>
    public bool Carrier { get; private set; } = true;

    /// <summary>Raised on the NIC's loop when <see cref="Carrier"/> changes (an aggregation's port
    /// leaves or rejoins, a bridge's port reconverges).</summary>
    public event Action<PhysLink>? LinkStateChanged;

    /// <summary>The aggregation port this NIC is, or null (AggrLink.cs): its frames from the wire go to
    /// the aggregation instead of its own switch.</summary>
    public AggrPort? AggrPort { get; internal set; }

    /// <summary>The far side's link went down or came up (Wire.SetUp, a TAP's carrier): the NIC's state
    /// follows and listeners hear of it. Nothing happens when the state does not change.</summary>
    public void SetCarrier(bool up)
    {
        if (Carrier == up) return;
        Carrier = up;
        if (Switch.Bridged is { } bp) bp.Bridge.LinkStateChanged(bp);
        LinkStateChanged?.Invoke(this);
    }

    /// <summary>Connects the far side; a new backend starts with its link up (Carrier).</summary>
    public void Attach(IPhysBackend backend)
    {
        Backend?.Detach(this);
        bool wasUp = State == "up";
        Backend = backend;
        Carrier = true;
        _backendOffloadsChecksum = backend.OffloadsChecksum;
        _backendOffloadsSegmentation = backend.OffloadsSegmentation;
        if (Switch.Bridged is { } bp) bp.Bridge.LinkStateChanged(bp);
        if (!wasUp) LinkStateChanged?.Invoke(this);
    }

    private bool _backendOffloadsChecksum, _backendOffloadsSegmentation;

    /// <summary>Whether a large-send frame that leaves by this NIC goes to its device whole (rule 9):
    /// the device segments, and the NIC is neither an aggregation's port nor bridged (those may send
    /// it elsewhere, so it is cut in software first).</summary>
    internal bool TakesLso => _backendOffloadsSegmentation && Backend != null && AggrPort == null && Switch.Bridged == null;

    public void DetachBackend()
    {
        bool wasUp = State == "up";
        Backend = null;
        if (Switch.Bridged is { } bp) bp.Bridge.LinkStateChanged(bp);
        if (wasUp) LinkStateChanged?.Invoke(this);
    }

    /// <summary>Sends a frame out of the NIC: pushes the VLAN tag, taps, counts. Consumes the packet.</summary>
    internal override void SendToWire(Packet p)
    {
        var s = Stats;
        var backend = Backend;
        if (backend == null || !Carrier)
        {
            s.DropLinkDown++;
            p.Free();
            return;
        }
        if (p.Vid != 0 && !EthernetView.TryPushTag(p, p.Vid, p.Pcp))
        {
            s.OErrors++;
            p.Free();
            return;
        }
        if (!_backendOffloadsChecksum) p.FinishChecksum(); // the NIC's checksum offload
        if (p.LsoMss != 0) s.LsoOut++; // VSwitch.Forward sends one here only when TakesLso
        var dst = MacAddress.Read(p.Data);
        CountTx(s, p, dst);
        Tap(p, TapDirection.Transmitted, showTag: false); // a capture fills it in (rule 7)
        backend.Transmit(this, p);
    }

    /// <summary>A frame copied in from a device backend (TAP, pcap): dropped and counted if that backend
    /// is no longer this NIC's or no buffer is left, else received as from a wire. On the loop only.</summary>
    public void ReceiveFromBackend(IPhysBackend from, ReadOnlySpan<byte> frame) => ReceiveFromBackend(from, frame, 0);

    /// <summary>As above, for a device that hands over a large TCP segment whole (a TAP with offloads
    /// given a GSO frame by Linux): <paramref name="gsoSize"/> is its MSS, kept as Packet.LsoMss so
    /// the frame reaches a local stack whole or is cut in software on the way (MacLayer.cs rule 9).
    /// When no large buffer is free it is cut here, each segment received in turn.</summary>
    public void ReceiveFromBackend(IPhysBackend from, ReadOnlySpan<byte> frame, ushort gsoSize) => ReceiveFromBackend(from, frame, gsoSize, 0);

    /// <summary>As above, for a large frame whose TCP checksum the device's far side left to us
    /// (TapDevice.cs rule 6): <paramref name="pendingChecksum"/> is where its TCP header starts, and
    /// the frame goes on with its checksum pending (MacLayer.cs rule 7); 0 for none.</summary>
    public void ReceiveFromBackend(IPhysBackend from, ReadOnlySpan<byte> frame, ushort gsoSize, int pendingChecksum)
    {
        if (Backend != from)
        {
            Stats.DropLinkDown++;
            return;
        }
        if (gsoSize != 0)
        {
            ReceiveLarge(frame, gsoSize, pendingChecksum);
            return;
        }
        var p = Mac.Pool.Rent(frame);
        if (p == null)
        {
            Stats.DropNoBuf++;
            return;
        }
        ReceiveFromWire(p);
    }

    private void ReceiveLarge(ReadOnlySpan<byte> frame, ushort gsoSize, int pendingChecksum)
    {
        var p = frame.Length > PacketPool.LargeSize ? Mac.Pool.RentLso(frame.Length) : Mac.Pool.Rent(frame.Length);
        if (p != null)
        {
            frame.CopyTo(p.Data);
            p.LsoMss = gsoSize;
            if (pendingChecksum != 0) p.SetChecksumPending(pendingChecksum, frame.Length - pendingChecksum, TcpView.ChecksumOffset);
            ReceiveFromWire(p);
            return;
        }
        if (!TcpSegmentation.TryCreate(frame, gsoSize, out var seg))
        {
            Stats.IErrors++;
            return;
        }
        for (int i = 0; i < seg.Count; i++)
        {
            var q = Mac.Pool.Rent(seg.SegmentLength(i));
            if (q == null)
            {
                Stats.DropNoBuf++;
                continue;
            }
            seg.Write(i, q.Data);
            ReceiveFromWire(q);
        }
    }

    /// <summary>A frame arriving from the wire (MacLayer.cs rule 4: never throws, counts bad frames).</summary>
    public void ReceiveFromWire(Packet p)
    {
        if (Ingress(p, tapBad: true) != IngressDrop.None) return;
        if (p.LsoMss != 0 && (AggrPort != null || Switch.Bridged != null))
        {
            // An aggregation or a bridge may pass it anywhere: MSS frames only (rule 9).
            if (!Mac.ForEachSegment(p, Stats, this, static (self, q) => self.ReceiveAfterIngress(q))) Stats.IErrors++;
            return;
        }
        ReceiveAfterIngress(p);
    }

    private void ReceiveAfterIngress(Packet p)
    {
        var port = AggrPort;
        if (port != null)
        {
            port.ReceiveFromWire(p); // an aggregated NIC's frames belong to its aggregation
            return;
        }
        if (Switch.Bridged is { } bp)
        {
            bp.Bridge.Input(bp, p); // a bridged NIC's frames are the bridge's (Bridge.cs)
            return;
        }
        Switch.ForwardFromUplink(p);
    }
}

/// <summary>An etherstub: a switch with no uplink. Not a port itself; VNICs are created over it.</summary>
public sealed class Etherstub : Datalink
{
    internal Etherstub(MacLayer mac, string name, int linkId) : base(mac, name, linkId)
    {
        Switch = new VSwitch(this);
    }

    public VSwitch Switch { get; }
    public override LinkClass Class => LinkClass.Etherstub;
    public override string State => "unknown";
    public override long SpeedMbps => 0;

    /// <summary>Counts and taps a frame the stub's switch forwards (the stub sees every frame on it).</summary>
    internal void Observe(Packet p)
    {
        var s = Stats;
        var dst = MacAddress.Read(p.Data);
        CountRx(s, p, dst);
        Tap(p, TapDirection.Forwarded, showTag: true);
    }
}

/// <summary>A VNIC over a phys or an etherstub: a switch port with its own MAC address and optional VID.</summary>
public sealed class VnicLink : PortLink
{
    internal VnicLink(MacLayer mac, string name, int linkId, Datalink over, VSwitch sw, MacAddress address, MacAddressType type, ushort vid)
        : base(mac, name, linkId)
    {
        OverLink = over;
        Switch = sw;
        MacAddress = address;
        AddressType = type;
        Vid = vid;
    }

    public Datalink OverLink { get; internal set; }
    public override Datalink? Over => OverLink;
    public override LinkClass Class => LinkClass.Vnic;
    public MacAddressType AddressType { get; }
    /// <summary>The factory slot a factory address came from (dladm show-vnic -m factory -n).</summary>
    public int? FactorySlot { get; init; }
    public override string State => OverLink is UplinkLink p ? p.State : "up";
    public override long SpeedMbps => OverLink is UplinkLink p ? p.SpeedMbps : 0;
}

/// <summary>A VLAN link (dladm create-vlan) over a phys or an aggregation: a port with that link's MAC
/// address and a VID.</summary>
public sealed class VlanLink : PortLink
{
    internal VlanLink(MacLayer mac, string name, int linkId, UplinkLink over, ushort vid) : base(mac, name, linkId)
    {
        OverPhys = over;
        Switch = over.Switch;
        MacAddress = over.MacAddress;
        Vid = vid;
    }

    public UplinkLink OverPhys { get; }
    public override Datalink? Over => OverPhys;
    public override LinkClass Class => LinkClass.Vlan;
    public override string State => OverPhys.State;
    public override long SpeedMbps => OverPhys.SpeedMbps;
}

/// <summary>Receives frames delivered to a MAC client; owns each packet it is handed.</summary>
public interface IMacReceiver
{
    void Receive(MacClient client, Packet packet);

    /// <summary>Whether frames whose transport checksum is still pending (Packet.ChecksumPending)
    /// may be handed over as they are: only this host's own IP stacks, which trust them. Everyone
    /// else (guests, lx zones' TAPs) gets the checksum filled in first.</summary>
    bool AcceptsPendingChecksum => false;

    /// <summary>Whether a large TCP segment (Packet.LsoMss: a GSO frame from Linux delivered whole,
    /// MacLayer.cs rule 9) may be handed over as it is: an IP stack of this host (its TCP takes any
    /// segment size) or a TAP with offloads (it writes one GSO frame). Everyone else gets MSS segments.</summary>
    bool AcceptsLargeReceive => false;
}

/// <summary>
/// The handle an upper layer holds on a datalink (illumos mac_client_handle_t): transmit frames,
/// receive them through <see cref="Receiver"/>. Frames are untagged Ethernet II; the MAC layer adds
/// and removes VLAN tags.
/// </summary>
public sealed class MacClient
{
    internal MacClient(PortLink link, string owner)
    {
        Link = link;
        Owner = owner;
    }

    public PortLink Link { get; }
    public string Owner { get; }
    public MacAddress MacAddress => Link.MacAddress;
    public int Mtu => Link.Mtu;

    /// <summary>The largest IP packet this client may send as one large-send TCP segment
    /// (Packet.LsoMss), or 0 when the link has no large send: only a port of a switch whose NIC's
    /// device segments (PhysLink.TakesLso) or of an overlay whose underlay does (OverlayLink.TakesLso),
    /// as illumos's mac_capab_lso answers for a VNIC over a NIC with LSO. The frame stays within a capture's snaplen and leaves room for a VLAN tag;
    /// over an overlay, its segments fit one send of the underlay (OverlayLink.LsoMax).</summary>
    public int LsoMax => Link.Switch.LsoMax(Link.Mtu);
    public string LinkName => Link.Name;
    public PacketPool Pool => Link.Mac.Pool;
    public Scheduler Scheduler => Link.Mac.Scheduler;
    public IMacReceiver? Receiver
    {
        get => _receiver;
        set
        {
            _receiver = value;
            ReceiverAcceptsPendingChecksum = value?.AcceptsPendingChecksum ?? false;
            ReceiverAcceptsLargeReceive = value?.AcceptsLargeReceive ?? false;
        }
    }

    private IMacReceiver? _receiver;

    /// <summary>The receiver's AcceptsPendingChecksum, read once when it is set rather than through
    /// an interface's default member per frame.</summary>
    internal bool ReceiverAcceptsPendingChecksum { get; private set; }

    /// <summary>The receiver's AcceptsLargeReceive, read once when it is set.</summary>
    internal bool ReceiverAcceptsLargeReceive { get; private set; }
    public bool IsOpen { get; private set; } = true;

    /// <summary>Sends a frame; the MAC layer owns the packet from here on, whatever happens to it.</summary>
    public void Transmit(Packet packet)
    {
        if (!IsOpen)
        {
            Link.Stats.OErrors++;
            packet.Free();
            return;
        }
        Link.Transmit(packet);
    }

    public void Close()
    {
        if (!IsOpen) return;
        IsOpen = false;
        Receiver = null;
        Link.CloseClient(this);
    }
}
