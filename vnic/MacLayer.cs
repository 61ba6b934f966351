/*
 * SmartOS.Vnic: the Crossbow MAC layer.
 *
 * One MacLayer is the data-link layer of one host: its datalinks, the virtual switches that join
 * them, the MAC clients that upper layers open on them, and the wires that leave the host. It
 * follows illumos's mac(9E)/vnic design (usr/src/uts/common/io/mac/mac.c), reduced to what a
 * simulation needs.
 *
 * Glossary
 *   datalink    a named link in dladm's namespace: phys (a physical NIC), etherstub (a switch with
 *               no wire), vnic (a virtual NIC over a phys or etherstub), vlan (a tagged link over a
 *               phys). Names follow illumos rules (LinkNames).
 *   vswitch     the virtual switch inside every phys and etherstub. Its ports are the VNICs, VLANs
 *               and the phys's own primary port; each port has a MAC address and a VLAN ID.
 *   MAC client  the handle an upper layer (an IP stack, a guest's virtio-net, pktgen) opens on a
 *               port-bearing datalink to transmit frames and receive them through a callback.
 *   wire        a cable between two phys NICs (same or different hosts), with speed, delay, loss
 *               and MTU. Only frames on a wire are tagged with 802.1Q; inside the host a packet
 *               carries its VLAN in Packet.Vid. In real time a phys's far side may instead be a
 *               real Linux interface (IPhysBackend): a TAP device (TapNic) or, through libpcap, an
 *               existing one (tools/Daemon/PcapNic.cs). An lx zone's TAP devices are MAC clients
 *               (TapClient). Their threads hand frames to the loop (TapDevice.cs).
 *   tap         a capture point on a datalink (snoop). A phys's taps see what is on its wire; a
 *               VNIC's see what its client sends and receives; an etherstub's see every frame its
 *               switch forwards.
 *
 * Data path
 *   client tx:  MacClient.Transmit -> Datalink.Transmit (checks, tap, counters)
 *               -> VSwitch.Forward: group -> every other port in the VLAN (one copy each) and the
 *                  uplink; known unicast -> that port only; unknown unicast -> the uplink, or a
 *                  counted drop on an etherstub.
 *   wire rx:    Wire -> Phys.ReceiveFromWire (parse, strip tag, counters) -> VSwitch.Forward.
 *   delivery:   Datalink.Deliver (tap, counters) -> the client's receive callback, which now owns
 *               the packet.
 *
 * Rules
 *   1. Unicast to a local port never touches the wire.
 *   2. A frame is forwarded only within its VLAN and its switch; etherstubs and VLANs never leak
 *      into each other. A client of a VNIC or VLAN link cannot choose its VLAN: tagged frames from
 *      it are dropped and counted.
 *   3. Every drop increments a counter with a reason (LinkStats); nothing is dropped silently.
 *   4. Nothing on the data path throws on bad frames; malformed input is counted in ierrors/oerrors.
 *   5. Configuration changes either complete or leave live and persistent state unchanged. Every
 *      value is checked for range before anything changes (a maxbw that overflows is "invalid
 *      argument", not an exception). datalink.conf and flowadm.conf are read record by record
 *      (kernel/ConfigFile.cs); a record that cannot be replayed is reported and kept in the file.
 *   6. Packets are owned by one component at a time (Kernel.cs rule 3); group frames are copied
 *      once per receiving port.
 *   7. Checksum offload, as illumos's HCK_PARTIALCKSUM between VNICs of one host: an IP stack may
 *      send TCP with its checksum pending (Packet.ChecksumPending). It is filled in wherever the
 *      frame stops being this host's business: on a phys's way to its wire or device (the NIC's
 *      offload), in every capture tap, and before a MAC client that is not an IP stack
 *      (IMacReceiver.AcceptsPendingChecksum: guests, lx zones) gets it. A device or client that
 *      fills it in itself gets it pending: a TAP with offloads (IPhysBackend.OffloadsChecksum,
 *      TapClient) passes it to Linux in its virtio_net_hdr. Stacks of the host accept pending
 *      frames without verifying them. The same holds the other way for a TAP's GSO frame whose
 *      virtio_net_hdr says Linux left the TCP checksum to us (NEEDS_CSUM, TapDevice.cs rule 6): it
 *      enters the MAC layer pending, as if a neighbour stack had sent it. Captures and wires
 *      therefore see the same bytes as without offload. Receive offload (illumos's
 *      HCK_FULLCKSUM_OK): a checksum that FinishChecksum filled in marks the packet
 *      (Packet.ChecksumKnownGood), and a stack takes a marked frame without summing it again. A
 *      wire changes no byte, so a frame that crosses one to another host of this process keeps the
 *      mark (a copy made at a barrier too); the mark goes when the packet is rented again, reused as
 *      another frame or marked pending, and a frame from a device (TAP, pcap) or a guest never has
 *      it, so anything from outside is verified in full.
 *   8. Adding a VNIC or etherstub to the live state costs O(1) in the number of links: a switch
 *      adds a port's address to its unicast table at once and rebuilds its VLAN arrays only when a
 *      frame first needs them, and an address clash is one lookup in that table. So a boot replays
 *      N records in O(N) (tests/SmartOS.Benchmarks boot).
 *   9. Large send (illumos's LSO, mac_capab_lso; issue 17): an IP stack may send one TCP segment of
 *      up to ~64 KiB marked with its MSS (Packet.LsoMss) when its client's link offers it
 *      (MacClient.LsoMax: a port of a switch whose NIC's device segments, PhysLink.TakesLso: a TAP
 *      NIC with offloads, neither bridged nor aggregated; or of an overlay whose underlay segments,
 *      OverlayLink.TakesLso: the real-time UDP socket, Overlay.LargeSend.cs). Datalink.Transmit
 *      checks once that it is whole Ethernet/IP/TCP whose every segment fits the MTU (else
 *      drop_mtu). Protection, flows, maxbw and priority apply to it as to any frame, per byte. The
 *      switch passes it on whole only out of such a NIC (counted lso_out there), whose device
 *      writes it as one virtio_net_hdr GSO frame, or into such an overlay, whose socket sends it as
 *      UDP GSO runs; to anything else (a local port, a bridge, another overlay, an aggregation, a
 *      wire) it is first cut into MSS segments in software (TcpSegmentation, counted lso_soft on the sending
 *      link), so every receiver, wire and stack sees only frames the MTU allows. Captures on the way
 *      to the device show the large frame whole, as illumos snoop shows an LSO packet taken above
 *      the driver (and tcpdump a GSO one): the capture shows what the MAC layer carried, costs no
 *      copies per segment, and the frame stays within the pcap snaplen (PacketPool.LsoSize); its TCP
 *      checksum is the whole segment's. Large receive is the same the other way: a TAP NIC's device
 *      hands over Linux's GSO frame whole with its MSS (PhysLink.ReceiveFromBackend), as an
 *      overlay's socket hands over the segments of a GRO run it joined (UdpUnderlay.cs rule 6,
 *      OverlayLink.DecapsulateLarge); the NIC's or overlay's ingress checks it as above, and the switch delivers it whole only to a client that takes it
 *      (IMacReceiver.AcceptsLargeReceive: an IP stack, an lx zone's TAP); a bridged or aggregated
 *      NIC, any other client and any group address get MSS segments (lso_soft on the NIC).
 *
 * Resource control (flows, bandwidth, priority, link protection) sits on this path; its own theory
 * statement is in ResourceControl.cs. Bridges (dladm create-bridge) join the switches of several
 * links, with spanning tree on their wires; their theory statement is in Bridge.cs. Overlays
 * (dladm create-overlay) are switches like etherstubs whose unknown destinations are encapsulated in
 * VXLAN over an IP underlay; their theory statement is in Overlay.cs.
 */
