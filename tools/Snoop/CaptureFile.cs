/*
 * Capture files: what `snoop -o` writes and `snoop -i` reads, in managed code, so that no command
 * but a `pcap:IFACE` NIC (Daemon/PcapNic.cs) ever loads libpcap.
 *
 * Formats
 *   pcap     libpcap's classic format (draft-ietf-opsawg-pcap): a 24-byte file header (magic,
 *            version 2.4, snaplen, link type), then a 16-byte header per record (seconds, fraction,
 *            captured length, original length). Written little-endian with microsecond stamps, the
 *            bytes libpcap's dumper writes on x86; read in either byte order, with microsecond
 *            (0xA1B2C3D4) or nanosecond (0xA1B23C4D) stamps.
 *   pcapng   draft-ietf-opsawg-pcapng: blocks of (type, total length, body, total length). Written
 *            as one Section Header Block, one Interface Description Block per captured link (option
 *            if_name = the link's name, so Wireshark and tshark show it; if_tsresol = 9, since
 *            virtual time counts nanoseconds) and one Enhanced Packet Block per frame. Read: every
 *            section in either byte order, any if_tsresol, Enhanced, Simple and obsolete Packet
 *            Blocks; the other block types are skipped, as the draft asks of a reader.
 *   snoop    RFC 1761, what illumos `snoop -o` writes: "snoop\0\0\0", a version and (version 2)
 *            the DLPI MAC type, then big-endian records padded to a 4-byte boundary. Read only, so
 *            an operator's captures from a real SmartOS host open with `snoop -i`.
 *
 * Rules
 *   1. The same frames and times give the same bytes: no field holds the wall clock, the host name
 *      or the OS (SnoopFilter.cs rule 4).
 *   2. Files are untrusted (CaptureFileReader): reading never throws on content. A bad or truncated
 *      file ends the frames with an Error that names the file and the packet; every length is
 *      checked against MaxFrame or the block before a byte is read or allocated for it.
 *   3. A file's format is found by its magic, never by its name. A writer's format is -F's or,
 *      without -F, pcapng for a name ending in .pcapng and pcap otherwise.
 *   4. Only Ethernet is read, since snoop's formatters decode Ethernet: another link type is an
 *      error naming it (illumos: "Mac Type = %x is not supported").
 *   5. Writing allocates nothing per frame; a failed write (disk full) is kept in Error and ends
 *      the capture rather than throwing on the kernel loop.
 */
using System.Buffers.Binary;
using System.Text;
using SmartOS.Kernel;

namespace SmartOS.Cli.Snoop;

public enum CaptureFormat { Pcap, Pcapng, Snoop }

public static class CaptureFormats
{
    /// <summary>The formats snoop -F writes, by name.</summary>
    public static bool TryParseWritable(string name, out CaptureFormat format)
    {
        format = name switch { "pcap" => CaptureFormat.Pcap, "pcapng" => CaptureFormat.Pcapng, _ => (CaptureFormat)(-1) };
        return format >= 0;
    }

    /// <summary>The format a file of this name is written in when -F does not say (rule 3).</summary>
    public static CaptureFormat ForFileName(string path)
        => path.EndsWith(".pcapng", StringComparison.OrdinalIgnoreCase) ? CaptureFormat.Pcapng : CaptureFormat.Pcap;
}

/// <summary>
/// Writes frames of one or more Ethernet links to a pcap or pcapng file. Timestamps are the caller's
/// virtual time in nanoseconds (pcap keeps microseconds).
/// </summary>
public abstract class CaptureFileWriter : IDisposable
{
    public const int Snaplen = 65535;
    private protected const ushort LinkTypeEthernet = 1;
    private readonly Stream _stream;
    private bool _disposed;
    /// <summary>Whether Dispose leaves the stream open (standard output), flushing it only.</summary>
    private bool _leaveOpen;

    private protected CaptureFileWriter(Stream stream) { _stream = stream; }

    /// <summary>Why the last write failed, once one has (rule 5).</summary>
    public string? Error { get; private set; }

    /// <summary>
    /// Creates <paramref name="path"/> (truncating it) and writes the file header for
    /// <paramref name="links"/>, in order: a frame's link is its index there. Null with
    /// <paramref name="error"/> (illumos wording: "PATH: Permission denied") when it cannot.
    /// </summary>
    public static CaptureFileWriter? Create(string path, CaptureFormat format, IReadOnlyList<string> links, out string error)
    {
        if (format == CaptureFormat.Snoop) throw new ArgumentException("snoop files are read only", nameof(format));
        if (links.Count == 0) throw new ArgumentException("a capture needs a link", nameof(links));
        error = "";
        FileStream stream;
        try
        {
            stream = new FileStream(path, FileMode.Create, FileAccess.Write, FileShare.Read, bufferSize: 1 << 16);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            error = $"{path}: {CaptureFileReader.Strerror(e)}";
            return null;
        }
        return Create(stream, path, format, links, out error, leaveOpen: false);
    }

