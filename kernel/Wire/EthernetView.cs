using System.Buffers.Binary;

namespace SmartOS.Kernel.Wire;

public static class EtherType
{
    public const ushort Ipv4 = 0x0800;
    public const ushort Arp = 0x0806;
    public const ushort Vlan = 0x8100;
    public const ushort Ipv6 = 0x86DD;
}

/// <summary>
/// A view over an Ethernet II frame, with or without one 802.1Q tag (Kernel.cs rule 4). The
/// untagged header is 14 bytes; a tag adds 4 between the source address and the EtherType.
/// </summary>
public readonly ref struct EthernetView
{
    public const int HeaderLength = 14;
    public const int TagLength = 4;
    /// <summary>The smallest frame on a wire, without the FCS.</summary>
    public const int MinFrameLength = 60;

    private readonly Span<byte> _frame;

    private EthernetView(Span<byte> frame) { _frame = frame; }

    /// <summary>Checks the length once: 14 bytes, or 18 when the frame carries a tag.</summary>
    public static bool TryCreate(Span<byte> frame, out EthernetView view)
    {
        view = default;
        if (frame.Length < HeaderLength) return false;
        if (BinaryPrimitives.ReadUInt16BigEndian(frame[12..]) == Wire.EtherType.Vlan && frame.Length < HeaderLength + TagLength) return false;
        view = new EthernetView(frame);
        return true;
    }

    public Span<byte> Frame => _frame;
    public MacAddress Destination { get => MacAddress.Read(_frame); set => value.Write(_frame); }
    public MacAddress Source { get => MacAddress.Read(_frame[6..]); set => value.Write(_frame[6..]); }
    public bool IsTagged => BinaryPrimitives.ReadUInt16BigEndian(_frame[12..]) == Wire.EtherType.Vlan;
    /// <summary>The VLAN ID of the tag, or 0 when the frame is untagged.</summary>
    public ushort VlanId => IsTagged ? (ushort)(BinaryPrimitives.ReadUInt16BigEndian(_frame[14..]) & 0x0FFF) : (ushort)0;
    public byte Priority => IsTagged ? (byte)(_frame[14] >> 5) : (byte)0;
    /// <summary>The EtherType of the payload (after the tag, if any).</summary>
    public ushort EtherType
    {
        get => BinaryPrimitives.ReadUInt16BigEndian(_frame[(IsTagged ? 16 : 12)..]);
        set => BinaryPrimitives.WriteUInt16BigEndian(_frame[(IsTagged ? 16 : 12)..], value);
    }
    public int HeaderSize => IsTagged ? HeaderLength + TagLength : HeaderLength;
    public Span<byte> Payload => _frame[HeaderSize..];

    /// <summary>For read-only parsers of whole frames (segmentation, the TAP's ACK check): the EtherType
    /// after an optional tag and the offset of the layer-3 header; false if the frame is too short for
    /// its header.</summary>
    public static bool TryReadType(ReadOnlySpan<byte> frame, out ushort etherType, out int l3)
    {
        etherType = 0;
        l3 = HeaderLength;
        if (frame.Length < HeaderLength) return false;
        etherType = BinaryPrimitives.ReadUInt16BigEndian(frame[12..]);
        if (etherType != Wire.EtherType.Vlan) return true;
        if (frame.Length < HeaderLength + TagLength) return false;
        etherType = BinaryPrimitives.ReadUInt16BigEndian(frame[16..]);
        l3 += TagLength;
        return true;
    }

    /// <summary>Writes an untagged header.</summary>
    public static void WriteHeader(Span<byte> frame, MacAddress dst, MacAddress src, ushort etherType)
    {
        dst.Write(frame);
        src.Write(frame[6..]);
        BinaryPrimitives.WriteUInt16BigEndian(frame[12..], etherType);
    }

    /// <summary>
    /// Pushes an 802.1Q tag into a packet in place: the 12 address bytes move 4 bytes forward into the
    /// headroom. Returns false when the frame is too short or already tagged or headroom is gone.
    /// </summary>
    public static bool TryPushTag(Packet packet, ushort vid, byte pcp)
    {
        if (packet.Length < HeaderLength) return false;
        if (BinaryPrimitives.ReadUInt16BigEndian(packet.Data[12..]) == Wire.EtherType.Vlan) return false;
        if (!packet.TryPrepend(TagLength)) return false;
        var f = packet.Data;
        f.Slice(TagLength, 12).CopyTo(f);
        BinaryPrimitives.WriteUInt16BigEndian(f[12..], Wire.EtherType.Vlan);
        BinaryPrimitives.WriteUInt16BigEndian(f[14..], (ushort)((pcp << 13) | (vid & 0x0FFF)));
        return true;
    }

    /// <summary>Removes an 802.1Q tag in place (the addresses move 4 bytes back).</summary>
    public static bool TryPopTag(Packet packet)
    {
        var f = packet.Data;
        if (f.Length < HeaderLength + TagLength || BinaryPrimitives.ReadUInt16BigEndian(f[12..]) != Wire.EtherType.Vlan) return false;
        f[..12].CopyTo(f.Slice(TagLength, 12));
        packet.TrimFront(TagLength);
        return true;
    }
}
