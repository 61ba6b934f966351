using System.Buffers.Binary;
using System.Runtime.CompilerServices;

namespace SmartOS.Kernel.Wire;

/// <summary>TCP control bits (RFC 9293 section 3.1, RFC 3168 for ECE/CWR).</summary>
[Flags]
public enum TcpFlags : byte
{
    None = 0,
    Fin = 0x01,
    Syn = 0x02,
    Rst = 0x04,
    Psh = 0x08,
    Ack = 0x10,
    Urg = 0x20,
    Ece = 0x40,
    Cwr = 0x80,
}

/// <summary>One SACK block (RFC 2018): the sequence numbers of the first byte and of the byte after
/// the last byte of a contiguous block the receiver holds.</summary>
public readonly record struct TcpSackBlock(uint Left, uint Right);

/// <summary>Up to four SACK blocks, held inline so a representation never allocates.</summary>
[InlineArray(TcpOptions.MaxSackBlocks)]
public struct TcpSackBlocks
{
    private TcpSackBlock _element0;
}

/// <summary>
/// The options TCP understands: MSS (RFC 9293), window scale and timestamps (RFC 7323),
/// SACK-permitted and SACK (RFC 2018). Absent options are zero/false.
/// </summary>
public struct TcpOptions
{
    public const int MaxSackBlocks = 4;
    public const int MaxLength = 40;

    /// <summary>Maximum segment size; 0 when absent (only legal on SYN).</summary>
    public ushort Mss;
    public bool HasWindowScale;
    /// <summary>Shift count, at most 14 (RFC 7323 section 2.3); larger values are clamped on parse.</summary>
    public byte WindowScale;
    public bool SackPermitted;
    public bool HasTimestamp;
    public uint TsVal;
    public uint TsEcr;
    public int SackCount;
    public TcpSackBlocks Sack;

    /// <summary>Bytes these options take on the wire, laid out as <see cref="Emit"/> writes them
    /// (NOP padding keeps the 32-bit fields aligned, as Linux and illumos lay them out).</summary>
    public readonly int Length
    {
        get
        {
            int n = 0;
            if (Mss != 0) n += 4;
            if (HasTimestamp) n += 12;                            // SACKOK TS, or NOP NOP TS
            else if (SackPermitted) n += 4;                       // NOP NOP SACKOK
            if (HasWindowScale) n += 4;                           // NOP WS
            if (SackCount > 0) n += 4 + 8 * SackCount;            // NOP NOP SACK
            return n;
        }
    }

    public void AddSack(uint left, uint right)
    {
        if (SackCount < MaxSackBlocks) Sack[SackCount++] = new TcpSackBlock(left, right);
    }

    /// <summary>Parses an option list. False when an option's length is malformed (the segment is
    /// then dropped and counted, RFC 9293 section 3.1 "Options": a TCP must be robust to them).</summary>
    public static bool TryParse(ReadOnlySpan<byte> b, out TcpOptions options)
    {
        options = default;
        int i = 0;
        while (i < b.Length)
        {
            byte kind = b[i];
            if (kind == 0) break;                 // end of option list
            if (kind == 1) { i++; continue; }     // no-operation
            if (i + 1 >= b.Length) return false;
            int len = b[i + 1];
            if (len < 2 || i + len > b.Length) return false;
            var body = b.Slice(i + 2, len - 2);
            switch (kind)
            {
                case 2:
                    if (len != 4) return false;
                    options.Mss = BinaryPrimitives.ReadUInt16BigEndian(body);
                    break;
                case 3:
                    if (len != 3) return false;
                    options.HasWindowScale = true;
                    options.WindowScale = Math.Min(body[0], (byte)14);
                    break;
                case 4:
                    if (len != 2) return false;
                    options.SackPermitted = true;
                    break;
                case 5:
                    if ((len - 2) % 8 != 0 || len == 2) return false;
                    for (int k = 0; k + 8 <= body.Length; k += 8)
                        options.AddSack(BinaryPrimitives.ReadUInt32BigEndian(body[k..]), BinaryPrimitives.ReadUInt32BigEndian(body[(k + 4)..]));
                    break;
                case 8:
                    if (len != 10) return false;
                    options.HasTimestamp = true;
                    options.TsVal = BinaryPrimitives.ReadUInt32BigEndian(body);
                    options.TsEcr = BinaryPrimitives.ReadUInt32BigEndian(body[4..]);
                    break;
                default:
                    break;                        // unknown options are skipped by their length
            }
            i += len;
        }
        return true;
    }