    /// <summary>
    /// As <see cref="Create(string, CaptureFormat, IReadOnlyList{string}, out string)"/> on a stream
    /// (snoop -o -: standard output, as bytes), which the writer owns unless
    /// <paramref name="leaveOpen"/>. <paramref name="name"/> is what messages call it.
    /// </summary>
    public static CaptureFileWriter? Create(Stream stream, string name, CaptureFormat format, IReadOnlyList<string> links, out string error, bool leaveOpen = false)
    {
        if (format == CaptureFormat.Snoop) throw new ArgumentException("snoop files are read only", nameof(format));
        if (links.Count == 0) throw new ArgumentException("a capture needs a link", nameof(links));
        error = "";
        CaptureFileWriter writer = format == CaptureFormat.Pcapng ? new PcapngWriter(stream, links) : new PcapWriter(stream);
        writer._leaveOpen = leaveOpen;
        try
        {
            writer.WriteHeader();
        }
        catch (IOException e)
        {
            error = $"{name}: {e.Message}";
            writer.Dispose();
            return null;
        }
        return writer;
    }

    /// <summary>
    /// Appends one frame of link <paramref name="link"/>, keeping at most <paramref name="snaplen"/>
    /// bytes of it (snoop -s) and recording its whole length; false once a write has failed.
    /// </summary>
    public bool Write(int link, ReadOnlySpan<byte> frame, long timestampNs, int snaplen = Snaplen)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (Error != null) return false;
        if (timestampNs < 0) timestampNs = 0;
        int captured = Math.Min(frame.Length, Math.Clamp(snaplen, 1, Snaplen));
        try
        {
            WriteRecord(link, frame[..captured], frame.Length, timestampNs);
            return true;
        }
        catch (IOException e)
        {
            // illumos snoop's cap_write_error wording (rule 5).
            Error = $"cannot write packet to capture file: {e.Message}";
            return false;
        }
    }

    private protected abstract void WriteHeader();

    private protected abstract void WriteRecord(int link, ReadOnlySpan<byte> data, int originalLength, long timestampNs);

    private protected void Put(ReadOnlySpan<byte> bytes) => _stream.Write(bytes);

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        try
        {
            if (_leaveOpen) _stream.Flush();
            else _stream.Dispose();
        }
        catch (IOException e) { Error ??= $"cannot write packet to capture file: {e.Message}"; }
        GC.SuppressFinalize(this);
    }

    /// <summary>Padding after <paramref name="length"/> bytes to the next 4-byte boundary.</summary>
    internal static int Pad4(int length) => (4 - (length & 3)) & 3;
}

/// <summary>Classic pcap, little-endian, microsecond stamps.</summary>
public sealed class PcapWriter : CaptureFileWriter
{
    internal PcapWriter(Stream stream) : base(stream) { }

    private protected override void WriteHeader()
    {
        Span<byte> h = stackalloc byte[24];
        BinaryPrimitives.WriteUInt32LittleEndian(h, 0xA1B2C3D4);
        BinaryPrimitives.WriteUInt16LittleEndian(h[4..], 2);
        BinaryPrimitives.WriteUInt16LittleEndian(h[6..], 4);
        BinaryPrimitives.WriteInt32LittleEndian(h[8..], 0);   // thiszone: stamps are UTC
        BinaryPrimitives.WriteUInt32LittleEndian(h[12..], 0); // sigfigs
        BinaryPrimitives.WriteUInt32LittleEndian(h[16..], Snaplen);
        BinaryPrimitives.WriteUInt32LittleEndian(h[20..], LinkTypeEthernet);
        Put(h);
    }

    private protected override void WriteRecord(int link, ReadOnlySpan<byte> data, int originalLength, long timestampNs)
    {
        // One link per pcap file: the link index has nowhere to go, so a caller may use only 0.
        if (link != 0) throw new ArgumentOutOfRangeException(nameof(link), "a pcap file holds one link");
        Span<byte> h = stackalloc byte[16];
        BinaryPrimitives.WriteUInt32LittleEndian(h, (uint)(timestampNs / Time.Second));
        BinaryPrimitives.WriteUInt32LittleEndian(h[4..], (uint)(timestampNs % Time.Second / Time.Microsecond));
        BinaryPrimitives.WriteUInt32LittleEndian(h[8..], (uint)data.Length);
        BinaryPrimitives.WriteUInt32LittleEndian(h[12..], (uint)originalLength);
        Put(h);
        Put(data);
    }
}

