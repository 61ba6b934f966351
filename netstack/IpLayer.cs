using SmartOS.Kernel;
using SmartOS.Kernel.Wire;

namespace SmartOS.Netstack;

/// <summary>
/// The seam between the IP layer and its transports (TCP, UDP), as smoltcp separates iface from
/// socket. A transport builds its header and payload in a pooled packet, leaving
/// <see cref="HeaderRoom"/> bytes of headroom; the IP layer prepends the IP and link headers.
/// </summary>
public interface IIpLayer
{
    Scheduler Scheduler { get; }
    HostRandom Random { get; }
    PacketPool Pool { get; }

    /// <summary>Bytes a transport must leave in front of its header (link + IP headers).</summary>
    int HeaderRoom { get; }

    /// <summary>Chooses the source address for a destination (route lookup); false when unroutable.</summary>
    bool TrySelectSource(IpAddress destination, out IpAddress source);

    /// <summary>The path MTU toward a destination (for MSS and PMTU discovery).</summary>
    int PathMtu(IpAddress destination);

    /// <summary>Whether the address is one of this stack's own (for bind checks).</summary>
    bool IsLocalAddress(IpAddress address);

    /// <summary>Sends a transport segment (packet.Data = transport header + payload, checksum filled
    /// in by the transport over the pseudo-header, or left pending when <see cref="ChecksumOffload"/>).
    /// Consumes the packet; false when it was dropped.</summary>
    bool Send(Packet packet, IpAddress source, IpAddress destination, byte protocol);

    /// <summary>As <see cref="Send"/>, for a connection that keeps the path it last took to an IPv4
    /// destination in <paramref name="path"/> (PathCache.cs), so its next segment skips the route
    /// and neighbour lookups while the path is valid. A layer without such a cache sends as Send.</summary>
    internal bool Send(Packet packet, IpAddress source, IpAddress destination, byte protocol, PathCacheV4 path) => Send(packet, source, destination, protocol);

    /// <summary>Whether the layer takes segments with their checksum pending (Packet.ChecksumPending,
    /// the pseudo-header sum in the field): the MAC layer fills it in where a frame leaves the host.</summary>
    bool ChecksumOffload => false;

    /// <summary>The largest IP packet a transport may send toward <paramref name="destination"/> as
    /// one large-send TCP segment (Packet.LsoMss, cut into MSS segments below IP: MacLayer.cs rule 9),
    /// or 0 when the route's link has no large send.</summary>
    int LsoMax(IpAddress destination) => 0;

    /// <summary>Whether <paramref name="destination"/> is reached without a router: one of this
    /// stack's own addresses, or on the link of a connected route (illumos's iulp_localnet, from
    /// IRE_ONLINK). TCP defers more ACKs toward such a peer. A layer that cannot tell says false.</summary>
    bool OnLink(IpAddress destination) => false;
}

/// <summary>A transport protocol registered with the IP layer.</summary>
public interface ITransport
{
    /// <summary>A segment for this protocol (packet.Data = transport header + payload). Owns the packet.</summary>
    void Receive(Packet packet, IpAddress source, IpAddress destination);

    /// <summary>An ICMP error about a segment this transport sent (for PMTU discovery and errors such
    /// as port unreachable). <paramref name="quoted"/> is the quoted transport header.</summary>
    void ReceiveError(IcmpErrorKind kind, int mtu, IpAddress source, IpAddress destination, ReadOnlySpan<byte> quoted);
}

public enum IcmpErrorKind { NetUnreachable, HostUnreachable, ProtocolUnreachable, PortUnreachable, FragmentationNeeded, TimeExceeded, PacketTooBig, AdminProhibited }
