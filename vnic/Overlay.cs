/*
 * Overlays: VXLAN tenant networks (overlay(7), illumos usr/src/uts/common/io/overlay/).
 *
 * An overlay link (dladm create-overlay) is an etherstub whose switch has a way out: a frame its
 * switch cannot deliver to a local port is encapsulated in VXLAN (RFC 7348) and sent over the
 * underlay, an IP network, to the host that has its destination; a VXLAN datagram heard on the
 * underlay is decapsulated and switched to the local port it is for. VNICs, with or without a VLAN
 * ID, are created over an overlay exactly as over an etherstub, and flows, maxbw and link protection
 * apply on them unchanged (they sit in front of the switch, ResourceControl.cs).
 *
 * Glossary
 *   VNID        the 24-bit virtual network identifier (vnetid, 0-16777215) carried in every VXLAN
 *               header; one overlay link has one, and two overlays with different VNIDs are
 *               different networks even when their tenants reuse addresses.
 *   underlay    the IP network the encapsulated datagrams cross (IOverlayUnderlay,
 *               OverlayContracts.cs). Its listen endpoint is vxlan/listen_ip:vxlan/listen_port.
 *   mux         one per listen endpoint of the host (OverlayMux, illumos's overlay_mux): it owns the
 *               underlay and demultiplexes arriving datagrams to overlays by VNID, so many overlays
 *               share one address and port, as overlay(7) says they may.
 *   search      the plugin that says where a frame goes on the underlay (IOverlaySearch): direct
 *               (one destination for every frame) or files (a mapping file). Plugins are looked up
 *               by name in OverlaySearchPlugins; a plugin that is not registered is refused.
 *
 * Data path
 *   out:  VNIC tx -> VSwitch.Forward: local port -> delivered (rule 1 of MacLayer.cs); unknown
 *         unicast or group -> OverlayLink.Encapsulate: push the VNIC's VLAN tag into the inner
 *         frame, tap, proxy answer (IOverlaySearch.TryAnswer), steering (IOverlaySteering: the files
 *         plugin drops the ARP/NDP it cannot answer and redirects DHCPv4 broadcasts) or lookup,
 *         8-byte VXLAN header in the packet's headroom, IOverlayUnderlay.Send(Packet): the frame's
 *         packet is the datagram, and the underlay prepends its own headers in place (rule 6).
 *   in:   underlay -> OverlayMux.Receive: length, I flag, VNID -> OverlayLink.Decapsulate: the
 *         datagram's packet with the VXLAN header trimmed (a copy for an underlay that hands out
 *         spans), parse, pop the inner tag into Packet.Vid, tap -> VSwitch.ForwardFromUplink.
 *   large: over an underlay that cuts and joins TCP segments itself (the real-time socket), a
 *         VNIC's large send goes to it whole and a joined run comes back whole (Overlay.LargeSend.cs).
 *
 * Rules
 *   1. The VXLAN header is RFC 7348's: flags 0x08 (the I bit), 24 reserved bits, the VNID, 8
 *      reserved bits, all reserved bits zero on send. On receipt the I bit must be set (reserved
 *      bits are ignored, as the RFC says); a datagram shorter than the header and an Ethernet
 *      header, without the I bit, or for a VNID no overlay of the mux has is counted on the mux
 *      (kstat overlay:0:mux_IP_PORT) and dropped. Nothing on this path throws.
 *   2. The outer UDP destination port is the search plugin's (direct/dest_port); the source port
 *      is a hash of the inner frame's addresses into 49152-65535, as RFC 7348 section 5
 *      suggests, so one inner flow always takes one underlay path. An underlay that cannot choose
 *      its source port (a Linux socket bound to listen_port) sends from its own. The global zone's
 *      underlay sends the outer UDP checksum as zero, as the same section says it should.
 *   3. Every drop has a counter in kstat overlay:0:NAME: lookup_miss and lookup_drop (the search
 *      plugin had no destination or refused the frame), underlay_err (the underlay could not send:
 *      no route, no neighbour, socket error), drop_nobuf, drop_mtu, drop_bad_frame.
 *   4. The overlay's mtu (default 1400, 576-9000) bounds its VNICs. An mtu whose encapsulated
 *      frames (mtu + 14 Ethernet + 4 tag + 8 VXLAN) do not fit the underlay's MaxPayload to the
 *      plugin's destination is refused at create and at set-linkprop, when that destination is
 *      reachable; an unreachable one is counted at send time (underlay_err).
 *   5. The underlay is chosen by the host through ONE hook: MacLayer.UnderlayProvider, called with
 *      the listen endpoint when its mux is opened. A host in virtual time (zones/Host.cs) gives the
 *      global zone's IP stack, so underlay routing, ARP and MTU are the simulated network's; a
 *      front end may install another (a Linux UDP socket for smartos boot) with
 *      MacLayer.SetUnderlayProvider, which reopens every existing mux through it.
 *   6. IPv4 underlays only: an IPv6 listen_ip or destination is refused (DladmStatus.NotSup) with
 *      a message saying so, rather than half-supported. In place, as illumos and Linux do it: the
 *      overlay puts the inner tag (4) and the VXLAN header (8) in front of the frame, in its
 *      packet's headroom (Packet.Headroom, 64), and hands that packet to the underlay
 *      (IOverlayUnderlay.Send(Packet)); the global zone's prepends UDP, IPv4 and Ethernet (42, and
 *      4 for a tag where the frame leaves; UdpSocket.SendHeadroomV4) in the same headroom, so a
 *      frame is never copied on the way out (a packet with less room is copied once). Its VXLAN
 *      socket keeps the destination's resolved path (netstack/PathCache.cs: route, next hop and
 *      its MAC, revalidated by the stack's generation count when a route, address, MTU or ARP
 *      entry changes), so the common frame does no route or ARP lookup, and over it the UDP,
 *      IPv4 and Ethernet headers are written in one go (IpStack.TrySendUdpCached: the IPv4
 *      checksum summed from the header's words in registers, the path checked once per datagram);
 *      the direct plugin's destination is read without the proxy-answer and steering interface
 *      calls the files plugin needs (which live apart, in LookupOther); the files plugin
 *      remembers its last answer until the mapping changes, and the overlay its last frame's
 *      source port (VxlanSourcePortCache: rehashed only when the bytes rule 2 hashes change). On
 *      the way in the stack demuxes the VXLAN port early and checks the outer IPv4 and UDP headers
 *      in one pass (IpStack rule 1; the header checksum as five 32-bit words), and hands the datagram's packet to the mux
 *      (IOverlayUnderlay.SetPacketReceiver), which trims the VXLAN header and switches the inner
 *      frame in place; the listen address's underlay and the VNID's overlay are last-hit caches
 *      cleared when an overlay or underlay comes or goes. The outer UDP checksum is zero (rule 2) and the inner frame's checksums are
 *      left as they are (a pending one is filled in, as a NIC would, since the frame leaves the
 *      host). An underlay that hands out spans (the real-time socket) copies once each way. No
 *      allocation per frame (tests/SmartOS.Benchmarks overlay).
 *   7. A frame leaving the host through an overlay carries the VNIC's VLAN in an 802.1Q tag inside
 *      the encapsulation, as Triton's fabrics do; a decapsulated tagged frame is switched in that VLAN.
 *
 * Not done here: the target table of dynamic plugins is the plugin's (modify-overlay edits it
 * through IOverlayTargetTable when the plugin has one); FMA degraded states are not modelled, so
 * show-overlay -f always reports "ONLINE".
 */
