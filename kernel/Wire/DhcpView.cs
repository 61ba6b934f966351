using System.Buffers.Binary;

namespace SmartOS.Kernel.Wire;

/// <summary>DHCP message types (RFC 2132 option 53) and the options this project reads and writes.</summary>
public static class DhcpOption
{
    public const byte Pad = 0;
    public const byte SubnetMask = 1;
    public const byte Router = 3;
    public const byte DnsServers = 6;
    public const byte RequestedAddress = 50;
    public const byte LeaseTime = 51;
    public const byte MessageType = 53;
    public const byte ServerIdentifier = 54;
    public const byte ParameterList = 55;
    public const byte RenewalTime = 58;
    public const byte RebindingTime = 59;
    public const byte ClientIdentifier = 61;
    public const byte End = 255;

    public const byte Discover = 1, Offer = 2, Request = 3, Decline = 4, Ack = 5, Nak = 6, Release = 7, Inform = 8;
}

/// <summary>
/// A view over a DHCPv4 message (RFC 2131): the fixed BOOTP part (236 bytes), the magic cookie, then
/// options. TryCreate checks the fixed part, the cookie and the Ethernet hardware type; options are
/// read with <see cref="TryGetOption"/>, which never reads past the end.
/// </summary>
public readonly ref struct DhcpView
{
    public const int FixedLength = 236;
    public const int OptionsOffset = FixedLength + 4;
    public const uint MagicCookie = 0x63825363;
    public const byte BootRequest = 1, BootReply = 2;
    public const ushort ServerPort = 67, ClientPort = 68;

    private readonly Span<byte> _b;
    private DhcpView(Span<byte> b) { _b = b; }

    public static bool TryCreate(Span<byte> payload, out DhcpView view)
    {
        view = default;
        if (payload.Length < OptionsOffset) return false;
        if (payload[1] != 1 || payload[2] != 6) return false;
        if (BinaryPrimitives.ReadUInt32BigEndian(payload[FixedLength..]) != MagicCookie) return false;
        view = new DhcpView(payload);
        return true;
    }

    public byte Op => _b[0];
    public uint TransactionId => BinaryPrimitives.ReadUInt32BigEndian(_b[4..]);
    public ushort Seconds => BinaryPrimitives.ReadUInt16BigEndian(_b[8..]);
    public bool Broadcast => (_b[10] & 0x80) != 0;
    public uint ClientIp => BinaryPrimitives.ReadUInt32BigEndian(_b[12..]);
    public uint YourIp => BinaryPrimitives.ReadUInt32BigEndian(_b[16..]);
    public uint ServerIp => BinaryPrimitives.ReadUInt32BigEndian(_b[20..]);
    public uint GatewayIp => BinaryPrimitives.ReadUInt32BigEndian(_b[24..]);
    public MacAddress ClientMac => MacAddress.Read(_b[28..]);
    public Span<byte> Options => _b[OptionsOffset..];

    /// <summary>The message type (option 53), or 0 when absent or malformed.</summary>
    public byte MessageType => TryGetOption(DhcpOption.MessageType, out var v) && v.Length == 1 ? v[0] : (byte)0;

    /// <summary>Finds an option's value; false when absent or when the options are malformed before it.</summary>
    public bool TryGetOption(byte code, out Span<byte> value)
    {
        value = default;
        var o = Options;
        int i = 0;
        while (i < o.Length)
        {
            byte c = o[i];
            if (c == DhcpOption.End) return false;
            if (c == DhcpOption.Pad) { i++; continue; }
            if (i + 1 >= o.Length) return false;
            int len = o[i + 1];
            if (i + 2 + len > o.Length) return false;
            if (c == code) { value = o.Slice(i + 2, len); return true; }
            i += 2 + len;
        }
        return false;
    }

    public bool TryGetAddressOption(byte code, out uint address) => TryGetUInt32Option(code, out address);

    /// <summary>A 32-bit option (an address, or a time in seconds such as the lease time, RFC 2132 9.2);
    /// false when absent or shorter than 4 bytes.</summary>
    public bool TryGetUInt32Option(byte code, out uint value)
    {
        value = 0;
        if (!TryGetOption(code, out var v) || v.Length < 4) return false;
        value = BinaryPrimitives.ReadUInt32BigEndian(v);
        return true;
    }

    /// <summary>Writes the fixed part and the cookie; options follow at <see cref="OptionsOffset"/>.</summary>
    /// <summary>Writes a minimal DHCP message (fixed part, cookie, message type, optional client id,
    /// end) for tests and generators. Returns the bytes written.</summary>
    public static int Write(Span<byte> b, byte op, byte type, uint xid, MacAddress chaddr, uint yiaddr, ReadOnlySpan<byte> clientId)
    {
        b[..FixedLength].Clear();
        b[0] = op; b[1] = 1; b[2] = 6;
        BinaryPrimitives.WriteUInt32BigEndian(b[4..], xid);
        BinaryPrimitives.WriteUInt32BigEndian(b[16..], yiaddr);
        chaddr.Write(b[28..]);
        BinaryPrimitives.WriteUInt32BigEndian(b[FixedLength..], MagicCookie);
        int i = FixedLength + 4;
        b[i++] = DhcpOption.MessageType; b[i++] = 1; b[i++] = type;
        if (!clientId.IsEmpty)
        {
            b[i++] = DhcpOption.ClientIdentifier; b[i++] = (byte)clientId.Length;
            clientId.CopyTo(b[i..]);
            i += clientId.Length;
        }
        b[i++] = DhcpOption.End;
        return i;
    }

    public static bool TryWriteFixed(Span<byte> b, byte op, uint xid, bool broadcast, uint ciaddr, uint yiaddr, uint siaddr, MacAddress chaddr)
    {
        if (b.Length < OptionsOffset) return false;
        b[..OptionsOffset].Clear();
        b[0] = op; b[1] = 1; b[2] = 6; b[3] = 0;
        BinaryPrimitives.WriteUInt32BigEndian(b[4..], xid);
        if (broadcast) b[10] = 0x80;
        BinaryPrimitives.WriteUInt32BigEndian(b[12..], ciaddr);
        BinaryPrimitives.WriteUInt32BigEndian(b[16..], yiaddr);
        BinaryPrimitives.WriteUInt32BigEndian(b[20..], siaddr);
        chaddr.Write(b[28..]);
        BinaryPrimitives.WriteUInt32BigEndian(b[FixedLength..], MagicCookie);
        return true;
    }
}

