using System.Buffers.Binary;
using System.Diagnostics;
using SmartOS.Kernel;
using SmartOS.Kernel.Wire;

namespace SmartOS.Netstack;

// IPv4 (RFC 791, 1122, 1812): receive, local delivery, forwarding and output. Fragmentation and
// reassembly are in IpStack.Fragments.cs, ICMP in IpStack.Icmp.cs. Headers are read and written
// only through Ipv4View and Ipv4Repr.
public sealed partial class IpStack
{
    private int _deliveredHeaderLength;

    // ---- receive --------------------------------------------------------------------------------

    private void ReceiveIpv4(IpInterface ifc, Packet p)
    {
        Counters.ipInReceives++;
        p.TrimFront(EthernetView.HeaderLength);
        var e = Ipv4Repr.Parse(p.Data, ChecksumCaps.All, out var view, out var ip);
        if (e != WireError.None)
        {
            if (e == WireError.BadChecksum) Counters.ipInCksumErrs++;
            else Counters.ipInHdrErrors++;
            p.Free();
            return;
        }
        p.TrySetLength(view.Packet.Length); // drop Ethernet padding
        var src = ip.Source;
        var dst = ip.Destination;
        if (src.IsMulticast || src == IpAddress.BroadcastV4 || (src.IsLoopback && !ifc.IsLoopback))
        {
            Counters.ipInAddrErrors++; // martian source (RFC 1812 5.3.7)
            p.Free();
            return;
        }
        if (!IsForUsV4(ifc, dst))
        {
            if (!ForwardingV4 || ifc.IsLoopback || dst.IsMulticast || src.IsUnspecified)
            {
                if (ForwardingV4 || dst.IsMulticast) Counters.ipInAddrErrors++;
                else Counters.ipForwProhibits++;
                p.Free();
                return;
            }
            ForwardV4(p);
            return;
        }
        DeliverV4(ifc, p, view.HeaderLength, ip);
    }

    private bool IsForUsV4(IpInterface ifc, IpAddress dst)
    {
        if (LookupLocal(dst) is { } a) return a.IsUsable;
        if (dst == IpAddress.BroadcastV4) return true;
        if (dst.V4Raw == 0xE0000001) return true; // all-hosts
        foreach (var o in _addresses)
            if (o.Interface == ifc && o.Address.IsV4 && o.IsUsable && o.Broadcast == dst) return true;
        return false;
    }

    /// <summary>Whether an option-less IPv4 header (the first 20 bytes of <paramref name="h"/>, which
    /// has at least that many) checks, as Checksum.Compute over them being 0 does: its five 32-bit
    /// words summed in a register (RFC 1071's ones' complement sum is the same in either byte order).</summary>
    private static bool HeaderChecksumOkV4(ReadOnlySpan<byte> h)
    {
        ulong sum = (ulong)BinaryPrimitives.ReadUInt32LittleEndian(h) + BinaryPrimitives.ReadUInt32LittleEndian(h[4..])
            + BinaryPrimitives.ReadUInt32LittleEndian(h[8..]) + BinaryPrimitives.ReadUInt32LittleEndian(h[12..])
            + BinaryPrimitives.ReadUInt32LittleEndian(h[16..]);
        sum = (sum & 0xFFFFFFFF) + (sum >> 32);
        sum = (sum & 0xFFFFFFFF) + (sum >> 32);
        uint s = (uint)(sum & 0xFFFF) + (uint)(sum >> 16);
        s = (s & 0xFFFF) + (s >> 16);
        s = (s & 0xFFFF) + (s >> 16);
        return s == 0xFFFF;
    }