using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using SmartOS.Kernel;
using SmartOS.Kernel.Wire;

namespace SmartOS.Vnic;

/// <summary>The VXLAN header (RFC 7348 section 5): a view-free pair of Emit and TryParse over spans.</summary>
public static class VxlanHeader
{
    public const int Length = 8;
    /// <summary>The I flag: the VNI is valid.</summary>
    public const byte FlagVni = 0x08;
    public const uint MaxVnid = 0xFFFFFF;
    /// <summary>The IANA port (vxlan/listen_port's default).</summary>
    public const ushort Port = 4789;
    /// <summary>Outer IPv4 (20) + UDP (8) + VXLAN (8) + inner Ethernet (14) + inner tag (4): what a
    /// frame grows by on an IPv4 underlay, less the outer Ethernet header of the underlay link.</summary>
    public const int InnerOverhead = EthernetView.HeaderLength + 4 + Length;

    /// <summary>Writes the header: flags 0x08, the VNID, every reserved bit zero.</summary>
    public static void Emit(Span<byte> destination, uint vnid)
    {
        BinaryPrimitives.WriteUInt32BigEndian(destination, (uint)FlagVni << 24);
        BinaryPrimitives.WriteUInt32BigEndian(destination[4..], vnid << 8);
    }

    /// <summary>Why a datagram is not a VXLAN frame we take.</summary>
    public enum Error { None, Short, Flags }

