using System.Buffers.Binary;
using System.Text;

namespace SmartOS.Storage;

/// <summary>One name in a directory listing; Next is the cookie that continues the listing after it.</summary>
public readonly record struct DirectoryEntry(string Name, long Inode, FileType Type, long Next);

/// <summary>
/// A directory's entries (ZplFileSystem.cs rule 3): a hash table of 2^shift buckets of BucketSize
/// bytes, the directory object's bytes, like a ZAP whose pointer table is implicit.
///   key    = hash(name)'s top 46 bits << 16 | cd, where cd (the collision differentiator, as in a ZAP)
///            is the smallest number no other name with the same hash has; keys are unique and stable.
///   bucket = the key's top `shift` bits, so the buckets in order hold the keys in order.
///   bucket layout: count u16, used u16 (bytes including these 4), then entries sorted by key:
///            key u64, value u64 (type << 60 | inode, ZFS_DIRENT_MAKE), name length u8, name (UTF-8).
/// A bucket that has no room doubles the table: each bucket i splits into 2i and 2i+1 by the next key
/// bit, in order, so the cost is linear in the directory once per doubling (amortised constant per
/// name) and a listing's order (by key) and cookies (key + 2) never change. A directory is held in
/// memory as a copy of its object (loaded once, written through a bucket at a time).
/// Limits: 2^MaxShift buckets; names sharing one 46-bit hash must fit in one bucket (15 of the longest).
/// </summary>
internal sealed class ZplDirectory
{
    public const int BucketSize = 4096;
    public const int MaxShift = 16;
    public const int MaxName = 255;
    private const int HeaderSize = 4;
    private const int EntryHeader = 17;
    private const long MaxKey = (1L << 62) - 1;

    private byte[] _table;

    private ZplDirectory(Znode node, byte[] table) { Node = node; _table = table; }

    public Znode Node { get; }

    public int Bytes => _table.Length;

    /// <summary>Reads the directory object; an object shorter than its table (a new directory) reads as empty buckets.</summary>
    public static StorageResult Load(ObjectSet set, Znode node, out ZplDirectory? directory)
    {
        directory = null;
        var table = new byte[BucketSize << node.BucketShift];
        var read = set.Read(node.Id, 0, table, out _);
        if (!read.IsOk) return read;
        for (int b = 0; b < table.Length / BucketSize; b++)
        {
            var bucket = table.AsSpan(b * BucketSize, BucketSize);
            int count = BinaryPrimitives.ReadUInt16LittleEndian(bucket), used = BinaryPrimitives.ReadUInt16LittleEndian(bucket[2..]);
            if (count == 0 && used == 0) { BinaryPrimitives.WriteUInt16LittleEndian(bucket[2..], HeaderSize); continue; }
            if (used < HeaderSize || used > BucketSize) return Corrupt(node);
            int at = HeaderSize;
            for (int i = 0; i < count; i++)
            {
                if (at + EntryHeader > used) return Corrupt(node);
                long key = BinaryPrimitives.ReadInt64LittleEndian(bucket[at..]);
                if (key < 0 || key > MaxKey || BucketOf(key, node.BucketShift) != b) return Corrupt(node);
                at += EntryHeader + bucket[at + 16];
            }
            if (at != used) return Corrupt(node);
        }
        directory = new ZplDirectory(node, table);
        return StorageResult.Success;
    }

    private static StorageResult Corrupt(Znode node) => new(StorageStatus.MetadataCorrupted, $"directory {node.Id}");

    /// <summary>FNV-1a over the name, then a 64-bit finaliser so that similar names spread over the buckets.</summary>
    public static long KeyHash(ReadOnlySpan<byte> name)
    {
        ulong h = 0xcbf29ce484222325;
        foreach (byte b in name) h = (h ^ b) * 0x100000001b3;
        h ^= h >> 33; h *= 0xff51afd7ed558ccd; h ^= h >> 33; h *= 0xc4ceb9fe1a85ec53; h ^= h >> 33;
        return (long)(h >> 18) << 16;
    }

    private static int BucketOf(long key, int shift) => shift == 0 ? 0 : (int)(key >> (62 - shift));