    /// <summary>
    /// Rule 1's early demux in one pass: an early-demuxed frame (IsEarlyDemux) whose IPv4 header has no
    /// options and a valid checksum, from a sound source, to a usable address of ours, carrying a UDP
    /// datagram without a checksum (the VXLAN underlay's, RFC 7348 section 5) to a socket that takes
    /// packets, is checked here once and handed to that socket, with the counters ReceiveIpv4,
    /// DeliverV4 and UdpLayer.Receive keep for it. Anything else (and anything while ip:::receive or
    /// udp:::receive is enabled) returns false having changed nothing, and takes the full path.
    /// Consumes the packet when it returns true.
    /// </summary>
    private bool TryDeliverUdpEarly(IpInterface ifc, Packet p)
    {
        if (_probes.IpReceive.Enabled || _probes.UdpReceive.Enabled) return false;
        var l3 = p.Data[EthernetView.HeaderLength..];
        const int Headers = Ipv4Repr.HeaderLength + UdpView.HeaderLength;
        if (l3.Length < Headers || l3[0] != 0x45) return false;
        int total = BinaryPrimitives.ReadUInt16BigEndian(l3[2..]);
        if (total < Headers || total > l3.Length || !HeaderChecksumOkV4(l3)) return false;
        var src = IpAddress.V4(BinaryPrimitives.ReadUInt32BigEndian(l3[12..]));
        var dst = IpAddress.V4(BinaryPrimitives.ReadUInt32BigEndian(l3[16..]));
        if (src.IsMulticast || src == IpAddress.BroadcastV4 || src.IsLoopback || !IsForUsV4(ifc, dst)) return false;
        var udp = l3[Ipv4Repr.HeaderLength..total];
        int length = BinaryPrimitives.ReadUInt16BigEndian(udp[4..]);
        if (length < UdpView.HeaderLength || length > udp.Length || BinaryPrimitives.ReadUInt16BigEndian(udp[6..]) != 0) return false;
        ushort sport = BinaryPrimitives.ReadUInt16BigEndian(udp);
        ushort dport = BinaryPrimitives.ReadUInt16BigEndian(udp[2..]);
        if (dport == DhcpView.ClientPort || Udp.FindBest(src, sport, dst, dport)?.PacketUpcall is not { } take) return false;
        Counters.ipInReceives++;
        Counters.ipInDelivers++;
        UdpStats.udpInDatagrams++;
        _deliveredHeaderLength = Ipv4Repr.HeaderLength;
        p.TrimFront(EthernetView.HeaderLength + Ipv4Repr.HeaderLength);
        p.TrySetLength(length);
        p.TrimFront(UdpView.HeaderLength);
        take(new IpEndpoint(src, sport), dst, p);
        return true;
    }

    /// <summary>Hands a datagram addressed to us (Data = IP header onward, checked by ReceiveIpv4) to
    /// reassembly, ICMP or its transport. Consumes the packet.</summary>
    private void DeliverV4(IpInterface ifc, Packet p, int ihl, Ipv4Repr ip)
    {
        if (ip.IsFragment)
        {
            var whole = Reassemble(p);
            if (whole == null) return;
            p = whole;
            // Reassembly rebuilt the header from a checked one, so this cannot fail.
            var e = Ipv4Repr.Parse(p.Data, ChecksumCaps.None, out var view, out ip);
            Debug.Assert(e == WireError.None);
            ihl = view.HeaderLength;
        }
        var src = ip.Source;
        var dst = ip.Destination;
        Counters.ipInDelivers++;
        if (_probes.IpReceive.Enabled) FireIp(_probes.IpReceive, p.Data, v6: false, ifc);
        if (ip.Protocol == IpProtocol.Icmp)
        {
            _deliveredHeaderLength = ihl;
            p.TrimFront(ihl);
            ReceiveIcmpV4(ifc, p, src, dst, ip.Ttl);
            return;
        }
        var t = _transports[ip.Protocol];
        if (t == null)
        {
            Counters.ipInUnknownProtos++;
            if (!dst.IsMulticast && dst != IpAddress.BroadcastV4) SendIcmpErrorV4(p.Data, IcmpType.DestinationUnreachable, 2);
            p.Free();
            return;
        }
        _deliveredHeaderLength = ihl;
        p.TrimFront(ihl);
        t.Receive(p, src, dst);
    }

