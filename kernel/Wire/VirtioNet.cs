using System.Buffers.Binary;

namespace SmartOS.Kernel.Wire;

/// <summary>virtio_net_hdr's gso_type values (virtio 1.2, 5.1.6): what segmentation a frame needs.</summary>
public static class VirtioGso
{
    public const byte None = 0;
    public const byte TcpV4 = 1;
    public const byte Udp = 3;
    public const byte TcpV6 = 4;
    public const byte UdpL4 = 5;
    /// <summary>Or'ed into gso_type: the segments carry ECN's CWR as the original did.</summary>
    public const byte Ecn = 0x80;
}

/// <summary>
/// struct virtio_net_hdr, the 10 bytes a Linux TAP opened with IFF_VNET_HDR puts in front of every
/// frame it reads or is written (and virtio-net in front of every buffer): flags, gso_type, then
/// hdr_len, gso_size, csum_start and csum_offset as 16-bit fields in the device's byte order, which
/// for a TAP is the host's (little-endian here; TUNSETVNETBE is never set). A representation: it
/// parses and emits, and holds any values (checking them against a frame is the user's part, as
/// Linux's virtio_net_hdr_to_skb does).
/// </summary>
public struct VirtioNetHeader
{
    public const int Length = 10;
    /// <summary>flags: the checksum from csum_start to the end is to be filled in at csum_start +
    /// csum_offset, whose field already holds the pseudo-header sum (CHECKSUM_PARTIAL).</summary>
    public const byte NeedsChecksum = 1;
    /// <summary>flags: the checksum was verified (CHECKSUM_UNNECESSARY), on frames towards the driver.</summary>
    public const byte DataValid = 2;

    public byte Flags;
    public byte GsoType;
    public ushort HeaderLength;
    public ushort GsoSize;
    public ushort ChecksumStart;
    public ushort ChecksumOffset;

    public readonly bool NeedsCsum => (Flags & NeedsChecksum) != 0;
    /// <summary>gso_type without the ECN bit.</summary>
    public readonly byte Gso => (byte)(GsoType & ~VirtioGso.Ecn);

    public static bool TryParse(ReadOnlySpan<byte> b, out VirtioNetHeader h)
    {
        h = default;
        if (b.Length < Length) return false;
        h.Flags = b[0];
        h.GsoType = b[1];
        h.HeaderLength = BinaryPrimitives.ReadUInt16LittleEndian(b[2..]);
        h.GsoSize = BinaryPrimitives.ReadUInt16LittleEndian(b[4..]);
        h.ChecksumStart = BinaryPrimitives.ReadUInt16LittleEndian(b[6..]);
        h.ChecksumOffset = BinaryPrimitives.ReadUInt16LittleEndian(b[8..]);
        return true;
    }

    public readonly bool TryEmit(Span<byte> b)
    {
        if (b.Length < Length) return false;
        b[0] = Flags;
        b[1] = GsoType;
        BinaryPrimitives.WriteUInt16LittleEndian(b[2..], HeaderLength);
        BinaryPrimitives.WriteUInt16LittleEndian(b[4..], GsoSize);
        BinaryPrimitives.WriteUInt16LittleEndian(b[6..], ChecksumStart);
        BinaryPrimitives.WriteUInt16LittleEndian(b[8..], ChecksumOffset);
        return true;
    }

    /// <summary>The header for writing a large-send frame (Packet.LsoMss) to a device that segments it
    /// (a TAP opened with TSO): gso_type TCPv4 or TCPv6, gso_size <paramref name="mss"/>, hdr_len the
    /// headers every segment repeats, and NEEDS_CSUM over the TCP segment, whose checksum field is set
    /// here to the pseudo-header sum of the whole segment (what Linux's GSO adjusts per segment), so
    /// it does not matter whether the checksum was left pending or was filled in by a capture. False
    /// when the frame is not whole Ethernet/IP/TCP.</summary>
    public static bool TryCreateGso(Span<byte> frame, int mss, out VirtioNetHeader header)
    {
        header = default;
        if (mss <= 0 || !TcpSegmentation.TryCreate(frame, mss, out var seg)) return false;
        int l4 = seg.TransportOffset;
        BinaryPrimitives.WriteUInt16BigEndian(frame[(l4 + TcpView.ChecksumOffset)..], seg.WholePseudoHeaderSum());
        header.Flags = NeedsChecksum;
        header.GsoType = seg.IsV4 ? VirtioGso.TcpV4 : VirtioGso.TcpV6;
        header.HeaderLength = (ushort)seg.HeaderLength;
        header.GsoSize = (ushort)mss;
        header.ChecksumStart = (ushort)l4;
        header.ChecksumOffset = TcpView.ChecksumOffset;
        return true;
    }

    /// <summary>Fills in a NEEDS_CSUM frame's checksum (what the device that honours the flag does);
    /// false when csum_start or csum_offset point outside the frame.</summary>
    public readonly bool TryFinishChecksum(Span<byte> frame)
    {
        if (!NeedsCsum) return true;
        int field = ChecksumStart + ChecksumOffset;
        if (ChecksumStart >= frame.Length || field + 2 > frame.Length) return false;
        // The field holds the pseudo-header sum, so summing over it adds exactly that.
        BinaryPrimitives.WriteUInt16BigEndian(frame[field..], Checksum.Fold(Checksum.Sum(frame[ChecksumStart..])));
        return true;
    }
}
