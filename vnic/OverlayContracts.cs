using SmartOS.Kernel;
using SmartOS.Kernel.Wire;

namespace SmartOS.Vnic;

// The two seams of an overlay link (overlay(7)): the search plugin that says where a tenant's frame
// goes on the underlay (varpd's plugins: direct, files), and the underlay that carries the VXLAN
// datagrams (the global zone's IP stack, or a UDP socket of the Linux host). Both are implemented
// above or beside the MAC layer and called on the host's loop. The overlay link itself, and the
// theory statement of overlays, are in the files that implement it.

/// <summary>An address and UDP port on the underlay network.</summary>
public readonly record struct UnderlayEndpoint(IpAddress Address, ushort Port);

/// <summary>What a search plugin answers for a destination.</summary>
public enum OverlayLookupStatus
{
    /// <summary>The destination is known: send the encapsulated frame there.</summary>
    Found,
    /// <summary>The plugin has no entry for it: the frame is dropped and the miss is counted.</summary>
    Miss,
    /// <summary>The plugin refuses the frame (for example a broadcast the files plugin does not
    /// flood): dropped and counted as such.</summary>
    Drop,
}

/// <summary>
/// A search plugin of an overlay (varpd's direct and files plugins). Lookups happen on the host's
/// loop for every frame the overlay sends, so a lookup must not allocate in steady state.
/// </summary>
public interface IOverlaySearch
{
    /// <summary>The plugin's name as `dladm show-overlay` prints it ("direct", "files").</summary>
    string Name { get; }

    /// <summary>Where a frame to <paramref name="destination"/> (unicast, multicast or broadcast)
    /// goes on the underlay.</summary>
    OverlayLookupStatus Lookup(MacAddress destination, out UnderlayEndpoint target);

    /// <summary>Proxy answers (overlay(7): the files plugin answers ARP, NDP and DHCPv4 from its
    /// mapping file): given a frame a VNIC of the overlay sent, writes the frame to deliver back to
    /// it into <paramref name="reply"/> and returns its length, or 0 when the plugin does not answer
    /// it (then the frame goes through <see cref="Lookup"/> as any other).</summary>
    int TryAnswer(ReadOnlySpan<byte> frame, Span<byte> reply);
}

/// <summary>A datagram heard on the underlay handed over as the packet it arrived in (Data = the
/// VXLAN header and the frame): the listener owns it, and decapsulates it in place.</summary>
public delegate void OverlayPacketReceiver(UnderlayEndpoint from, Packet datagram);

/// <summary>
/// The underlay of an overlay link: sends and hears UDP datagrams whose payload is a VXLAN header and
/// the tenant's frame. Implemented by the global zone's IP stack (zones/) or a Linux UDP socket (the
/// daemon, real time). Receives are handed to the listener on the host's loop.
/// </summary>
public interface IOverlayUnderlay
{
    /// <summary>The local address and port datagrams are sent from and heard on.</summary>
    UnderlayEndpoint Local { get; }

    /// <summary>The largest UDP payload that reaches <paramref name="target"/> without
    /// fragmentation (the underlay MTU less IP and UDP headers), or -1 when the target is
    /// unreachable; an overlay MTU above what this allows is refused.</summary>
    int MaxPayload(UnderlayEndpoint target);

    /// <summary>Sends one datagram; false when the underlay could not (no route, no neighbour yet
    /// and its queue full, socket error): the caller counts it.</summary>
    bool Send(UnderlayEndpoint target, ReadOnlySpan<byte> payload);

    /// <summary>Sets the listener for datagrams arriving on <see cref="Local"/> (null to stop).</summary>
    void SetReceiver(Action<UnderlayEndpoint, ReadOnlyMemory<byte>>? receive);

    /// <summary>Sends one datagram from <paramref name="sourcePort"/>, the per-flow port RFC 7348
    /// suggests (Overlay.cs rule 2). An underlay that cannot choose its source port (a socket bound
    /// to listen_port) keeps this default, which sends from <see cref="Local"/>.</summary>
    bool Send(UnderlayEndpoint target, ushort sourcePort, ReadOnlySpan<byte> payload) => Send(target, payload);

    /// <summary>Sends one datagram in place (Overlay.cs rule 6): <paramref name="datagram"/>'s Data is
    /// the VXLAN header and the frame, and its headroom takes the underlay's own headers. Consumes the
    /// packet. An underlay that cannot send a packet in place keeps this default, which copies.</summary>
    bool Send(UnderlayEndpoint target, ushort sourcePort, Packet datagram)
    {
        bool sent = Send(target, sourcePort, datagram.Data);
        datagram.Free();
        return sent;
    }

    /// <summary>Sets a listener that takes each arriving datagram as its packet (null to stop); false
    /// when this underlay hands datagrams only as spans, through <see cref="SetReceiver"/>.</summary>
    bool SetPacketReceiver(OverlayPacketReceiver? receive) => false;
}

/// <summary>
/// The target table of a dynamic search plugin (dladm modify-overlay -s/-d/-f): entries that answer
/// a lookup before the plugin's own source. A point-to-point plugin (direct) has none, and
/// modify-overlay on its overlay is refused.
/// </summary>
public interface IOverlayTargetTable
{
    /// <summary>Sets the destination of <paramref name="mac"/> (modify-overlay -s mac=ip:port).</summary>
    void Set(MacAddress mac, UnderlayEndpoint target);
    /// <summary>Removes the entry of <paramref name="mac"/>; false when it had none (modify-overlay -d).</summary>
    bool Delete(MacAddress mac);
    /// <summary>Removes every entry (modify-overlay -f).</summary>
    void Flush();
    /// <summary>The entries, in the order show-overlay -t lists them.</summary>
    IReadOnlyList<(MacAddress Mac, UnderlayEndpoint Target)> Entries { get; }
}