/// <summary>Appends DHCP options to a buffer; every write is checked against the end.</summary>
public ref struct DhcpOptionWriter
{
    private readonly Span<byte> _b;
    public int Position;
    public bool Overflow;

    public DhcpOptionWriter(Span<byte> options) { _b = options; Position = 0; Overflow = false; }

    public void Add(byte code, scoped ReadOnlySpan<byte> value)
    {
        if (Position + 2 + value.Length > _b.Length || value.Length > 255) { Overflow = true; return; }
        _b[Position] = code;
        _b[Position + 1] = (byte)value.Length;
        value.CopyTo(_b[(Position + 2)..]);
        Position += 2 + value.Length;
    }

    public void AddByte(byte code, byte value) => Add(code, [value]);

    public void AddUInt32(byte code, uint value)
    {
        Span<byte> v = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32BigEndian(v, value);
        Add(code, v);
    }

    /// <summary>The client identifier option as a client on Ethernet sends it (RFC 2132 9.14):
    /// hardware type 1, then the MAC address.</summary>
    public void AddClientIdentifier(MacAddress mac)
    {
        Span<byte> v = stackalloc byte[7];
        v[0] = 1;
        mac.Write(v[1..]);
        Add(DhcpOption.ClientIdentifier, v);
    }

    public void End()
    {
        if (Position >= _b.Length) { Overflow = true; return; }
        _b[Position++] = DhcpOption.End;
    }
}
