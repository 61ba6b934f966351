using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;

namespace SmartOS.Storage;

/// <summary>One leaf as a label names it; Offline is a persistent `zpool offline` (Pool.Admin.cs).</summary>
public sealed record LeafConfig(ulong Guid, string FileName, bool Offline = false);

/// <summary>One top-level vdev as a label names it.</summary>
public sealed record TopConfig(VdevKind Kind, ulong Guid, long DataSize, IReadOnlyList<LeafConfig> Leaves);

/// <summary>
/// What every label carries (ZFS's label nvlist, reduced): the pool, this leaf, the whole vdev tree,
/// and the pool-wide settings, so a set of files in a directory is enough to import the pool.
/// </summary>
public sealed record PoolConfig(string PoolName, ulong PoolGuid, long Txg, ulong LeafGuid, int Copies,
                                ChecksumKind Checksum, IReadOnlyList<TopConfig> Tops)
{
    /// <summary>The object of the pool's command history (`zpool history`) in the meta object set; 0 for none.</summary>
    public long HistoryObject { get; init; }

    /// <summary>Set by `zpool export`, cleared by the import that follows: an active pool's files are refused to another create.</summary>
    public bool Exported { get; init; }

    /// <summary>The `comment` property.</summary>
    public string Comment { get; init; } = "";

    public ulong GuidSum()
    {
        ulong sum = PoolGuid;
        foreach (var top in Tops) foreach (var leaf in top.Leaves) sum += leaf.Guid;
        return sum;
    }
}

/// <summary>
/// Vdev labels and uberblocks (Pool.cs rules 4 and 5). Each leaf has two labels, L0 at the front
/// and L1 at the back of the file, each LabelSize bytes:
///   0       config block, ConfigSize bytes: magic, version, payload length, payload, and the
///           SHA-256 of everything before it in its last 32 bytes
///   128K    the uberblock ring: RingSlots slots of UberblockSize bytes; txg t goes to slot t % RingSlots
/// An uberblock slot: magic 0x00bab10c, version, txg, guid sum, timestamp, pool guid, the meta
/// object's dnode at 64, and the SHA-256 of the slot's first 992 bytes in its last 32.
/// </summary>
public static class VdevLabel
{
    public const int LabelSize = 256 * 1024;
    public const int ConfigSize = 16 * 1024;
    public const int RingOffset = 128 * 1024;
    public const int UberblockSize = 1024;
    public const int RingSlots = (LabelSize - RingOffset) / UberblockSize;
    public const ulong ConfigMagic = 0x4c4542414c534f53UL;   // "SOSLABEL"
    public const ulong UberblockMagic = 0x00bab10cUL;
    public const int Version = 2;   // 2: a leaf's offline flag and the history object (Pool.Admin.cs)

    public static long LabelOffset(int label, long leafSize) => label == 0 ? 0 : leafSize - LabelSize;

    public static void EncodeConfig(PoolConfig config, Span<byte> block)
    {
        block[..ConfigSize].Clear();
        using var ms = new MemoryStream();
        using (var w = new BinaryWriter(ms, Encoding.UTF8, leaveOpen: true))
        {
            w.Write(config.PoolName); w.Write(config.PoolGuid); w.Write(config.Txg); w.Write(config.LeafGuid);
            w.Write((byte)config.Copies); w.Write((byte)config.Checksum); w.Write(config.Tops.Count);
            foreach (var top in config.Tops)
            {
                w.Write((byte)top.Kind); w.Write(top.Guid); w.Write(top.DataSize); w.Write(top.Leaves.Count);
                foreach (var leaf in top.Leaves) { w.Write(leaf.Guid); w.Write(leaf.FileName); w.Write(leaf.Offline); }
            }
            w.Write(config.HistoryObject); w.Write(config.Exported); w.Write(config.Comment);
        }
        var payload = ms.GetBuffer().AsSpan(0, (int)ms.Length);
        if (payload.Length > ConfigSize - 48) throw new ArgumentException("vdev tree too large for a label", nameof(config));
        BinaryPrimitives.WriteUInt64LittleEndian(block, ConfigMagic);
        BinaryPrimitives.WriteInt32LittleEndian(block[8..], Version);
        BinaryPrimitives.WriteInt32LittleEndian(block[12..], payload.Length);
        payload.CopyTo(block[16..]);
        SHA256.HashData(block[..(ConfigSize - 32)], block[(ConfigSize - 32)..ConfigSize]);
    }

