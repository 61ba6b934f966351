using SmartOS.Kernel;
using SmartOS.Kernel.Wire;

namespace SmartOS.Vnic;

/// <summary>Software segmentation of large-send and large-receive frames (MacLayer.cs rule 9).</summary>
public sealed partial class MacLayer
{
    /// <summary>Whether a frame marked with Packet.LsoMss is whole Ethernet/IP/TCP (untagged, as inside
    /// the host) whose every segment fits <paramref name="mtu"/>, and no larger than a large buffer,
    /// so that cutting it later cannot fail. Kept out of the per-frame paths' common case.</summary>
    internal static bool LsoFits(Packet p, int mtu)
        => p.Length <= PacketPool.LsoSize
           && TcpSegmentation.TryCreate(p.Data, p.LsoMss, out var seg)
           && seg.HeaderLength - EthernetView.HeaderLength + p.LsoMss <= mtu;

    /// <summary>Cuts <paramref name="p"/> into its MSS segments (TcpSegmentation: checksums filled in,
    /// the original's VLAN, priority, time, band and fairness key kept) and hands each in order to
    /// <paramref name="next"/> (segments from this host's pool), then frees the original. Counts lso_soft on <paramref name="stats"/>,
    /// and drop_nobuf per segment with no buffer; false (nothing counted, the original freed) when the
    /// frame cannot be cut, for the caller to count as its error.</summary>
    internal bool ForEachSegment<TState>(Packet p, LinkStats stats, TState state, Action<TState, Packet> next)
    {
        if (!TcpSegmentation.TryCreate(p.Data, p.LsoMss, out var seg))
        {
            p.Free();
            return false;
        }
        stats.LsoSoft++;
        var pool = Pool;
        for (int i = 0; i < seg.Count; i++)
        {
            int length = seg.SegmentLength(i);
            var q = pool.Rent(length);
            if (q == null)
            {
                stats.DropNoBuf++;
                continue;
            }
            seg.Write(i, q.Data);
            q.Vid = p.Vid;
            q.Pcp = p.Pcp;
            q.Timestamp = p.Timestamp;
            q.Band = p.Band;
            q.FairKey = p.FairKey;
            next(state, q);
        }
        p.Free();
        return true;
    }
}
