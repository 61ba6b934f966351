using System.Buffers.Binary;
using System.Text;
using SmartOS.Kernel;

namespace SmartOS.Cli.Snoop;

/// <summary>One frame of a capture file. Frame is valid until the reader's next TryRead.</summary>
public readonly record struct CaptureRecord(long TimestampNs, int Link, int OriginalLength, ReadOnlyMemory<byte> Frame);

/// <summary>
/// Reads pcap, pcapng and RFC 1761 snoop files, found by their magic (CaptureFile.cs rules 2-4):
/// <code>
///   using var r = CaptureFileReader.Open(path, out string error);   // null: error says why
///   while (r.TryRead(out var record)) ...                             // false: the end, or Error
/// </code>
/// Nothing in a file makes it throw; messages use illumos snoop's wording where it has one.
/// </summary>
public sealed class CaptureFileReader : IDisposable
{
    /// <summary>The largest frame accepted: libpcap's MAXIMUM_SNAPLEN. A larger length is an error.</summary>
    public const int MaxFrame = 262144;
    /// <summary>The largest pcapng block read (a frame, its header and options).</summary>
    private const int MaxBlock = MaxFrame + 4096;
    private const ushort LinkTypeEthernet = 1;
    private const uint DlEther = 4;   // illumos <sys/dlpi.h> DL_ETHER, the MAC type of snoop files

    private readonly Stream _stream;
    private readonly string _path;
    private byte[] _buf = new byte[2048];
    private bool _bigEndian;
    private bool _nanoseconds;        // pcap: the fraction counts nanoseconds
    private long _packets;            // records read, for messages ("packet 3")
    private long _lastTime;
    private int _sectionBase;         // pcapng: index in _interfaces of this section's interface 0
    private readonly List<Interface> _interfaces = [];
    private readonly List<string> _names = [];

    /// <summary>A pcapng interface: its link type, snaplen and timestamp unit (Units per second).</summary>
    private readonly record struct Interface(ushort LinkType, uint Snaplen, ulong Units);

    private CaptureFileReader(Stream stream, string path, CaptureFormat format)
    {
        _stream = stream;
        _path = path;
        Format = format;
    }

    public CaptureFormat Format { get; }

    /// <summary>Why reading stopped early; null while the file is well formed.</summary>
    public string? Error { get; private set; }

    /// <summary>The captured links, by a record's Link: pcapng's if_name ("" where an interface has
    /// none); one unnamed link for pcap and snoop files.</summary>
    public IReadOnlyList<string> LinkNames => _names;