    /// <summary>Decodes a config block; the reason says what is wrong with a damaged one.</summary>
    public static PoolConfig? DecodeConfig(ReadOnlySpan<byte> block, out string reason)
    {
        reason = "";
        if (block.Length < ConfigSize) { reason = "label truncated"; return null; }
        if (BinaryPrimitives.ReadUInt64LittleEndian(block) != ConfigMagic) { reason = "no label"; return null; }
        Span<byte> sum = stackalloc byte[32];
        SHA256.HashData(block[..(ConfigSize - 32)], sum);
        if (!sum.SequenceEqual(block[(ConfigSize - 32)..ConfigSize])) { reason = "label checksum mismatch"; return null; }
        if (BinaryPrimitives.ReadInt32LittleEndian(block[8..]) != Version) { reason = "unsupported label version"; return null; }
        int length = BinaryPrimitives.ReadInt32LittleEndian(block[12..]);
        if (length <= 0 || length > ConfigSize - 48) { reason = "label payload length out of range"; return null; }
        try
        {
            using var r = new BinaryReader(new MemoryStream(block.Slice(16, length).ToArray()), Encoding.UTF8);
            string name = r.ReadString(); ulong poolGuid = r.ReadUInt64(); long txg = r.ReadInt64(); ulong leafGuid = r.ReadUInt64();
            int copies = r.ReadByte(); var checksum = (ChecksumKind)r.ReadByte(); int topCount = r.ReadInt32();
            if (topCount is <= 0 or > 64 || copies is < 1 or > BlockPointer.MaxCopies) { reason = "label vdev tree invalid"; return null; }
            var tops = new List<TopConfig>();
            for (int t = 0; t < topCount; t++)
            {
                var kind = (VdevKind)r.ReadByte(); ulong guid = r.ReadUInt64(); long dataSize = r.ReadInt64(); int leafCount = r.ReadInt32();
                if (leafCount is <= 0 or > 16 || kind is not (VdevKind.Disk or VdevKind.Mirror or VdevKind.Raidz1)) { reason = "label vdev tree invalid"; return null; }
                var leaves = new List<LeafConfig>();
                for (int l = 0; l < leafCount; l++) leaves.Add(new LeafConfig(r.ReadUInt64(), r.ReadString(), r.ReadBoolean()));
                tops.Add(new TopConfig(kind, guid, dataSize, leaves));
            }
            long history = r.ReadInt64(); bool exported = r.ReadBoolean(); string comment = r.ReadString();
            return new PoolConfig(name, poolGuid, txg, leafGuid, copies, checksum, tops) { HistoryObject = history, Exported = exported, Comment = comment };
        }
        catch (EndOfStreamException)
        {
            reason = "label vdev tree truncated";
            return null;
        }
    }

    public static void EncodeUberblock(in Uberblock ub, Span<byte> slot)
    {
        slot[..UberblockSize].Clear();
        BinaryPrimitives.WriteUInt64LittleEndian(slot, UberblockMagic);
        BinaryPrimitives.WriteInt64LittleEndian(slot[8..], Version);
        BinaryPrimitives.WriteInt64LittleEndian(slot[16..], ub.Txg);
        BinaryPrimitives.WriteUInt64LittleEndian(slot[24..], ub.GuidSum);
        BinaryPrimitives.WriteInt64LittleEndian(slot[32..], ub.Timestamp);
        BinaryPrimitives.WriteUInt64LittleEndian(slot[40..], ub.PoolGuid);
        ub.MetaDnode.WriteTo(slot[64..]);
        SHA256.HashData(slot[..(UberblockSize - 32)], slot[(UberblockSize - 32)..UberblockSize]);
    }

    /// <summary>Decodes a slot; false for an empty, torn or damaged one.</summary>
    public static bool TryDecodeUberblock(ReadOnlySpan<byte> slot, out Uberblock ub)
    {
        ub = default;
        if (BinaryPrimitives.ReadUInt64LittleEndian(slot) != UberblockMagic) return false;
        Span<byte> sum = stackalloc byte[32];
        SHA256.HashData(slot[..(UberblockSize - 32)], sum);
        if (!sum.SequenceEqual(slot[(UberblockSize - 32)..UberblockSize])) return false;
        if (BinaryPrimitives.ReadInt64LittleEndian(slot[8..]) != Version) return false;
        if (!Dnode.TryRead(slot[64..], out var meta)) return false;
        ub = new Uberblock(BinaryPrimitives.ReadInt64LittleEndian(slot[16..]), BinaryPrimitives.ReadUInt64LittleEndian(slot[24..]),
                           BinaryPrimitives.ReadInt64LittleEndian(slot[32..]), BinaryPrimitives.ReadUInt64LittleEndian(slot[40..]), meta);
        return true;
    }
}

/// <summary>The root of one committed txg: the meta object's dnode, which leads to everything else.</summary>
public readonly record struct Uberblock(long Txg, ulong GuidSum, long Timestamp, ulong PoolGuid, Dnode MetaDnode);

/// <summary>
/// An object's root (ZFS's dnode_phys_t, reduced), DnodeSize bytes in the meta object:
///   0 in-use u8, 1 height u8 (levels of indirect blocks above the data), 2 the data block size as
///   a shift (0: ObjectTree.BlockSize, 128 KiB; pools made before it was kept read 0), 8 length u64,
///   64 the root block pointer (a data block when height is 0, else the top indirect block).
/// </summary>
public readonly record struct Dnode(bool InUse, byte Height, long Length, BlockPointer Root, byte DataShift = 0)
{
    public const int Size = 256;

    /// <summary>The smallest data block an object may name (one sector).</summary>
    public const int MinDataShift = 9;

    /// <summary>A meta object's data blocks (ZFS's dnode blocks, DNODE_BLOCK_SIZE): 16 KiB, 64 dnodes,
    /// so a commit that changes one dnode rewrites 16 KiB at most, however many objects the set holds.</summary>
    public const int MetaDataShift = 14;

    public void WriteTo(Span<byte> destination)
    {
        destination[..Size].Clear();
        destination[0] = InUse ? (byte)1 : (byte)0;
        destination[1] = Height;
        destination[2] = DataShift;
        BinaryPrimitives.WriteInt64LittleEndian(destination[8..], Length);
        Root.WriteTo(destination[64..]);
    }

    public static bool TryRead(ReadOnlySpan<byte> source, out Dnode dnode)
    {
        dnode = default;
        if (source[0] > 1 || source[1] > ObjectSet.MaxHeight) return false;
        if (source[2] != 0 && (source[2] < Dnode.MinDataShift || source[2] > ObjectTree.BlockShift)) return false;
        long length = BinaryPrimitives.ReadInt64LittleEndian(source[8..]);
        if (length < 0 || !BlockPointer.TryRead(source[64..], out var root)) return false;
        dnode = new Dnode(source[0] == 1, source[1], length, root, source[2]);
        return true;
    }
}
