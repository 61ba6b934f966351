using System.Buffers.Binary;
using System.Text;

namespace SmartOS.Storage.Send;

/// <summary>
/// The records of a ZFS send stream (dmu_replay_record_t in zfs_ioctl.h), at the stream version
/// that pool version 23 writes (zfs-fuse 0.7.0, OpenSolaris build 130's DMU). Every record is a
/// fixed 312-byte header: a 32-bit record type, a 32-bit payload length, then a union whose largest
/// member (BEGIN, with its 256-byte snapshot name) sets the size. Some records are followed by data:
/// OBJECT by its bonus buffer padded to 8 bytes, WRITE by drr_length bytes of block data, and a
/// BEGIN of a compound stream by drr_payloadlen bytes (a packed nvlist). At this version
/// drr_payloadlen is zero on OBJECT and WRITE: their data lengths come from their own fields.
/// All fields are little-endian here (the sender's native order); a byte-swapped magic marks a
/// big-endian sender, whose stream zfs receive would swap: this codec refuses it, saying so.
/// </summary>
public enum SendRecordType : uint
{
    Begin = 0,
    Object = 1,
    FreeObjects = 2,
    Write = 3,
    Free = 4,
    End = 5,
    WriteByRef = 6,
    Spill = 7,
}

/// <summary>The record header layout: offsets inside the 312-byte dmu_replay_record_t.</summary>
public static class SendFormat
{
    public const int RecordSize = 312;
    /// <summary>DMU_BACKUP_MAGIC.</summary>
    public const ulong Magic = 0x2F5BACBAC;
    /// <summary>DMU_SUBSTREAM in the low two bits of drr_versioninfo: a single dataset's stream.</summary>
    public const uint HeaderTypeSubstream = 1;
    /// <summary>DMU_COMPOUNDSTREAM: a -R stream's outer BEGIN, with an nvlist payload.</summary>
    public const uint HeaderTypeCompound = 2;
    /// <summary>DMU_BACKUP_FEATURE_DEDUP: WRITE_BYREF records may follow. Not written here.</summary>
    public const ulong FeatureDedup = 1;
    /// <summary>DMU_BACKUP_FEATURE_DEDUPPROPS.</summary>
    public const ulong FeatureDedupProps = 2;
    /// <summary>DMU_BACKUP_FEATURE_RESUMING: a resumed stream (zfs send -t), its BEGIN carrying an
    /// XDR nvlist of resume_object and resume_offset.</summary>
    public const ulong FeatureResuming = 1UL << 21;
    /// <summary>drr_flags bit DRR_FLAG_CLONE: the stream's base is the origin of a clone.</summary>
    public const uint FlagClone = 1;
    /// <summary>MAXNAMELEN: drr_toname's size, the terminating NUL included.</summary>
    public const int MaxNameLength = 256;
    /// <summary>SPA_MINBLOCKSIZE and SPA_MAXBLOCKSIZE at pool version 23.</summary>
    public const int MinBlockSize = 512, MaxBlockSize = 128 * 1024;
    /// <summary>DN_MAX_BONUSLEN: a 512-byte dnode less its 64-byte header and one block pointer.</summary>
    public const int MaxBonusLength = 320;
    /// <summary>DMU_OT_NUMTYPES at pool version 23: the last type is DMU_OT_DDT_STATS (43).</summary>
    public const uint ObjectTypeCount = 44;
    /// <summary>ZIO_CHECKSUM_FUNCTIONS and ZIO_COMPRESS_FUNCTIONS at pool version 23.</summary>
    public const byte ChecksumFunctions = 10, CompressFunctions = 15;
    /// <summary>dmu_objset_type_t DMU_OST_ZFS and DMU_OST_ZVOL.</summary>
    public const uint ObjsetTypeZfs = 2, ObjsetTypeZvol = 3;
}

/// <summary>One decoded record. Data-carrying records hold their payload.</summary>
public abstract record SendRecord
{
    public abstract SendRecordType Type { get; }
}

