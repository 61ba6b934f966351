using System.Buffers.Binary;

namespace SmartOS.Kernel.Wire;

/// <summary>ICMP (RFC 792) and ICMPv6 (RFC 4443, 4861) message types this project speaks.</summary>
public static class IcmpType
{
    public const byte EchoReply = 0;
    public const byte DestinationUnreachable = 3;
    public const byte EchoRequest = 8;
    public const byte TimeExceeded = 11;
    public const byte ParameterProblem = 12;

    public const byte V6DestinationUnreachable = 1;
    public const byte V6PacketTooBig = 2;
    public const byte V6TimeExceeded = 3;
    public const byte V6ParameterProblem = 4;
    public const byte V6EchoRequest = 128;
    public const byte V6EchoReply = 129;
    public const byte RouterSolicitation = 133;
    public const byte RouterAdvertisement = 134;
    public const byte NeighborSolicitation = 135;
    public const byte NeighborAdvertisement = 136;
}

/// <summary>
/// A view over an ICMP or ICMPv6 message: type, code, checksum and the 4-byte "rest of header"
/// (identifier and sequence for echo, next-hop MTU for fragmentation needed / packet too big), then
/// the body. The checksum over IPv4 covers the message; over IPv6 it adds the pseudo-header.
/// </summary>
public readonly ref struct IcmpView
{
    public const int HeaderLength = 8;
    private readonly Span<byte> _b;
    private IcmpView(Span<byte> b) { _b = b; }

    public static bool TryCreate(Span<byte> message, out IcmpView view)
    {
        view = default;
        if (message.Length < HeaderLength) return false;
        view = new IcmpView(message);
        return true;
    }

    public byte Type => _b[0];
    public byte Code => _b[1];
    public ushort ChecksumField => BinaryPrimitives.ReadUInt16BigEndian(_b[2..]);
    public ushort Identifier => BinaryPrimitives.ReadUInt16BigEndian(_b[4..]);
    public ushort Sequence => BinaryPrimitives.ReadUInt16BigEndian(_b[6..]);
    /// <summary>The next-hop MTU of a fragmentation-needed (v4, low 16 bits) or packet-too-big (v6) message.</summary>
    public int Mtu => Type == IcmpType.DestinationUnreachable ? BinaryPrimitives.ReadUInt16BigEndian(_b[6..]) : (int)Math.Min(BinaryPrimitives.ReadUInt32BigEndian(_b[4..]), int.MaxValue);
    public uint Rest => BinaryPrimitives.ReadUInt32BigEndian(_b[4..]);
    public Span<byte> Body => _b[HeaderLength..];
    public Span<byte> Message => _b;
    public bool ChecksumValidV4 => Checksum.Compute(_b) == 0;
    public bool ChecksumValidV6(IpAddress src, IpAddress dst) => Ipv6View.TransportChecksum(src, dst, IpProtocol.Icmpv6, _b) == 0;

    /// <summary>Writes type, code and rest-of-header; the body must already be in place after it.
    /// Call <see cref="FinishV4"/> or <see cref="FinishV6"/> afterwards.</summary>
    public static bool TryWriteHeader(Span<byte> message, byte type, byte code, uint rest)
    {
        if (message.Length < HeaderLength) return false;
        message[0] = type; message[1] = code;
        BinaryPrimitives.WriteUInt16BigEndian(message[2..], 0);
        BinaryPrimitives.WriteUInt32BigEndian(message[4..], rest);
        return true;
    }

    public static void FinishV4(Span<byte> message)
    {
        BinaryPrimitives.WriteUInt16BigEndian(message[2..], 0);
        BinaryPrimitives.WriteUInt16BigEndian(message[2..], Checksum.Compute(message));
    }

    public static void FinishV6(Span<byte> message, IpAddress src, IpAddress dst)
    {
        BinaryPrimitives.WriteUInt16BigEndian(message[2..], 0);
        BinaryPrimitives.WriteUInt16BigEndian(message[2..], Ipv6View.TransportChecksum(src, dst, IpProtocol.Icmpv6, message));
    }
}

/// <summary>
/// NDP options (RFC 4861 section 4.6): type, length in units of 8 bytes, value. The enumerator stops
/// at the first malformed option (length 0 or past the end) and reports it through <see cref="Malformed"/>.
/// </summary>
public ref struct NdpOptionReader
{
    public const byte SourceLinkLayer = 1;
    public const byte TargetLinkLayer = 2;
    public const byte PrefixInformation = 3;
    public const byte Mtu = 5;

    private readonly Span<byte> _options;
    private int _pos;

    public NdpOptionReader(Span<byte> options) { _options = options; _pos = 0; Type = 0; Value = default; Malformed = false; }

    public byte Type { get; private set; }
    /// <summary>The whole option, including its type and length bytes.</summary>
    public Span<byte> Value { get; private set; }
    public bool Malformed { get; private set; }

    public bool MoveNext()
    {
        if (_pos + 2 > _options.Length) return false;
        int len = _options[_pos + 1] * 8;
        if (len == 0 || _pos + len > _options.Length) { Malformed = true; return false; }
        Type = _options[_pos];
        Value = _options.Slice(_pos, len);
        _pos += len;
        return true;
    }

    /// <summary>Writes a link-layer address option (8 bytes).</summary>
    public static void WriteLinkLayer(Span<byte> b, byte type, MacAddress mac)
    {
        b[0] = type; b[1] = 1;
        mac.Write(b[2..]);
    }

    /// <summary>Writes a prefix information option (32 bytes).</summary>
    public static void WritePrefix(Span<byte> b, IpAddress prefix, int length, bool onLink, bool autonomous, uint valid, uint preferred)
    {
        b[..32].Clear();
        b[0] = PrefixInformation; b[1] = 4; b[2] = (byte)length;
        b[3] = (byte)((onLink ? 0x80 : 0) | (autonomous ? 0x40 : 0));
        BinaryPrimitives.WriteUInt32BigEndian(b[4..], valid);
        BinaryPrimitives.WriteUInt32BigEndian(b[8..], preferred);
        prefix.Write(b[16..]);
    }
}