    /// <summary>Checks length and the I flag and reads the VNID (reserved bits ignored, RFC 7348).</summary>
    public static Error TryParse(ReadOnlySpan<byte> datagram, out uint vnid)
    {
        vnid = 0;
        if (datagram.Length < Length + EthernetView.HeaderLength) return Error.Short;
        if ((datagram[0] & FlagVni) == 0) return Error.Flags;
        vnid = BinaryPrimitives.ReadUInt32BigEndian(datagram[4..]) >> 8;
        return Error.None;
    }

    /// <summary>RFC 7348's suggested source port: a hash of the inner frame (its Ethernet addresses and
    /// type, and for IPv4 its addresses and first four transport bytes) in 49152-65535.</summary>
    public static ushort SourcePort(ReadOnlySpan<byte> inner)
    {
        uint h = 2166136261;
        int n = Math.Min(inner.Length, EthernetView.HeaderLength);
        for (int i = 0; i < n; i++) h = (h ^ inner[i]) * 16777619;
        int l3 = EthernetView.HeaderLength;
        if (inner.Length >= l3 + 4 && inner[12] == 0x81 && inner[13] == 0x00) l3 += 4;
        if (inner.Length >= l3 + 24 && inner[l3 - 2] == 0x08 && inner[l3 - 1] == 0x00 && (inner[l3] >> 4) == 4)
        {
            int ihl = (inner[l3] & 0xF) * 4;
            var ip = inner.Slice(l3 + 12, 8);
            for (int i = 0; i < 8; i++) h = (h ^ ip[i]) * 16777619;
            if (ihl >= 20 && inner.Length >= l3 + ihl + 4)
            {
                var ports = inner.Slice(l3 + ihl, 4);
                for (int i = 0; i < 4; i++) h = (h ^ ports[i]) * 16777619;
            }
        }
        return (ushort)(49152 + ((h ^ (h >> 16)) & 0x3FFF));
    }
}

/// <summary>
/// The last frame's source port (rule 2), as the Linux and illumos cached headers keep it: the port is
/// a function of the bytes <see cref="VxlanHeader.SourcePort"/> hashes (the Ethernet header; for IPv4
/// its addresses and first four transport bytes) and of which of them it hashes, so a frame whose
/// bytes there are the last frame's gets the last frame's port without hashing again. One per overlay,
/// used on the host's loop only.
/// </summary>
internal struct VxlanSourcePortCache
{
    private ulong _eth0, _eth6, _ip;
    private uint _ports;
    private int _shape; // 0: empty, 1: Ethernet only, 2: and IPv4 addresses, 3: and transport bytes
    private ushort _port;

    /// <summary>Hits and misses (for tests: a miss hashed the frame).</summary>
    public long Hits, Misses;

    /// <summary>VxlanHeader.SourcePort(<paramref name="inner"/>), from the cache when the hashed bytes
    /// are the last frame's.</summary>
    public ushort Get(ReadOnlySpan<byte> inner)
    {
        if (inner.Length < EthernetView.HeaderLength) return VxlanHeader.SourcePort(inner);
        // The same walk as SourcePort, reading the hashed bytes instead of hashing them.
        ulong eth0 = BinaryPrimitives.ReadUInt64LittleEndian(inner);
        ulong eth6 = BinaryPrimitives.ReadUInt64LittleEndian(inner[6..]);
        ulong ip = 0;
        uint ports = 0;
        int shape = 1;
        int l3 = EthernetView.HeaderLength;
        if (inner.Length >= l3 + 4 && inner[12] == 0x81 && inner[13] == 0x00) l3 += 4;
        if (inner.Length >= l3 + 24 && inner[l3 - 2] == 0x08 && inner[l3 - 1] == 0x00 && (inner[l3] >> 4) == 4)
        {
            shape = 2;
            ip = BinaryPrimitives.ReadUInt64LittleEndian(inner[(l3 + 12)..]);
            int ihl = (inner[l3] & 0xF) * 4;
            if (ihl >= 20 && inner.Length >= l3 + ihl + 4)
            {
                shape = 3;
                ports = BinaryPrimitives.ReadUInt32LittleEndian(inner[(l3 + ihl)..]);
            }
        }
        if (shape == _shape && eth0 == _eth0 && eth6 == _eth6 && ip == _ip && ports == _ports)
        {
            Hits++;
            return _port;
        }
        Misses++;
        _port = VxlanHeader.SourcePort(inner);
        _shape = shape;
        _eth0 = eth0;
        _eth6 = eth6;
        _ip = ip;
        _ports = ports;
        return _port;
    }
}

