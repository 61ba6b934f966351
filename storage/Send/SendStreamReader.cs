using System.Diagnostics.CodeAnalysis;
using static SmartOS.Storage.Send.RecordLayout;

namespace SmartOS.Storage.Send;

/// <summary>Why a stream was refused. The message is zfs receive's, as zfs-fuse prints it.</summary>
public enum ReceiveErrorKind
{
    /// <summary>The stream ended before its BEGIN record was whole.</summary>
    ReadFailed,
    /// <summary>The first record is not a BEGIN with DMU_BACKUP_MAGIC.</summary>
    BadMagic,
    /// <summary>BEGIN names feature flags or a header type this receiver does not implement.</summary>
    UnsupportedFeature,
    /// <summary>A record is malformed, of an unknown type, or the stream ends before its END.</summary>
    InvalidStream,
    /// <summary>END's checksum is not the fletcher-4 of the bytes before it.</summary>
    ChecksumMismatch,
}

/// <summary>Message is zfs receive's words; Detail, when set, says which record was wrong (zfs
/// receive prints nothing more specific than "invalid backup stream").</summary>
public sealed record ReceiveError(ReceiveErrorKind Kind, string Message, string? Detail = null)
{
    public override string ToString() => Message;
}

/// <summary>
/// Reads and validates a send stream record by record (restore_stream and restore_read in
/// dmu_send.c of pool version 23, with libzfs's zfs_receive checks of the BEGIN record).
///
/// Rules:
///  1. The first record must be a BEGIN carrying DMU_BACKUP_MAGIC; anything else is "bad magic
///     number", checked before anything else as libzfs does.
///  2. Every byte read, headers and payloads, joins a running fletcher-4; END must carry the value
///     it had before END's own header was read (the sender sums everything it wrote before END).
///     The sum restarts after each END, so each substream of a compound (-R) stream checks itself.
///  3. Each record's fields are checked against what the receiving DMU would refuse (object and
///     bonus types in range, block size a multiple of 512 up to 128 KiB, bonus at most 320 bytes,
///     write length within a block): such a record, an unknown record type, or a stream cut short
///     after BEGIN is "invalid backup stream".
///  4. The only feature flag read is DMU_BACKUP_FEATURE_RESUMING (a stream made by zfs send -t,
///     Dsl.SendResume.cs); any other is "stream has unsupported feature". <see cref="CutShort"/>
///     tells a stream that ended in the middle of a record (what receive -s keeps) from a bad one.
///  5. A failure is a result (<see cref="Error"/>), never an exception, and ends the reading.
/// </summary>
public sealed class SendStreamReader
{
    private const string CannotReceive = "cannot receive";
    private readonly Stream _input;
    private readonly byte[] _header = new byte[SendFormat.RecordSize];
    private StreamChecksum _checksum;
    private bool _inSubstream;
    private bool _failed;

    public SendStreamReader(Stream input) => _input = input;

    /// <summary>The BEGIN of the substream being read (null before the first).</summary>
    public BeginRecord? Begin { get; private set; }

    /// <summary>Set when <see cref="TryRead"/> returned false because the stream is bad.</summary>
    public ReceiveError? Error { get; private set; }

    /// <summary>Whether the input ended in the middle of a record (a stream cut short).</summary>
    public bool CutShort { get; private set; }

    /// <summary>Bytes consumed so far.</summary>
    public long Position { get; private set; }

    /// <summary>
    /// The next record, or false at the end of the input (Error null: a clean end right after an
    /// END) or on a bad stream (Error says why).
    /// </summary>
    public bool TryRead([NotNullWhen(true)] out SendRecord? record)
    {
        record = null;
        if (_failed) return false;
        BlockChecksum before = _checksum.Value;
        int got = Fill(_header);
        if (got == 0 && !_inSubstream && Begin is not null) return false;
        if (got < _header.Length)
            return Fail(Begin is null ? ReceiveErrorKind.ReadFailed : ReceiveErrorKind.InvalidStream,
                Begin is null ? "failed to read from stream" : "invalid backup stream");
        var type = (SendRecordType)U32(_header, 0);
        uint payloadLength = U32(_header, 4);
        if (!_inSubstream)
        {
            if (type == SendRecordType.End && Begin is not null)
            {
                // The closing END of a compound stream: a bare record after the last substream.
                _checksum.Add(_header);
                record = new EndRecord(BlockChecksum.ReadFrom(_header.AsSpan(8)), U64(_header, 40));
                return true;
            }
            if (type == (SendRecordType)System.Buffers.Binary.BinaryPrimitives.ReverseEndianness((uint)SendRecordType.Begin)
                && U64(_header, 8) == System.Buffers.Binary.BinaryPrimitives.ReverseEndianness(SendFormat.Magic))
                return Fail(ReceiveErrorKind.UnsupportedFeature, "stream is from a big-endian host (byte-swapped); only little-endian streams are read here", CannotReceive);
            if (type != SendRecordType.Begin || U64(_header, 8) != SendFormat.Magic)
                return Fail(ReceiveErrorKind.BadMagic, "invalid stream (bad magic number)", CannotReceive);
        }
        _checksum.Add(_header);
        switch (type)
        {
            case SendRecordType.Begin:
                if (_inSubstream) return Invalid();
                return ReadBegin(payloadLength, out record);
            case SendRecordType.Object:
                return ReadObject(out record);
            case SendRecordType.FreeObjects:
                record = new FreeObjectsRecord(U64(_header, 8), U64(_header, 16), U64(_header, 24));
                return true;
            case SendRecordType.Write:
                return ReadWrite(out record);
            case SendRecordType.Free:
            {
                ulong offset = U64(_header, 16), length = U64(_header, 24);
                if (length != FreeRecord.ToEnd && offset + length < offset) return Invalid();
                record = new FreeRecord(U64(_header, 8), offset, length, U64(_header, 32));
                return true;
            }
            case SendRecordType.End:
            {
                var end = new EndRecord(BlockChecksum.ReadFrom(_header.AsSpan(8)), U64(_header, 40));
                if (end.Checksum != before)
                    return Fail(ReceiveErrorKind.ChecksumMismatch, "invalid stream (checksum mismatch)");
                _inSubstream = false;
                _checksum = default;
                record = end;
                return true;
            }
            default:
                // WRITE_BYREF needs the dedup feature, refused at BEGIN; SPILL and anything
                // above it do not exist at this stream version.
                return Invalid();
        }
    }

