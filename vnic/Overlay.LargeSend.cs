using SmartOS.Kernel;
using SmartOS.Kernel.Wire;

namespace SmartOS.Vnic;

/// <summary>
/// An underlay that takes a large-send TCP segment whole (MacLayer.cs rule 9) and cuts it itself:
/// each MSS segment becomes one VXLAN datagram, written back to back into one buffer and handed to
/// the kernel in as few calls as it allows (UdpUnderlay.LargeSend.cs: one UDP GSO sendmsg per up
/// to 64 datagrams). The overlay gives a VNIC large send only when its underlay is one of these, as
/// illumos's mac_capab_lso answers only for a VNIC whose way out segments.
/// </summary>
public interface IOverlayLargeSend
{
    /// <summary>Whether large sends are taken now (a socket that could not segment still cuts in
    /// software, so this is false only when the underlay is closed).</summary>
    bool TakesLargeSend { get; }

    /// <summary>Sends <paramref name="frame"/> (Ethernet, an optional 802.1Q tag, IPv4 or IPv6, TCP:
    /// one segment of more than <paramref name="mss"/> payload bytes) as MSS segments, each behind
    /// <paramref name="vxlan"/> in a datagram of its own, with the IP and TCP fields of every segment
    /// made right (TcpSegmentation). Returns the datagrams sent and in <paramref name="failed"/> those
    /// that could not be; -1 (nothing sent) when the frame is not such a segment.</summary>
    int SendSegmented(UnderlayEndpoint target, ReadOnlySpan<byte> vxlan, ReadOnlySpan<byte> frame, int mss, out int failed);

    /// <summary>The most bytes of datagrams one call to the kernel carries (UDP GSO: 65507), 0 when
    /// there is no such bound.</summary>
    int RunBytes => 0;

    /// <summary>The most datagrams one call carries (UDP GSO: 64), 0 when there is no such bound.</summary>
    int RunDatagrams => 0;
}

public sealed partial class OverlayLink
{
    /// <summary>Whether a VNIC of this overlay may send large segments (MacClient.LsoMax): only when
    /// its listen endpoint's underlay cuts them itself (IOverlayLargeSend).</summary>
    internal bool TakesLso => Mux?.Underlay is IOverlayLargeSend { TakesLargeSend: true };

    /// <summary>The largest IP packet a VNIC with MTU <paramref name="mtu"/> may send as one large
    /// send over this overlay (MacClient.LsoMax): when the underlay bounds its calls (RunBytes,
    /// RunDatagrams), as many full segments as one call carries, so a large send is one call. TCP
    /// fills a large send with (LsoMax - IP header - 60) / MSS segments (TcpProtocol.SendChunk) and
    /// an MSS is at most mtu - 40; each datagram is at most VXLAN + Ethernet + a tag + mtu. With the
    /// whole 64 KiB a 1400-byte overlay's large send of 48 segments went as a GSO call of 46 and
    /// one of 2: twice the calls, receives and wake-ups of both daemons.</summary>
    internal int LsoMax(int mtu)
    {
        int whole = PacketPool.LsoSize - EthernetView.HeaderLength - EthernetView.TagLength;
        if (Mux?.Underlay is not IOverlayLargeSend large || large.RunBytes <= 0) return whole;
        int datagram = VxlanHeader.Length + EthernetView.HeaderLength + EthernetView.TagLength + mtu;
        int k = large.RunBytes / datagram;
        if (large.RunDatagrams > 0) k = Math.Min(k, large.RunDatagrams);
        if (k < 2 || mtu <= 40) return whole;
        return Math.Min(whole, Ipv4View.MinHeaderLength + 60 + k * (mtu - 40));
    }

    /// <summary>Encapsulate's way for a large-send frame whose destination is known: the underlay
    /// cuts it into VXLAN datagrams when it can (encap counts each); otherwise it is cut here and each
    /// segment encapsulated as any frame (lso_soft). Consumes the packet.</summary>
    private void EncapsulateLarge(Packet p, OverlayMux mux, UnderlayEndpoint target)
    {
        var os = OverlayStats;
        if (mux.Underlay is IOverlayLargeSend large)
        {
            Span<byte> vxlan = stackalloc byte[VxlanHeader.Length];
            VxlanHeader.Emit(vxlan, Vnid);
            int sent = large.SendSegmented(target, vxlan, p.Data, p.LsoMss, out int failed);
            if (sent < 0)
            {
                Stats.OErrors++;
                os.DropBadFrame++;
            }
            else
            {
                os.Encap += sent;
                os.UnderlayErr += failed;
            }
            p.Free();
            return;
        }
        // The underlay was replaced under a frame already given large send: cut it here.
        if (!Mac.ForEachSegment(p, Stats, (this, target), static (t, q) => t.Item1.EncapsulateSegment(q, t.target)))
        {
            Stats.OErrors++;
            os.DropBadFrame++;
        }
    }