    /// <summary>For a transport that got a segment for a closed port: sends ICMP port unreachable
    /// quoting the datagram (rule 6: the IP header sits in front of packet.Offset). Does not consume.</summary>
    public void SendPortUnreachable(Packet segment, IpAddress source, IpAddress destination)
    {
        if (destination.IsMulticast || destination == IpAddress.BroadcastV4) return;
        int ihl = _deliveredHeaderLength;
        if (segment.Offset < ihl) return;
        var original = segment.Buffer.AsSpan(segment.Offset - ihl, segment.Length + ihl);
        if (source.IsV4)
        {
            if (!IsForUsBroadcast(destination)) SendIcmpErrorV4(original, IcmpType.DestinationUnreachable, 3);
        }
        else SendIcmpErrorV6(original, IcmpType.V6DestinationUnreachable, 4, 0);
    }

    private bool IsForUsBroadcast(IpAddress dst)
    {
        foreach (var o in _addresses) if (o.Address.IsV4 && o.Broadcast == dst) return true;
        return false;
    }

    // ---- forwarding (RFC 1812) ------------------------------------------------------------------

    private void ForwardV4(Packet p)
    {
        Ipv4View.TryCreate(p.Data, out var ip);
        var dst = ip.Destination;
        if (ip.Ttl <= 1)
        {
            p.FinishChecksum(); // quoted in the ICMP error as it would be on a wire
            Counters.ipTtlExpired++;
            SendIcmpErrorV4(p.Data, IcmpType.TimeExceeded, 0);
            p.Free();
            return;
        }
        if (!TryRoute(dst, out var outIfc, out var nextHop, out _) || outIfc.IsLoopback)
        {
            p.FinishChecksum();
            Counters.ipOutNoRoutes++;
            SendIcmpErrorV4(p.Data, IcmpType.DestinationUnreachable, 0);
            p.Free();
            return;
        }
        ip.DecrementTtl();
        if (p.Length > outIfc.Mtu && !LargeSegmentsFit(p, ip.HeaderLength, outIfc.Mtu))
        {
            p.FinishChecksum(); // quoted, or copied into fragments
            if (ip.DontFragment)
            {
                Counters.ipFragFails++;
                ip.Ttl++; // quote the datagram as it arrived
                ip.FillChecksum();
                SendIcmpErrorV4(p.Data, IcmpType.DestinationUnreachable, 4, (ushort)Math.Min(outIfc.Mtu, ushort.MaxValue));
                p.Free();
                return;
            }
            Counters.ipForwDatagrams++;
            FragmentV4(outIfc, p, nextHop);
            return;
        }
        Counters.ipForwDatagrams++;
        OutputV4(outIfc, p, nextHop);
    }

    // ---- output ---------------------------------------------------------------------------------