/// <summary>DRR_BEGIN: which snapshot this is (toguid, toname), what it is relative to (fromguid, 0 for
/// a full stream), when it was taken (seconds since the epoch) and of what kind (DMU_OST_ZFS).</summary>
public sealed record BeginRecord(
    ulong VersionInfo, ulong CreationTime, uint ObjsetType, uint Flags, ulong ToGuid, ulong FromGuid,
    string ToName, byte[] Payload) : SendRecord
{
    public override SendRecordType Type => SendRecordType.Begin;
    public uint HeaderType => (uint)(VersionInfo & 3);
    public ulong FeatureFlags => VersionInfo >> 2;
    public bool IsIncremental => FromGuid != 0;
}

/// <summary>DRR_OBJECT: (re)allocate an object with this dnode shape and bonus buffer.</summary>
public sealed record ObjectRecord(
    ulong Object, DmuObjectType ObjectType, DmuObjectType BonusType, uint BlockSize, byte[] Bonus,
    byte ChecksumType, byte Compress, ulong ToGuid) : SendRecord
{
    public override SendRecordType Type => SendRecordType.Object;
}

/// <summary>DRR_FREEOBJECTS: objects firstobj .. firstobj+numobjs-1 do not exist.</summary>
public sealed record FreeObjectsRecord(ulong FirstObject, ulong Count, ulong ToGuid) : SendRecord
{
    public override SendRecordType Type => SendRecordType.FreeObjects;
}

/// <summary>DRR_WRITE: one logical block of an object, at offset, drr_length bytes long.</summary>
public sealed record WriteRecord(
    ulong Object, DmuObjectType ObjectType, ulong Offset, byte[] Data, ulong ToGuid,
    byte ChecksumType, byte ChecksumFlags, BlockChecksum Key, ulong KeyProps) : SendRecord
{
    public override SendRecordType Type => SendRecordType.Write;
}

/// <summary>DRR_FREE: bytes offset .. offset+length of an object are holes; length ulong.MaxValue
/// (-1 in the C struct) means to the end of the object.</summary>
public sealed record FreeRecord(ulong Object, ulong Offset, ulong Length, ulong ToGuid) : SendRecord
{
    public override SendRecordType Type => SendRecordType.Free;
    public const ulong ToEnd = ulong.MaxValue;
}

/// <summary>DRR_END: the fletcher-4 of every byte of the (sub)stream before this record.</summary>
public sealed record EndRecord(BlockChecksum Checksum, ulong ToGuid) : SendRecord
{
    public override SendRecordType Type => SendRecordType.End;
}

/// <summary>
/// The DMU object types of pool version 23 that a ZPL stream carries (dmu.h's dmu_object_type_t,
/// numbered as on disk). Other values in range pass through the codec as numbers.
/// </summary>
public enum DmuObjectType : uint
{
    None = 0,
    Znode = 17,
    PlainFileContents = 19,
    DirectoryContents = 20,
    MasterNode = 21,
    UnlinkedSet = 22,
    Acl = 33,
    Fuid = 35,
}

/// <summary>The header fields of a record at their dmu_replay_record_t offsets.</summary>
internal static class RecordLayout
{
    public static void WriteHeader(Span<byte> r, SendRecordType type, uint payloadLength)
    {
        r.Clear();
        BinaryPrimitives.WriteUInt32LittleEndian(r, (uint)type);
        BinaryPrimitives.WriteUInt32LittleEndian(r[4..], payloadLength);
    }

    public static ulong U64(ReadOnlySpan<byte> r, int offset) => BinaryPrimitives.ReadUInt64LittleEndian(r[offset..]);
    public static uint U32(ReadOnlySpan<byte> r, int offset) => BinaryPrimitives.ReadUInt32LittleEndian(r[offset..]);
    public static void U64(Span<byte> r, int offset, ulong value) => BinaryPrimitives.WriteUInt64LittleEndian(r[offset..], value);
    public static void U32(Span<byte> r, int offset, uint value) => BinaryPrimitives.WriteUInt32LittleEndian(r[offset..], value);

    public static string Name(ReadOnlySpan<byte> field)
    {
        int end = field.IndexOf((byte)0);
        return Encoding.UTF8.GetString(end < 0 ? field : field[..end]);
    }
}