    /// <summary>Writes the options; <paramref name="b"/> must hold <see cref="Length"/> bytes.
    /// Layout: MSS, SACKOK, TS, NOP, WS on a SYN (as Linux sends), NOP NOP TS and NOP NOP SACK after.</summary>
    public readonly int Emit(Span<byte> b)
    {
        int i = 0;
        if (Mss != 0)
        {
            b[i] = 2; b[i + 1] = 4;
            BinaryPrimitives.WriteUInt16BigEndian(b[(i + 2)..], Mss);
            i += 4;
        }
        if (SackPermitted && HasTimestamp)
        {
            b[i] = 4; b[i + 1] = 2;
            i += 2;
        }
        else if (HasTimestamp)
        {
            b[i] = 1; b[i + 1] = 1;
            i += 2;
        }
        else if (SackPermitted)
        {
            b[i] = 1; b[i + 1] = 1; b[i + 2] = 4; b[i + 3] = 2;
            i += 4;
        }
        if (HasTimestamp)
        {
            b[i] = 8; b[i + 1] = 10;
            BinaryPrimitives.WriteUInt32BigEndian(b[(i + 2)..], TsVal);
            BinaryPrimitives.WriteUInt32BigEndian(b[(i + 6)..], TsEcr);
            i += 10;
        }
        if (HasWindowScale)
        {
            b[i] = 1; b[i + 1] = 3; b[i + 2] = 3; b[i + 3] = WindowScale;
            i += 4;
        }
        if (SackCount > 0)
        {
            b[i] = 1; b[i + 1] = 1; b[i + 2] = 5; b[i + 3] = (byte)(2 + 8 * SackCount);
            i += 4;
            for (int k = 0; k < SackCount; k++)
            {
                BinaryPrimitives.WriteUInt32BigEndian(b[i..], Sack[k].Left);
                BinaryPrimitives.WriteUInt32BigEndian(b[(i + 4)..], Sack[k].Right);
                i += 8;
            }
        }
        return i;
    }
}

/// <summary>A view over a TCP header (RFC 9293 section 3.1). TryCreate checks the data offset.</summary>
public readonly ref struct TcpView
{
    public const int MinHeaderLength = 20;
    private readonly Span<byte> _b;
    private TcpView(Span<byte> b) { _b = b; }

    public static bool TryCreate(Span<byte> segment, out TcpView view)
    {
        view = default;
        if (segment.Length < MinHeaderLength) return false;
        int hl = (segment[12] >> 4) * 4;
        if (hl < MinHeaderLength || hl > segment.Length) return false;
        view = new TcpView(segment);
        return true;
    }

    public ushort SourcePort { get => BinaryPrimitives.ReadUInt16BigEndian(_b); set => BinaryPrimitives.WriteUInt16BigEndian(_b, value); }
    public ushort DestinationPort { get => BinaryPrimitives.ReadUInt16BigEndian(_b[2..]); set => BinaryPrimitives.WriteUInt16BigEndian(_b[2..], value); }
    public uint SequenceNumber { get => BinaryPrimitives.ReadUInt32BigEndian(_b[4..]); set => BinaryPrimitives.WriteUInt32BigEndian(_b[4..], value); }
    public uint AckNumber { get => BinaryPrimitives.ReadUInt32BigEndian(_b[8..]); set => BinaryPrimitives.WriteUInt32BigEndian(_b[8..], value); }
    public int HeaderLength => (_b[12] >> 4) * 4;
    public TcpFlags Flags { get => (TcpFlags)_b[13]; set => _b[13] = (byte)value; }
    public ushort Window { get => BinaryPrimitives.ReadUInt16BigEndian(_b[14..]); set => BinaryPrimitives.WriteUInt16BigEndian(_b[14..], value); }
    /// <summary>Where the checksum field sits in the header.</summary>
    public const int ChecksumOffset = 16;
    public ushort ChecksumField { get => BinaryPrimitives.ReadUInt16BigEndian(_b[ChecksumOffset..]); set => BinaryPrimitives.WriteUInt16BigEndian(_b[ChecksumOffset..], value); }
    public ushort UrgentPointer { get => BinaryPrimitives.ReadUInt16BigEndian(_b[18..]); set => BinaryPrimitives.WriteUInt16BigEndian(_b[18..], value); }
    public Span<byte> Options => _b[MinHeaderLength..HeaderLength];
    public Span<byte> Payload => _b[HeaderLength..];
    public Span<byte> Segment => _b;

    /// <summary>The ports and sequence number of the header an ICMP error quotes (RFC 792 quotes the
    /// first 8 bytes, RFC 5927 says what TCP may do with them); false when shorter.</summary>
    public static bool TryReadQuoted(ReadOnlySpan<byte> quoted, out ushort sourcePort, out ushort destinationPort, out uint sequenceNumber)
    {
        sourcePort = destinationPort = 0;
        sequenceNumber = 0;
        if (quoted.Length < 8) return false;
        sourcePort = BinaryPrimitives.ReadUInt16BigEndian(quoted);
        destinationPort = BinaryPrimitives.ReadUInt16BigEndian(quoted[2..]);
        sequenceNumber = BinaryPrimitives.ReadUInt32BigEndian(quoted[4..]);
        return true;
    }

    /// <summary>Whether the checksum over the pseudo-header and the whole segment is correct.</summary>
    public bool ChecksumValid(IpAddress source, IpAddress destination)
        => TcpChecksum.Compute(source, destination, _b) == 0;

    /// <summary>Stores the folded pseudo-header sum in the checksum field, for checksum offload
    /// (Packet.SetChecksumPending): summing the segment then gives its checksum.</summary>
    public void FillPseudoHeaderSum(IpAddress source, IpAddress destination)
    {
        uint sum = TcpChecksum.PseudoHeaderSum(source, destination, _b.Length);
        while ((sum >> 16) != 0) sum = (sum & 0xFFFF) + (sum >> 16);
        ChecksumField = (ushort)sum;
    }

    /// <summary>Computes and stores the checksum of the whole segment (header and payload in place).</summary>
    public void FillChecksum(IpAddress source, IpAddress destination)
    {
        ChecksumField = 0;
        ChecksumField = TcpChecksum.Compute(source, destination, _b);
    }
}