/// <summary>The counters of one overlay (kstat overlay:0:NAME, rule 3 of Overlay.cs).</summary>
public sealed class OverlayStats : IKstatSource
{
    public long Encap, Decap, LookupMiss, LookupDrop, UnderlayErr, ProxyAnswers, DropNoBuf, DropMtu, DropBadFrame;

    public void Snapshot(List<KeyValuePair<string, long>> into)
    {
        into.Add(new("encap", Encap));
        into.Add(new("decap", Decap));
        into.Add(new("lookup_miss", LookupMiss));
        into.Add(new("lookup_drop", LookupDrop));
        into.Add(new("underlay_err", UnderlayErr));
        into.Add(new("proxy_answers", ProxyAnswers));
        into.Add(new("drop_nobuf", DropNoBuf));
        into.Add(new("drop_mtu", DropMtu));
        into.Add(new("drop_bad_frame", DropBadFrame));
    }

    public void Reset() => Encap = Decap = LookupMiss = LookupDrop = UnderlayErr = ProxyAnswers = DropNoBuf = DropMtu = DropBadFrame = 0;
}

/// <summary>An overlay link (see the theory statement above): a switch like an etherstub's, whose
/// unknown destinations go over the underlay.</summary>
public sealed partial class OverlayLink : Datalink
{
    public const int DefaultMtu = 1400;

    internal OverlayLink(MacLayer mac, string name, int linkId, uint vnid, IOverlaySearch search, UnderlayEndpoint listen,
        IReadOnlyDictionary<string, string> props) : base(mac, name, linkId)
    {
        Vnid = vnid;
        Search = search;
        Listen = listen;
        Props = props;
        Mtu = DefaultMtu;
        Switch = new VSwitch(this);
    }

    public VSwitch Switch { get; }
    public override LinkClass Class => LinkClass.Overlay;
    public override string State => "up";
    public override long SpeedMbps => 0;

    /// <summary>The virtual network identifier (vnetid).</summary>
    public uint Vnid { get; }
    /// <summary>The encapsulation plugin (encap): always vxlan here.</summary>
    public string Encap => "vxlan";
    public IOverlaySearch Search { get; }
    /// <summary>vxlan/listen_ip and vxlan/listen_port.</summary>
    public UnderlayEndpoint Listen { get; }
    /// <summary>The plugin properties as given at create (direct/dest_ip ..., files/config), by name.</summary>
    public IReadOnlyDictionary<string, string> Props { get; internal set; }
    public OverlayStats OverlayStats { get; } = new();
    internal Kstat? OverlayKstat;
    internal OverlayMux? Mux;
    /// <summary>The last frame's outer source port (rule 2).</summary>
    internal VxlanSourcePortCache SourcePorts;

    /// <summary>A frame the switch cannot deliver locally (unknown unicast, or a group frame after its
    /// local copies): encapsulates it and sends it on the underlay. Consumes the packet.</summary>
    [SkipLocalsInit]
    internal void Encapsulate(Packet p)
    {
        var os = OverlayStats;
        var s = Stats;
        if (p.Vid != 0 && !EthernetView.TryPushTag(p, p.Vid, p.Pcp))
        {
            s.OErrors++;
            os.DropBadFrame++;
            p.Free();
            return;
        }
        if (p.LsoMss == 0) p.FinishChecksum(); // the frame leaves the host (MacLayer.cs rule 7); a large send's segments get theirs when cut
        var frame = p.Data;
        var dst = MacAddress.Read(frame);
        CountTx(s, p, dst);
        Tap(p, TapDirection.Transmitted, showTag: false);
        var search = Search;
        UnderlayEndpoint target;
        if (search is DirectSearch direct)
        {
            // The direct plugin answers no proxy and steers nothing: its one destination, without the
            // interface casts and calls the files plugin needs (rule 6).
            target = direct.Target;
        }
        else if (!LookupOther(p, search, frame, dst, out target)) return;
        var mux = Mux;
        if (mux != null && p.LsoMss != 0)
        {
            EncapsulateLarge(p, mux, target); // Overlay.LargeSend.cs
            return;
        }
        if (mux == null || !p.TryPrepend(VxlanHeader.Length))
        {
            os.UnderlayErr++;
            p.Free();
            return;
        }
        ushort sport = SourcePorts.Get(frame);
        VxlanHeader.Emit(p.Data, Vnid);
        // The frame's packet becomes the datagram's (rule 6): the underlay prepends its headers in
        // the headroom, and nothing of the inner frame's MAC-layer state goes with it.
        p.ClearMetadata();
        if (mux.Underlay.Send(target, sport, p)) os.Encap++;
        else os.UnderlayErr++;
    }