using System.Runtime.InteropServices;
using SmartOS.Kernel;
using SmartOS.Kernel.Wire;

namespace SmartOS.Vnic;

/// <summary>The MAC layer of one host (see the theory statement above).</summary>
public sealed partial class MacLayer
{
    private readonly Dictionary<string, Datalink> _links = new(StringComparer.Ordinal);
    private int _nextLinkId = 1;
    private int _nextFactorySerial;

    public MacLayer(string hostName, Scheduler scheduler, PacketPool pool, KstatRegistry kstats, HostRandom random,
        IIdentitySource? identities = null)
    {
        HostName = hostName;
        Scheduler = scheduler;
        Pool = pool;
        Kstats = kstats;
        Random = random;
        Identities = identities ?? random;
        RegisterBuiltinProperties();
        RegisterBridgePortProperties();
        RegisterResourceProperties();
        RegisterIllumosReadOnlyProperties();
    }

    public string HostName { get; }
    public Scheduler Scheduler { get; }
    public PacketPool Pool { get; }
    public KstatRegistry Kstats { get; }
    public HostRandom Random { get; }

    /// <summary>Where random VNIC addresses come from (IdentitySource.cs); the host's Random unless a
    /// front end gives the host its own.</summary>
    public IIdentitySource Identities { get; }

