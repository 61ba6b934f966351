using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

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
/// <see cref="IcmpV4Repr"/> and <see cref="IcmpV6Repr"/> are a message's meaning.
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

    /// <summary>The type of a message that may be shorter than a header: RFC 1122 3.2.2 and RFC 4443
    /// 2.4 look at the type of a quoted ICMP message to decide whether it is an error.</summary>
    public static bool TryReadType(ReadOnlySpan<byte> message, out byte type)
    {
        type = message.IsEmpty ? (byte)0 : message[0];
        return !message.IsEmpty;
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

    /// <summary>The length of a link-layer address option for Ethernet.</summary>
    public const int LinkLayerLength = 8;
    public const int MtuLength = 8;

    /// <summary>Writes a link-layer address option (8 bytes).</summary>
    public static void WriteLinkLayer(Span<byte> b, byte type, MacAddress mac)
    {
        b[0] = type; b[1] = 1;
        mac.Write(b[2..]);
    }

    /// <summary>The address a link-layer address option carries; false when it is too short.</summary>
    public static bool TryReadLinkLayer(ReadOnlySpan<byte> option, out MacAddress mac)
    {
        mac = MacAddress.Zero;
        if (option.Length < LinkLayerLength) return false;
        mac = MacAddress.Read(option[2..]);
        return true;
    }

    /// <summary>Writes an MTU option (8 bytes, RFC 4861 4.6.4).</summary>
    public static void WriteMtu(Span<byte> b, uint mtu)
    {
        b[0] = Mtu; b[1] = 1; b[2] = 0; b[3] = 0;
        BinaryPrimitives.WriteUInt32BigEndian(b[4..], mtu);
    }

    /// <summary>Writes a prefix information option (32 bytes).</summary>
    public static void WritePrefix(Span<byte> b, IpAddress prefix, int length, bool onLink, bool autonomous, uint valid, uint preferred)
        => new NdpPrefixInformation { Prefix = prefix, PrefixLength = (byte)length, OnLink = onLink, Autonomous = autonomous, ValidLifetime = valid, PreferredLifetime = preferred }.TryEmit(b);
}

/// <summary>The prefix information option (RFC 4861 4.6.2) as values.</summary>
public struct NdpPrefixInformation
{
    public const int Length = 32;
    public byte PrefixLength;
    public bool OnLink;
    public bool Autonomous;
    public uint ValidLifetime;
    public uint PreferredLifetime;
    public IpAddress Prefix;

    /// <summary>Reads a whole option (as <see cref="NdpOptionReader.Value"/> gives it); false when it
    /// is not a prefix information option or is too short.</summary>
    public static bool TryParse(ReadOnlySpan<byte> option, out NdpPrefixInformation repr)
    {
        repr = default;
        if (option.Length < Length || option[0] != NdpOptionReader.PrefixInformation) return false;
        repr.PrefixLength = option[2];
        repr.OnLink = (option[3] & 0x80) != 0;
        repr.Autonomous = (option[3] & 0x40) != 0;
        repr.ValidLifetime = BinaryPrimitives.ReadUInt32BigEndian(option[4..]);
        repr.PreferredLifetime = BinaryPrimitives.ReadUInt32BigEndian(option[8..]);
        repr.Prefix = IpAddress.Read(option[16..], v4: false);
        return true;
    }

    public readonly bool TryEmit(Span<byte> b)
    {
        if (b.Length < Length) return false;
        b[..Length].Clear();
        b[0] = NdpOptionReader.PrefixInformation; b[1] = Length / 8; b[2] = PrefixLength;
        b[3] = (byte)((OnLink ? 0x80 : 0) | (Autonomous ? 0x40 : 0));
        BinaryPrimitives.WriteUInt32BigEndian(b[4..], ValidLifetime);
        BinaryPrimitives.WriteUInt32BigEndian(b[8..], PreferredLifetime);
        Prefix.Write(b[16..]);
        return true;
    }
}

