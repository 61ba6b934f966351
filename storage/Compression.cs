using System.Buffers.Binary;
using System.IO.Compression;
using K4os.Compression.LZ4;
using ZstdSharp;

namespace SmartOS.Storage;

/// <summary>A compression algorithm of ZFS's `compression` property.</summary>
public enum CompressionAlgorithm : byte
{
    Off = 0,
    Lz4 = 1,
    Gzip = 2,
    Zstd = 3,
}

/// <summary>
/// One value of the `compression` property: the algorithm and, for gzip and zstd, its level (gzip-1..9,
/// zstd-1..19, as zfs names them; "gzip" is gzip-6, "zstd" is zstd-3, "on" is lz4). Function is the
/// number a block pointer records, OpenZFS's enum zio_compress: off 2, gzip-N 4+N, lz4 15, zstd 16 (the
/// zstd level lives in the block's header, as in OpenZFS).
/// </summary>
public readonly record struct CompressionSetting(CompressionAlgorithm Algorithm, int Level)
{
    public const byte FunctionOff = 2, FunctionGzip1 = 5, FunctionGzip9 = 13, FunctionLz4 = 15, FunctionZstd = 16;

    public static readonly CompressionSetting Off = new(CompressionAlgorithm.Off, 0);
    public static readonly CompressionSetting Lz4 = new(CompressionAlgorithm.Lz4, 0);

    public byte Function => Algorithm switch
    {
        CompressionAlgorithm.Lz4 => FunctionLz4,
        CompressionAlgorithm.Gzip => (byte)(FunctionGzip1 - 1 + Level),
        CompressionAlgorithm.Zstd => FunctionZstd,
        _ => FunctionOff,
    };

    public bool IsValid => Algorithm switch
    {
        CompressionAlgorithm.Off or CompressionAlgorithm.Lz4 => Level == 0,
        CompressionAlgorithm.Gzip => Level is >= 1 and <= 9,
        CompressionAlgorithm.Zstd => Level is >= 1 and <= 19,
        _ => false,
    };

    /// <summary>The property's value as `zfs get compression` prints it.</summary>
    public string Name => Algorithm switch
    {
        CompressionAlgorithm.Lz4 => "lz4",
        CompressionAlgorithm.Gzip => Level == 6 ? "gzip" : "gzip-" + Level,
        CompressionAlgorithm.Zstd => Level == 3 ? "zstd" : "zstd-" + Level,
        _ => "off",
    };

    public override string ToString() => Name;

    /// <summary>Parses a `compression` value; false for anything zfs would refuse or this pool cannot do (lzjb, zle, zstd-fast).</summary>
    public static bool TryParse(string value, out CompressionSetting setting)
    {
        setting = Off;
        switch (value)
        {
            case "off": return true;
            case "on": case "lz4": setting = Lz4; return true;
            case "gzip": setting = new(CompressionAlgorithm.Gzip, 6); return true;
            case "zstd": setting = new(CompressionAlgorithm.Zstd, 3); return true;
        }
        CompressionAlgorithm algorithm;
        ReadOnlySpan<char> level;
        if (value.StartsWith("gzip-", StringComparison.Ordinal)) { algorithm = CompressionAlgorithm.Gzip; level = value.AsSpan(5); }
        else if (value.StartsWith("zstd-", StringComparison.Ordinal)) { algorithm = CompressionAlgorithm.Zstd; level = value.AsSpan(5); }
        else return false;
        if (level.Length is 0 or > 2 || level[0] == '0' || !int.TryParse(level, System.Globalization.NumberStyles.None, null, out int n)) return false;
        var parsed = new CompressionSetting(algorithm, n);
        if (!parsed.IsValid) return false;
        setting = parsed;
        return true;
    }
}

/// <summary>
/// Compresses and decompresses single blocks (Pool.cs rule 10). A compressed block is an 8-byte header,
/// the payload's length (u32 LE) and, for zstd, the level it was written with (u32 LE), then the
/// payload, zero-padded to a sector. Every decompression must produce exactly the block's logical
/// size or it fails: a block whose checksum passed but does not decompress is an error, never data.
/// One per pool; the zstd contexts and the gzip stream plumbing are reused, so lz4 and zstd allocate
/// nothing per block (gzip goes through ZLibStream, which allocates its zlib state per block: .NET has
/// no span-level zlib API).
/// </summary>
public sealed class BlockCompressor
{
    public const int HeaderSize = 8;

