using SmartOS.Kernel;
using SmartOS.Kernel.Wire;

namespace SmartOS.Vnic;

public enum LinkClass { Phys, Etherstub, Vnic, Vlan, Bridge, Aggr, Overlay }

/// <summary>How a VNIC got its MAC address (dladm show-vnic MACADDRTYPE).</summary>
public enum MacAddressType { Fixed, Random, Factory, Auto, Primary }

/// <summary>A frame direction as seen by a capture tap.</summary>
public enum TapDirection { Received, Transmitted, Forwarded }

/// <summary>A capture point (snoop). Called with the frame as it appears on this link.</summary>
public interface ICaptureTap
{
    void Capture(Datalink link, ReadOnlySpan<byte> frame, long time, TapDirection direction);
}

/// <summary>A datalink in dladm's namespace (MacLayer.cs glossary).</summary>
public abstract class Datalink
{
    private ICaptureTap[] _taps = [];

    /// <summary>The mac provider's probes of this link (LinkProbes.cs); set when the link is registered.</summary>
    internal LinkProbes Probes = LinkProbes.None;

    protected Datalink(MacLayer mac, string name, int linkId)
    {
        Mac = mac;
        Name = name;
        LinkId = linkId;
    }

    public MacLayer Mac { get; }
    public string Name { get; internal set; }
    public int LinkId { get; }
    public abstract LinkClass Class { get; }
    public LinkStats Stats { get; } = new();
    internal Kstat? Kstat { get; set; }

    /// <summary>The zone the link is assigned to ("global" when none).</summary>
    public string Zone { get; set; } = "global";

    /// <summary>The link's spanning-tree port settings (stp_priority, stp_cost: MacLayer.Bridge.cs),
    /// kept on the link so they hold before it joins a bridge and after it leaves, as illumos keeps them.</summary>
    internal int StpPriority = BridgePort.DefaultPriority;
    /// <summary>The stp_cost given, or 0 for "auto" (from the link's speed).</summary>
    internal int StpCost;
    /// <summary>stp: false takes the port out of the spanning tree (it forwards while up, sends no
    /// BPDUs and heeds none).</summary>
    internal bool StpEnabled = true;

    /// <summary>The link this one is created over (null for phys and etherstub).</summary>
    public virtual Datalink? Over => null;

    /// <summary>Link MTU (payload bytes, as dladm's mtu property).</summary>
    public int Mtu { get; internal set; } = 1500;

    /// <summary>Whether the link carries traffic: "up", "down" or "unknown" as dladm show-link prints.</summary>
    public abstract string State { get; }

    /// <summary>Speed in Mbit/s as dladm prints it (0 when unknown).</summary>
    public abstract long SpeedMbps { get; }

    public bool HasTaps => _taps.Length != 0;

    public void AddTap(ICaptureTap tap)
    {
        var t = new ICaptureTap[_taps.Length + 1];
        _taps.CopyTo(t, 0);
        t[^1] = tap;
        _taps = t;
    }

    public void RemoveTap(ICaptureTap tap)
    {
        int i = Array.IndexOf(_taps, tap);
        if (i < 0) return;
        var t = new ICaptureTap[_taps.Length - 1];
        Array.Copy(_taps, 0, t, 0, i);
        Array.Copy(_taps, i + 1, t, i, _taps.Length - i - 1);
        _taps = t;
    }

    /// <summary>Hands a frame to every tap. Frames inside the host carry their VLAN as metadata; when
    /// <paramref name="showTag"/> is set the tap sees the tag as it would be on a trunk.</summary>
    protected void Tap(Packet p, TapDirection direction, bool showTag)
    {
        // Split so that the per-frame check (no tap attached, the common case) inlines at every
        // call site and the copying below stays out of the hot methods.
        if (_taps.Length != 0) TapAll(p, direction, showTag);
    }

