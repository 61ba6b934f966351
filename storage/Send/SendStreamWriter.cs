using System.Text;
using static SmartOS.Storage.Send.RecordLayout;

namespace SmartOS.Storage.Send;

/// <summary>
/// Writes send-stream records at the pool-version-23 layout (see <see cref="SendRecord"/>), keeping
/// the running fletcher-4 that END carries. <see cref="WriteEnd"/> writes the checksum of everything
/// written since the substream's BEGIN and restarts the sum, as dump_bytes and dmu_sendbackup do.
/// </summary>
public sealed class SendStreamWriter
{
    private readonly Stream _output;
    private readonly byte[] _header = new byte[SendFormat.RecordSize];
    private StreamChecksum _checksum;

    public SendStreamWriter(Stream output) => _output = output;

    public void Write(SendRecord record)
    {
        switch (record)
        {
            case BeginRecord begin: WriteBegin(begin); break;
            case ObjectRecord o: WriteObject(o); break;
            case FreeObjectsRecord f:
                WriteHeader(_header, SendRecordType.FreeObjects, 0);
                U64(_header, 8, f.FirstObject); U64(_header, 16, f.Count); U64(_header, 24, f.ToGuid);
                Emit(_header);
                break;
            case WriteRecord w: WriteWrite(w); break;
            case FreeRecord f:
                WriteHeader(_header, SendRecordType.Free, 0);
                U64(_header, 8, f.Object); U64(_header, 16, f.Offset); U64(_header, 24, f.Length); U64(_header, 32, f.ToGuid);
                Emit(_header);
                break;
            case EndRecord e: WriteEnd(e.ToGuid); break;
            default: throw new ArgumentException($"cannot write a {record.Type} record", nameof(record));
        }
    }

    /// <summary>END with the checksum of the substream so far; the sum restarts for the next one.</summary>
    public void WriteEnd(ulong toGuid)
    {
        BlockChecksum sum = _checksum.Value;
        WriteHeader(_header, SendRecordType.End, 0);
        sum.WriteTo(_header.AsSpan(8));
        U64(_header, 40, toGuid);
        _output.Write(_header);
        _checksum = default;
    }

    private void WriteBegin(BeginRecord b)
    {
        byte[] name = Encoding.UTF8.GetBytes(b.ToName);
        if (name.Length >= SendFormat.MaxNameLength)
            throw new ArgumentException($"snapshot name '{b.ToName}' is too long", nameof(b));
        WriteHeader(_header, SendRecordType.Begin, (uint)b.Payload.Length);
        U64(_header, 8, SendFormat.Magic);
        U64(_header, 16, b.VersionInfo);
        U64(_header, 24, b.CreationTime);
        U32(_header, 32, b.ObjsetType);
        U32(_header, 36, b.Flags);
        U64(_header, 40, b.ToGuid);
        U64(_header, 48, b.FromGuid);
        name.CopyTo(_header.AsSpan(56));
        Emit(_header);
        Emit(b.Payload);
    }

    private void WriteObject(ObjectRecord o)
    {
        if (o.Bonus.Length > SendFormat.MaxBonusLength)
            throw new ArgumentException($"bonus of object {o.Object} is {o.Bonus.Length} bytes", nameof(o));
        WriteHeader(_header, SendRecordType.Object, 0);
        U64(_header, 8, o.Object);
        U32(_header, 16, (uint)o.ObjectType);
        U32(_header, 20, (uint)o.BonusType);
        U32(_header, 24, o.BlockSize);
        U32(_header, 28, (uint)o.Bonus.Length);
        _header[32] = o.ChecksumType;
        _header[33] = o.Compress;
        U64(_header, 40, o.ToGuid);
        Emit(_header);
        // Bonus and padding are summed as one run: fletcher-4 works in 4-byte words, and a bonus
        // of 277 bytes summed on its own would drop its last partial word.
        byte[] padded = new byte[(o.Bonus.Length + 7) & ~7];
        o.Bonus.CopyTo(padded, 0);
        Emit(padded);
    }

    private void WriteWrite(WriteRecord w)
    {
        WriteHeader(_header, SendRecordType.Write, 0);
        U64(_header, 8, w.Object);
        U32(_header, 16, (uint)w.ObjectType);
        U64(_header, 24, w.Offset);
        U64(_header, 32, (ulong)w.Data.Length);
        U64(_header, 40, w.ToGuid);
        _header[48] = w.ChecksumType;
        _header[49] = w.ChecksumFlags;
        w.Key.WriteTo(_header.AsSpan(56));
        U64(_header, 88, w.KeyProps);
        Emit(_header);
        Emit(w.Data);
    }

    private void Emit(ReadOnlySpan<byte> bytes)
    {
        _checksum.Add(bytes);
        _output.Write(bytes);
    }
}