    /// <summary>Finds a name: its value (type << 60 | inode) and key.</summary>
    public bool TryFind(ReadOnlySpan<byte> name, out long value, out long key)
    {
        long hash = KeyHash(name);
        var bucket = Bucket(BucketOf(hash, Node.BucketShift));
        int count = BinaryPrimitives.ReadUInt16LittleEndian(bucket);
        int at = HeaderSize;
        for (int i = 0; i < count; i++)
        {
            key = BinaryPrimitives.ReadInt64LittleEndian(bucket[at..]);
            int length = bucket[at + 16];
            if ((key & ~0xFFFFL) == hash && bucket.Slice(at + EntryHeader, length).SequenceEqual(name))
            {
                value = BinaryPrimitives.ReadInt64LittleEndian(bucket[(at + 8)..]);
                return true;
            }
            if ((key & ~0xFFFFL) > hash) break;
            at += EntryHeader + length;
        }
        value = 0; key = 0;
        return false;
    }

    /// <summary>Adds a name that is not there yet, doubling the table while its bucket is full.</summary>
    public StorageResult Add(ObjectSet set, ReadOnlySpan<byte> name, long value)
    {
        long hash = KeyHash(name);
        while (true)
        {
            int b = BucketOf(hash, Node.BucketShift);
            var bucket = Bucket(b);
            int count = BinaryPrimitives.ReadUInt16LittleEndian(bucket), used = BinaryPrimitives.ReadUInt16LittleEndian(bucket[2..]);
            // The first unused cd among names of the same hash, where the new key goes, and whether
            // every name in the bucket has this hash (then no split can make room).
            long key = hash;
            int at = HeaderSize, insertAt = -1;
            bool sameHashOnly = true;
            for (int i = 0; i < count; i++)
            {
                long k = BinaryPrimitives.ReadInt64LittleEndian(bucket[at..]);
                if ((k & ~0xFFFFL) != hash) sameHashOnly = false;
                if (insertAt < 0 && k > key) insertAt = at;
                else if (insertAt < 0 && k == key) key++;
                at += EntryHeader + bucket[at + 16];
            }
            if (insertAt < 0) insertAt = at;
            at = insertAt;
            int size = EntryHeader + name.Length;
            if (used + size <= BucketSize)
            {
                if ((key & ~0xFFFFL) != hash) return new StorageResult(StorageStatus.NoSpace, $"directory {Node.Id}: too many names with one hash");
                bucket[at..used].CopyTo(bucket[(at + size)..]);
                BinaryPrimitives.WriteInt64LittleEndian(bucket[at..], key);
                BinaryPrimitives.WriteInt64LittleEndian(bucket[(at + 8)..], value);
                bucket[at + 16] = (byte)name.Length;
                name.CopyTo(bucket[(at + EntryHeader)..]);
                BinaryPrimitives.WriteUInt16LittleEndian(bucket, (ushort)(count + 1));
                BinaryPrimitives.WriteUInt16LittleEndian(bucket[2..], (ushort)(used + size));
                return WriteBucket(set, b);
            }
            if (sameHashOnly || Node.BucketShift == MaxShift)
                return new StorageResult(StorageStatus.NoSpace, $"directory {Node.Id}: bucket full");
            var grown = Double(set);
            if (!grown.IsOk) return grown;
        }
    }

    /// <summary>Changes the value of a name that is there (rename over an existing name).</summary>
    public StorageResult SetValue(ObjectSet set, ReadOnlySpan<byte> name, long value)
    {
        if (!Position(name, out int b, out int at)) return new StorageResult(StorageStatus.NoSuchObject, $"directory {Node.Id}");
        BinaryPrimitives.WriteInt64LittleEndian(Bucket(b)[(at + 8)..], value);
        return WriteBucket(set, b);
    }