    /// <summary>Datalinks in creation order.</summary>
    public IEnumerable<Datalink> Links
    {
        get
        {
            var list = new List<Datalink>(_links.Values);
            list.Sort((a, b) => a.LinkId.CompareTo(b.LinkId));
            return list;
        }
    }

    public Datalink? Find(string name) => _links.TryGetValue(name, out var l) ? l : null;

    public bool Exists(string name) => _links.ContainsKey(name);

    /// <summary>Counts changes to the set of links and their names (create, delete, rename), so an
    /// observer that samples every link (tools/Observe/LinkSeries.cs) lists them again only when
    /// this moves, not on every sample.</summary>
    public long Generation { get; private set; }

    /// <summary>Creates the host's physical NICs e1000g0..e1000gN-1 with factory MAC addresses.</summary>
    public PhysLink AddPhys(string name)
    {
        // Factory addresses: an OUI-style prefix taken from the host's random source, so two hosts
        // in a world differ and a run is reproducible.
        ulong serial = (ulong)_nextFactorySerial++;
        ulong oui = 0x0008_20UL; // Sun's OUI, as illumos e1000g on SPARC/x86 boxes printed for years.
        ulong nic = ((Random.NextUInt64() & 0xFFF0UL) << 8) | (serial & 0xFF);
        var mac = new MacAddress((oui << 24) | (nic & 0xFFFFFF));
        var phys = new PhysLink(this, name, NextLinkId(), mac) { Device = name };
        Register(phys);
        return phys;
    }

    internal int NextLinkId() => _nextLinkId++;

    /// <summary>How many port-bearing links have each MAC address (a link's address is fixed at creation).</summary>
    private readonly Dictionary<ulong, int> _portAddresses = new();

    /// <summary>Whether a phys, VNIC or VLAN of the host has the address: one lookup, for callers that
    /// draw fresh addresses host-wide (vmadm's nics) among thousands of links.</summary>
    public bool HasPortAddress(MacAddress mac) => _portAddresses.ContainsKey(mac.Value);

    internal void Register(Datalink link)
    {
        _links.Add(link.Name, link);
        Generation++;
        if (link is PortLink p) CollectionsMarshal.GetValueRefOrAddDefault(_portAddresses, p.MacAddress.Value, out _)++;
        link.Kstat = Kstats.Add("link", 0, link.Name, "net", link.Stats);
        link.Probes = new LinkProbes(Probes, link);
    }

    internal void Unregister(Datalink link)
    {
        _links.Remove(link.Name);
        Generation++;
        if (link is PortLink p && _portAddresses.TryGetValue(p.MacAddress.Value, out int n))
        {
            if (n <= 1) _portAddresses.Remove(p.MacAddress.Value);
            else _portAddresses[p.MacAddress.Value] = n - 1;
        }
        if (link.Kstat != null) Kstats.Remove(link.Kstat);
        link.Probes.RemoveFrom(Probes);
        link.Probes = LinkProbes.None;
    }

    internal void Rename(Datalink link, string newName)
    {
        _links.Remove(link.Name);
        link.Name = newName;
        _links.Add(newName, link);
        Generation++;
        if (link.Kstat != null) link.Kstat.Name = newName;
        if (link is OverlayLink { OverlayKstat: { } ok }) ok.Name = newName; // kstat overlay:0:NAME follows
    }

    /// <summary>Every MAC address in use by a port on this host (for uniqueness checks).</summary>
    /// <summary>Whether a port of the switch has the address in the VLAN: every port link is a port
    /// of its switch, so the switch's unicast table answers in one lookup (boot stays linear).</summary>
    internal bool MacInUse(MacAddress mac, ushort vid, VSwitch sw) => sw.HasAddress(mac, vid);
}