/// <summary>The TCP checksum over the IPv4 (RFC 9293 section 3.1) or IPv6 (RFC 8200 section 8.1) pseudo-header.</summary>
public static class TcpChecksum
{
    public static ushort Compute(IpAddress source, IpAddress destination, ReadOnlySpan<byte> segment)
        => Checksum.Fold(PseudoHeaderSum(source, destination, segment.Length) + Checksum.Sum(segment));

    /// <summary>The unfolded sum of the pseudo-header's 16-bit words.</summary>
    public static uint PseudoHeaderSum(IpAddress source, IpAddress destination, int length)
    {
        if (source.IsV4)
        {
            uint s = source.V4Raw, d = destination.V4Raw;
            return (s >> 16) + (s & 0xFFFF) + (d >> 16) + (d & 0xFFFF) + IpProtocol.Tcp + (uint)length;
        }
        return Words(source.High) + Words(source.Low) + Words(destination.High) + Words(destination.Low)
            + ((uint)length >> 16) + ((uint)length & 0xFFFF) + IpProtocol.Tcp;
    }

    private static uint Words(ulong v)
        => (uint)(v >> 48) + (uint)((v >> 32) & 0xFFFF) + (uint)((v >> 16) & 0xFFFF) + (uint)(v & 0xFFFF);
}

/// <summary>
/// A TCP header as values (smoltcp's TcpRepr): parsed from a view, emitted into a buffer. The payload
/// stays in the packet; <see cref="HeaderLength"/> is the representation's buffer length.
/// </summary>
public struct TcpRepr
{
    public ushort SourcePort;
    public ushort DestinationPort;
    public uint Seq;
    public uint Ack;
    public TcpFlags Flags;
    public ushort Window;
    public ushort Urgent;
    public TcpOptions Options;

    public readonly int HeaderLength => TcpView.MinHeaderLength + Options.Length;

    /// <summary>Parses the header fields and options. False when the options are malformed.</summary>
    public static bool TryParse(in TcpView view, out TcpRepr repr)
    {
        repr = default;
        if (!TcpOptions.TryParse(view.Options, out repr.Options)) return false;
        repr.SourcePort = view.SourcePort;
        repr.DestinationPort = view.DestinationPort;
        repr.Seq = view.SequenceNumber;
        repr.Ack = view.AckNumber;
        repr.Flags = view.Flags;
        repr.Window = view.Window;
        repr.Urgent = view.UrgentPointer;
        return true;
    }

    /// <summary>Writes the header (checksum zero) and returns its length; false on a short buffer.</summary>
    public readonly bool TryEmit(Span<byte> b, out int written)
    {
        written = HeaderLength;
        if (b.Length < written) { written = 0; return false; }
        BinaryPrimitives.WriteUInt16BigEndian(b, SourcePort);
        BinaryPrimitives.WriteUInt16BigEndian(b[2..], DestinationPort);
        BinaryPrimitives.WriteUInt32BigEndian(b[4..], Seq);
        BinaryPrimitives.WriteUInt32BigEndian(b[8..], Ack);
        b[12] = (byte)((written / 4) << 4);
        b[13] = (byte)Flags;
        BinaryPrimitives.WriteUInt16BigEndian(b[14..], Window);
        BinaryPrimitives.WriteUInt16BigEndian(b[16..], 0);
        BinaryPrimitives.WriteUInt16BigEndian(b[18..], Urgent);
        Options.Emit(b[TcpView.MinHeaderLength..written]);
        return true;
    }
}