/// <summary>pcapng, little-endian: a section header, an interface per link, enhanced packet blocks.</summary>
public sealed class PcapngWriter : CaptureFileWriter
{
    internal const uint SectionHeader = 0x0A0D0D0A, InterfaceDescription = 1, ObsoletePacket = 2, SimplePacket = 3, EnhancedPacket = 6;
    internal const uint ByteOrderMagic = 0x1A2B3C4D;
    internal const ushort OptEnd = 0, ShbUserAppl = 4, IfName = 2, IfTsresol = 9;
    private readonly IReadOnlyList<string> _links;

    internal PcapngWriter(Stream stream, IReadOnlyList<string> links) : base(stream) { _links = links; }

    private protected override void WriteHeader()
    {
        // Section Header Block: byte-order magic, version 1.0, section length unknown (-1), and
        // shb_userappl, the one option that says nothing about this machine (rule 1). A block is
        // 12 bytes of type and lengths around its body; options end with a 4-byte opt_endofopt.
        byte[] appl = Encoding.UTF8.GetBytes("smartos snoop");
        var shb = new byte[12 + 16 + OptionLength(appl.Length) + 4];
        int at = Begin(shb, SectionHeader);
        BinaryPrimitives.WriteUInt32LittleEndian(shb.AsSpan(at), ByteOrderMagic);
        BinaryPrimitives.WriteUInt16LittleEndian(shb.AsSpan(at + 4), 1);
        BinaryPrimitives.WriteUInt16LittleEndian(shb.AsSpan(at + 6), 0);
        BinaryPrimitives.WriteInt64LittleEndian(shb.AsSpan(at + 8), -1);
        at = Option(shb, at + 16, ShbUserAppl, appl);
        Option(shb, at, OptEnd, []);
        Put(shb);
        foreach (string name in _links)
        {
            // Interface Description Block: Ethernet, the snaplen, if_name and if_tsresol = 9.
            byte[] ifName = Encoding.UTF8.GetBytes(name);
            var idb = new byte[12 + 8 + OptionLength(ifName.Length) + OptionLength(1) + 4];
            at = Begin(idb, InterfaceDescription);
            BinaryPrimitives.WriteUInt16LittleEndian(idb.AsSpan(at), LinkTypeEthernet);
            BinaryPrimitives.WriteUInt32LittleEndian(idb.AsSpan(at + 4), Snaplen);
            at = Option(idb, at + 8, IfName, ifName);
            at = Option(idb, at, IfTsresol, [9]);
            Option(idb, at, OptEnd, []);
            Put(idb);
        }
    }

    private static int OptionLength(int valueLength) => 4 + valueLength + Pad4(valueLength);

    /// <summary>Writes a block's type and both copies of its length; returns where its body starts.</summary>
    private static int Begin(byte[] block, uint type)
    {
        BinaryPrimitives.WriteUInt32LittleEndian(block, type);
        BinaryPrimitives.WriteUInt32LittleEndian(block.AsSpan(4), (uint)block.Length);
        BinaryPrimitives.WriteUInt32LittleEndian(block.AsSpan(block.Length - 4), (uint)block.Length);
        return 8;
    }

    private static int Option(byte[] block, int at, ushort code, ReadOnlySpan<byte> value)
    {
        BinaryPrimitives.WriteUInt16LittleEndian(block.AsSpan(at), code);
        BinaryPrimitives.WriteUInt16LittleEndian(block.AsSpan(at + 2), (ushort)value.Length);
        value.CopyTo(block.AsSpan(at + 4));
        return at + OptionLength(value.Length);
    }

    private protected override void WriteRecord(int link, ReadOnlySpan<byte> data, int originalLength, long timestampNs)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(link);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(link, _links.Count);
        int pad = Pad4(data.Length);
        uint total = (uint)(28 + data.Length + pad + 4);
        Span<byte> h = stackalloc byte[28];
        BinaryPrimitives.WriteUInt32LittleEndian(h, EnhancedPacket);
        BinaryPrimitives.WriteUInt32LittleEndian(h[4..], total);
        BinaryPrimitives.WriteUInt32LittleEndian(h[8..], (uint)link);
        BinaryPrimitives.WriteUInt32LittleEndian(h[12..], (uint)((ulong)timestampNs >> 32));
        BinaryPrimitives.WriteUInt32LittleEndian(h[16..], (uint)timestampNs);
        BinaryPrimitives.WriteUInt32LittleEndian(h[20..], (uint)data.Length);
        BinaryPrimitives.WriteUInt32LittleEndian(h[24..], (uint)originalLength);
        Put(h);
        Put(data);
        Span<byte> tail = stackalloc byte[8];
        tail.Clear();
        BinaryPrimitives.WriteUInt32LittleEndian(tail[pad..], total);
        Put(tail[..(pad + 4)]);
    }
}
