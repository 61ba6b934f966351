using SmartOS.Kernel;

namespace SmartOS.Vnic;

/// <summary>
/// The counters of one datalink, exported as kstat link:0:NAME (MacLayer.cs rule 3). Field names
/// follow illumos's link kstats; the drop_* counters name the reason a frame was dropped.
/// </summary>
public sealed class LinkStats : IKstatSource
{
    public long IPackets, RBytes, IErrors, MultiRcv, BrdcstRcv;
    public long OPackets, OBytes, OErrors, MultiXmt, BrdcstXmt;
    /// <summary>Frames arriving for a port whose link has no client open.</summary>
    public long DropNoClient;
    /// <summary>Unicast to an unknown address on a switch without an uplink (etherstub).</summary>
    public long DropUnknownDst;
    /// <summary>Frames for a VLAN no port on the switch belongs to.</summary>
    public long DropNoVlan;
    /// <summary>Tagged frames from a client that may not choose its VLAN.</summary>
    public long DropTagged;
    /// <summary>Frames larger than the link MTU.</summary>
    public long DropMtu;
    /// <summary>No packet buffer left for a copy.</summary>
    public long DropNoBuf;
    /// <summary>Frames dropped because the link is down (no wire attached).</summary>
    public long DropLinkDown;
    /// <summary>Frames dropped because the NIC's transmit queue to the wire was full.</summary>
    public long DropTxQueue;
    /// <summary>Frames lost on the wire (counted at the receiving NIC, as a bad FCS would be).</summary>
    public long DropWireLoss;
    /// <summary>Frames that reached the wire larger than the wire's MTU (counted at the receiver as giants).</summary>
    public long DropWireMtu;
    /// <summary>Link protection drops by reason (illumos's names: mac_protect.c).</summary>
    public long MacSpoofed, IpSpoofed, DhcpSpoofed, Restricted;
    /// <summary>Frames over maxbw that found the link's shaper queue full (or maxbw=0), on transmit and receive.</summary>
    public long DropMaxbw, DropMaxbwRx;
    /// <summary>Large-send frames (Packet.LsoMss) handed whole to a device that segments them (a TAP
    /// with offloads), and large-send frames cut into MSS segments in software because something
    /// else lay on their way (MacLayer.cs rule 9).</summary>
    public long LsoOut, LsoSoft;

    public void Snapshot(List<KeyValuePair<string, long>> into)
    {
        into.Add(new("ipackets", IPackets));
        into.Add(new("rbytes", RBytes));
        into.Add(new("ierrors", IErrors));
        into.Add(new("multircv", MultiRcv));
        into.Add(new("brdcstrcv", BrdcstRcv));
        into.Add(new("opackets", OPackets));
        into.Add(new("obytes", OBytes));
        into.Add(new("oerrors", OErrors));
        into.Add(new("multixmt", MultiXmt));
        into.Add(new("brdcstxmt", BrdcstXmt));
        into.Add(new("drop_noclient", DropNoClient));
        into.Add(new("drop_unknown_dst", DropUnknownDst));
        into.Add(new("drop_no_vlan", DropNoVlan));
        into.Add(new("drop_tagged", DropTagged));
        into.Add(new("drop_mtu", DropMtu));
        into.Add(new("drop_nobuf", DropNoBuf));
        into.Add(new("drop_link_down", DropLinkDown));
        into.Add(new("drop_txqueue", DropTxQueue));
        into.Add(new("drop_wire_loss", DropWireLoss));
        into.Add(new("drop_wire_mtu", DropWireMtu));
        into.Add(new("macspoofed", MacSpoofed));
        into.Add(new("ipspoofed", IpSpoofed));
        into.Add(new("dhcpspoofed", DhcpSpoofed));
        into.Add(new("restricted", Restricted));
        into.Add(new("drop_maxbw", DropMaxbw));
        into.Add(new("drop_maxbw_rx", DropMaxbwRx));
        into.Add(new("lso_out", LsoOut));
        into.Add(new("lso_soft", LsoSoft));
    }

    public void Reset()
    {
        IPackets = RBytes = IErrors = MultiRcv = BrdcstRcv = 0;
        OPackets = OBytes = OErrors = MultiXmt = BrdcstXmt = 0;
        DropNoClient = DropUnknownDst = DropNoVlan = DropTagged = DropMtu = DropNoBuf = DropLinkDown = 0;
        DropTxQueue = DropWireLoss = DropWireMtu = 0;
        MacSpoofed = IpSpoofed = DhcpSpoofed = Restricted = DropMaxbw = DropMaxbwRx = 0;
        LsoOut = LsoSoft = 0;
    }
}