    // One software-cut segment of a large send, already looked up: VXLAN in front, to the underlay.
    private void EncapsulateSegment(Packet q, UnderlayEndpoint target)
    {
        var os = OverlayStats;
        var mux = Mux;
        if (mux == null || !q.TryPrepend(VxlanHeader.Length))
        {
            os.UnderlayErr++;
            q.Free();
            return;
        }
        ushort sport = VxlanHeader.SourcePort(q.Data[VxlanHeader.Length..]);
        VxlanHeader.Emit(q.Data, Vnid);
        if (mux.Underlay.Send(target, sport, q.Data)) os.Encap++;
        else os.UnderlayErr++;
        q.Free();
    }
}

/// <summary>
/// An underlay that coalesces a run of datagrams carrying consecutive segments of one inner TCP flow
/// into one large segment (large receive, as Linux's GRO does for a NIC): UdpUnderlay.Coalesce.cs.
/// The listener is handed the VXLAN header and the inner frame, whose TCP checksum field holds the
/// folded pseudo-header sum (every piece's checksum was verified), to be marked pending, and the
/// pieces' MSS; the frame is valid only during the call.
/// </summary>
public interface IOverlayLargeReceive
{
    /// <summary>Sets the listener for coalesced datagrams (null to stop: runs are then handed over
    /// datagram by datagram to the ordinary receiver).</summary>
    void SetLargeReceiver(Action<UnderlayEndpoint, ReadOnlyMemory<byte>, int>? receive);
}

public sealed partial class OverlayLink
{
    /// <summary>A coalesced inner frame (IOverlayLargeReceive) of <paramref name="pieces"/> datagrams
    /// (decap counts each): one large TCP segment marked with its MSS (Packet.LsoMss), its checksum
    /// pending, switched like any frame (MacLayer.cs rule 9 delivers
    /// it whole to a stack that takes it, cut to anyone else). With no large buffer free it is cut
    /// here and each segment decapsulated in turn.</summary>
    internal void DecapsulateLarge(ReadOnlySpan<byte> inner, int mss, int transport, int pieces)
    {
        var os = OverlayStats;
        var p = Mac.Pool.RentLso(inner.Length);
        if (p == null)
        {
            if (!TcpSegmentation.TryCreate(inner, mss, out var seg))
            {
                os.DropBadFrame++;
                return;
            }
            Span<byte> one = stackalloc byte[seg.SegmentLength(0)];
            for (int i = 0; i < seg.Count; i++) Decapsulate(one[..seg.Write(i, one)]);
            return;
        }
        inner.CopyTo(p.Data);
        p.LsoMss = (ushort)mss;
        p.SetChecksumPending(transport, inner.Length - transport, TcpView.ChecksumOffset);
        // decap counts datagrams, as encap does for a large send (EncapsulateLarge): the joined
        // frame's pieces once it passed the link's ingress checks (SwitchInner counts one).
        long before = os.Decap;
        SwitchInner(p, fromUnderlay: true);
        if (os.Decap != before) os.Decap += pieces - 1;
    }
}

internal sealed partial class OverlayMux
{
    /// <summary>A coalesced datagram (IOverlayLargeReceive): checked as any (rule 1), then handed to
    /// its overlay whole.</summary>
    private void ReceiveLarge(UnderlayEndpoint from, ReadOnlyMemory<byte> datagram, int mss)
    {
        var span = datagram.Span;
        if (Classify(span) is not { } overlay) return;
        var inner = span[VxlanHeader.Length..];
        if (!TcpSegmentation.TryCreate(inner, mss, out var seg))
        {
            overlay.OverlayStats.DropBadFrame++;
            return;
        }
        overlay.DecapsulateLarge(inner, mss, seg.TransportOffset, seg.Count);
    }
}