    /// <summary>
    /// Sends a transport payload (packet.Data = transport header + payload) over IPv4. With
    /// <paramref name="via"/> the datagram leaves that interface on-link (DHCP, limited broadcast).
    /// Consumes the packet; false when it was dropped (counted).
    /// </summary>
    /// <remarks>With <paramref name="path"/> (a kernel consumer's PathCacheV4) a valid cached path
    /// replaces the route and ARP lookups; a full lookup that ends at a resolved unicast next hop
    /// refills it.</remarks>
    internal bool SendV4(Packet p, IpAddress src, IpAddress dst, byte proto, byte ttl, bool dontFragment, IpInterface? via, byte tos = 0, PathCacheV4? path = null)
    {
        Counters.ipOutRequests++;
        IpInterface ifc;
        IpAddress nextHop = dst;
        MacAddress nextHopMac = default;
        bool resolved = false;
        if (path != null && via == null && path.TryUse(this, dst, out ifc, out nextHop, out nextHopMac)) resolved = true;
        else if (via != null) ifc = via;
        else if (dst.IsLoopback || IsLocalAddress(dst)) ifc = Loopback;
        else if (dst == IpAddress.BroadcastV4 || dst.IsMulticast)
        {
            ifc = FirstInterfaceWithV4() ?? Loopback;
        }
        else if (!TryRoute(dst, out ifc, out nextHop, out var route))
        {
            Counters.ipOutNoRoutes++;
            p.Free();
            return false;
        }
        else if (path != null && !ifc.IsLoopback && nextHop != IpAddress.BroadcastV4 && !nextHop.IsMulticast
            && !IsSubnetBroadcast(ifc, nextHop) && ifc.Arp.TryLookup(nextHop, out var mac))
        {
            path.Fill(this, dst, ifc, nextHop, route, mac);
        }
        if (src.IsUnspecified && via == null)
        {
            var a = InterfaceAddress(ifc, v4: true, toward: dst);
            if (a != null) src = a.Address;
        }
        var ip = new Ipv4Repr
        {
            Source = src, Destination = dst, Protocol = proto, PayloadLength = p.Length,
            Ttl = ttl, Tos = tos, Identification = NextIpId(), DontFragment = dontFragment,
        };
        if (!p.TryPrepend(Ipv4Repr.HeaderLength) || !ip.TryEmit(p.Data))
        {
            Counters.noBuffers++;
            p.Free();
            return false;
        }
        if (_probes.IpSend.Enabled) FireIp(_probes.IpSend, p.Data, v6: false, ifc);
        if (p.LsoMss != 0)
        {
            // A large send (IIpLayer.LsoMax): the MAC layer or the device cuts it into MSS segments,
            // numbered from this identification on, so the IDs they take are reserved here.
            _ipId += (ushort)((p.Length - Ipv4Repr.HeaderLength) / p.LsoMss);
        }
        else if (p.Length > ifc.Mtu)
        {
            if (dontFragment)
            {
                Counters.ipOutMtuExceeded++;
                Counters.ipOutDiscards++;
                p.Free();
                return false;
            }
            FragmentV4(ifc, p, nextHop);
            return true;
        }
        if (resolved) TransmitFrame(ifc, p, nextHopMac, EtherType.Ipv4);
        else OutputV4(ifc, p, nextHop);
        return true;
    }

