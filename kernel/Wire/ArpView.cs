using System.Buffers.Binary;

namespace SmartOS.Kernel.Wire;

/// <summary>
/// A view over an ARP packet for IPv4 over Ethernet (RFC 826): hardware type 1, protocol 0x0800,
/// address lengths 6 and 4, 28 bytes. Other hardware or protocol types fail TryCreate.
/// </summary>
public readonly ref struct ArpView
{
    public const int Length = 28;
    public const ushort OpRequest = 1;
    public const ushort OpReply = 2;

    private readonly Span<byte> _b;
    private ArpView(Span<byte> b) { _b = b; }

    public static bool TryCreate(Span<byte> packet, out ArpView view)
    {
        view = default;
        if (packet.Length < Length) return false;
        if (BinaryPrimitives.ReadUInt16BigEndian(packet) != 1 || BinaryPrimitives.ReadUInt16BigEndian(packet[2..]) != EtherType.Ipv4) return false;
        if (packet[4] != 6 || packet[5] != 4) return false;
        view = new ArpView(packet[..Length]);
        return true;
    }

    public ushort Operation => BinaryPrimitives.ReadUInt16BigEndian(_b[6..]);
    public MacAddress SenderMac => MacAddress.Read(_b[8..]);
    public uint SenderIp => BinaryPrimitives.ReadUInt32BigEndian(_b[14..]);
    public MacAddress TargetMac => MacAddress.Read(_b[18..]);
    public uint TargetIp => BinaryPrimitives.ReadUInt32BigEndian(_b[24..]);

    /// <summary>Writes a complete 28-byte ARP packet; false when the buffer is short.</summary>
    public static bool TryWrite(Span<byte> b, ushort op, MacAddress senderMac, uint senderIp, MacAddress targetMac, uint targetIp)
    {
        if (b.Length < Length) return false;
        BinaryPrimitives.WriteUInt16BigEndian(b, 1);
        BinaryPrimitives.WriteUInt16BigEndian(b[2..], EtherType.Ipv4);
        b[4] = 6; b[5] = 4;
        BinaryPrimitives.WriteUInt16BigEndian(b[6..], op);
        senderMac.Write(b[8..]);
        BinaryPrimitives.WriteUInt32BigEndian(b[14..], senderIp);
        targetMac.Write(b[18..]);
        BinaryPrimitives.WriteUInt32BigEndian(b[24..], targetIp);
        return true;
    }
}
