using System.Buffers.Binary;

namespace SmartOS.Storage;

/// <summary>What a block holds, recorded in its pointer (ZFS's dmu_object_type_t, reduced).</summary>
public enum BlockType : byte
{
    None = 0,
    Data = 1,
    Indirect = 2,
    Dnodes = 3,
    ObjectSetRoot = 4,   // a dataset's root: its meta object's dnode (ZFS's objset_phys_t)
    IntentLog = 5,       // a block of a dataset's intent log (IntentLog.cs), outside every object set
}

/// <summary>A data virtual address: which top-level vdev, and the byte offset in its data area.</summary>
public readonly record struct Dva(int Vdev, long Offset);

/// <summary>
/// A block pointer (Pool.cs rule 3), 128 bytes on disk like ZFS's blkptr_t:
///   0   three DVAs of 16 bytes (vdev u32, reserved u32, offset u64); unused ones are all zero
///   48  psize u32 (bytes stored, a multiple of 512)
///   52  checksum kind u8, block type u8, level u8, DVA count u8
///   56  birth txg u64
///   64  lsize u32 (logical size: the block's bytes up to its last non-zero sector, a multiple of 512)
///   68  compression function u8 (CompressionSetting.Function: off 2, gzip-N 4+N, lz4 15, zstd 16)
///   69  27 reserved bytes, zero
///   96  checksum, four u64 (of the psize bytes as stored, compressed or not)
/// A pointer with no DVA is a hole: its block reads as zeros and occupies no space. An uncompressed
/// block has psize == lsize; a compressed one has psize at most 7/8 of lsize (Pool.cs rule 10).
/// </summary>
public readonly struct BlockPointer
{
    public const int Size = 128;
    public const int MaxCopies = 3;

    public readonly Dva Dva0, Dva1, Dva2;
    public readonly int PhysicalSize;
    public readonly int LogicalSize;
    public readonly byte Compression;
    public readonly ChecksumKind ChecksumKind;
    public readonly BlockType Type;
    public readonly byte Level;
    public readonly byte Copies;
    public readonly long BirthTxg;
    public readonly BlockChecksum Checksum;

    public BlockPointer(Dva dva0, Dva dva1, Dva dva2, byte copies, int physicalSize, int logicalSize, byte compression,
                        ChecksumKind kind, BlockType type, byte level, long birthTxg, BlockChecksum checksum)
    {
        Dva0 = dva0; Dva1 = dva1; Dva2 = dva2; Copies = copies; PhysicalSize = physicalSize;
        LogicalSize = logicalSize; Compression = compression;
        ChecksumKind = kind; Type = type; Level = level; BirthTxg = birthTxg; Checksum = checksum;
    }

    public bool IsHole => Copies == 0;

    public bool IsCompressed => Compression != CompressionSetting.FunctionOff;

    public Dva GetDva(int index) => index switch { 0 => Dva0, 1 => Dva1, _ => Dva2 };

    public void WriteTo(Span<byte> destination)
    {
        destination[..Size].Clear();
        for (int i = 0; i < Copies; i++)
        {
            Dva dva = GetDva(i);
            BinaryPrimitives.WriteInt32LittleEndian(destination[(i * 16)..], dva.Vdev);
            BinaryPrimitives.WriteInt64LittleEndian(destination[(i * 16 + 8)..], dva.Offset);
        }
        BinaryPrimitives.WriteInt32LittleEndian(destination[48..], PhysicalSize);
        destination[52] = (byte)ChecksumKind;
        destination[53] = (byte)Type;
        destination[54] = Level;
        destination[55] = Copies;
        BinaryPrimitives.WriteInt64LittleEndian(destination[56..], BirthTxg);
        BinaryPrimitives.WriteInt32LittleEndian(destination[64..], LogicalSize);
        destination[68] = Compression;
        Checksum.WriteTo(destination[96..]);
    }

    /// <summary>Reads a pointer; false if its fields cannot describe a block (a damaged parent).</summary>
    public static bool TryRead(ReadOnlySpan<byte> source, out BlockPointer bp)
    {
        bp = default;
        byte copies = source[55];
        if (copies == 0)
        {
            return !source[..Size].ContainsAnyExcept((byte)0);
        }
        if (copies > MaxCopies) return false;
        var kind = (ChecksumKind)source[52];
        if (kind is not (ChecksumKind.Fletcher4 or ChecksumKind.Sha256 or ChecksumKind.Blake3)) return false;
        int psize = BinaryPrimitives.ReadInt32LittleEndian(source[48..]);
        if (psize <= 0 || psize % Pool.SectorSize != 0 || psize > Pool.MaxBlockSize) return false;
        int lsize = BinaryPrimitives.ReadInt32LittleEndian(source[64..]);
        byte compression = source[68];
        if (lsize <= 0 || lsize % Pool.SectorSize != 0 || lsize > Pool.MaxBlockSize) return false;
        if (compression == CompressionSetting.FunctionOff ? psize != lsize : psize >= lsize) return false;
        if (compression is not (CompressionSetting.FunctionOff or CompressionSetting.FunctionLz4 or CompressionSetting.FunctionZstd
                                or >= CompressionSetting.FunctionGzip1 and <= CompressionSetting.FunctionGzip9)) return false;
        Span<Dva> dvas = stackalloc Dva[MaxCopies];
        for (int i = 0; i < copies; i++)
        {
            int vdev = BinaryPrimitives.ReadInt32LittleEndian(source[(i * 16)..]);
            long offset = BinaryPrimitives.ReadInt64LittleEndian(source[(i * 16 + 8)..]);
            if (vdev < 0 || offset < 0 || offset % Pool.SectorSize != 0) return false;
            dvas[i] = new Dva(vdev, offset);
        }
        bp = new BlockPointer(dvas[0], dvas[1], dvas[2], copies, psize, lsize, compression, kind, (BlockType)source[53], source[54],
                              BinaryPrimitives.ReadInt64LittleEndian(source[56..]), BlockChecksum.ReadFrom(source[96..]));
        return true;
    }

    public override string ToString() => IsHole ? "<hole>" :
        $"{Type} L{Level} DVA[0]=<{Dva0.Vdev}:{Dva0.Offset:x}> lsize={LogicalSize} psize={PhysicalSize} comp={Compression} birth={BirthTxg} {Checksum}";
}
