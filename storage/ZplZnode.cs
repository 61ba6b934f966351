using System.Buffers.Binary;

namespace SmartOS.Storage;

/// <summary>What an inode is: the S_IFMT bits of its mode (sys/stat.h), and a directory entry's type (mode >> 12).</summary>
public enum FileType : byte
{
    None = 0,
    Directory = 4,     // S_IFDIR 0040000
    Regular = 8,       // S_IFREG 0100000
    Symlink = 10,      // S_IFLNK 0120000
}

/// <summary>An inode's attributes as stat(2) reports them; times are the file system's clock, in nanoseconds.</summary>
public readonly record struct FileAttributes(
    long Inode, FileType Type, uint Mode, uint Uid, uint Gid, long Links, long Size,
    long Atime, long Mtime, long Ctime, long Crtime, long Generation, long Parent)
{
    /// <summary>st_mode: the type bits and the permission bits together.</summary>
    public uint FullMode => ((uint)Type << 12) | Mode;
}

/// <summary>
/// One znode's attribute header (ZFS's znode_phys_t, reduced), ZnodeSize bytes at inode * ZnodeSize in
/// the znode table object (ZplFileSystem.cs rule 2):
///   0 magic u32 'ZNOD' (zero: a free slot), 4 mode u32 (S_IFMT | permission bits), 8 uid u32, 12 gid u32,
///   16 links u64, 24 size u64 (a regular file's or symlink's bytes; a directory's entries),
///   32 atime, 40 mtime, 48 ctime, 56 crtime (i64 ns), 64 generation u64, 72 parent u64,
///   80 bucket shift u8 (directories: the table has 2^shift buckets), the rest zero.
/// </summary>
internal sealed class Znode
{
    public const int Size = 256;
    public const uint Magic = 0x444F4E5A;   // "ZNOD" read little-endian
    public const uint PermissionBits = 0xFFF;

    public long Id;
    public uint Mode;
    public uint Uid, Gid;
    public long Links, Length;
    public long Atime, Mtime, Ctime, Crtime;
    public long Generation, Parent;
    public byte BucketShift;

    public FileType Type => (FileType)(Mode >> 12);

    public bool IsDirectory => Type == FileType.Directory;

    public FileAttributes Attributes => new(Id, Type, Mode & PermissionBits, Uid, Gid, Links,
        IsDirectory ? Length + 2 : Length, Atime, Mtime, Ctime, Crtime, Generation, Parent);

    public void WriteTo(Span<byte> destination)
    {
        destination[..Size].Clear();
        BinaryPrimitives.WriteUInt32LittleEndian(destination, Magic);
        BinaryPrimitives.WriteUInt32LittleEndian(destination[4..], Mode);
        BinaryPrimitives.WriteUInt32LittleEndian(destination[8..], Uid);
        BinaryPrimitives.WriteUInt32LittleEndian(destination[12..], Gid);
        BinaryPrimitives.WriteInt64LittleEndian(destination[16..], Links);
        BinaryPrimitives.WriteInt64LittleEndian(destination[24..], Length);
        BinaryPrimitives.WriteInt64LittleEndian(destination[32..], Atime);
        BinaryPrimitives.WriteInt64LittleEndian(destination[40..], Mtime);
        BinaryPrimitives.WriteInt64LittleEndian(destination[48..], Ctime);
        BinaryPrimitives.WriteInt64LittleEndian(destination[56..], Crtime);
        BinaryPrimitives.WriteInt64LittleEndian(destination[64..], Generation);
        BinaryPrimitives.WriteInt64LittleEndian(destination[72..], Parent);
        destination[80] = BucketShift;
    }

    /// <summary>Decodes a slot: false for a free slot, MetadataCorrupted status for one that cannot be a znode.</summary>
    public static StorageStatus TryRead(long id, ReadOnlySpan<byte> source, out Znode? znode)
    {
        znode = null;
        uint magic = BinaryPrimitives.ReadUInt32LittleEndian(source);
        if (magic == 0) return StorageStatus.NoSuchObject;
        if (magic != Magic) return StorageStatus.MetadataCorrupted;
        var z = new Znode
        {
            Id = id,
            Mode = BinaryPrimitives.ReadUInt32LittleEndian(source[4..]),
            Uid = BinaryPrimitives.ReadUInt32LittleEndian(source[8..]),
            Gid = BinaryPrimitives.ReadUInt32LittleEndian(source[12..]),
            Links = BinaryPrimitives.ReadInt64LittleEndian(source[16..]),
            Length = BinaryPrimitives.ReadInt64LittleEndian(source[24..]),
            Atime = BinaryPrimitives.ReadInt64LittleEndian(source[32..]),
            Mtime = BinaryPrimitives.ReadInt64LittleEndian(source[40..]),
            Ctime = BinaryPrimitives.ReadInt64LittleEndian(source[48..]),
            Crtime = BinaryPrimitives.ReadInt64LittleEndian(source[56..]),
            Generation = BinaryPrimitives.ReadInt64LittleEndian(source[64..]),
            Parent = BinaryPrimitives.ReadInt64LittleEndian(source[72..]),
            BucketShift = source[80],
        };
        if (z.Type is not (FileType.Directory or FileType.Regular or FileType.Symlink) || z.Links < 0 || z.Length < 0
            || z.BucketShift > ZplDirectory.MaxShift)
            return StorageStatus.MetadataCorrupted;
        znode = z;
        return StorageStatus.Ok;
    }
}