    /// <summary>Opens <paramref name="path"/> and reads its file header; null with the reason if the
    /// file cannot be read or is no capture file snoop reads.</summary>
    public static CaptureFileReader? Open(string path, out string error)
    {
        FileStream stream;
        try
        {
            if (Directory.Exists(path)) throw new UnauthorizedAccessException("Is a directory");
            stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite, bufferSize: 1 << 16);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            error = $"couldn't open {path}: {Strerror(e)}";   // illumos snoop's cap_open_read
            return null;
        }
        return Open(stream, path, out error);
    }

    /// <summary>
    /// Reads a capture from <paramref name="stream"/> (snoop -i -: standard input), which need not
    /// seek: the first bytes that tell the format apart are read once and handed back to the
    /// reader. The reader owns the stream unless <paramref name="leaveOpen"/>.
    /// <paramref name="name"/> is what messages call it.
    /// </summary>
    public static CaptureFileReader? Open(Stream stream, string name, out string error, bool leaveOpen = false)
    {
        var magic = new byte[8];
        int n;
        try { n = stream.ReadAtLeast(magic, magic.Length, throwOnEndOfStream: false); }
        catch (IOException e)
        {
            if (!leaveOpen) stream.Dispose();
            error = $"couldn't open {name}: {e.Message}";
            return null;
        }
        CaptureFormat? format = Detect(magic.AsSpan(0, n));
        if (format is not { } f)
        {
            if (!leaveOpen) stream.Dispose();
            error = $"not a capture file: {name}";
            return null;
        }
        var reader = new CaptureFileReader(new Prefixed(magic.AsMemory(0, n), stream, leaveOpen), name, f);
        if (!reader.ReadFileHeader())
        {
            error = reader.Error!;
            reader.Dispose();
            return null;
        }
        error = "";
        return reader;
    }

    private static CaptureFormat? Detect(ReadOnlySpan<byte> magic)
    {
        if (magic.Length >= 8 && magic.SequenceEqual("snoop\0\0\0"u8)) return CaptureFormat.Snoop;
        if (magic.Length < 4) return null;
        uint le = BinaryPrimitives.ReadUInt32LittleEndian(magic);
        if (le == PcapngWriter.SectionHeader) return CaptureFormat.Pcapng;
        uint be = BinaryPrimitives.ReadUInt32BigEndian(magic);
        return le is 0xA1B2C3D4 or 0xA1B23C4D || be is 0xA1B2C3D4 or 0xA1B23C4D ? CaptureFormat.Pcap : null;
    }

    /// <summary>The C library's words for an I/O failure, as snoop's %m prints them.</summary>
    internal static string Strerror(Exception e) => e switch
    {
        FileNotFoundException or DirectoryNotFoundException => "No such file or directory",
        UnauthorizedAccessException { Message: "Is a directory" } => "Is a directory",
        UnauthorizedAccessException => "Permission denied",
        _ => e.Message,
    };

    /// <summary>Reads the next frame; false at the end of the file or, with Error set, at a bad record.</summary>
    public bool TryRead(out CaptureRecord record)
    {
        record = default;
        if (Error != null) return false;
        return Format switch
        {
            CaptureFormat.Pcap => ReadPcapRecord(out record),
            CaptureFormat.Pcapng => ReadPcapngRecord(out record),
            _ => ReadSnoopRecord(out record),
        };
    }

    public void Dispose() => _stream.Dispose();

    private bool ReadFileHeader() => Format switch
    {
        CaptureFormat.Pcap => ReadPcapHeader(),
        CaptureFormat.Pcapng => true,   // the Section Header Block is read as the first block
        _ => ReadSnoopHeader(),
    };

    // ---- shared ------------------------------------------------------------------------------

    private bool Fail(string message)
    {
        Error = $"{_path}: {message}";
        return false;
    }

    /// <summary>Reads exactly <paramref name="count"/> bytes into _buf at 0; the number read when the file ends first.</summary>
    private int Fill(int count)
    {
        if (_buf.Length < count) _buf = new byte[Math.Max(count, _buf.Length * 2)];
        return _stream.ReadAtLeast(_buf.AsSpan(0, count), count, throwOnEndOfStream: false);
    }

    /// <summary>Fills a record's header: true when whole; false at the end of the file (nothing
    /// read: a clean end) or, with Error set, when the file ends inside the header.</summary>
    private bool FillHeader(int count)
    {
        int n = Fill(count);
        if (n == count) return true;
        return n != 0 && Fail($"truncated after packet {_packets} ({n} bytes of a {count}-byte header)");
    }

    private uint U32(int at) => _bigEndian ? BinaryPrimitives.ReadUInt32BigEndian(_buf.AsSpan(at)) : BinaryPrimitives.ReadUInt32LittleEndian(_buf.AsSpan(at));
    private ushort U16(int at) => _bigEndian ? BinaryPrimitives.ReadUInt16BigEndian(_buf.AsSpan(at)) : BinaryPrimitives.ReadUInt16LittleEndian(_buf.AsSpan(at));

    private bool Emit(out CaptureRecord record, long time, int link, uint original, int offset, int length)
    {
        _packets++;
        _lastTime = time;
        record = new CaptureRecord(time, link, (int)Math.Min(original, int.MaxValue), _buf.AsMemory(offset, length));
        return true;
    }

    private bool CheckLength(uint captured)
        => captured <= MaxFrame || Fail($"packet {_packets + 1}: captured length {captured} is larger than {MaxFrame} bytes");

    // ---- pcap ----------------------------------------------------------------------------------

    private bool ReadPcapHeader()
    {
        if (Fill(24) < 24) return Fail("truncated pcap file header");
        uint magic = BinaryPrimitives.ReadUInt32LittleEndian(_buf);
        _bigEndian = magic is not (0xA1B2C3D4 or 0xA1B23C4D);
        _nanoseconds = U32(0) == 0xA1B23C4D;
        ushort major = U16(4), minor = U16(6);
        if (major != 2) return Fail($"pcap version {major}.{minor} is not supported");
        uint linkType = U32(20) & 0xFFFF;   // the upper bits say whether frames carry an FCS
        if (linkType != LinkTypeEthernet) return Fail($"link type {linkType} is not supported (snoop reads Ethernet captures)");
        _names.Add("");
        return true;
    }

    private bool ReadPcapRecord(out CaptureRecord record)
    {
        record = default;
        if (!FillHeader(16)) return false;
        uint seconds = U32(0), fraction = U32(4), captured = U32(8), original = U32(12);
        if (!CheckLength(captured)) return false;
        int n = Fill((int)captured);
        if (n < captured) return Fail($"truncated packet {_packets + 1} ({n} of its {captured} bytes)");
        long time = seconds * Time.Second + (_nanoseconds ? fraction : fraction * Time.Microsecond);
        return Emit(out record, time, 0, original, 0, (int)captured);
    }

    // ---- snoop (RFC 1761) ----------------------------------------------------------------------

    private bool ReadSnoopHeader()
    {
        _bigEndian = true;
        if (Fill(12) < 12) return Fail("truncated snoop file header");
        uint version = U32(8);
        uint macType = DlEther;   // version 1 files are Ethernet (illumos cap_open_read)
        if (version == 2)
        {
            if (Fill(4) < 4) return Fail("truncated snoop file header");
            macType = U32(0);
        }
        else if (version != 1)
        {
            Error = $"capture file: {_path}: Version {version} unrecognized";
            return false;
        }
        if (macType != DlEther)
        {
            Error = $"{_path}: Mac Type = {macType:x} is not supported";
            return false;
        }
        _names.Add("");
        return true;
    }

    private bool ReadSnoopRecord(out CaptureRecord record)
    {
        record = default;
        if (!FillHeader(24)) return false;
        uint original = U32(0), captured = U32(4), recordLength = U32(8), seconds = U32(16), microseconds = U32(20);
        if (!CheckLength(captured)) return false;
        // The record is the header, the captured bytes and padding to a 4-byte boundary.
        if (recordLength < 24 + captured || recordLength > 24 + captured + 64)
            return Fail($"packet {_packets + 1}: record length {recordLength} does not fit its {captured} captured bytes");
        int total = (int)recordLength - 24;
        int n = Fill(total);
        if (n < total) return Fail($"truncated packet {_packets + 1} ({n} of its {total} bytes)");
        long time = seconds * Time.Second + microseconds * Time.Microsecond;
        return Emit(out record, time, 0, original, 0, (int)captured);
    }

    // ---- pcapng --------------------------------------------------------------------------------

    private bool ReadPcapngRecord(out CaptureRecord record)
    {
        record = default;
        while (true)
        {
            if (!FillHeader(8)) return false;
            if (BinaryPrimitives.ReadUInt32LittleEndian(_buf) == PcapngWriter.SectionHeader)
            {
                // A section names its byte order in the 4 bytes after type and length.
                uint rawLength = BinaryPrimitives.ReadUInt32LittleEndian(_buf.AsSpan(4));
                if (Fill(4) < 4) return Fail("truncated section header block");
                uint bom = BinaryPrimitives.ReadUInt32LittleEndian(_buf);
                if (bom != PcapngWriter.ByteOrderMagic && bom != BinaryPrimitives.ReverseEndianness(PcapngWriter.ByteOrderMagic))
                    return Fail("section header block has no byte-order magic");
                _bigEndian = bom != PcapngWriter.ByteOrderMagic;
                uint length = _bigEndian ? BinaryPrimitives.ReverseEndianness(rawLength) : rawLength;
                if (length < 28 || length % 4 != 0 || length > MaxBlock) return Fail($"section header block length {length} is not valid");
                if (!ReadBlockRest(length, 12)) return false;
                ushort major = U16(0), minor = U16(2);
                if (major != 1) return Fail($"pcapng version {major}.{minor} is not supported");
                _sectionBase = _interfaces.Count;
                continue;
            }
            uint type = U32(0);
            uint blockLength = U32(4);
            if (blockLength < 12 || blockLength % 4 != 0 || blockLength > MaxBlock)
                return Fail($"block of type {type} after packet {_packets} has length {blockLength}, which is not valid");
            if (!ReadBlockRest(blockLength, 8)) return false;
            int body = (int)blockLength - 12;   // _buf holds the body at 0
            switch (type)
            {
                case PcapngWriter.InterfaceDescription:
                    if (!ReadInterface(body)) return false;
                    continue;
                case PcapngWriter.EnhancedPacket:
                    {
                        if (body < 20) return Fail($"packet {_packets + 1}: enhanced packet block is too short");
                        if (!FindInterface(U32(0), out var iface, out int link)) return false;
                        uint captured = U32(12);
                        if (captured > body - 20) return Fail($"packet {_packets + 1}: captured length {captured} is larger than its block");
                        ulong ts = (ulong)U32(4) << 32 | U32(8);
                        return Emit(out record, ToNs(ts, iface), link, U32(16), 20, (int)captured);
                    }
                case PcapngWriter.ObsoletePacket:
                    {
                        if (body < 20) return Fail($"packet {_packets + 1}: packet block is too short");
                        if (!FindInterface(U16(0), out var iface, out int link)) return false;
                        uint captured = U32(12);
                        if (captured > body - 20) return Fail($"packet {_packets + 1}: captured length {captured} is larger than its block");
                        ulong ts = (ulong)U32(4) << 32 | U32(8);
                        return Emit(out record, ToNs(ts, iface), link, U32(16), 20, (int)captured);
                    }
                case PcapngWriter.SimplePacket:
                    {
                        // No interface field (it is the section's first) and no time: the previous frame's.
                        if (body < 4) return Fail($"packet {_packets + 1}: simple packet block is too short");
                        if (!FindInterface(0, out var iface, out int link)) return false;
                        uint original = U32(0);
                        long captured = Math.Min(original, body - 4);
                        if (iface.Snaplen != 0) captured = Math.Min(captured, iface.Snaplen);
                        return Emit(out record, _lastTime, link, original, 4, (int)captured);
                    }
                default:
                    continue;   // name resolution, statistics, custom blocks ...: nothing snoop shows
            }
        }
    }

    /// <summary>Reads the rest of a block whose first <paramref name="have"/> bytes are read, leaving
    /// its body at _buf[0..] and checking the trailing copy of its length.</summary>
    private bool ReadBlockRest(uint length, int have)
    {
        int rest = (int)length - have;
        int n = Fill(rest);
        if (n < rest) return Fail($"truncated block after packet {_packets} ({have + n} of its {length} bytes)");
        return U32(rest - 4) == length || Fail($"block after packet {_packets}: its two lengths differ");
    }

    private bool ReadInterface(int body)
    {
        if (body < 8) return Fail("interface description block is too short");
        ushort linkType = U16(0);
        uint snaplen = U32(4);
        string name = "";
        ulong units = 1_000_000;   // if_tsresol's default: microseconds
        int at = 8;
        while (at + 4 <= body)
        {
            ushort code = U16(at), length = U16(at + 2);
            if (code == PcapngWriter.OptEnd) break;
            if (at + 4 + length > body) return Fail($"interface {_interfaces.Count - _sectionBase}: option {code} runs past its block");
            var value = _buf.AsSpan(at + 4, length);
            if (code == PcapngWriter.IfName) name = Encoding.UTF8.GetString(value).TrimEnd('\0');   // some writers count a NUL
            else if (code == PcapngWriter.IfTsresol && length == 1)
            {
                int exponent = value[0] & 0x7F;
                bool binary = (value[0] & 0x80) != 0;
                if (binary ? exponent > 63 : exponent > 19)
                    return Fail($"interface {_interfaces.Count - _sectionBase}: timestamp resolution {value[0]:x2} is not supported");
                units = binary ? 1UL << exponent : Pow10(exponent);
            }
            at += 4 + length + CaptureFileWriter.Pad4(length);
        }
        _interfaces.Add(new Interface(linkType, snaplen, units));
        _names.Add(name);
        return true;
    }

    private static ulong Pow10(int n)
    {
        ulong v = 1;
        for (int i = 0; i < n; i++) v *= 10;
        return v;
    }

    private bool FindInterface(uint id, out Interface iface, out int link)
    {
        iface = default;
        link = (int)Math.Min(_sectionBase + (long)id, int.MaxValue);
        if (id >= _interfaces.Count - _sectionBase)
            return Fail($"packet {_packets + 1}: interface {id} has no interface description block");
        iface = _interfaces[link];
        if (iface.LinkType != LinkTypeEthernet)
            return Fail($"packet {_packets + 1}: interface {id} has link type {iface.LinkType}, which is not supported (snoop reads Ethernet captures)");
        return true;
    }

    /// <summary>A timestamp in the interface's units (10^-n or 2^-n s) as nanoseconds, saturated.</summary>
    private static long ToNs(ulong ts, Interface iface)
    {
        UInt128 ns = (UInt128)ts * (ulong)Time.Second / iface.Units;
        return ns > long.MaxValue ? long.MaxValue : (long)ns;
    }

    /// <summary>A read-only stream that gives <c>prefix</c> first, then the rest of <c>inner</c>
    /// (closed with it unless <c>leaveOpen</c>).</summary>
    private sealed class Prefixed(ReadOnlyMemory<byte> prefix, Stream inner, bool leaveOpen) : InputOnlyStream
    {
        private ReadOnlyMemory<byte> _prefix = prefix;

        public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

        public override int Read(Span<byte> buffer)
        {
            if (_prefix.IsEmpty) return inner.Read(buffer);
            int n = Math.Min(buffer.Length, _prefix.Length);
            _prefix.Span[..n].CopyTo(buffer);
            _prefix = _prefix[n..];
            return n;
        }


        protected override void Dispose(bool disposing)
        {
            if (disposing && !leaveOpen) inner.Dispose();
            base.Dispose(disposing);
        }
    }
}
