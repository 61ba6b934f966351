using System.Buffers.Binary;
using System.Diagnostics;
using System.Net;

namespace SmartOS.Kernel.Wire;

/// <summary>
/// A view over an IPv4 header (RFC 791): getters read the fields in network byte order, setters
/// rewrite them in place (forwarding, fragmenting). <see cref="Check"/> holds the version, IHL and
/// total length against the buffer; once a view exists no accessor throws. <see cref="Ipv4Repr"/>
/// is the header's meaning.
/// </summary>
public readonly ref struct Ipv4View
{
    public const int MinHeaderLength = 20;
    /// <summary>IHL is four bits of 32-bit words.</summary>
    public const int MaxHeaderLength = 60;
    private readonly Span<byte> _b;
    private Ipv4View(Span<byte> b) { _b = b; }

    /// <summary>A view over the datagram's total length (Ethernet padding after it left out), or why not.</summary>
    public static WireError Check(Span<byte> packet, out Ipv4View view)
    {
        view = default;
        var e = CheckHeader(packet);
        if (e != WireError.None) return e;
        int total = BinaryPrimitives.ReadUInt16BigEndian(packet[2..]);
        if (total < (packet[0] & 0xF) * 4) return WireError.Malformed;
        if (total > packet.Length) return WireError.Truncated;
        view = new Ipv4View(packet[..total]);
        return WireError.None;
    }

    public static bool TryCreate(Span<byte> packet, out Ipv4View view) => Check(packet, out view) == WireError.None;

    /// <summary>A view over the header alone, the total length not held against the buffer: the
    /// datagram an ICMP error quotes (its header and 8 bytes), or a header copied to be rewritten.
    /// <see cref="Payload"/> is then what the buffer holds after the header.</summary>
    public static bool TryCreateHeader(Span<byte> packet, out Ipv4View view)
    {
        view = default;
        if (CheckHeader(packet) != WireError.None) return false;
        view = new Ipv4View(packet);
        return true;
    }

    private static WireError CheckHeader(ReadOnlySpan<byte> packet)
    {
        if (packet.Length < MinHeaderLength) return WireError.Truncated;
        if ((packet[0] >> 4) != 4) return WireError.Malformed;
        int ihl = (packet[0] & 0xF) * 4;
        if (ihl < MinHeaderLength) return WireError.Malformed;
        if (ihl > packet.Length) return WireError.Truncated;
        return WireError.None;
    }

    public int HeaderLength => (_b[0] & 0xF) * 4;
    public int TotalLength { get => BinaryPrimitives.ReadUInt16BigEndian(_b[2..]); set => BinaryPrimitives.WriteUInt16BigEndian(_b[2..], (ushort)value); }
    public byte Tos => _b[1];
    public ushort Identification => BinaryPrimitives.ReadUInt16BigEndian(_b[4..]);
    public bool DontFragment => (_b[6] & 0x40) != 0;
    public bool MoreFragments => (_b[6] & 0x20) != 0;
    public int FragmentOffset => (BinaryPrimitives.ReadUInt16BigEndian(_b[6..]) & 0x1FFF) * 8;
    public bool IsFragment => MoreFragments || FragmentOffset != 0;
    public byte Ttl { get => _b[8]; set => _b[8] = value; }
    public byte Protocol => _b[9];
    public ushort ChecksumField => BinaryPrimitives.ReadUInt16BigEndian(_b[10..]);
    public uint SourceRaw => BinaryPrimitives.ReadUInt32BigEndian(_b[12..]);
    public uint DestinationRaw => BinaryPrimitives.ReadUInt32BigEndian(_b[16..]);
    public IpAddress Source => IpAddress.V4(SourceRaw);
    public IpAddress Destination => IpAddress.V4(DestinationRaw);
    public Span<byte> Header => _b[..HeaderLength];
    public Span<byte> Payload => _b[HeaderLength..];
    public Span<byte> Packet => _b;
    public bool ChecksumValid => Checksum.Compute(_b[..HeaderLength]) == 0;

    /// <summary>Rewrites the flags and fragment offset (<paramref name="offset"/> in bytes, a multiple of 8).</summary>
    public void SetFragment(bool dontFragment, bool moreFragments, int offset)
        => BinaryPrimitives.WriteUInt16BigEndian(_b[6..], (ushort)((dontFragment ? 0x4000 : 0) | (moreFragments ? 0x2000 : 0) | (offset >> 3)));

    /// <summary>Recomputes the header checksum after the header was rewritten.</summary>
    public void FillChecksum()
    {
        BinaryPrimitives.WriteUInt16BigEndian(_b[10..], 0);
        BinaryPrimitives.WriteUInt16BigEndian(_b[10..], Checksum.Compute(_b[..HeaderLength]));
    }

    /// <summary>Takes one from the TTL and updates the checksum incrementally (RFC 1624): TTL is
    /// the high byte of its 16-bit word, so the sum gains 0x0100. A router's per-packet step.</summary>
    public void DecrementTtl()
    {
        _b[8]--;
        uint sum = (uint)(BinaryPrimitives.ReadUInt16BigEndian(_b[10..]) + 0x0100);
        BinaryPrimitives.WriteUInt16BigEndian(_b[10..], (ushort)(sum + (sum >> 16)));
    }

    /// <summary>Writes a 20-byte header with DF set and a correct checksum (tests and generators;
    /// the stack builds an <see cref="Ipv4Repr"/>). The caller must give room and a length IPv4 can carry.</summary>
    public static void Write(Span<byte> b, uint src, uint dst, byte protocol, int payloadLength, byte ttl = 64, ushort id = 0, byte tos = 0)
    {
        bool written = new Ipv4Repr
        {
            Source = IpAddress.V4(src), Destination = IpAddress.V4(dst), Protocol = protocol, PayloadLength = payloadLength,
            Ttl = ttl, Identification = id, Tos = tos, DontFragment = true,
        }.TryEmit(b);
        Debug.Assert(written, "a 20-byte buffer and a total length below 64 KiB");
    }

    public static uint ToRaw(IPAddress a)
    {
        Span<byte> tmp = stackalloc byte[4];
        a.TryWriteBytes(tmp, out _);
        return BinaryPrimitives.ReadUInt32BigEndian(tmp);
    }

    public static IPAddress FromRaw(uint raw)
    {
        Span<byte> tmp = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32BigEndian(tmp, raw);
        return new IPAddress(tmp);
    }
}