    private bool ReadBegin(uint payloadLength, out SendRecord? record)
    {
        record = null;
        ulong versionInfo = U64(_header, 16);
        uint headerType = (uint)(versionInfo & 3);
        ulong features = versionInfo >> 2;
        if (headerType is not (SendFormat.HeaderTypeSubstream or SendFormat.HeaderTypeCompound))
            return Fail(ReceiveErrorKind.UnsupportedFeature, $"stream has unsupported header type {headerType}", CannotReceive);
        if ((features & ~SendFormat.FeatureResuming) != 0)
            return Fail(ReceiveErrorKind.UnsupportedFeature,
                $"stream has unsupported feature, feature flags = {features:x}", CannotReceive);
        var begin = new BeginRecord(versionInfo, U64(_header, 24), U32(_header, 32), U32(_header, 36),
            U64(_header, 40), U64(_header, 48), Name(_header.AsSpan(56, SendFormat.MaxNameLength)), []);
        if (payloadLength > 0)
        {
            if (payloadLength > 16 * 1024 * 1024) return Invalid(begin);
            byte[] payload = new byte[payloadLength];
            if (Fill(payload) < payload.Length) return Invalid(begin);
            _checksum.Add(payload);
            begin = begin with { Payload = payload };
        }
        Begin = begin;
        _inSubstream = true;
        record = begin;
        return true;
    }

    private bool ReadObject(out SendRecord? record)
    {
        record = null;
        uint objectType = U32(_header, 16), bonusType = U32(_header, 20), blockSize = U32(_header, 24), bonusLength = U32(_header, 28);
        byte checksumType = _header[32], compress = _header[33];
        if (objectType == 0 || objectType >= SendFormat.ObjectTypeCount || bonusType >= SendFormat.ObjectTypeCount
            || checksumType >= SendFormat.ChecksumFunctions || compress >= SendFormat.CompressFunctions
            || blockSize % SendFormat.MinBlockSize != 0 || blockSize < SendFormat.MinBlockSize
            || blockSize > SendFormat.MaxBlockSize || bonusLength > SendFormat.MaxBonusLength)
            return Invalid();
        byte[] padded = new byte[(bonusLength + 7) & ~7u];
        if (Fill(padded) < padded.Length) return Invalid();
        _checksum.Add(padded);
        record = new ObjectRecord(U64(_header, 8), (DmuObjectType)objectType, (DmuObjectType)bonusType, blockSize,
            padded.AsSpan(0, (int)bonusLength).ToArray(), checksumType, compress, U64(_header, 40));
        return true;
    }

    private bool ReadWrite(out SendRecord? record)
    {
        record = null;
        uint objectType = U32(_header, 16);
        ulong offset = U64(_header, 24), length = U64(_header, 32);
        if (objectType >= SendFormat.ObjectTypeCount || length == 0 || length > SendFormat.MaxBlockSize
            || offset + length < offset)
            return Invalid();
        byte[] data = new byte[length];
        if (Fill(data) < data.Length) return Invalid();
        _checksum.Add(data);
        record = new WriteRecord(U64(_header, 8), (DmuObjectType)objectType, offset, data, U64(_header, 40),
            _header[48], _header[49], BlockChecksum.ReadFrom(_header.AsSpan(56)), U64(_header, 88));
        return true;
    }

    private int Fill(Span<byte> buffer)
    {
        int total = 0;
        while (total < buffer.Length)
        {
            int n = _input.Read(buffer[total..]);
            if (n == 0) break;
            total += n;
        }
        Position += total;
        if (total < buffer.Length) CutShort = true;
        return total;
    }

    private bool Invalid(BeginRecord? begin = null)
    {
        Begin ??= begin;
        return Fail(ReceiveErrorKind.InvalidStream, "invalid backup stream");
    }

    private bool Fail(ReceiveErrorKind kind, string detail, string? prefix = null)
    {
        prefix ??= Begin is null ? CannotReceive
            : Begin.IsIncremental ? "cannot receive incremental stream" : "cannot receive new filesystem stream";
        Error = new ReceiveError(kind, $"{prefix}: {detail}");
        _failed = true;
        return false;
    }
}