    /// <summary>Encapsulate's lookup through a plugin other than direct: a proxy answer (the reply
    /// goes back in), steering, then the lookup. False when the packet was consumed (answered,
    /// dropped or missed, each counted). Apart from Encapsulate so that its 1,536-byte reply buffer
    /// is not in the direct plugin's frame.</summary>
    [SkipLocalsInit]
    private bool LookupOther(Packet p, IOverlaySearch search, Span<byte> frame, MacAddress dst, out UnderlayEndpoint target)
    {
        var os = OverlayStats;
        target = default;
        // Proxy answers (ARP, NDP, DHCPv4 from the files plugin's mapping): the reply goes back in.
        Span<byte> reply = stackalloc byte[1536];
        int n = search.TryAnswer(frame, reply);
        if (n > 0)
        {
            os.ProxyAnswers++;
            p.Free();
            Decapsulate(reply[..Math.Min(n, reply.Length)], fromUnderlay: false);
            return false;
        }
        if (search is IOverlaySteering steering)
        {
            // The files plugin drops the ARP and NDP it could not answer, and sends a DHCPv4
            // broadcast to its sender's dhcp-proxy MAC instead (OverlayFiles.cs).
            switch (steering.Steer(frame, out var redirect))
            {
                case OverlaySteer.Drop:
                    os.LookupDrop++;
                    p.Free();
                    return false;
                case OverlaySteer.Redirect:
                    redirect.Write(frame);
                    dst = redirect;
                    break;
            }
        }
        var status = search.Lookup(dst, out target);
        if (status != OverlayLookupStatus.Found)
        {
            if (status == OverlayLookupStatus.Miss) os.LookupMiss++;
            else os.LookupDrop++;
            p.Free();
            return false;
        }
        return true;
    }

    /// <summary>An inner frame for this overlay (from the mux, or a proxy answer): copied into a
    /// packet, its tag moved into Packet.Vid, and switched to the local port it is for. Never throws.
    /// Only a frame that came from the underlay counts in decap; a proxy answer counts in proxy_answers.</summary>
    internal void Decapsulate(ReadOnlySpan<byte> inner, bool fromUnderlay = true)
    {
        var p = Mac.Pool.Rent(inner);
        if (p == null)
        {
            Stats.DropNoBuf++;
            OverlayStats.DropNoBuf++;
            return;
        }
        Decapsulate(p, fromUnderlay);
    }

    /// <summary>An inner frame already in a packet (Data = the inner Ethernet frame; the underlay's
    /// packet with the outer headers trimmed, rule 6): switched in place. Consumes the packet.</summary>
    internal void Decapsulate(Packet p, bool fromUnderlay = true)
    {
        p.ClearMetadata();
        SwitchInner(p, fromUnderlay);
    }

    /// <summary>An inner frame with its metadata set (none, or a joined run's large-send size and
    /// pending checksum: Overlay.LargeSend.cs): the link's ingress checks, then the overlay's switch.
    /// Consumes the packet.</summary>
    private void SwitchInner(Packet p, bool fromUnderlay)
    {
        var os = OverlayStats;
        switch (Ingress(p, tapBad: false))
        {
            case IngressDrop.BadFrame:
                os.DropBadFrame++;
                return;
            case IngressDrop.Mtu:
                os.DropMtu++;
                return;
        }
        if (fromUnderlay) os.Decap++;
        Switch.ForwardFromUplink(p);
    }
}

/// <summary>The counters of one listen endpoint (kstat overlay:0:mux_IP_PORT): what arrived and what
/// could not be given to any overlay (rule 1 of Overlay.cs).</summary>
public sealed class OverlayMuxStats : IKstatSource
{
    public long Datagrams, BadShort, BadFlags, UnknownVnid;