/// <summary>
/// An ICMP message (RFC 792) as values (smoltcp's Icmpv4Repr), for the types the stack speaks:
/// echo request and reply (<see cref="Identifier"/>, <see cref="Sequence"/>, <see cref="Data"/> the
/// echoed bytes), destination unreachable (<see cref="NextHopMtu"/> for code 4, RFC 1191), time
/// exceeded and parameter problem (<see cref="Pointer"/>); for errors <see cref="Data"/> is the
/// quoted datagram, IP header first. A ref struct: <see cref="Data"/> stays in the packet.
/// </summary>
public ref struct IcmpV4Repr
{
    public byte Type;
    public byte Code;
    public ushort Identifier;
    public ushort Sequence;
    public ushort NextHopMtu;
    public byte Pointer;
    public Span<byte> Data;

    public const int HeaderLength = IcmpView.HeaderLength;
    public readonly int BufferLength => HeaderLength + Data.Length;
    public readonly bool IsError => Type is IcmpType.DestinationUnreachable or IcmpType.TimeExceeded or IcmpType.ParameterProblem;

    /// <summary>Reads a message: <see cref="WireError.BadChecksum"/> when <paramref name="caps"/> asks
    /// for the ICMP checksum and it is wrong (checked first), <see cref="WireError.Unrecognized"/>
    /// for a type not listed above.</summary>
    public static WireError Parse(IcmpView view, ChecksumCaps caps, out IcmpV4Repr repr)
    {
        repr = default;
        if ((caps & ChecksumCaps.Icmpv4) != 0 && !view.ChecksumValidV4) return WireError.BadChecksum;
        repr.Type = view.Type;
        repr.Code = view.Code;
        repr.Data = view.Body;
        var rest = view.Message[4..];
        switch (view.Type)
        {
            case IcmpType.EchoRequest:
            case IcmpType.EchoReply:
                repr.Identifier = view.Identifier;
                repr.Sequence = view.Sequence;
                return WireError.None;
            case IcmpType.DestinationUnreachable:
                repr.NextHopMtu = BinaryPrimitives.ReadUInt16BigEndian(rest[2..]);
                return WireError.None;
            case IcmpType.TimeExceeded:
                return WireError.None;
            case IcmpType.ParameterProblem:
                repr.Pointer = rest[0];
                return WireError.None;
            default:
                repr = default;
                return WireError.Unrecognized;
        }
    }

    /// <summary>Checks <paramref name="message"/> and parses it.</summary>
    public static WireError Parse(Span<byte> message, ChecksumCaps caps, out IcmpV4Repr repr)
    {
        repr = default;
        if (!IcmpView.TryCreate(message, out var view)) return WireError.Truncated;
        return Parse(view, caps, out repr);
    }

    /// <summary>Writes the message (header, then <see cref="Data"/> unless it already sits there)
    /// with its checksum; false when the buffer is short or the type is not one listed above.</summary>
    public readonly bool TryEmit(Span<byte> b)
    {
        if (b.Length < BufferLength) return false;
        uint rest;
        switch (Type)
        {
            case IcmpType.EchoRequest:
            case IcmpType.EchoReply: rest = ((uint)Identifier << 16) | Sequence; break;
            case IcmpType.DestinationUnreachable: rest = NextHopMtu; break;
            case IcmpType.TimeExceeded: rest = 0; break;
            case IcmpType.ParameterProblem: rest = (uint)Pointer << 24; break;
            default: return false;
        }
        var m = b[..BufferLength];
        IcmpView.TryWriteHeader(m, Type, Code, rest);
        IcmpData.Place(Data, m[HeaderLength..]);
        IcmpView.FinishV4(m);
        return true;
    }
}