    private readonly Compressor?[] _zstd = new Compressor?[20];
    private readonly Decompressor _unzstd = new();
    private readonly ArrayStream _stream = new();

    /// <summary>Compresses source into destination (header included); 0 if it does not fit there.</summary>
    public int Compress(CompressionSetting setting, ReadOnlySpan<byte> source, byte[] destination, int limit)
    {
        if (limit <= HeaderSize) return 0;
        var payload = destination.AsSpan(HeaderSize, limit - HeaderSize);
        int n;
        switch (setting.Algorithm)
        {
            case CompressionAlgorithm.Lz4:
                n = LZ4Codec.Encode(source, payload, LZ4Level.L00_FAST);
                break;
            case CompressionAlgorithm.Zstd:
                var zstd = _zstd[setting.Level] ??= new Compressor(setting.Level);
                try { n = zstd.TryWrap(source, payload, out int written) ? written : 0; }
                catch (ZstdException) { n = 0; }
                break;
            case CompressionAlgorithm.Gzip:
                n = Deflate(setting.Level, source, destination, limit);
                break;
            default:
                return 0;
        }
        if (n <= 0) return 0;
        BinaryPrimitives.WriteInt32LittleEndian(destination, n);
        BinaryPrimitives.WriteInt32LittleEndian(destination.AsSpan(4), setting.Algorithm == CompressionAlgorithm.Zstd ? setting.Level : 0);
        return HeaderSize + n;
    }

    private int Deflate(int level, ReadOnlySpan<byte> source, byte[] destination, int limit)
    {
        _stream.Reset(destination, HeaderSize, limit - HeaderSize);
        using (var zlib = new ZLibStream(_stream, new ZLibCompressionOptions { CompressionLevel = level }, leaveOpen: true))
            zlib.Write(source);
        return _stream.Overflowed ? 0 : _stream.Position32;
    }

    /// <summary>Decompresses a block written with function into logical (exactly its logical size); false if it cannot.</summary>
    public bool Decompress(byte function, byte[] physical, int physicalSize, Span<byte> logical)
    {
        if (physicalSize < HeaderSize) return false;
        int n = BinaryPrimitives.ReadInt32LittleEndian(physical);
        if (n <= 0 || n > physicalSize - HeaderSize) return false;
        var payload = physical.AsSpan(HeaderSize, n);
        switch (function)
        {
            case CompressionSetting.FunctionLz4:
                return LZ4Codec.Decode(payload, logical) == logical.Length;
            case CompressionSetting.FunctionZstd:
                try { return _unzstd.TryUnwrap(payload, logical, out int written) && written == logical.Length; }
                catch (ZstdException) { return false; }
            case >= CompressionSetting.FunctionGzip1 and <= CompressionSetting.FunctionGzip9:
                return Inflate(physical, n, logical);
            default:
                return false;
        }
    }

    private bool Inflate(byte[] physical, int n, Span<byte> logical)
    {
        _stream.Reset(physical, HeaderSize, n);
        try
        {
            using var zlib = new ZLibStream(_stream, CompressionMode.Decompress, leaveOpen: true);
            int done = 0;
            while (done < logical.Length)
            {
                int got = zlib.Read(logical[done..]);
                if (got == 0) return false;
                done += got;
            }
            Span<byte> extra = stackalloc byte[1];
            return zlib.Read(extra) == 0;
        }
        catch (InvalidDataException)
        {
            return false;
        }
    }

    /// <summary>A stream over part of an array, reused for every gzip block; writing past its end sets Overflowed.</summary>
    private sealed class ArrayStream : Stream
    {
        private byte[] _array = [];
        private int _start, _length, _position;

        public bool Overflowed { get; private set; }

        public int Position32 => _position;

        public void Reset(byte[] array, int start, int length)
        {
            _array = array; _start = start; _length = length; _position = 0; Overflowed = false;
        }

        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => true;
        public override long Length => _length;
        public override long Position { get => _position; set => throw new NotSupportedException(); }

        public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

        public override int Read(Span<byte> buffer)
        {
            int n = Math.Min(buffer.Length, _length - _position);
            _array.AsSpan(_start + _position, n).CopyTo(buffer);
            _position += n;
            return n;
        }

        public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

        public override void Write(ReadOnlySpan<byte> buffer)
        {
            if (Overflowed || buffer.Length > _length - _position) { Overflowed = true; return; }
            buffer.CopyTo(_array.AsSpan(_start + _position));
            _position += buffer.Length;
        }

        public override void Flush() { }
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
    }
}