    public StorageResult Remove(ObjectSet set, ReadOnlySpan<byte> name)
    {
        if (!Position(name, out int b, out int at)) return new StorageResult(StorageStatus.NoSuchObject, $"directory {Node.Id}");
        var bucket = Bucket(b);
        int count = BinaryPrimitives.ReadUInt16LittleEndian(bucket), used = BinaryPrimitives.ReadUInt16LittleEndian(bucket[2..]);
        int size = EntryHeader + bucket[at + 16];
        bucket[(at + size)..used].CopyTo(bucket[at..]);
        bucket[(used - size)..used].Clear();
        BinaryPrimitives.WriteUInt16LittleEndian(bucket, (ushort)(count - 1));
        BinaryPrimitives.WriteUInt16LittleEndian(bucket[2..], (ushort)(used - size));
        return WriteBucket(set, b);
    }

    /// <summary>Appends up to max entries whose cookie (key + 2) is at least cookie, in key order.</summary>
    public void List(long cookie, List<DirectoryEntry> into, int max)
    {
        long from = Math.Max(0, cookie - 2);
        int buckets = _table.Length / BucketSize;
        for (int b = BucketOf(Math.Min(from, MaxKey), Node.BucketShift); b < buckets && max > 0; b++)
        {
            var bucket = Bucket(b);
            int count = BinaryPrimitives.ReadUInt16LittleEndian(bucket), at = HeaderSize;
            for (int i = 0; i < count && max > 0; i++)
            {
                long key = BinaryPrimitives.ReadInt64LittleEndian(bucket[at..]);
                long value = BinaryPrimitives.ReadInt64LittleEndian(bucket[(at + 8)..]);
                int length = bucket[at + 16];
                if (key >= from)
                {
                    into.Add(new DirectoryEntry(Encoding.UTF8.GetString(bucket.Slice(at + EntryHeader, length)),
                                                value & ((1L << 60) - 1), (FileType)(value >>> 60), key + 3));
                    max--;
                }
                at += EntryHeader + length;
            }
        }
    }

    private bool Position(ReadOnlySpan<byte> name, out int b, out int at)
    {
        long hash = KeyHash(name);
        b = BucketOf(hash, Node.BucketShift);
        var bucket = Bucket(b);
        int count = BinaryPrimitives.ReadUInt16LittleEndian(bucket);
        at = HeaderSize;
        for (int i = 0; i < count; i++)
        {
            long key = BinaryPrimitives.ReadInt64LittleEndian(bucket[at..]);
            int length = bucket[at + 16];
            if ((key & ~0xFFFFL) == hash && bucket.Slice(at + EntryHeader, length).SequenceEqual(name)) return true;
            at += EntryHeader + length;
        }
        return false;
    }

    private Span<byte> Bucket(int b) => _table.AsSpan(b * BucketSize, BucketSize);

    private StorageResult WriteBucket(ObjectSet set, int b) => set.Write(Node.Id, (long)b * BucketSize, Bucket(b));

    /// <summary>Splits every bucket in two by the next key bit; entries stay in key order.</summary>
    private StorageResult Double(ObjectSet set)
    {
        int shift = Node.BucketShift + 1;
        var table = new byte[_table.Length * 2];
        int buckets = _table.Length / BucketSize;
        for (int b = 0; b < buckets; b++)
        {
            var bucket = Bucket(b);
            int count = BinaryPrimitives.ReadUInt16LittleEndian(bucket), at = HeaderSize;
            for (int half = 0; half < 2; half++)
                BinaryPrimitives.WriteUInt16LittleEndian(table.AsSpan((2 * b + half) * BucketSize + 2), HeaderSize);
            for (int i = 0; i < count; i++)
            {
                int size = EntryHeader + bucket[at + 16];
                long key = BinaryPrimitives.ReadInt64LittleEndian(bucket[at..]);
                var target = table.AsSpan(BucketOf(key, shift) * BucketSize, BucketSize);
                int n = BinaryPrimitives.ReadUInt16LittleEndian(target), used = BinaryPrimitives.ReadUInt16LittleEndian(target[2..]);
                bucket.Slice(at, size).CopyTo(target[used..]);
                BinaryPrimitives.WriteUInt16LittleEndian(target, (ushort)(n + 1));
                BinaryPrimitives.WriteUInt16LittleEndian(target[2..], (ushort)(used + size));
                at += size;
            }
        }
        var written = set.Write(Node.Id, 0, table);
        if (!written.IsOk) return written;
        _table = table;
        Node.BucketShift = (byte)shift;
        return StorageResult.Success;
    }
}