/// <summary>
/// An ICMPv6 message (RFC 4443, RFC 4861) as values (smoltcp's Icmpv6Repr with its NdiscRepr), for
/// the types the stack speaks: echo request and reply; destination unreachable, packet too big
/// (<see cref="Mtu"/>), time exceeded and parameter problem (<see cref="Pointer"/>), whose
/// <see cref="Data"/> is the quoted datagram; router solicitation and advertisement (the
/// <see cref="CurHopLimit"/>, <see cref="RouterFlags"/>, <see cref="RouterLifetime"/>,
/// <see cref="ReachableTime"/>, <see cref="RetransTimer"/> fields) and neighbour solicitation and
/// advertisement (<see cref="Target"/>, the R/S/O flags), whose <see cref="Data"/> is the options.
/// </summary>
public ref struct IcmpV6Repr
{
    public byte Type;
    public byte Code;
    public ushort Identifier;
    public ushort Sequence;
    public uint Mtu;
    public uint Pointer;
    public byte CurHopLimit;
    public byte RouterFlags;
    public ushort RouterLifetime;
    public uint ReachableTime;
    public uint RetransTimer;
    public IpAddress Target;
    public bool IsRouter;
    public bool Solicited;
    public bool Override;
    public Span<byte> Data;

    public readonly int HeaderLength => FixedLength(Type);
    public readonly int BufferLength => HeaderLength + Data.Length;
    public readonly bool IsNdp => Type is >= IcmpType.RouterSolicitation and <= IcmpType.NeighborAdvertisement;

    /// <summary>The fixed part of a message of <paramref name="type"/>, before its data or NDP options.</summary>
    public static int FixedLength(byte type) => type switch
    {
        IcmpType.RouterAdvertisement => 16,
        IcmpType.NeighborSolicitation or IcmpType.NeighborAdvertisement => 24,
        _ => IcmpView.HeaderLength,
    };

    /// <summary>
    /// Reads a message. <see cref="WireError.BadChecksum"/> first (the pseudo-header needs the
    /// addresses); NDP messages are <see cref="WireError.Truncated"/> when shorter than their fixed
    /// part and <see cref="WireError.Malformed"/> with a code other than 0 or an option of length 0
    /// or past the end (RFC 4861 7.1.1, 6.1.1); <see cref="WireError.Unrecognized"/> for a type not
    /// listed above.
    /// </summary>
    public static WireError Parse(IcmpView view, IpAddress source, IpAddress destination, ChecksumCaps caps, out IcmpV6Repr repr)
    {
        repr = default;
        if ((caps & ChecksumCaps.Icmpv6) != 0 && !view.ChecksumValidV6(source, destination)) return WireError.BadChecksum;
        var m = view.Message;
        byte type = view.Type;
        int fixedLength = FixedLength(type);
        switch (type)
        {
            case IcmpType.V6EchoRequest:
            case IcmpType.V6EchoReply:
                repr.Identifier = view.Identifier;
                repr.Sequence = view.Sequence;
                break;
            case IcmpType.V6DestinationUnreachable:
            case IcmpType.V6TimeExceeded:
                break;
            case IcmpType.V6PacketTooBig:
                repr.Mtu = view.Rest;
                break;
            case IcmpType.V6ParameterProblem:
                repr.Pointer = view.Rest;
                break;
            case IcmpType.RouterSolicitation:
            case IcmpType.RouterAdvertisement:
            case IcmpType.NeighborSolicitation:
            case IcmpType.NeighborAdvertisement:
            {
                if (view.Code != 0) return WireError.Malformed;
                if (m.Length < fixedLength) return WireError.Truncated;
                var options = new NdpOptionReader(m[fixedLength..]);
                while (options.MoveNext()) { }
                if (options.Malformed) return WireError.Malformed;
                if (type == IcmpType.RouterAdvertisement)
                {
                    repr.CurHopLimit = m[4];
                    repr.RouterFlags = m[5];
                    repr.RouterLifetime = BinaryPrimitives.ReadUInt16BigEndian(m[6..]);
                    repr.ReachableTime = BinaryPrimitives.ReadUInt32BigEndian(m[8..]);
                    repr.RetransTimer = BinaryPrimitives.ReadUInt32BigEndian(m[12..]);
                }
                else if (type != IcmpType.RouterSolicitation)
                {
                    repr.Target = IpAddress.Read(m[8..], v4: false);
                    repr.IsRouter = (m[4] & 0x80) != 0;
                    repr.Solicited = (m[4] & 0x40) != 0;
                    repr.Override = (m[4] & 0x20) != 0;
                }
                break;
            }
            default:
                return WireError.Unrecognized;
        }
        repr.Type = type;
        repr.Code = view.Code;
        repr.Data = m[fixedLength..];
        return WireError.None;
    }

    /// <summary>Checks <paramref name="message"/> and parses it.</summary>
    public static WireError Parse(Span<byte> message, IpAddress source, IpAddress destination, ChecksumCaps caps, out IcmpV6Repr repr)
    {
        repr = default;
        if (!IcmpView.TryCreate(message, out var view)) return WireError.Truncated;
        return Parse(view, source, destination, caps, out repr);
    }

    /// <summary>Writes the message (fixed part, then <see cref="Data"/> unless it already sits
    /// there) with its checksum over the pseudo-header; false when the buffer is short or the type
    /// is not one listed above.</summary>
    public readonly bool TryEmit(Span<byte> b, IpAddress source, IpAddress destination)
    {
        int fixedLength = HeaderLength;
        if (b.Length < BufferLength) return false;
        var m = b[..BufferLength];
        uint rest;
        switch (Type)
        {
            case IcmpType.V6EchoRequest:
            case IcmpType.V6EchoReply: rest = ((uint)Identifier << 16) | Sequence; break;
            case IcmpType.V6DestinationUnreachable:
            case IcmpType.V6TimeExceeded:
            case IcmpType.RouterSolicitation: rest = 0; break;
            case IcmpType.V6PacketTooBig: rest = Mtu; break;
            case IcmpType.V6ParameterProblem: rest = Pointer; break;
            case IcmpType.RouterAdvertisement: rest = ((uint)CurHopLimit << 24) | ((uint)RouterFlags << 16) | RouterLifetime; break;
            case IcmpType.NeighborSolicitation: rest = 0; break;
            case IcmpType.NeighborAdvertisement: rest = (IsRouter ? 0x8000_0000u : 0) | (Solicited ? 0x4000_0000u : 0) | (Override ? 0x2000_0000u : 0); break;
            default: return false;
        }
        IcmpView.TryWriteHeader(m, Type, Code, rest);
        if (Type == IcmpType.RouterAdvertisement)
        {
            BinaryPrimitives.WriteUInt32BigEndian(m[8..], ReachableTime);
            BinaryPrimitives.WriteUInt32BigEndian(m[12..], RetransTimer);
        }
        else if (Type is IcmpType.NeighborSolicitation or IcmpType.NeighborAdvertisement) Target.Write(m[8..]);
        IcmpData.Place(Data, m[fixedLength..]);
        IcmpView.FinishV6(m, source, destination);
        return true;
    }
}

internal static class IcmpData
{
    /// <summary>Copies a message's data behind its header, unless the caller built it there already
    /// (an echo turned into its reply in place, NDP options written after the fixed part).</summary>
    public static void Place(ReadOnlySpan<byte> data, Span<byte> destination)
    {
        if (data.IsEmpty) return;
        if (Unsafe.AreSame(ref MemoryMarshal.GetReference(data), ref MemoryMarshal.GetReference(destination))) return;
        data.CopyTo(destination);
    }
}
