using System.Buffers.Binary;

namespace SmartOS.Kernel.Wire;

/// <summary>
/// A view over a DHCPv4 message (RFC 2131) in a UDP payload: the fixed 236-byte BOOTP part, the magic
/// cookie, then options. TryCreate checks the fixed part and the cookie; option lookups stop at the
/// end option or the end of the buffer and never throw.
/// </summary>
public readonly ref struct DhcpView
{
    public const int FixedLength = 236;
    public const ushort ServerPort = 67, ClientPort = 68;
    public const byte OptMessageType = 53, OptClientId = 61, OptEnd = 255, OptPad = 0;
    public const byte Discover = 1, Offer = 2, Request = 3, Decline = 4, Ack = 5, Nak = 6, Release = 7, Inform = 8;
    private const uint MagicCookie = 0x63825363;
    private readonly Span<byte> _b;
    private DhcpView(Span<byte> b) { _b = b; }

    public static bool TryCreate(Span<byte> payload, out DhcpView view)
    {
        view = default;
        if (payload.Length < FixedLength + 4 || BinaryPrimitives.ReadUInt32BigEndian(payload[FixedLength..]) != MagicCookie) return false;
        view = new DhcpView(payload);
        return true;
    }

    public byte Op => _b[0];
    public byte HardwareType => _b[1];
    public byte HardwareLength => _b[2];
    public uint Xid => BinaryPrimitives.ReadUInt32BigEndian(_b[4..]);
    public uint ClientAddressRaw => BinaryPrimitives.ReadUInt32BigEndian(_b[12..]);
    public uint YourAddressRaw => BinaryPrimitives.ReadUInt32BigEndian(_b[16..]);
    public MacAddress ClientHardware => MacAddress.Read(_b[28..]);
    public Span<byte> Options => _b[(FixedLength + 4)..];

    /// <summary>Finds an option's value; false when absent or truncated.</summary>
    public bool TryGetOption(byte code, out Span<byte> value)
    {
        value = default;
        var o = Options;
        int i = 0;
        while (i < o.Length)
        {
            byte c = o[i];
            if (c == OptEnd) return false;
            if (c == OptPad) { i++; continue; }
            if (i + 1 >= o.Length) return false;
            int len = o[i + 1];
            if (i + 2 + len > o.Length) return false;
            if (c == code) { value = o.Slice(i + 2, len); return true; }
            i += 2 + len;
        }
        return false;
    }

    /// <summary>The DHCP message type (option 53), or 0 for plain BOOTP.</summary>
    public byte MessageType => TryGetOption(OptMessageType, out var v) && v.Length == 1 ? v[0] : (byte)0;

    /// <summary>Writes a minimal Ethernet DHCP message (fixed part, cookie, message type, optional client id, end).
    /// Returns the bytes written.</summary>
    public static int Write(Span<byte> b, byte op, byte type, uint xid, MacAddress chaddr, uint yiaddr, ReadOnlySpan<byte> clientId)
    {
        b[..FixedLength].Clear();
        b[0] = op; b[1] = 1; b[2] = 6;
        BinaryPrimitives.WriteUInt32BigEndian(b[4..], xid);
        BinaryPrimitives.WriteUInt32BigEndian(b[16..], yiaddr);
        chaddr.Write(b[28..]);
        BinaryPrimitives.WriteUInt32BigEndian(b[FixedLength..], MagicCookie);
        int i = FixedLength + 4;
        b[i++] = OptMessageType; b[i++] = 1; b[i++] = type;
        if (!clientId.IsEmpty)
        {
            b[i++] = OptClientId; b[i++] = (byte)clientId.Length;
            clientId.CopyTo(b[i..]);
            i += clientId.Length;
        }
        b[i++] = OptEnd;
        return i;
    }
}