    public void Snapshot(List<KeyValuePair<string, long>> into)
    {
        into.Add(new("datagrams", Datagrams));
        into.Add(new("bad_short", BadShort));
        into.Add(new("bad_flags", BadFlags));
        into.Add(new("unknown_vnid", UnknownVnid));
    }

    public void Reset() => Datagrams = BadShort = BadFlags = UnknownVnid = 0;
}

/// <summary>One listen endpoint's underlay, shared by the overlays that listen there, demultiplexed
/// by VNID (illumos's overlay_mux).</summary>
internal sealed partial class OverlayMux
{
    private readonly Dictionary<uint, OverlayLink> _byVnid = new();
    private readonly Action<UnderlayEndpoint, ReadOnlyMemory<byte>> _receive;
    private readonly Action<UnderlayEndpoint, ReadOnlyMemory<byte>, int> _receiveLarge;
    private readonly OverlayPacketReceiver _receivePacket;

    public OverlayMux(UnderlayEndpoint listen, IOverlayUnderlay underlay)
    {
        Listen = listen;
        Underlay = underlay;
        _receive = Receive;
        _receiveLarge = ReceiveLarge; // Overlay.LargeSend.cs
        _receivePacket = Receive;
        Attach(underlay);
    }

    /// <summary>Listens on an underlay: by packet when it can hand them over (in-place
    /// decapsulation, rule 6), by span otherwise; and for joined runs where it makes them.</summary>
    private void Attach(IOverlayUnderlay underlay)
    {
        if (!underlay.SetPacketReceiver(_receivePacket)) underlay.SetReceiver(_receive);
        (underlay as IOverlayLargeReceive)?.SetLargeReceiver(_receiveLarge);
    }

    public UnderlayEndpoint Listen { get; }
    public IOverlayUnderlay Underlay { get; private set; }
    public OverlayMuxStats Stats { get; } = new();
    public Kstat? Kstat;
    public int Count => _byVnid.Count;

    // The overlay of the last datagram's VNID: a stream for one overlay finds it by one compare.
    // Cleared whenever an overlay joins or leaves the mux.
    private OverlayLink? _last;

    public bool Has(uint vnid) => _byVnid.ContainsKey(vnid);

    public void Add(OverlayLink o)
    {
        _byVnid.Add(o.Vnid, o);
        _last = null;
    }

    public void Remove(OverlayLink o)
    {
        _byVnid.Remove(o.Vnid);
        _last = null;
    }

    /// <summary>Moves the mux to another underlay (MacLayer.SetUnderlayProvider).</summary>
    public void Replace(IOverlayUnderlay underlay)
    {
        Close();
        Underlay = underlay;
        Attach(underlay);
    }

    public void Close()
    {
        Underlay.SetPacketReceiver(null);
        Underlay.SetReceiver(null);
        (Underlay as IOverlayLargeReceive)?.SetLargeReceiver(null);
        (Underlay as IDisposable)?.Dispose();
    }

    /// <summary>Counts a datagram heard on the listen endpoint and checks its VXLAN header (rule 1):
    /// the overlay of its VNID, or null with the reason counted.</summary>
    private OverlayLink? Classify(ReadOnlySpan<byte> datagram)
    {
        var s = Stats;
        s.Datagrams++;
        switch (VxlanHeader.TryParse(datagram, out uint vnid))
        {
            case VxlanHeader.Error.Short: s.BadShort++; return null;
            case VxlanHeader.Error.Flags: s.BadFlags++; return null;
        }
        if (_last is { } last && last.Vnid == vnid) return last;
        if (_byVnid.TryGetValue(vnid, out var overlay)) return _last = overlay;
        s.UnknownVnid++;
        return null;
    }

    /// <summary>A datagram heard on the listen endpoint (rule 1): checked, then handed to its overlay.</summary>
    private void Receive(UnderlayEndpoint from, ReadOnlyMemory<byte> datagram)
    {
        var span = datagram.Span;
        Classify(span)?.Decapsulate(span[VxlanHeader.Length..]);
    }

    /// <summary>The same for a datagram in its packet: the VXLAN header is trimmed and the inner frame
    /// switched in place, no copy (rule 6). Consumes the packet.</summary>
    private void Receive(UnderlayEndpoint from, Packet datagram)
    {
        if (Classify(datagram.Data) is not { } overlay)
        {
            datagram.Free();
            return;
        }
        datagram.TrimFront(VxlanHeader.Length);
        overlay.Decapsulate(datagram);
    }
}