    private void TapAll(Packet p, TapDirection direction, bool showTag)
    {
        var taps = _taps;
        p.FinishChecksum(); // a capture shows the frame as it would be on a wire
        long now = Mac.Scheduler.Now;
        if (showTag && p.Vid != 0 && p.Length >= EthernetView.HeaderLength)
        {
            Span<byte> tagged = p.Length + 4 <= 2048 ? stackalloc byte[p.Length + 4] : new byte[p.Length + 4];
            var f = p.Data;
            f[..12].CopyTo(tagged);
            tagged[12] = 0x81; tagged[13] = 0x00;
            tagged[14] = (byte)((p.Pcp << 5) | (p.Vid >> 8));
            tagged[15] = (byte)p.Vid;
            f[12..].CopyTo(tagged[16..]);
            foreach (var t in taps) t.Capture(this, tagged, now, direction);
        }
        else
        {
            foreach (var t in taps) t.Capture(this, p.Data, now, direction);
        }
    }

    internal static void CountTx(LinkStats s, Packet p, MacAddress dst)
    {
        s.OPackets++;
        s.OBytes += p.Length;
        if (dst.IsBroadcast) s.BrdcstXmt++;
        else if (dst.IsGroup) s.MultiXmt++;
    }

    internal static void CountRx(LinkStats s, Packet p, MacAddress dst)
    {
        s.IPackets++;
        s.RBytes += p.Length;
        if (dst.IsBroadcast) s.BrdcstRcv++;
        else if (dst.IsGroup) s.MultiRcv++;
    }

    /// <summary>Why <see cref="Ingress"/> dropped a frame.</summary>
    internal enum IngressDrop { None, BadFrame, Mtu }

    /// <summary>A frame entering the host at this link (a NIC's wire, an overlay's decapsulation):
    /// stamps it, counts and taps it, moves an 802.1Q tag into Packet.Vid and checks the MTU. A frame
    /// that is not Ethernet, or is larger than the MTU, is counted (ierrors, drop_mtu) and freed, and
    /// the reason returned; <paramref name="tapBad"/> says whether a frame that is not Ethernet is
    /// still shown to the capture taps. Never throws (MacLayer.cs rule 4).</summary>
    internal IngressDrop Ingress(Packet p, bool tapBad)
    {
        var s = Stats;
        p.Timestamp = Mac.Scheduler.Now;
        if (!EthernetView.TryCreate(p.Data, out var eth))
        {
            s.IErrors++;
            if (tapBad) Tap(p, TapDirection.Received, showTag: false);
            p.Free();
            return IngressDrop.BadFrame;
        }
        CountRx(s, p, eth.Destination);
        Tap(p, TapDirection.Received, showTag: false);
        ushort vid = 0;
        if (eth.IsTagged)
        {
            vid = eth.VlanId;
            p.Pcp = eth.Priority;
            EthernetView.TryPopTag(p);
        }
        p.Vid = vid;
        if (p.LsoMss != 0 ? !MacLayer.LsoFits(p, Mtu) : p.Length - EthernetView.HeaderLength > Mtu)
        {
            s.IErrors++;
            s.DropMtu++;
            p.Free();
            return IngressDrop.Mtu;
        }
        return IngressDrop.None;
    }
}

/// <summary>A datalink that is a port on a virtual switch and can be opened by a MAC client:
/// phys (its primary port), vnic and vlan.</summary>
public abstract class PortLink : Datalink
{
    private MacClient? _client;
    private LinkControl? _control;

    protected PortLink(MacLayer mac, string name, int linkId) : base(mac, name, linkId) { }

    /// <summary>The switch this link is a port of (fixed for the link's life: a field, not a virtual
    /// call per frame).</summary>
    public VSwitch Switch { get; private protected init; } = null!;
    public MacAddress MacAddress { get; internal set; }
    public ushort Vid { get; internal set; }
    /// <summary>Whether a client of this link may send tagged frames that choose their VLAN (only the
    /// global zone's primary client of a phys).</summary>
    internal virtual bool IsTrunk => false;

    /// <summary>Whether client traffic is counted and tapped at this port. A phys counts and taps
    /// at its wire instead (PhysLink.SendToWire/ReceiveFromWire), so its primary port does not.</summary>
    internal bool CountsClientTraffic { get; private protected init; } = true;