/// <summary>
/// An IPv4 header as values (smoltcp's Ipv4Repr): what the stack reads from a datagram and what it
/// writes in front of one. Options are not kept: <see cref="Parse"/> accepts and skips them, and
/// <see cref="TryEmit"/> writes a 20-byte header. <see cref="PayloadLength"/> is the total length
/// less the header the datagram came with.
/// </summary>
public struct Ipv4Repr
{
    public IpAddress Source;
    public IpAddress Destination;
    public byte Protocol;
    public int PayloadLength;
    public byte Ttl;
    public byte Tos;
    public ushort Identification;
    public bool DontFragment;
    public bool MoreFragments;
    /// <summary>In bytes (a multiple of 8).</summary>
    public int FragmentOffset;

    /// <summary>What <see cref="TryEmit"/> writes.</summary>
    public const int HeaderLength = Ipv4View.MinHeaderLength;
    public readonly int BufferLength => HeaderLength + PayloadLength;
    public readonly bool IsFragment => MoreFragments || FragmentOffset != 0;

    /// <summary>Reads a checked view; <see cref="WireError.BadChecksum"/> when
    /// <paramref name="caps"/> asks for the header checksum and it is wrong.</summary>
    public static WireError Parse(in Ipv4View view, ChecksumCaps caps, out Ipv4Repr repr)
    {
        repr = default;
        if ((caps & ChecksumCaps.Ipv4) != 0 && !view.ChecksumValid) return WireError.BadChecksum;
        repr.Source = view.Source;
        repr.Destination = view.Destination;
        repr.Protocol = view.Protocol;
        repr.PayloadLength = view.TotalLength - view.HeaderLength;
        repr.Ttl = view.Ttl;
        repr.Tos = view.Tos;
        repr.Identification = view.Identification;
        repr.DontFragment = view.DontFragment;
        repr.MoreFragments = view.MoreFragments;
        repr.FragmentOffset = view.FragmentOffset;
        return WireError.None;
    }

    /// <summary>Checks <paramref name="packet"/> and parses its header: the view covers the datagram.</summary>
    public static WireError Parse(Span<byte> packet, ChecksumCaps caps, out Ipv4View view, out Ipv4Repr repr)
    {
        repr = default;
        var e = Ipv4View.Check(packet, out view);
        return e != WireError.None ? e : Parse(view, caps, out repr);
    }

    /// <summary>Writes the 20-byte header with its checksum; false when the buffer is short or the
    /// datagram would not fit the 16-bit total length.</summary>
    public readonly bool TryEmit(Span<byte> b)
    {
        if (b.Length < HeaderLength || (uint)BufferLength > ushort.MaxValue || !Source.IsV4 || !Destination.IsV4) return false;
        b[0] = 0x45; b[1] = Tos;
        BinaryPrimitives.WriteUInt16BigEndian(b[2..], (ushort)BufferLength);
        BinaryPrimitives.WriteUInt16BigEndian(b[4..], Identification);
        BinaryPrimitives.WriteUInt16BigEndian(b[6..], (ushort)((DontFragment ? 0x4000 : 0) | (MoreFragments ? 0x2000 : 0) | (FragmentOffset >> 3)));
        b[8] = Ttl; b[9] = Protocol;
        BinaryPrimitives.WriteUInt16BigEndian(b[10..], 0);
        BinaryPrimitives.WriteUInt32BigEndian(b[12..], Source.V4Raw);
        BinaryPrimitives.WriteUInt32BigEndian(b[16..], Destination.V4Raw);
        BinaryPrimitives.WriteUInt16BigEndian(b[10..], Checksum.Compute(b[..HeaderLength]));
        return true;
    }
}