    /// <summary>
    /// A kernel consumer's checksum-less UDP datagram (the VXLAN socket's, Data = the payload, with
    /// the headroom for every header) over its valid cached path: the UDP, IPv4 and Ethernet headers
    /// written in one go and the frame transmitted, with the counters Udp.Send, SendV4 and
    /// TransmitFrame keep for it, and the same bytes. False, having changed nothing, when the path is
    /// not cached, the datagram needs fragmenting or is a large send, or ip:::send or udp:::send is
    /// enabled: the caller takes the full path. Consumes the packet when it returns true.
    /// </summary>
    internal bool TrySendUdpCached(Packet p, IpAddress src, ushort sport, IpEndpoint to, byte ttl, bool dontFragment, PathCacheV4 path)
    {
        const int Headers = EthernetView.HeaderLength + Ipv4Repr.HeaderLength + UdpView.HeaderLength;
        if (_probes.IpSend.Enabled || _probes.UdpSend.Enabled || _probes.UdpSendConnected.Enabled || p.LsoMss != 0 || p.Offset < Headers) return false;
        var dst = to.Address;
        var ifc = path.Peek(this, dst);
        int udpLength = p.Length + UdpView.HeaderLength;
        if (ifc == null || ifc.IsLoopback || !src.IsV4 || udpLength + Ipv4Repr.HeaderLength > ifc.Mtu || udpLength > ushort.MaxValue) return false;
        UdpStats.udpOutDatagrams++;
        Counters.ipOutRequests++;
        var mac = path.UsePeeked(); // counts the route's use and the hit, as SendV4's TryUse does
        ushort id = NextIpId();
        p.TryPrepend(Headers);
        var b = p.Data;
        EthernetView.WriteHeader(b, mac, ifc.MacAddress, EtherType.Ipv4);
        // The 20-byte header Ipv4Repr.TryEmit writes (no options, TOS 0), its checksum summed from
        // the header's words in registers rather than read back from the buffer: the same bytes.
        var ih = b.Slice(EthernetView.HeaderLength, Ipv4Repr.HeaderLength);
        uint total = (uint)(udpLength + Ipv4Repr.HeaderLength);
        uint flags = dontFragment ? 0x4000u : 0u;
        uint ttlProto = (uint)ttl << 8 | (byte)IpProtocol.Udp;
        uint s4 = src.V4Raw, d4 = dst.V4Raw;
        uint sum = 0x4500u + total + id + flags + ttlProto + (s4 >> 16) + (s4 & 0xFFFF) + (d4 >> 16) + (d4 & 0xFFFF);
        sum = (sum & 0xFFFF) + (sum >> 16);
        sum = (sum & 0xFFFF) + (sum >> 16);
        BinaryPrimitives.WriteUInt32BigEndian(ih, 0x45000000u | total);
        BinaryPrimitives.WriteUInt32BigEndian(ih[4..], (uint)id << 16 | flags);
        BinaryPrimitives.WriteUInt32BigEndian(ih[8..], ttlProto << 16 | (ushort)~sum);
        BinaryPrimitives.WriteUInt32BigEndian(ih[12..], s4);
        BinaryPrimitives.WriteUInt32BigEndian(ih[16..], d4);
        var udp = b[(EthernetView.HeaderLength + Ipv4Repr.HeaderLength)..];
        BinaryPrimitives.WriteUInt16BigEndian(udp, sport);
        BinaryPrimitives.WriteUInt16BigEndian(udp[2..], to.Port);
        BinaryPrimitives.WriteUInt16BigEndian(udp[4..], (ushort)udpLength);
        BinaryPrimitives.WriteUInt16BigEndian(udp[6..], 0);
        ifc.OutPackets++;
        _transmitting++; // rule 1, as TransmitFrame
        ifc.Client!.Transmit(p);
        _transmitting--;
        return true;
    }

    private IpInterface? FirstInterfaceWithV4()
    {
        foreach (var i in _interfaces)
            if (!i.IsLoopback && InterfaceAddress(i, v4: true) != null) return i;
        foreach (var i in _interfaces) if (!i.IsLoopback) return i;
        return null;
    }

    /// <summary>Chooses the link address of the next hop and transmits, or waits for ARP. Consumes the packet.</summary>
    private void OutputV4(IpInterface ifc, Packet p, IpAddress nextHop)
    {
        if (ifc.IsLoopback)
        {
            TransmitFrame(ifc, p, MacAddress.Zero, EtherType.Ipv4);
            return;
        }
        if (nextHop == IpAddress.BroadcastV4 || IsSubnetBroadcast(ifc, nextHop))
        {
            TransmitFrame(ifc, p, MacAddress.Broadcast, EtherType.Ipv4);
            return;
        }
        if (nextHop.IsMulticast)
        {
            // RFC 1112 6.4: 01:00:5e plus the low 23 bits of the group.
            TransmitFrame(ifc, p, new MacAddress(0x01005E000000UL | (nextHop.V4Raw & 0x7FFFFF)), EtherType.Ipv4);
            return;
        }
        if (ifc.Arp.TryLookup(nextHop, out var mac))
        {
            TransmitFrame(ifc, p, mac, EtherType.Ipv4);
            return;
        }
        ifc.Arp.Enqueue(nextHop, p);
    }

    private bool IsSubnetBroadcast(IpInterface ifc, IpAddress a)
    {
        foreach (var o in _addresses)
            if (o.Interface == ifc && o.Address.IsV4 && o.Broadcast == a) return true;
        return false;
    }
}