    // The switch's answer for this port's last unicast destination (VSwitch.Forward): a stream of
    // frames to one peer classifies by one compare instead of a hash lookup per frame. Valid while
    // the switch's generation is unchanged (ports and their addresses are fixed between changes).
    internal ulong ForwardKey;
    internal PortLink? ForwardPort;
    internal int ForwardGeneration = -1;

    public MacClient? Client => _client;

    /// <summary>The link's resource controls (ResourceControl.cs), or null while it has none.</summary>
    public LinkControl? Control => _control;

    internal LinkControl EnsureControl() => _control ??= new LinkControl(this);

    /// <summary>Opens the link for an upper layer. One client at a time, as a VNIC has one user.</summary>
    public MacClient? OpenClient(string owner)
    {
        if (_client != null) return null;
        _client = new MacClient(this, owner);
        return _client;
    }

    internal void CloseClient(MacClient c)
    {
        if (_client == c) _client = null;
    }

    /// <summary>Sends a frame as if from this link's client (pktgen, tests); consumes the packet.</summary>
    public void TransmitAsClient(Packet p) => Transmit(p);

    /// <summary>Client transmit: checks (MacLayer.cs rules 2, 4), counts, taps and forwards. Consumes the packet.</summary>
    internal void Transmit(Packet p)
    {
        var s = Stats;
        if (!EthernetView.TryCreate(p.Data, out var eth))
        {
            s.OErrors++;
            p.Free();
            return;
        }
        ushort vid = Vid;
        if (eth.IsTagged)
        {
            if (!IsTrunk)
            {
                s.OErrors++;
                s.DropTagged++;
                p.Free();
                return;
            }
            vid = eth.VlanId;
            p.Pcp = eth.Priority;
            EthernetView.TryPopTag(p);
        }
        if (p.LsoMss != 0 ? !MacLayer.LsoFits(p, Mtu) : p.Length - EthernetView.HeaderLength > Mtu)
        {
            s.OErrors++;
            s.DropMtu++;
            p.Free();
            return;
        }
        p.Vid = vid;
        p.Band = (byte)MacPriority.High;
        p.FairKey = LinkId;
        var control = _control;
        if (control != null)
        {
            control.Transmit(p); // protection, flows, maxbw (ResourceControl.cs)
            return;
        }
        TransmitOut(p);
    }

    /// <summary>The last step of transmit, once resource controls let the frame go: counts, taps, forwards.</summary>
    internal void TransmitOut(Packet p)
    {
        p.Timestamp = Mac.Scheduler.Now;
        if (CountsClientTraffic)
        {
            CountTx(Stats, p, MacAddress.Read(p.Data));
            Tap(p, TapDirection.Transmitted, showTag: false);
            var probe = Probes.Transmit;
            if (probe.Enabled) probe.Fire(new(Name, p.Length, Vid));
        }
        Switch.Forward(p, this);
    }

    /// <summary>Delivery from the switch to this link's client; consumes the packet.</summary>
    internal void Deliver(Packet p)
    {
        var control = _control;
        if (control != null)
        {
            control.Receive(p); // flows, maxbw, DHCP snooping (ResourceControl.cs)
            return;
        }
        DeliverOut(p);
    }

    /// <summary>The last step of delivery: counts, taps, hands the frame to the client.</summary>
    internal void DeliverOut(Packet p)
    {
        var s = Stats;
        if (CountsClientTraffic)
        {
            CountRx(s, p, MacAddress.Read(p.Data));
            Tap(p, TapDirection.Received, showTag: false);
            var probe = Probes.Receive;
            if (probe.Enabled) probe.Fire(new(Name, p.Length, p.Vid));
        }
        var c = _client;
        var receiver = c?.Receiver;
        if (receiver == null)
        {
            s.DropNoClient++;
            p.Free();
            return;
        }
        if (p.LsoMss != 0 && !c!.ReceiverAcceptsLargeReceive)
        {
            // The receiver changed while the frame waited (a shaper's queue): MSS frames (rule 9).
            if (!Mac.ForEachSegment(p, s, this, static (self, q) => self.DeliverOut(q))) s.IErrors++;
            return;
        }
        if (!c!.ReceiverAcceptsPendingChecksum) p.FinishChecksum();
        receiver.Receive(c, p);
    }
}
